//! A UDP relay that gives a loopback path what loopback lacks: delay,
//! jitter (and so reordering) and loss, each way. The kernel here has no
//! `netem`; uTP runs over UDP, so a relay between two peers stands in for
//! it.
//!
//! The relay listens on one address: datagrams from a client go on to the
//! target, from a socket of the relay's own, and the target's answers come
//! back to whoever last sent. Each datagram waits its delay (plus up to the
//! jitter, drawn for each) unless it is lost; at most [`MAX_QUEUED`] wait at
//! once, and those past it are lost too, as at a full queue.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use rand::{Rng, SeedableRng};
use tokio::net::UdpSocket;
use tokio::time::Instant;

/// Datagrams waiting in the relay at most.
pub const MAX_QUEUED: usize = 20_000;

/// What a path does to each datagram, each way.
#[derive(Clone, Copy, Debug)]
pub struct Conditions {
    /// The one-way delay.
    pub delay: Duration,
    /// Up to this much more, drawn for each datagram: later ones may pass
    /// earlier ones.
    pub jitter: Duration,
    /// The share of datagrams lost, from 0 to 1.
    pub loss: f64,
}

/// A running relay; it stops when dropped.
#[derive(Debug)]
pub struct Relay {
    addr: SocketAddr,
    counts: Arc<Counts>,
    task: tokio::task::JoinHandle<()>,
}

/// What the relay did.
#[derive(Debug, Default)]
struct Counts {
    passed: AtomicU64,
    passed_bytes: AtomicU64,
    lost: AtomicU64,
}

impl Relay {
    /// Starts a relay listening on `ip` (an ephemeral port) in front of
    /// `target`.
    pub async fn start(
        ip: IpAddr,
        target: SocketAddr,
        conditions: Conditions,
    ) -> io::Result<Relay> {
        let front = UdpSocket::bind((ip, 0)).await?;
        let back = UdpSocket::bind((ip, 0)).await?;
        let addr = front.local_addr()?;
        let counts = Arc::new(Counts::default());
        let task = tokio::spawn(run(front, back, target, conditions, counts.clone()));
        Ok(Relay { addr, counts, task })
    }

    /// Where clients send: the target's stand-in.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Datagrams passed on so far, and lost.
    pub fn counts(&self) -> (u64, u64) {
        (
            self.counts.passed.load(Ordering::Relaxed),
            self.counts.lost.load(Ordering::Relaxed),
        )
    }

    /// Bytes passed on so far (both ways, headers of uTP and all).
    pub fn bytes(&self) -> u64 {
        self.counts.passed_bytes.load(Ordering::Relaxed)
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A datagram waiting: when it goes, a tie-breaker, whether it goes to the
/// target (else back to the client), its bytes.
type Waiting = Reverse<(Instant, u64, bool, Vec<u8>)>;

async fn run(
    front: UdpSocket,
    back: UdpSocket,
    target: SocketAddr,
    conditions: Conditions,
    counts: Arc<Counts>,
) {
    let mut rng = rand::rngs::SmallRng::from_os_rng();
    let mut queue: BinaryHeap<Waiting> = BinaryHeap::new();
    let mut client: Option<SocketAddr> = None;
    let mut order = 0u64;
    let mut buf = vec![0u8; 65_536];
    let mut back_buf = vec![0u8; 65_536];
    loop {
        let next = queue.peek().map(|Reverse((at, ..))| *at);
        let (datagram, to_target) = tokio::select! {
            received = front.recv_from(&mut buf) => {
                let Ok((len, from)) = received else { continue };
                client = Some(from);
                (buf[..len].to_vec(), true)
            }
            received = back.recv_from(&mut back_buf) => {
                let Ok((len, _)) = received else { continue };
                (back_buf[..len].to_vec(), false)
            }
            () = sleep_until(next) => {
                while queue.peek().is_some_and(|Reverse((at, ..))| *at <= Instant::now()) {
                    let Some(Reverse((_, _, to_target, datagram))) = queue.pop() else { break };
                    // A socket that will not take it now loses it, as a
                    // full link would.
                    let sent = if to_target {
                        back.try_send_to(&datagram, target)
                    } else if let Some(client) = client {
                        front.try_send_to(&datagram, client)
                    } else {
                        continue;
                    };
                    if sent.is_ok() {
                        counts.passed.fetch_add(1, Ordering::Relaxed);
                        counts.passed_bytes.fetch_add(datagram.len() as u64, Ordering::Relaxed);
                    } else {
                        counts.lost.fetch_add(1, Ordering::Relaxed);
                    }
                }
                continue;
            }
        };
        if queue.len() >= MAX_QUEUED || rng.random_bool(conditions.loss.clamp(0.0, 1.0)) {
            counts.lost.fetch_add(1, Ordering::Relaxed);
            continue;
        }
        let jitter = conditions.jitter.mul_f64(rng.random::<f64>());
        order += 1;
        queue.push(Reverse((
            Instant::now() + conditions.delay + jitter,
            order,
            to_target,
            datagram,
        )));
    }
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
