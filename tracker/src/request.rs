//! Announce and scrape requests over HTTP: building their URLs (client) and
//! reading their query strings (server).

use std::fmt::Write as _;
use std::net::IpAddr;

use metainfo::{InfoHash, PeerId};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode_str, percent_encode};

/// The event an announce reports (BEP 3). A regular re-announce has none.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Event {
    /// The first announce of a download.
    Started,
    /// The download just finished.
    Completed,
    /// The client is leaving the swarm.
    Stopped,
}

impl Event {
    /// The name used in HTTP announces.
    pub fn as_str(self) -> &'static str {
        match self {
            Event::Started => "started",
            Event::Completed => "completed",
            Event::Stopped => "stopped",
        }
    }
}

/// An announce: what a client tells a tracker about itself and one torrent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AnnounceRequest {
    /// The torrent.
    pub info_hash: InfoHash,
    /// The announcing peer.
    pub peer_id: PeerId,
    /// The port the peer accepts connections on.
    pub port: u16,
    /// Bytes uploaded since the `started` event.
    pub uploaded: u64,
    /// Bytes downloaded since the `started` event.
    pub downloaded: u64,
    /// Bytes still needed; 0 for a seeder.
    pub left: u64,
    /// The event, if any.
    pub event: Option<Event>,
    /// Ask for the compact peer list (BEP 23).
    pub compact: bool,
    /// Tell the tracker that peer ids may be left out of a non-compact list.
    pub no_peer_id: bool,
    /// How many peers the client wants.
    pub numwant: Option<u32>,
    /// A number that stays the same across announces, so a tracker can tell
    /// the client apart when its address changes.
    pub key: Option<u32>,
    /// The `tracker id` a previous response gave, to be sent back.
    pub tracker_id: Option<String>,
    /// The address the client says it has (HTTP `ip`); trackers may ignore
    /// it. A server fills it from the connection when absent.
    pub ip: Option<IpAddr>,
}

impl AnnounceRequest {
    /// A `started` announce for a peer that still needs `left` bytes, asking
    /// for a compact list.
    pub fn new(info_hash: InfoHash, peer_id: PeerId, port: u16, left: u64) -> Self {
        AnnounceRequest {
            info_hash,
            peer_id,
            port,
            uploaded: 0,
            downloaded: 0,
            left,
            event: Some(Event::Started),
            compact: true,
            no_peer_id: false,
            numwant: None,
            key: None,
            tracker_id: None,
            ip: None,
        }
    }

    /// The full announce URL: `announce` with this request's parameters
    /// appended, after any query string it already has.
    pub fn url(&self, announce: &str) -> String {
        let mut url = String::from(announce);
        url.push(if announce.contains('?') { '&' } else { '?' });
        let _ = write!(
            url,
            "info_hash={}&peer_id={}&port={}&uploaded={}&downloaded={}&left={}&compact={}",
            encode_bytes(self.info_hash.as_bytes()),
            encode_bytes(self.peer_id.as_bytes()),
            self.port,
            self.uploaded,
            self.downloaded,
            self.left,
            u8::from(self.compact),
        );
        if self.no_peer_id {
            url.push_str("&no_peer_id=1");
        }
        if let Some(event) = self.event {
            let _ = write!(url, "&event={}", event.as_str());
        }
        if let Some(numwant) = self.numwant {
            let _ = write!(url, "&numwant={numwant}");
        }
        if let Some(key) = self.key {
            let _ = write!(url, "&key={key:08X}");
        }
        if let Some(id) = &self.tracker_id {
            let _ = write!(url, "&trackerid={}", encode_bytes(id.as_bytes()));
        }
        if let Some(ip) = self.ip {
            let _ = write!(url, "&ip={ip}");
        }
        url
    }

