//! Announce and scrape responses: read by the client, written by the server.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use bencode::{Bytes, Dict, Encoder, Value};
use metainfo::{InfoHash, PeerId};

use crate::udp::UdpResponse;

/// The most peers a response may list: far more than any tracker sends, few
/// enough that a hostile one cannot make the list large.
pub const MAX_PEERS: usize = 10_000;

/// The longest interval accepted: a week. Anything larger is a broken or
/// hostile tracker, not a real schedule.
pub const MAX_INTERVAL: u32 = 7 * 24 * 3600;

/// A peer as a tracker lists it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Peer {
    /// Where to connect.
    pub addr: SocketAddr,
    /// The peer's id, when the tracker sent a non-compact list with ids.
    pub peer_id: Option<PeerId>,
}

/// What a tracker answered to an announce.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AnnounceResponse {
    /// Seconds to wait before the next regular announce.
    pub interval: u32,
    /// Seconds the client must wait at least before announcing again.
    pub min_interval: Option<u32>,
    /// An id to send back in later announces.
    pub tracker_id: Option<String>,
    /// Seeders in the swarm.
    pub complete: Option<u32>,
    /// Leechers in the swarm.
    pub incomplete: Option<u32>,
    /// A warning to show the user; the response is otherwise good.
    pub warning: Option<String>,
    /// The peers, IPv4 and IPv6 (`peers` and `peers6`).
    pub peers: Vec<Peer>,
}

/// Why a tracker's answer could not be used.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ResponseError {
    /// The tracker refused the request and said why.
    #[error("the tracker refused: {}", shown(.0))]
    Failure(String),
    /// The body is not bencode (often an HTML error page).
    #[error("the tracker's answer is not bencode ({error}); it begins {start:?}")]
    NotBencode {
        /// The decoding error.
        error: bencode::Error,
        /// The first bytes of the body, as text.
        start: String,
    },
    /// A field is missing, of the wrong type, or out of range.
    #[error("the tracker's answer has a bad `{field}`: {problem}")]
    BadField {
        /// The field.
        field: &'static str,
        /// What is wrong.
        problem: &'static str,
    },
}

impl AnnounceResponse {
    /// The answer a UDP tracker gave an announce (BEP 15), held to the same
    /// bounds as one over HTTP: an interval of at most a week, each address
    /// once and at most [`MAX_PEERS`] of them. An error packet is the
    /// tracker's refusal.
    pub fn from_udp(response: UdpResponse) -> Result<AnnounceResponse, ResponseError> {
        match response {
            UdpResponse::Announce { interval, .. } if interval > MAX_INTERVAL => {
                Err(ResponseError::BadField {
                    field: "interval",
                    problem: "longer than a week",
                })
            }
            UdpResponse::Announce {
                interval,
                leechers,
                seeders,
                peers,
                ..
            } => {
                // A datagram holds up to 10,922 IPv4 peers.
                let mut kept = Vec::new();
                let mut seen = Seen::new(&kept);
                for peer in peers {
                    if !seen.add(&mut kept, peer) {
                        break;
                    }
                }
                Ok(AnnounceResponse {
                    interval,
                    min_interval: None,
                    tracker_id: None,
                    complete: Some(seeders),
                    incomplete: Some(leechers),
                    warning: None,
                    peers: kept,
                })
            }
            UdpResponse::Error { message, .. } => Err(ResponseError::Failure(message)),
            UdpResponse::Connect { .. } | UdpResponse::Scrape { .. } => {
                Err(ResponseError::BadField {
                    field: "action",
                    problem: "not the answer to an announce",
                })
            }
        }
    }

    /// Reads a response body.
    pub fn from_bytes(body: &[u8]) -> Result<AnnounceResponse, ResponseError> {
        let dict = top_dict(body)?;
        if let Some(reason) = dict.get(b"failure reason") {
            return Err(ResponseError::Failure(text(reason)));
        }
        let interval = count(dict, "interval")?.ok_or(ResponseError::BadField {
            field: "interval",
            problem: "missing",
        })?;
        let min_interval = count(dict, "min interval")?;
        if interval > MAX_INTERVAL || min_interval.is_some_and(|m| m > MAX_INTERVAL) {
            return Err(ResponseError::BadField {
                field: "interval",
                problem: "longer than a week",
            });
        }
        let mut peers = Vec::new();
        if let Some(value) = dict.get(b"peers") {
            match value.as_bytes() {
                Some(compact) => compact_peers(compact, 6, "peers", &mut peers)?,
                None => dict_peers(value, &mut peers)?,
            }
        }
        if let Some(value) = dict.get(b"peers6") {
            let compact = value.as_bytes().ok_or(ResponseError::BadField {
                field: "peers6",
                problem: "not a string",
            })?;
            compact_peers(compact, 18, "peers6", &mut peers)?;
        }
        Ok(AnnounceResponse {
            interval,
            min_interval,
            tracker_id: dict.get(b"tracker id").map(text),
            complete: count(dict, "complete")?,
            incomplete: count(dict, "incomplete")?,
            warning: dict.get(b"warning message").map(text),
            peers,
        })
    }

