//! BEP 15's UDP tracker packets, as plain values: encoded by whoever sends
//! them, decoded (with every length checked) by whoever receives them.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use metainfo::{InfoHash, PeerId};

use crate::request::Event;
use crate::response::{Peer, ScrapeStats};

/// The magic number that opens a connect request.
pub const PROTOCOL_ID: u64 = 0x0417_2710_1980;

/// The most info-hashes one scrape packet may carry (BEP 15's limit).
pub const MAX_SCRAPE: usize = 74;

const CONNECT: u32 = 0;
const ANNOUNCE: u32 = 1;
const SCRAPE: u32 = 2;
const ERROR: u32 = 3;

/// A packet from client to tracker.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum UdpRequest {
    /// Ask for a connection id.
    Connect {
        /// Chosen by the client, echoed by the tracker.
        transaction_id: u32,
    },
    /// Announce.
    Announce {
        /// From the connect response.
        connection_id: u64,
        /// Chosen by the client.
        transaction_id: u32,
        /// The torrent.
        info_hash: InfoHash,
        /// The peer.
        peer_id: PeerId,
        /// Bytes downloaded.
        downloaded: u64,
        /// Bytes left.
        left: u64,
        /// Bytes uploaded.
        uploaded: u64,
        /// The event, if any.
        event: Option<Event>,
        /// The client's key.
        key: u32,
        /// Peers wanted; `None` for the tracker's default.
        numwant: Option<u32>,
        /// The port the client listens on.
        port: u16,
    },
    /// Scrape up to [`MAX_SCRAPE`] torrents.
    Scrape {
        /// From the connect response.
        connection_id: u64,
        /// Chosen by the client.
        transaction_id: u32,
        /// The torrents.
        info_hashes: Vec<InfoHash>,
    },
}

/// A packet from tracker to client.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum UdpResponse {
    /// A connection id, good for a minute.
    Connect {
        /// Echoed.
        transaction_id: u32,
        /// To put in the next requests.
        connection_id: u64,
    },
    /// Peers for an announce.
    Announce {
        /// Echoed.
        transaction_id: u32,
        /// Seconds until the next announce.
        interval: u32,
        /// Leechers in the swarm.
        leechers: u32,
        /// Seeders in the swarm.
        seeders: u32,
        /// The peers, all of the request's address family.
        peers: Vec<Peer>,
    },
    /// Numbers per torrent, in the order asked.
    Scrape {
        /// Echoed.
        transaction_id: u32,
        /// One entry per info-hash asked about.
        stats: Vec<ScrapeStats>,
    },
    /// A refusal.
    Error {
        /// Echoed.
        transaction_id: u32,
        /// Why.
        message: String,
    },
}