    /// Reads an announce from a request's query string (the part after `?`).
    pub fn from_query(query: &str) -> Result<AnnounceRequest, RequestError> {
        let mut info_hash = None;
        let mut peer_id = None;
        let mut port = None;
        let mut request = AnnounceRequest::new(InfoHash([0; 20]), PeerId([0; 20]), 0, 0);
        request.event = None;
        request.compact = false;
        let mut left = None;
        for (key, value) in query_pairs(query) {
            match key {
                "info_hash" => info_hash = Some(InfoHash(twenty_bytes("info_hash", &value)?)),
                "peer_id" => peer_id = Some(PeerId(twenty_bytes("peer_id", &value)?)),
                "port" => port = Some(number("port", &value)?),
                "uploaded" => request.uploaded = number("uploaded", &value)?,
                "downloaded" => request.downloaded = number("downloaded", &value)?,
                "left" => left = Some(number("left", &value)?),
                "compact" => request.compact = value == b"1",
                "no_peer_id" => request.no_peer_id = value == b"1",
                // A negative count (`-1`, as some clients send) asks for
                // the tracker's default.
                "numwant" if value.first() == Some(&b'-') => request.numwant = None,
                "numwant" => request.numwant = Some(number("numwant", &value)?),
                "key" => {
                    // Clients send it in hex (libtorrent) or decimal; keep
                    // whatever parses, it is only an identifier.
                    let text = String::from_utf8_lossy(&value);
                    request.key = u32::from_str_radix(&text, 16)
                        .ok()
                        .or_else(|| text.parse().ok());
                }
                "trackerid" => {
                    request.tracker_id = Some(String::from_utf8_lossy(&value).into_owned())
                }
                "ip" => {
                    request.ip = std::str::from_utf8(&value)
                        .ok()
                        .and_then(|s| s.parse().ok())
                }
                "event" => {
                    request.event = match &value[..] {
                        b"started" => Some(Event::Started),
                        b"completed" => Some(Event::Completed),
                        b"stopped" => Some(Event::Stopped),
                        b"" | b"empty" | b"paused" => None,
                        _ => {
                            return Err(RequestError::Invalid {
                                param: "event",
                                problem: "is not started, completed or stopped",
                            });
                        }
                    }
                }
                _ => {}
            }
        }
        request.info_hash = info_hash.ok_or(RequestError::Missing("info_hash"))?;
        request.peer_id = peer_id.ok_or(RequestError::Missing("peer_id"))?;
        request.port = port.ok_or(RequestError::Missing("port"))?;
        request.left = left.ok_or(RequestError::Missing("left"))?;
        Ok(request)
    }
}

/// A request the server cannot use. Its message is what the client is told,
/// as the `failure reason`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RequestError {
    /// A required parameter is absent.
    #[error("missing parameter {0}")]
    Missing(&'static str),
    /// A parameter has an unusable value.
    #[error("parameter {param} {problem}")]
    Invalid {
        /// The parameter.
        param: &'static str,
        /// What is wrong.
        problem: &'static str,
    },
    /// The path is neither announce nor scrape.
    #[error("unknown path: this tracker answers /announce and /scrape")]
    UnknownPath,
    /// The torrent is not on the tracker's allow-list.
    #[error("torrent not allowed on this tracker")]
    NotAllowed,
}

/// The scrape URL for an announce URL, by the usual convention: the last
/// path segment must begin with `announce`, which is replaced by `scrape`.
/// `None` means the tracker has no scrape.
pub fn scrape_url(announce: &str) -> Option<String> {
    let (before_query, query) = match announce.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (announce, None),
    };
    let slash = before_query.rfind('/')?;
    let last = &before_query[slash + 1..];
    let rest = last.strip_prefix("announce")?;
    let mut url = format!("{}scrape{rest}", &before_query[..=slash]);
    if let Some(query) = query {
        url.push('?');
        url.push_str(query);
    }
    Some(url)
}

/// A scrape URL asking about these torrents.
pub fn scrape_request_url(scrape: &str, info_hashes: &[InfoHash]) -> String {
    let mut url = String::from(scrape);
    let mut separator = if scrape.contains('?') { '&' } else { '?' };
    for hash in info_hashes {
        let _ = write!(
            url,
            "{separator}info_hash={}",
            encode_bytes(hash.as_bytes())
        );
        separator = '&';
    }
    url
}

/// The most torrents one HTTP scrape may ask about.
pub const MAX_SCRAPE_HASHES: usize = 100;

/// The info-hashes a scrape's query string asks about, each once.
pub fn scrape_info_hashes(query: &str) -> Result<Vec<InfoHash>, RequestError> {
    let mut hashes: Vec<InfoHash> = Vec::new();
    for (key, value) in query_pairs(query) {
        if key != "info_hash" {
            continue;
        }
        let hash = InfoHash(twenty_bytes("info_hash", &value)?);
        if !hashes.contains(&hash) {
            if hashes.len() == MAX_SCRAPE_HASHES {
                return Err(RequestError::Invalid {
                    param: "info_hash",
                    problem: "is repeated more than 100 times",
                });
            }
            hashes.push(hash);
        }
    }
    Ok(hashes)
}

/// Everything but RFC 3986's unreserved characters is escaped.
const UNRESERVED: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

fn encode_bytes(bytes: &[u8]) -> String {
    percent_encode(bytes, UNRESERVED).to_string()
}

/// The `key=value` pairs of a query string, values percent-decoded to bytes
/// (info-hashes are not text). Keys that are not plain names are skipped.
fn query_pairs(query: &str) -> impl Iterator<Item = (&str, Vec<u8>)> {
    query.split('&').filter(|p| !p.is_empty()).map(|pair| {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        (key, percent_decode_str(value).collect())
    })
}

fn twenty_bytes(param: &'static str, value: &[u8]) -> Result<[u8; 20], RequestError> {
    <[u8; 20]>::try_from(value).map_err(|_| RequestError::Invalid {
        param,
        problem: "is not 20 bytes long",
    })
}

fn number<T: std::str::FromStr>(param: &'static str, value: &[u8]) -> Result<T, RequestError> {
    std::str::from_utf8(value)
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or(RequestError::Invalid {
            param,
            problem: "is not a number in range",
        })
}
