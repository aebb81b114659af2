//! Bencode, the encoding of BitTorrent's `.torrent` files, tracker responses
//! and extension messages, decoded strictly and within bounds.
//!
//! - [`decode`] (or a configured [`Decoder`]) validates bytes in one pass and
//!   gives back a [`Value`]: a view of the input whose lists ([`List`]) and
//!   dictionaries ([`Dict`]) are walked on demand. Decoding allocates nothing.
//!   Every value remembers the exact bytes it was decoded from
//!   ([`Value::raw`]), so a torrent's info-hash is computed over what was
//!   received, never over a re-encoding.
//! - [`Encode`], [`Encoder`] and [`to_vec`] write canonical bencode from Rust
//!   types, from [`OwnedValue`] trees, or from decoded [`Value`]s.
//! - Errors ([`Error`]) carry the byte offset and what was expected there.
//!
//! ```
//! let input = b"d4:infod6:lengthi42e4:name5:helloe8:announce3:urle";
//! // Real torrents sometimes have unsorted keys, as this one does.
//! assert!(bencode::decode(input).is_err());
//! let torrent = bencode::Decoder::lenient().decode(input)?;
//! let info = torrent.as_dict().and_then(|d| d.get(b"info")).expect("has info");
//! assert_eq!(info.raw(), b"d6:lengthi42e4:name5:helloe");
//! assert_eq!(info.as_dict().and_then(|d| d.get(b"length")).and_then(|v| v.as_int()), Some(42));
//! # Ok::<(), bencode::Error>(())
//! ```
//!
//! # Rules
//!
//! Strict decoding enforces BEP 3 as written: no leading zeros in integers or
//! lengths, no `i-0e`, dictionary keys that are byte strings, sorted and
//! unique, and no bytes after the value. Integers are limited to `i64`, which
//! every real use fits. The lenient mode relaxes exactly one rule, key order;
//! see [`Decoder`].
//!
//! # Relation to bendy
//!
//! The baseline crate for bencode is `bendy`. This crate does its own decoding
//! because what btc needs goes beyond what bendy 0.6.1 offers: bendy always
//! rejects unsorted keys (there is no lenient mode, and real torrents need one),
//! it gives the raw bytes only of dictionaries rather than of every value, it
//! accepts trailing data unless the caller checks, it leaves integers as text
//! with overflow to the caller, and several of its errors carry no offset.
//! bendy stays in this crate's tests as an independent oracle: valid inputs
//! must decode the same in both, and the benchmark (`cargo bench -p bencode`)
//! measures both decoders on the same torrent.

mod decode;
mod encode;
mod error;
mod value;

pub use decode::{DEFAULT_MAX_DEPTH, Decoder, MAX_DEPTH_LIMIT, decode};
pub use encode::{Bytes, DictEncoder, Encode, Encoder, Raw, to_vec};
pub use error::{Error, ErrorKind};
pub use value::{Dict, Kind, List, OwnedValue, Value};

#[cfg(test)]
mod tests;