/// A packet that is not a valid BEP 15 packet.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid UDP tracker packet: {0}")]
pub struct PacketError(pub &'static str);

impl UdpRequest {
    /// The transaction id.
    pub fn transaction_id(&self) -> u32 {
        match self {
            UdpRequest::Connect { transaction_id }
            | UdpRequest::Announce { transaction_id, .. }
            | UdpRequest::Scrape { transaction_id, .. } => *transaction_id,
        }
    }

    /// The packet's bytes.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(98);
        match self {
            UdpRequest::Connect { transaction_id } => {
                put(&mut out, &PROTOCOL_ID.to_be_bytes());
                put(&mut out, &CONNECT.to_be_bytes());
                put(&mut out, &transaction_id.to_be_bytes());
            }
            UdpRequest::Announce {
                connection_id,
                transaction_id,
                info_hash,
                peer_id,
                downloaded,
                left,
                uploaded,
                event,
                key,
                numwant,
                port,
            } => {
                put(&mut out, &connection_id.to_be_bytes());
                put(&mut out, &ANNOUNCE.to_be_bytes());
                put(&mut out, &transaction_id.to_be_bytes());
                put(&mut out, info_hash.as_bytes());
                put(&mut out, peer_id.as_bytes());
                put(&mut out, &downloaded.to_be_bytes());
                put(&mut out, &left.to_be_bytes());
                put(&mut out, &uploaded.to_be_bytes());
                let event: u32 = match event {
                    None => 0,
                    Some(Event::Completed) => 1,
                    Some(Event::Started) => 2,
                    Some(Event::Stopped) => 3,
                };
                put(&mut out, &event.to_be_bytes());
                put(&mut out, &0u32.to_be_bytes()); // ip: the sender's
                put(&mut out, &key.to_be_bytes());
                let numwant = numwant.map_or(-1, |n| i32::try_from(n).unwrap_or(i32::MAX));
                put(&mut out, &numwant.to_be_bytes());
                put(&mut out, &port.to_be_bytes());
            }
            UdpRequest::Scrape {
                connection_id,
                transaction_id,
                info_hashes,
            } => {
                put(&mut out, &connection_id.to_be_bytes());
                put(&mut out, &SCRAPE.to_be_bytes());
                put(&mut out, &transaction_id.to_be_bytes());
                for hash in info_hashes.iter().take(MAX_SCRAPE) {
                    put(&mut out, hash.as_bytes());
                }
            }
        }
        out
    }

    /// Reads a packet a client sent.
    pub fn decode(packet: &[u8]) -> Result<UdpRequest, PacketError> {
        let mut r = Reader(packet);
        let connection_id = r.u64()?;
        let action = r.u32()?;
        let transaction_id = r.u32()?;
        match action {
            CONNECT if connection_id == PROTOCOL_ID => Ok(UdpRequest::Connect { transaction_id }),
            CONNECT => Err(PacketError("connect request without the protocol id")),
            ANNOUNCE => {
                let info_hash = InfoHash(r.array()?);
                let peer_id = PeerId(r.array()?);
                let (downloaded, left, uploaded) = (r.u64()?, r.u64()?, r.u64()?);
                let event = match r.u32()? {
                    0 => None,
                    1 => Some(Event::Completed),
                    2 => Some(Event::Started),
                    3 => Some(Event::Stopped),
                    _ => return Err(PacketError("unknown event")),
                };
                let _ip = r.u32()?;
                let key = r.u32()?;
                let numwant = u32::try_from(r.u32()? as i32).ok();
                let port = u16::from_be_bytes(r.array()?);
                // BEP 41 options may follow; they are not used.
                Ok(UdpRequest::Announce {
                    connection_id,
                    transaction_id,
                    info_hash,
                    peer_id,
                    downloaded,
                    left,
                    uploaded,
                    event,
                    key,
                    numwant,
                    port,
                })
            }
            SCRAPE => {
                let rest = r.0;
                if rest.is_empty() || rest.len() % 20 != 0 || rest.len() / 20 > MAX_SCRAPE {
                    return Err(PacketError("scrape request must carry 1 to 74 info-hashes"));
                }
                let info_hashes = rest
                    .chunks_exact(20)
                    .filter_map(|c| c.try_into().ok().map(InfoHash))
                    .collect();
                Ok(UdpRequest::Scrape {
                    connection_id,
                    transaction_id,
                    info_hashes,
                })
            }
            _ => Err(PacketError("unknown action")),
        }
    }
}

impl UdpResponse {
    /// The transaction id.
    pub fn transaction_id(&self) -> u32 {
        match self {
            UdpResponse::Connect { transaction_id, .. }
            | UdpResponse::Announce { transaction_id, .. }
            | UdpResponse::Scrape { transaction_id, .. }
            | UdpResponse::Error { transaction_id, .. } => *transaction_id,
        }
    }