    /// Writes the response. `compact` lists IPv4 peers in `peers` as a string
    /// and IPv6 peers in `peers6` (BEP 23, BEP 7); otherwise every peer is a
    /// dictionary in `peers`, with its id unless `no_peer_id`.
    pub fn to_bytes(&self, compact: bool, no_peer_id: bool) -> Vec<u8> {
        let mut e = Encoder::default();
        e.dict(|d| {
            d.entry(b"interval", &self.interval);
            d.entry_opt(b"min interval", self.min_interval.as_ref());
            d.entry_opt(b"tracker id", self.tracker_id.as_ref());
            d.entry_opt(b"complete", self.complete.as_ref());
            d.entry_opt(b"incomplete", self.incomplete.as_ref());
            d.entry_opt(b"warning message", self.warning.as_ref());
            if compact {
                let (mut v4, mut v6) = (Vec::new(), Vec::new());
                for peer in &self.peers {
                    match peer.addr {
                        SocketAddr::V4(a) => {
                            v4.extend(a.ip().octets().into_iter().chain(a.port().to_be_bytes()))
                        }
                        SocketAddr::V6(a) => {
                            v6.extend(a.ip().octets().into_iter().chain(a.port().to_be_bytes()))
                        }
                    }
                }
                d.entry(b"peers", &Bytes(&v4));
                if !v6.is_empty() {
                    d.entry(b"peers6", &Bytes(&v6));
                }
            } else {
                d.entry_with(b"peers", |e| {
                    e.list(|e| {
                        for peer in &self.peers {
                            e.dict(|d| {
                                d.entry(b"ip", &peer.addr.ip().to_string());
                                d.entry(b"port", &peer.addr.port());
                                if let (false, Some(id)) = (no_peer_id, peer.peer_id) {
                                    d.entry(b"peer id", &Bytes(id.as_bytes()));
                                }
                            });
                        }
                    })
                });
            }
        });
        e.into_bytes()
    }
}

/// A `failure reason` response, as a server sends for a request it refuses.
pub fn failure_bytes(reason: &str) -> Vec<u8> {
    let mut e = Encoder::default();
    e.dict(|d| d.entry(b"failure reason", reason));
    e.into_bytes()
}

/// A torrent's numbers in a scrape response.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ScrapeStats {
    /// Seeders.
    pub complete: u32,
    /// Completed downloads ever reported.
    pub downloaded: u32,
    /// Leechers.
    pub incomplete: u32,
}

/// What a tracker answered to a scrape: numbers per torrent.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ScrapeResponse {
    /// The torrents the tracker knows, among those asked about.
    pub files: BTreeMap<InfoHash, ScrapeStats>,
}

impl ScrapeResponse {
    /// Reads a scrape response body.
    pub fn from_bytes(body: &[u8]) -> Result<ScrapeResponse, ResponseError> {
        let dict = top_dict(body)?;
        if let Some(reason) = dict.get(b"failure reason") {
            return Err(ResponseError::Failure(text(reason)));
        }
        let bad = |problem| ResponseError::BadField {
            field: "files",
            problem,
        };
        let files = dict
            .get(b"files")
            .and_then(|f| f.as_dict())
            .ok_or(bad("missing or not a dictionary"))?;
        let mut out = BTreeMap::new();
        for (hash, stats) in files.iter().take(MAX_PEERS) {
            let hash = <[u8; 20]>::try_from(hash)
                .map_err(|_| bad("has a key that is not an info-hash"))?;
            let stats = stats
                .as_dict()
                .ok_or(bad("has an entry that is not a dictionary"))?;
            let stats = ScrapeStats {
                complete: count(stats, "complete")?.unwrap_or(0),
                downloaded: count(stats, "downloaded")?.unwrap_or(0),
                incomplete: count(stats, "incomplete")?.unwrap_or(0),
            };
            out.insert(InfoHash(hash), stats);
        }
        Ok(ScrapeResponse { files: out })
    }

    /// Writes the response.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut e = Encoder::default();
        e.dict(|d| {
            d.entry_with(b"files", |e| {
                e.dict(|d| {
                    for (hash, s) in &self.files {
                        d.entry_with(hash.as_bytes(), |e| {
                            e.dict(|d| {
                                d.entry(b"complete", &s.complete);
                                d.entry(b"downloaded", &s.downloaded);
                                d.entry(b"incomplete", &s.incomplete);
                            })
                        });
                    }
                })
            });
        });
        e.into_bytes()
    }
}

