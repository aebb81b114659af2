use std::collections::BTreeMap;

use crate::value::{Kind, OwnedValue, Value};

/// A type that can be written as bencode.
///
/// Implemented for integers, strings, [`Bytes`], lists of encodable values,
/// maps with byte-string keys, the value trees, and [`Raw`] pre-encoded bytes.
/// Implement it for your own types with an [`Encoder`]:
///
/// ```
/// use bencode::{Bytes, Encode, Encoder};
///
/// struct Peer { ip: String, port: u16 }
///
/// impl Encode for Peer {
///     fn encode(&self, e: &mut Encoder) {
///         e.dict(|d| {
///             d.entry(b"port", &i64::from(self.port));
///             d.entry(b"ip", &self.ip);
///         });
///     }
/// }
///
/// let peer = Peer { ip: "127.0.0.1".into(), port: 6881 };
/// assert_eq!(bencode::to_vec(&peer), b"d2:ip9:127.0.0.14:porti6881ee");
/// ```
pub trait Encode {
    /// Writes `self` to the encoder as exactly one bencode value.
    fn encode(&self, encoder: &mut Encoder);
}

/// Encodes a value into a new byte vector.
pub fn to_vec<T: Encode + ?Sized>(value: &T) -> Vec<u8> {
    let mut encoder = Encoder::default();
    value.encode(&mut encoder);
    encoder.into_bytes()
}

/// Writes bencode into a byte buffer. Dictionaries are always written with
/// sorted keys, so the output is canonical whatever order entries are given in.
#[derive(Debug, Default)]
pub struct Encoder {
    out: Vec<u8>,
}

impl Encoder {
    /// The bytes written so far.
    pub fn into_bytes(self) -> Vec<u8> {
        self.out
    }

    /// Writes an integer.
    pub fn int(&mut self, n: i64) {
        self.out.push(b'i');
        self.out.extend_from_slice(n.to_string().as_bytes());
        self.out.push(b'e');
    }

    /// Writes an unsigned integer. Bencode integers have no fixed width, but
    /// this crate's decoder (like most) reads only what fits an `i64`, so
    /// values above `i64::MAX` are best avoided.
    pub fn uint(&mut self, n: u64) {
        self.out.push(b'i');
        self.out.extend_from_slice(n.to_string().as_bytes());
        self.out.push(b'e');
    }

    /// Writes a byte string.
    pub fn bytes(&mut self, bytes: &[u8]) {
        self.out
            .extend_from_slice(bytes.len().to_string().as_bytes());
        self.out.push(b':');
        self.out.extend_from_slice(bytes);
    }

    /// Writes a list whose items the closure writes, one value per call.
    pub fn list(&mut self, items: impl FnOnce(&mut Encoder)) {
        self.out.push(b'l');
        items(self);
        self.out.push(b'e');
    }

    /// Writes a dictionary whose entries the closure adds, in any order.
    pub fn dict(&mut self, entries: impl FnOnce(&mut DictEncoder)) {
        let mut dict = DictEncoder::default();
        entries(&mut dict);
        self.out.push(b'd');
        for (key, value) in dict.entries {
            self.bytes(&key);
            self.out.extend_from_slice(&value);
        }
        self.out.push(b'e');
    }

    /// Writes bytes that are already bencode, unchanged. The caller promises
    /// they are exactly one valid value (as [`Value::raw`] bytes are).
    pub fn raw(&mut self, bencoded: &[u8]) {
        self.out.extend_from_slice(bencoded);
    }
}

/// Collects a dictionary's entries for [`Encoder::dict`], which writes them
/// sorted by key. Adding a key twice keeps the later value.
#[derive(Debug, Default)]
pub struct DictEncoder {
    entries: BTreeMap<Vec<u8>, Vec<u8>>,
}

impl DictEncoder {
    /// Adds an entry.
    pub fn entry<T: Encode + ?Sized>(&mut self, key: &[u8], value: &T) {
        self.entries.insert(key.to_vec(), to_vec(value));
    }

