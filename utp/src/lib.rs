//! The Micro Transport Protocol (uTP, BEP 29): BitTorrent's reliable,
//! ordered stream over UDP, whose LEDBAT congestion control gives way to
//! other traffic when it sees queueing delay.
//!
//! The protocol is sans-IO. So far:
//! - [`Packet`] is one uTP datagram (version 1): its [`Header`], the
//!   selective-ACK extension ([`SelectiveAck`]) and its payload, decoded
//!   within bounds and encoded; [`is_utp`] tells a uTP datagram from a DHT
//!   one on a shared socket.
//! - [`Ledbat`] is the congestion window (BEP 29's LEDBAT: a queueing delay
//!   of [`TARGET`] aimed at), and [`Rtt`] the round-trip estimate that
//!   sets the retransmission timeout.
//!
//! ```
//! use utp::{Header, Packet, PacketType, SelectiveAck};
//!
//! let packet = Packet {
//!     header: Header {
//!         kind: PacketType::State,
//!         connection_id: 7,
//!         timestamp_us: 1_000,
//!         timestamp_difference_us: 250,
//!         window: 1 << 20,
//!         seq_nr: 1,
//!         ack_nr: 41,
//!     },
//!     // Packets 43 and 50 arrived past the gap at 42.
//!     selective_ack: Some(SelectiveAck::new(41, [43, 50])),
//!     largest_datagram: None,
//!     payload: Vec::new(),
//! };
//! let bytes = packet.encode();
//! assert!(utp::is_utp(&bytes));
//! let decoded = Packet::decode(&bytes)?;
//! assert_eq!(decoded, packet);
//! let sack = decoded.selective_ack.unwrap();
//! assert_eq!(sack.acked(41).collect::<Vec<_>>(), [43, 50]);
//! # Ok::<(), utp::PacketError>(())
//! ```

mod congestion;
mod connection;
mod packet;
#[cfg(feature = "tokio")]
mod shell;

pub use congestion::{Ledbat, MAX_GAIN_PER_RTT, Rtt, TARGET};
pub use connection::{Config, Connection, Error, Stats, Transmit, reset_for};
pub use packet::{
    HEADER_LEN, Header, MAX_SACK_BYTES, Packet, PacketError, PacketType, SelectiveAck,
    UNANNOUNCED_DATAGRAM, is_utp,
};
#[cfg(feature = "tokio")]
pub use shell::{
    Info, ReadHalf, SOCKET_BUFFER, Socket, SocketConfig, Stream, WriteHalf, udp_socket,
};