fn top_dict(body: &[u8]) -> Result<Dict<'_>, ResponseError> {
    let not_bencode = |error| ResponseError::NotBencode {
        error,
        start: String::from_utf8_lossy(&body[..body.len().min(40)]).into_owned(),
    };
    // Lenient: some trackers write keys out of order.
    let value = bencode::Decoder::lenient()
        .decode(body)
        .map_err(not_bencode)?;
    value.as_dict().ok_or(ResponseError::BadField {
        field: "(top level)",
        problem: "not a dictionary",
    })
}

fn text(value: Value<'_>) -> String {
    String::from_utf8_lossy(value.as_bytes().unwrap_or_default()).into_owned()
}

/// The most characters of a tracker's message kept.
const MAX_MESSAGE: usize = 300;

/// A tracker's message (a failure reason, a warning) as it may be shown to
/// a user: control characters escaped (`\u{1b}`), so that no tracker can
/// move the cursor or forge log lines, and at most 300 characters.
pub fn shown(message: &str) -> String {
    let mut out = String::new();
    for (i, c) in message.chars().enumerate() {
        if i == MAX_MESSAGE {
            out.push('…');
            break;
        }
        if c.is_control() {
            out.extend(c.escape_unicode());
        } else {
            out.push(c);
        }
    }
    out
}

/// A non-negative count that fits `u32`, if present.
fn count(dict: Dict<'_>, field: &'static str) -> Result<Option<u32>, ResponseError> {
    dict.get(field.as_bytes())
        .map(|v| {
            v.as_int()
                .and_then(|n| u32::try_from(n).ok())
                .ok_or(ResponseError::BadField {
                    field,
                    problem: "not a non-negative integer below 2^32",
                })
        })
        .transpose()
}

fn compact_peers(
    bytes: &[u8],
    size: usize,
    field: &'static str,
    out: &mut Vec<Peer>,
) -> Result<(), ResponseError> {
    if !bytes.len().is_multiple_of(size) {
        return Err(ResponseError::BadField {
            field,
            problem: "length is not a whole number of peers (truncated?)",
        });
    }
    let mut seen = Seen::new(out);
    for chunk in bytes.chunks_exact(size) {
        let (ip, port) = chunk.split_at(size - 2);
        let ip: IpAddr = match ip.len() {
            4 => Ipv4Addr::from(<[u8; 4]>::try_from(ip).unwrap_or_default()).into(),
            _ => Ipv6Addr::from(<[u8; 16]>::try_from(ip).unwrap_or_default()).into(),
        };
        let port = u16::from_be_bytes([port[0], port[1]]);
        let peer = Peer {
            addr: SocketAddr::new(ip, port),
            peer_id: None,
        };
        if !seen.add(out, peer) {
            break;
        }
    }
    Ok(())
}

/// The addresses already in a peer list, so that each is kept once: a
/// tracker that repeats one address thousands of times must not push the
/// real peers past [`MAX_PEERS`].
struct Seen(std::collections::HashSet<SocketAddr>);

impl Seen {
    fn new(out: &[Peer]) -> Seen {
        Seen(out.iter().map(|p| p.addr).collect())
    }

    /// Adds `peer` unless its address is there already; false once the
    /// list is full.
    fn add(&mut self, out: &mut Vec<Peer>, peer: Peer) -> bool {
        if out.len() >= MAX_PEERS {
            return false;
        }
        if self.0.insert(peer.addr) {
            out.push(peer);
        }
        true
    }
}

/// A non-compact list; entries that cannot be a peer (a host name instead of
/// an address, a port out of range) are skipped rather than failing the rest.
fn dict_peers(value: Value<'_>, out: &mut Vec<Peer>) -> Result<(), ResponseError> {
    let list = value.as_list().ok_or(ResponseError::BadField {
        field: "peers",
        problem: "neither a string nor a list",
    })?;
    let mut seen = Seen::new(out);
    for entry in list.iter() {
        let Some(entry) = entry.as_dict() else {
            continue;
        };
        let ip = entry
            .get(b"ip")
            .and_then(|v| v.as_str())
            .and_then(|s| s.parse::<IpAddr>().ok());
        let port = entry
            .get(b"port")
            .and_then(|v| v.as_int())
            .and_then(|p| u16::try_from(p).ok());
        let peer_id = entry
            .get(b"peer id")
            .and_then(|v| v.as_bytes())
            .and_then(|b| <[u8; 20]>::try_from(b).ok());
        if let (Some(ip), Some(port)) = (ip, port) {
            let peer = Peer {
                addr: SocketAddr::new(ip, port),
                peer_id: peer_id.map(PeerId),
            };
            if !seen.add(out, peer) {
                break;
            }
        }
    }
    Ok(())
}