    /// Adds an entry whose value the closure writes.
    pub fn entry_with(&mut self, key: &[u8], value: impl FnOnce(&mut Encoder)) {
        let mut encoder = Encoder::default();
        value(&mut encoder);
        self.entries.insert(key.to_vec(), encoder.into_bytes());
    }

    /// Adds an entry if `value` is `Some`.
    pub fn entry_opt<T: Encode>(&mut self, key: &[u8], value: Option<&T>) {
        if let Some(value) = value {
            self.entry(key, value);
        }
    }
}

/// A byte string to encode (a plain `&[u8]` or `Vec<u8>` would be ambiguous
/// with a list of numbers).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Bytes<'a>(pub &'a [u8]);

/// Bytes that are already one bencoded value, written unchanged.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Raw<'a>(pub &'a [u8]);

impl Encode for Bytes<'_> {
    fn encode(&self, e: &mut Encoder) {
        e.bytes(self.0);
    }
}

impl Encode for Raw<'_> {
    fn encode(&self, e: &mut Encoder) {
        e.raw(self.0);
    }
}

impl Encode for str {
    fn encode(&self, e: &mut Encoder) {
        e.bytes(self.as_bytes());
    }
}

impl Encode for String {
    fn encode(&self, e: &mut Encoder) {
        e.bytes(self.as_bytes());
    }
}

macro_rules! encode_signed {
    ($($t:ty)*) => {$(
        impl Encode for $t {
            fn encode(&self, e: &mut Encoder) {
                e.int(i64::from(*self));
            }
        }
    )*};
}
encode_signed!(i8 i16 i32 i64);

macro_rules! encode_unsigned {
    ($($t:ty)*) => {$(
        impl Encode for $t {
            fn encode(&self, e: &mut Encoder) {
                e.uint(u64::from(*self));
            }
        }
    )*};
}
encode_unsigned!(u16 u32 u64);

impl<T: Encode + ?Sized> Encode for &T {
    fn encode(&self, e: &mut Encoder) {
        (**self).encode(e);
    }
}

impl<T: Encode> Encode for [T] {
    fn encode(&self, e: &mut Encoder) {
        e.list(|e| self.iter().for_each(|item| item.encode(e)));
    }
}

impl<T: Encode> Encode for Vec<T> {
    fn encode(&self, e: &mut Encoder) {
        self.as_slice().encode(e);
    }
}

impl<K: AsRef<[u8]>, V: Encode> Encode for BTreeMap<K, V> {
    fn encode(&self, e: &mut Encoder) {
        e.dict(|d| self.iter().for_each(|(k, v)| d.entry(k.as_ref(), v)));
    }
}

impl Encode for OwnedValue {
    fn encode(&self, e: &mut Encoder) {
        match self {
            OwnedValue::Int(n) => e.int(*n),
            OwnedValue::Bytes(b) => e.bytes(b),
            OwnedValue::List(items) => items.encode(e),
            OwnedValue::Dict(d) => {
                // A BTreeMap iterates in key order: write directly, no re-sort.
                e.out.push(b'd');
                for (k, v) in d {
                    e.bytes(k);
                    v.encode(e);
                }
                e.out.push(b'e');
            }
        }
    }
}

/// Encodes canonically: a value decoded leniently, with unsorted keys, comes
/// out sorted. Use [`Value::raw`] to get the original bytes back instead.
impl Encode for Value<'_> {
    fn encode(&self, e: &mut Encoder) {
        match self.kind() {
            Kind::Int(n) => e.int(n),
            Kind::Bytes(b) => e.bytes(b),
            Kind::List(list) => e.list(|e| list.iter().for_each(|item| item.encode(e))),
            Kind::Dict(dict) => e.dict(|d| dict.iter().for_each(|(k, v)| d.entry(k, &v))),
        }
    }
}
