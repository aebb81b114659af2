//! Announcing and scraping over UDP (BEP 15).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use metainfo::InfoHash;
use tokio::net::UdpSocket;

use crate::http_client::TrackerError;
use crate::request::AnnounceRequest;
use crate::response::{AnnounceResponse, ResponseError, ScrapeResponse};
use crate::udp::{MAX_SCRAPE, UdpRequest, UdpResponse};

/// Timing for UDP trackers.
#[derive(Clone, Debug)]
pub struct UdpOptions {
    /// The first wait for an answer; each retransmission doubles it. BEP 15
    /// says 15 seconds; tests use much less.
    pub base_timeout: Duration,
    /// Retransmissions before giving up; BEP 15 says 8 (up to 3,840 s).
    pub max_retries: u32,
    /// The longest one announce or scrape may wait in all. BEP 15's full
    /// schedule takes over two hours, which would hold up every tracker in
    /// later tiers; retransmissions stop once the next wait would pass this.
    pub max_wait: Duration,
    /// The address requests come from; `None` lets the system choose.
    pub local_address: Option<std::net::IpAddr>,
}

impl Default for UdpOptions {
    fn default() -> Self {
        UdpOptions {
            base_timeout: Duration::from_secs(15),
            max_retries: 8,
            max_wait: Duration::from_secs(120),
            local_address: None,
        }
    }
}

/// How long a connection id may be used: a minute, by BEP 15.
const CONNECTION_ID_LIFETIME: Duration = Duration::from_secs(60);

/// A UDP tracker client. Connection ids are kept per tracker address and
/// reused for their minute; cheap to clone.
#[derive(Clone, Debug, Default)]
pub struct UdpClient {
    options: UdpOptions,
    connections: Arc<Mutex<HashMap<SocketAddr, (u64, Instant)>>>,
}

impl UdpClient {
    /// A client with these timings.
    pub fn new(options: UdpOptions) -> Self {
        UdpClient {
            options,
            connections: Arc::default(),
        }
    }

    /// Announces to the tracker at `url` (`udp://host:port[/…]`).
    pub async fn announce(
        &self,
        url: &str,
        request: &AnnounceRequest,
    ) -> Result<AnnounceResponse, TrackerError> {
        let response = self
            .exchange(url, |connection_id, transaction_id| UdpRequest::Announce {
                connection_id,
                transaction_id,
                info_hash: request.info_hash,
                peer_id: request.peer_id,
                downloaded: request.downloaded,
                left: request.left,
                uploaded: request.uploaded,
                event: request.event,
                key: request.key.unwrap_or(0),
                numwant: request.numwant,
                port: request.port,
            })
            .await?;
        match response {
            UdpResponse::Announce { .. } => Ok(AnnounceResponse::from_udp(response)?),
            _ => Err(TrackerError::Unreachable(
                "the UDP tracker answered an announce with another kind of packet".into(),
            )),
        }
    }

    /// Scrapes up to 74 torrents (BEP 15's limit per packet).
    pub async fn scrape(
        &self,
        url: &str,
        info_hashes: &[InfoHash],
    ) -> Result<ScrapeResponse, TrackerError> {
        let asked: Vec<InfoHash> = info_hashes.iter().take(MAX_SCRAPE).copied().collect();
        let response = self
            .exchange(url, |connection_id, transaction_id| UdpRequest::Scrape {
                connection_id,
                transaction_id,
                info_hashes: asked.clone(),
            })
            .await?;
        match response {
            UdpResponse::Scrape { stats, .. } => Ok(ScrapeResponse {
                files: asked.into_iter().zip(stats).collect(),
            }),
            _ => Err(TrackerError::Unreachable(
                "the UDP tracker answered a scrape with another kind of packet".into(),
            )),
        }
    }