    /// The packet's bytes. Announce peers are written in the family of the
    /// first one; the tracker sends only one family per response.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        match self {
            UdpResponse::Connect {
                transaction_id,
                connection_id,
            } => {
                put(&mut out, &CONNECT.to_be_bytes());
                put(&mut out, &transaction_id.to_be_bytes());
                put(&mut out, &connection_id.to_be_bytes());
            }
            UdpResponse::Announce {
                transaction_id,
                interval,
                leechers,
                seeders,
                peers,
            } => {
                put(&mut out, &ANNOUNCE.to_be_bytes());
                put(&mut out, &transaction_id.to_be_bytes());
                for n in [interval, leechers, seeders] {
                    put(&mut out, &n.to_be_bytes());
                }
                for peer in peers {
                    match peer.addr.ip() {
                        IpAddr::V4(ip) => put(&mut out, &ip.octets()),
                        IpAddr::V6(ip) => put(&mut out, &ip.octets()),
                    }
                    put(&mut out, &peer.addr.port().to_be_bytes());
                }
            }
            UdpResponse::Scrape {
                transaction_id,
                stats,
            } => {
                put(&mut out, &SCRAPE.to_be_bytes());
                put(&mut out, &transaction_id.to_be_bytes());
                for s in stats {
                    for n in [s.complete, s.downloaded, s.incomplete] {
                        put(&mut out, &n.to_be_bytes());
                    }
                }
            }
            UdpResponse::Error {
                transaction_id,
                message,
            } => {
                put(&mut out, &ERROR.to_be_bytes());
                put(&mut out, &transaction_id.to_be_bytes());
                put(&mut out, message.as_bytes());
            }
        }
        out
    }

    /// Reads a packet a tracker sent. `ipv6` says which family the announce
    /// peers are in: that of the socket the request went out on.
    pub fn decode(packet: &[u8], ipv6: bool) -> Result<UdpResponse, PacketError> {
        let mut r = Reader(packet);
        let action = r.u32()?;
        let transaction_id = r.u32()?;
        match action {
            CONNECT => Ok(UdpResponse::Connect {
                transaction_id,
                connection_id: r.u64()?,
            }),
            ANNOUNCE => {
                let (interval, leechers, seeders) = (r.u32()?, r.u32()?, r.u32()?);
                let size = peer_size(ipv6);
                // A partial peer at the end (a tracker that cut its answer
                // short) is left out; the whole ones are good.
                let peers = r
                    .0
                    .chunks_exact(size)
                    .map(|c| {
                        let (ip, port) = c.split_at(size - 2);
                        let ip: IpAddr = match <[u8; 4]>::try_from(ip) {
                            Ok(v4) => Ipv4Addr::from(v4).into(),
                            Err(_) => {
                                Ipv6Addr::from(<[u8; 16]>::try_from(ip).unwrap_or_default()).into()
                            }
                        };
                        Peer {
                            addr: SocketAddr::new(ip, u16::from_be_bytes([port[0], port[1]])),
                            peer_id: None,
                        }
                    })
                    .collect();
                Ok(UdpResponse::Announce {
                    transaction_id,
                    interval,
                    leechers,
                    seeders,
                    peers,
                })
            }
            SCRAPE => {
                if r.0.len() % 12 != 0 {
                    return Err(PacketError("scrape response with a partial entry"));
                }
                let stats = r
                    .0
                    .chunks_exact(12)
                    .map(|c| {
                        let n = |i: usize| u32::from_be_bytes([c[i], c[i + 1], c[i + 2], c[i + 3]]);
                        ScrapeStats {
                            complete: n(0),
                            downloaded: n(4),
                            incomplete: n(8),
                        }
                    })
                    .collect();
                Ok(UdpResponse::Scrape {
                    transaction_id,
                    stats,
                })
            }
            ERROR => Ok(UdpResponse::Error {
                transaction_id,
                message: String::from_utf8_lossy(r.0).into_owned(),
            }),
            _ => Err(PacketError("unknown action")),
        }
    }
}

/// Bytes of one peer in an announce answer: an IPv4 or IPv6 address and a
/// port.
fn peer_size(ipv6: bool) -> usize {
    if ipv6 { 18 } else { 6 }
}

/// The bytes at the end of an announce answer that are not a whole peer,
/// which [`UdpResponse::decode`] leaves out (0 for other packets).
pub fn stray_peer_bytes(packet: &[u8], ipv6: bool) -> usize {
    match packet.first_chunk::<4>().map(|a| u32::from_be_bytes(*a)) {
        Some(ANNOUNCE) => packet.len().saturating_sub(20) % peer_size(ipv6),
        _ => 0,
    }
}

fn put(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(bytes);
}

/// Reads big-endian fields off the front of a packet, refusing to run past
/// its end.
struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn array<const N: usize>(&mut self) -> Result<[u8; N], PacketError> {
        let (head, rest) = self
            .0
            .split_first_chunk::<N>()
            .ok_or(PacketError("too short"))?;
        self.0 = rest;
        Ok(*head)
    }

    fn u32(&mut self) -> Result<u32, PacketError> {
        self.array().map(u32::from_be_bytes)
    }

    fn u64(&mut self) -> Result<u64, PacketError> {
        self.array().map(u64::from_be_bytes)
    }
}
