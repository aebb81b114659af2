//! The UDP tracker server (BEP 15): a thin layer over [`Tracker`], beside the
//! HTTP one and sharing its state.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use metainfo::PeerId;
use tokio::net::UdpSocket;
use tokio_util::sync::CancellationToken;

use crate::request::AnnounceRequest;
use crate::running::Running;
use crate::swarm::{Tracker, TrackerConfig, lock};
use crate::udp::{UdpRequest, UdpResponse};

/// A UDP tracker running in this process until stopped or dropped.
#[derive(Debug)]
pub struct UdpTracker {
    running: Running,
}

impl UdpTracker {
    /// Listens on `addr` with a tracker of its own.
    pub async fn bind(addr: SocketAddr, config: TrackerConfig) -> std::io::Result<UdpTracker> {
        UdpTracker::bind_shared(addr, Arc::new(Mutex::new(Tracker::new(config)))).await
    }

    /// Listens on `addr`, serving the given tracker state (the one an
    /// [`HttpTracker`](crate::HttpTracker) serves, say).
    pub async fn bind_shared(
        addr: SocketAddr,
        state: Arc<Mutex<Tracker>>,
    ) -> std::io::Result<UdpTracker> {
        let socket = UdpSocket::bind(addr).await?;
        let local_addr = socket.local_addr()?;
        let serving = Arc::clone(&state);
        let running = Running::spawn(local_addr, state, |shutdown| {
            serve(socket, serving, shutdown)
        });
        Ok(UdpTracker { running })
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.running.local_addr
    }

    /// The URL clients announce to.
    pub fn announce_url(&self) -> String {
        format!("udp://{}/announce", self.running.local_addr)
    }

    /// The tracker's state.
    pub fn state(&self) -> &Arc<Mutex<Tracker>> {
        &self.running.state
    }

    /// Stops serving and returns when it has.
    pub async fn stop(mut self) {
        self.running.stop().await;
    }
}

/// Bytes of peers in one announce answer: with the 20-byte header, within
/// the 1,400 bytes that pass everywhere without fragmenting.
const MAX_PAYLOAD: usize = 1380;

async fn serve(socket: UdpSocket, state: Arc<Mutex<Tracker>>, shutdown: CancellationToken) {
    let ids = ConnectionIds::new();
    let mut buf = vec![0u8; 2048];
    loop {
        let (len, from) = tokio::select! {
            () = shutdown.cancelled() => break,
            received = socket.recv_from(&mut buf) => match received {
                Ok(received) => received,
                // An ICMP error about an earlier reply; nothing to do.
                Err(_) => continue,
            },
        };
        // Packets that are not BEP 15 get no answer: answering garbage would
        // make the tracker a reflector.
        let Ok(request) = UdpRequest::decode(&buf[..len]) else {
            continue;
        };
        let Some(reply) = answer(&state, &ids, request, from) else {
            continue;
        };
        let _ = socket.send_to(&reply.encode(), from).await;
    }
}

/// The reply to a request, if it gets one.
fn answer(
    state: &Mutex<Tracker>,
    ids: &ConnectionIds,
    request: UdpRequest,
    from: SocketAddr,
) -> Option<UdpResponse> {
    let transaction_id = request.transaction_id();
    let refuse = |message: &str| UdpResponse::Error {
        transaction_id,
        message: message.to_string(),
    };
    let reply = match request {
        UdpRequest::Connect { .. } => UdpResponse::Connect {
            transaction_id,
            connection_id: ids.issue(from),
        },
        UdpRequest::Announce { connection_id, .. } | UdpRequest::Scrape { connection_id, .. }
            if !ids.valid(connection_id, from) =>
        {
            // Silence: the id is what shows that the sender is at the
            // address the packet claims, and any answer to an unproven
            // address, however short, lends the tracker to reflecting
            // spoofed traffic. A client whose id expired hears nothing,
            // times out and connects again, as BEP 15 has it.
            return None;
        }
        UdpRequest::Announce {
            info_hash,
            peer_id,
            downloaded,
            left,
            uploaded,
            event,
            key,
            numwant,
            port,
            ..
        } => {
            let mut announce = AnnounceRequest::new(info_hash, PeerId(peer_id.0), port, left);
            announce.downloaded = downloaded;
            announce.uploaded = uploaded;
            announce.event = event;
            announce.key = Some(key);
            let ip = from.ip().to_canonical();
            tracing::info!(
                info_hash = %info_hash, peer = %SocketAddr::new(ip, port),
                event = ?event, left, "announce (udp)"
            );
            // One address family per answer, the asker's, and few enough peers
            // that the datagram stays within a common MTU.
            let limit = MAX_PAYLOAD / if ip.is_ipv4() { 6 } else { 18 };
            // -1 (none said) is the tracker's default, as over HTTP, not
            // as many as fit: an answer many times the request's size.
            let default = lock(state).config().default_numwant;
            let wanted = numwant.map_or(default, |n| n as usize).min(limit);
            announce.numwant = Some(u32::try_from(wanted).unwrap_or(u32::MAX));
            let answer = lock(state).announce_from(&announce, ip, Instant::now(), true);
            match answer {
                Ok(answer) => UdpResponse::Announce {
                    transaction_id,
                    interval: answer.interval,
                    leechers: answer.incomplete.unwrap_or(0),
                    seeders: answer.complete.unwrap_or(0),
                    peers: answer.peers,
                },
                Err(err) => refuse(&err.to_string()),
            }
        }
        UdpRequest::Scrape { info_hashes, .. } => {
            let tracker = lock(state);
            let stats = info_hashes
                .iter()
                .map(|h| tracker.stats(h).unwrap_or_default())
                .collect();
            UdpResponse::Scrape {
                transaction_id,
                stats,
            }
        }
    };
    Some(reply)
}

/// Connection ids that need no table: a keyed hash of the client's IP address
/// and the current minute. An id is good in the minute it was issued and the
/// next, so at least a full minute. The port is left out: clients may send
/// each request from a new socket.
struct ConnectionIds {
    secret: [u8; 16],
    start: Instant,
}

impl ConnectionIds {
    fn new() -> Self {
        ConnectionIds {
            secret: rand::random(),
            start: Instant::now(),
        }
    }

    fn minute(&self) -> u64 {
        self.start.elapsed().as_secs() / 60
    }

    fn id(&self, addr: SocketAddr, minute: u64) -> u64 {
        let mut hasher = metainfo::Sha1::new(metainfo::Sha1Backend::Fast);
        hasher.update(&self.secret);
        hasher.update(addr.ip().to_canonical().to_string().as_bytes());
        hasher.update(&minute.to_be_bytes());
        let digest = hasher.finish();
        u64::from_be_bytes([
            digest[0], digest[1], digest[2], digest[3], digest[4], digest[5], digest[6], digest[7],
        ])
    }

    fn issue(&self, addr: SocketAddr) -> u64 {
        self.id(addr, self.minute())
    }

    fn valid(&self, id: u64, addr: SocketAddr) -> bool {
        let now = self.minute();
        id == self.id(addr, now) || (now > 0 && id == self.id(addr, now - 1))
    }
}