    /// Connects if needed, sends the request made by `make(connection_id,
    /// transaction_id)`, and waits for its answer, retransmitting on BEP 15's
    /// schedule.
    async fn exchange(
        &self,
        url: &str,
        make: impl Fn(u64, u32) -> UdpRequest,
    ) -> Result<UdpResponse, TrackerError> {
        let addr = resolve(url).await?;
        let local: SocketAddr = match self.options.local_address {
            Some(ip) if ip.is_ipv4() == addr.is_ipv4() => (ip, 0).into(),
            _ if addr.is_ipv4() => ([0, 0, 0, 0], 0).into(),
            _ => (std::net::Ipv6Addr::UNSPECIFIED, 0).into(),
        };
        let unreachable = |e: std::io::Error| TrackerError::Unreachable(e.to_string());
        let socket = UdpSocket::bind(local).await.map_err(unreachable)?;
        socket.connect(addr).await.map_err(unreachable)?;
        let mut waited = Duration::ZERO;
        for attempt in 0..=self.options.max_retries {
            let timeout = self
                .options
                .base_timeout
                .saturating_mul(1 << attempt.min(16));
            if attempt > 0 && waited + timeout > self.options.max_wait {
                break;
            }
            waited += timeout;
            let (connection_id, fresh) = match self.cached_connection(addr) {
                Some(id) => (id, false),
                None => {
                    let request = UdpRequest::Connect {
                        transaction_id: rand::random(),
                    };
                    match send_and_wait(&socket, &request, timeout, addr.is_ipv6()).await? {
                        Some(UdpResponse::Connect { connection_id, .. }) => {
                            self.remember(addr, connection_id);
                            (connection_id, true)
                        }
                        Some(UdpResponse::Error { message, .. }) => {
                            return Err(ResponseError::Failure(message).into());
                        }
                        _ => continue,
                    }
                }
            };
            let request = make(connection_id, rand::random());
            match send_and_wait(&socket, &request, timeout, addr.is_ipv6()).await? {
                // With a connection id just issued, an error is a real refusal.
                Some(UdpResponse::Error { message, .. }) if fresh => {
                    return Err(ResponseError::Failure(message).into());
                }
                // With a kept one, it most likely expired: connect again.
                Some(UdpResponse::Error { .. }) => self.forget(addr, connection_id),
                Some(response) => return Ok(response),
                // A tracker that restarted since it issued a kept id
                // (btc's among them) ignores it: connect again rather than
                // send the same id until the retries run out.
                None if !fresh => self.forget(addr, connection_id),
                None => {}
            }
        }
        Err(TrackerError::Timeout(waited))
    }

    fn cached_connection(&self, addr: SocketAddr) -> Option<u64> {
        let connections = self
            .connections
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        connections
            .get(&addr)
            .filter(|(_, at)| at.elapsed() < CONNECTION_ID_LIFETIME)
            .map(|(id, _)| *id)
    }

    fn remember(&self, addr: SocketAddr, id: u64) {
        let mut connections = self
            .connections
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        connections.insert(addr, (id, Instant::now()));
    }

    /// Forgets the id kept for `addr` if it is still `id` (another exchange
    /// may have kept a newer one meanwhile).
    fn forget(&self, addr: SocketAddr, id: u64) {
        let mut connections = self
            .connections
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if connections.get(&addr).is_some_and(|(kept, _)| *kept == id) {
            connections.remove(&addr);
        }
    }
}

/// Sends `request` and waits up to `timeout` for the answer with its
/// transaction id; packets with other ids, or that do not decode, are
/// ignored. `None` when nothing came in time.
async fn send_and_wait(
    socket: &UdpSocket,
    request: &UdpRequest,
    timeout: Duration,
    ipv6: bool,
) -> Result<Option<UdpResponse>, TrackerError> {
    let unreachable = |e: std::io::Error| TrackerError::Unreachable(e.to_string());
    socket.send(&request.encode()).await.map_err(unreachable)?;
    let deadline = tokio::time::Instant::now() + timeout;
    // Room for any datagram: a long peer list must not be cut short.
    let mut buf = vec![0u8; 65_536];
    loop {
        let received = match tokio::time::timeout_at(deadline, socket.recv(&mut buf)).await {
            Err(_) => return Ok(None),
            // On a connected socket, an ICMP "port unreachable" arrives as an
            // error: nothing listens there, and waiting longer will not help.
            Ok(Err(e)) => return Err(unreachable(e)),
            Ok(Ok(n)) => n,
        };
        let Ok(response) = UdpResponse::decode(&buf[..received], ipv6) else {
            continue;
        };
        if response.transaction_id() == request.transaction_id() {
            if let UdpResponse::Announce { .. } = response {
                let stray = crate::udp::stray_peer_bytes(&buf[..received], ipv6);
                if stray > 0 {
                    tracing::info!(
                        stray,
                        "the UDP tracker's peer list ends in part of a peer; the whole peers were taken"
                    );
                }
            }
            return Ok(Some(response));
        }
    }
}

/// The address of `udp://host:port[/…]`.
async fn resolve(url: &str) -> Result<SocketAddr, TrackerError> {
    let bad = |problem: &str| TrackerError::BadUrl {
        url: url.to_string(),
        problem: problem.to_string(),
    };
    let rest = url
        .get(..6)
        .filter(|scheme| scheme.eq_ignore_ascii_case("udp://"))
        .map(|_| &url[6..])
        .ok_or_else(|| bad("a UDP tracker URL starts with udp://"))?;
    let host_port = rest.split(['/', '?']).next().unwrap_or_default();
    let mut addrs = tokio::net::lookup_host(host_port)
        .await
        .map_err(|e| TrackerError::Unreachable(format!("cannot resolve {host_port}: {e}")))?;
    addrs.next().ok_or_else(|| bad("the host has no address"))
}
