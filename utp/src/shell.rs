//! The tokio shell: one UDP socket carrying many connections, each an
//! `AsyncRead + AsyncWrite` [`Stream`].
//!
//! A driver task owns the receiving side of the socket: it hands each
//! datagram to its connection (by peer address and connection id), opens
//! connections for SYNs, passes datagrams that are not uTP to whoever
//! shares the socket (the DHT), and runs the connections' timers. Streams
//! read and write their connection under a lock and send what it has
//! to send themselves; the driver sends what the socket would not take at
//! once.

use std::collections::{HashMap, VecDeque};
use std::future::poll_fn;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use rand::Rng;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::UdpSocket;
use tokio::sync::{Notify, mpsc, oneshot};

use crate::{Config, Connection, Error, Packet, PacketType, Transmit, is_utp};

/// What a [`Socket`] holds at most, and how its connections behave.
#[derive(Clone, Debug)]
pub struct SocketConfig {
    /// Each connection's buffers and packet sizes (the largest datagram
    /// tried is the path's: 64 KiB on loopback, Ethernet's elsewhere).
    pub connection: Config,
    /// Connections at most, in every state.
    pub max_connections: usize,
    /// Connections with one IP address at most.
    pub max_per_ip: usize,
    /// SYNs answered whose peer has not spoken since, at most: past it
    /// the oldest is forgotten. Such a connection costs a few hundred
    /// bytes and reaches [`Socket::accept`] only once the peer speaks, so
    /// a flood of forged SYNs costs bounded memory and nothing else.
    pub max_half_open: usize,
    /// Connections established and not yet taken by
    /// [`accept`](Socket::accept), at most: past it, new ones are reset.
    pub backlog: usize,
    /// How long a connection whose [`Stream`] was dropped may take to
    /// close gracefully before it is reset.
    pub linger: Duration,
}

impl Default for SocketConfig {
    fn default() -> SocketConfig {
        SocketConfig {
            connection: Config::default(),
            max_connections: 2048,
            max_per_ip: 64,
            max_half_open: 256,
            backlog: 128,
            linger: Duration::from_secs(20),
        }
    }
}

/// The largest datagrams tried with a peer on loopback (64 KiB less the
/// IPv6 and UDP headers).
const LOOPBACK_DATAGRAM: u16 = 65_487;
/// On other paths: Ethernet's 1,500 less the IPv4 or IPv6 header and UDP's.
const ETHERNET_DATAGRAM_V4: u16 = 1472;
const ETHERNET_DATAGRAM_V6: u16 = 1452;

/// A half-open connection the peer has not spoken on since our answer is
/// forgotten after this.
const HALF_OPEN_TIMEOUT: Duration = Duration::from_secs(10);

/// Datagrams read in one go before the connections that got them send.
const RECV_BATCH: usize = 128;

type Key = (SocketAddr, u16);

/// A UDP socket speaking uTP: [`connect`](Socket::connect) and
/// [`accept`](Socket::accept) give [`Stream`]s. Clones share the socket.
#[derive(Clone, Debug)]
pub struct Socket {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    udp: Arc<UdpSocket>,
    local: SocketAddr,
    inner: Mutex<Inner>,
    /// Wakes the driver: sends are waiting, or a timer moved earlier.
    wake: Notify,
    /// Dropped with the last handle: the driver stops.
    _stop: oneshot::Sender<()>,
}

#[derive(Debug)]
struct Inner {
    config: SocketConfig,
    conns: HashMap<Key, Entry>,
    per_ip: HashMap<IpAddr, usize>,
    /// Established, waiting for `accept`.
    ready: VecDeque<Key>,
    accept_waker: Option<Waker>,
    listening: bool,
    /// Half-open connections, oldest first (some may have moved on).
    half_open: VecDeque<Key>,
    /// Datagrams the socket would not take yet.
    outbox: VecDeque<(SocketAddr, Vec<u8>)>,
    /// When the driver will look at the timers next.
    driver_deadline: Option<Instant>,
}

#[derive(Debug)]
struct Entry {
    conn: Connection,
    read: Option<Waker>,
    write: Option<Waker>,
    /// The stream was dropped: the entry goes once the connection closes
    /// (or at `linger_until`).
    dropped: bool,
    linger_until: Option<Instant>,
    /// Accepted: a SYN's connection not yet handed to `accept`.
    incoming: bool,
    opened: Instant,
}

impl Entry {
    fn wake(&mut self) {
        if let Some(w) = self.read.take() {
            w.wake();
        }
        if let Some(w) = self.write.take() {
            w.wake();
        }
    }
}

impl Socket {
    /// Binds a UDP socket for uTP alone (with [`udp_socket`]'s buffers).
    pub async fn bind(addr: SocketAddr, config: SocketConfig) -> io::Result<Socket> {
        Socket::with_udp(Arc::new(udp_socket(addr)?), config, None)
    }

    /// Speaks uTP on a socket shared with others: datagrams that are not
    /// uTP go to `others` (the DHT's channel; dropped if it is full).
    /// Must be called within a tokio runtime; the socket's reading side
    /// belongs to this one from then on.
    pub fn with_udp(
        udp: Arc<UdpSocket>,
        config: SocketConfig,
        others: Option<mpsc::Sender<(SocketAddr, Vec<u8>)>>,
    ) -> io::Result<Socket> {
        let local = udp.local_addr()?;
        let (stop, stopped) = oneshot::channel();
        let shared = Arc::new(Shared {
            udp: udp.clone(),
            local,
            inner: Mutex::new(Inner {
                config,
                conns: HashMap::new(),
                per_ip: HashMap::new(),
                ready: VecDeque::new(),
                accept_waker: None,
                listening: false,
                half_open: VecDeque::new(),
                outbox: VecDeque::new(),
                driver_deadline: None,
            }),
            wake: Notify::new(),
            _stop: stop,
        });
        tokio::spawn(drive(Arc::downgrade(&shared), udp, others, stopped));
        Ok(Socket { shared })
    }

    /// The address the socket is bound to.
    pub fn local_addr(&self) -> SocketAddr {
        self.shared.local
    }

    /// Connections open now, in every state (lingering ones included).
    pub fn connections(&self) -> usize {
        self.shared.lock().conns.len()
    }

    /// Opens a connection to `peer`; ends when the peer answers, or with
    /// an error when it does not (after the SYN's resends, some seven
    /// seconds) or refuses.
    pub async fn connect(&self, peer: SocketAddr) -> io::Result<Stream> {
        let key = {
            let mut inner = self.shared.lock();
            if inner.conns.len() >= inner.config.max_connections
                || inner.per_ip.get(&peer.ip()).copied().unwrap_or(0) >= inner.config.max_per_ip
            {
                return Err(io::Error::other("too many uTP connections"));
            }
            let mut rng = rand::rng();
            let recv_id = loop {
                let id: u16 = rng.random();
                // The peer answers on `id` and is sent `id + 1`: neither may
                // be another connection's with this peer.
                if !inner.conns.contains_key(&(peer, id))
                    && !inner.conns.contains_key(&(peer, id.wrapping_add(1)))
                {
                    break id;
                }
            };
            let now = Instant::now();
            let config = connection_config(&inner.config.connection, peer);
            let conn = Connection::connect(now, config, recv_id, rng.random());
            inner.insert((peer, recv_id), conn, false, now);
            let key = (peer, recv_id);
            self.shared.flush(&mut inner, key);
            key
        };
        // Dropped before it connects, the stream resets the attempt.
        let stream = Stream::new(self.shared.clone(), key);
        poll_fn(|cx| {
            let mut inner = self.shared.lock();
            let Some(entry) = inner.conns.get_mut(&key) else {
                return Poll::Ready(Err(io::Error::from(io::ErrorKind::ConnectionAborted)));
            };
            if let Some(e) = entry.conn.error() {
                return Poll::Ready(Err(to_io(e, true)));
            }
            if entry.conn.is_connected() {
                return Poll::Ready(Ok(()));
            }
            entry.write = Some(cx.waker().clone());
            Poll::Pending
        })
        .await?;
        Ok(stream)
    }

    /// The next connection a peer opened (once it has spoken after its
    /// SYN). Until the first call, SYNs are refused.
    pub async fn accept(&self) -> io::Result<(Stream, SocketAddr)> {
        poll_fn(|cx| {
            let mut inner = self.shared.lock();
            inner.listening = true;
            while let Some(key) = inner.ready.pop_front() {
                let Some(entry) = inner.conns.get_mut(&key) else {
                    continue;
                };
                entry.incoming = false;
                let stream = Stream::new(self.shared.clone(), key);
                return Poll::Ready(Ok((stream, key.0)));
            }
            inner.accept_waker = Some(cx.waker().clone());
            Poll::Pending
        })
        .await
    }
}

/// The socket buffers [`udp_socket`] asks for: a window's worth of
/// datagrams arriving while the reader is busy elsewhere are queued, not
/// dropped (the kernel grants up to `net.core.rmem_max`).
pub const SOCKET_BUFFER: usize = 4 << 20;

/// A UDP socket bound to `addr` for uTP: non-blocking, with receive and
/// send buffers of [`SOCKET_BUFFER`] bytes if the system allows (less if
/// not), IPv6 alone on an IPv6 address. Must be called within a tokio
/// runtime.
pub fn udp_socket(addr: SocketAddr) -> io::Result<UdpSocket> {
    use socket2::{Domain, Protocol, Socket as RawSocket, Type};
    let socket = RawSocket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    if addr.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    // Best effort: a smaller buffer only costs speed.
    let _ = socket.set_recv_buffer_size(SOCKET_BUFFER);
    let _ = socket.set_send_buffer_size(SOCKET_BUFFER);
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    UdpSocket::from_std(socket.into())
}

/// A connection's settings for `peer`: loopback carries large datagrams.
fn connection_config(config: &Config, peer: SocketAddr) -> Config {
    let mut config = config.clone();
    let path = if peer.ip().is_loopback() {
        LOOPBACK_DATAGRAM
    } else if peer.is_ipv4() {
        ETHERNET_DATAGRAM_V4
    } else {
        ETHERNET_DATAGRAM_V6
    };
    config.max_datagram = path;
    config
}

fn to_io(e: Error, connecting: bool) -> io::Error {
    let kind = match e {
        Error::Reset if connecting => io::ErrorKind::ConnectionRefused,
        Error::Reset => io::ErrorKind::ConnectionReset,
        Error::TimedOut => io::ErrorKind::TimedOut,
        Error::Aborted => io::ErrorKind::ConnectionAborted,
    };
    io::Error::new(kind, e)
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic elsewhere while holding the lock leaves plain data.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Sends all the connection at `key` has to send.
    fn flush(&self, inner: &mut Inner, key: Key) {
        let now = Instant::now();
        let Some(entry) = inner.conns.get_mut(&key) else {
            return;
        };
        let mut waiting = !inner.outbox.is_empty();
        while let Some(Transmit {
            datagram,
            dont_fragment,
        }) = entry.conn.poll_transmit(now)
        {
            if !waiting {
                let sent = if dont_fragment {
                    send_unfragmented(&self.udp, &datagram, key.0)
                } else {
                    self.udp.try_send_to(&datagram, key.0)
                };
                match sent {
                    Ok(_) => continue,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => waiting = true,
                    // Unreachable, too large: as good as lost on the way.
                    Err(_) => continue,
                }
            }
            inner.outbox.push_back((key.0, datagram));
        }
        let timer_earlier = entry
            .conn
            .poll_timeout()
            .is_some_and(|t| inner.driver_deadline.is_none_or(|d| t < d));
        if waiting || timer_earlier {
            self.wake.notify_one();
        }
    }
}

impl Inner {
    fn insert(&mut self, key: Key, conn: Connection, incoming: bool, now: Instant) {
        *self.per_ip.entry(key.0.ip()).or_default() += 1;
        self.conns.insert(
            key,
            Entry {
                conn,
                read: None,
                write: None,
                dropped: false,
                linger_until: None,
                incoming,
                opened: now,
            },
        );
        if incoming {
            self.half_open.push_back(key);
        }
    }

    fn remove(&mut self, key: &Key) {
        if let Some(mut entry) = self.conns.remove(key) {
            entry.wake();
            if let Some(n) = self.per_ip.get_mut(&key.0.ip()) {
                *n -= 1;
                if *n == 0 {
                    self.per_ip.remove(&key.0.ip());
                }
            }
        }
    }

    /// A SYN from an unknown connection: accepted (half open) or refused.
    fn on_syn(&mut self, from: SocketAddr, packet: &Packet, now: Instant) -> bool {
        let key = (from, packet.header.connection_id.wrapping_add(1));
        if !self.listening
            || self.per_ip.get(&from.ip()).copied().unwrap_or(0) >= self.config.max_per_ip
            || self.ready.len() >= self.config.backlog
        {
            return false;
        }
        // Forget the oldest half-open connections first.
        while self.half_open.len() >= self.config.max_half_open {
            let Some(old) = self.half_open.pop_front() else {
                break;
            };
            if self
                .conns
                .get(&old)
                .is_some_and(|e| e.incoming && !e.conn.is_connected())
            {
                self.remove(&old);
            }
        }
        if self.conns.len() >= self.config.max_connections {
            return false;
        }
        let config = connection_config(&self.config.connection, from);
        let conn = Connection::accept(now, config, packet, rand::rng().random());
        self.insert(key, conn, true, now);
        true
    }

    /// Wakes what the connection's new state concerns, and hands it to
    /// `accept` once established.
    fn after_event(&mut self, key: Key) {
        let Some(entry) = self.conns.get_mut(&key) else {
            return;
        };
        entry.wake();
        if entry.incoming && entry.conn.is_connected() && !self.ready.contains(&key) {
            self.ready.push_back(key);
            if let Some(w) = self.accept_waker.take() {
                w.wake();
            }
        }
    }

    /// Runs due timers and finds what is over.
    fn timers(&mut self, now: Instant) -> Timers {
        let mut due = Vec::new();
        let mut gone = Vec::new();
        let mut next: Option<Instant> = None;
        for (key, entry) in &mut self.conns {
            if entry.conn.poll_timeout().is_some_and(|t| t <= now) {
                entry.conn.handle_timeout(now);
                entry.wake();
                due.push(*key);
            }
            let half_open_expired = entry.incoming
                && !entry.conn.is_connected()
                && now.duration_since(entry.opened) > HALF_OPEN_TIMEOUT;
            let lingered = entry.linger_until.is_some_and(|t| t <= now);
            if lingered && !entry.conn.is_closed() {
                entry.conn.reset();
                due.push(*key);
            }
            if (entry.dropped && entry.conn.is_closed()) || half_open_expired || lingered {
                gone.push(*key);
                continue;
            }
            for t in [entry.conn.poll_timeout(), entry.linger_until]
                .into_iter()
                .flatten()
            {
                next = Some(next.map_or(t, |n| n.min(t)));
            }
            if entry.incoming && !entry.conn.is_connected() {
                let t = entry.opened + HALF_OPEN_TIMEOUT;
                next = Some(next.map_or(t, |n| n.min(t)));
            }
        }
        (due, gone, next)
    }
}

/// Keys whose connections may have something to send, keys to drop (after
/// sending what they have), and when timers are due next.
type Timers = (Vec<Key>, Vec<Key>, Option<Instant>);

/// The driver: reads the socket, runs the timers, sends what streams could
/// not.
async fn drive(
    shared: Weak<Shared>,
    udp: Arc<UdpSocket>,
    others: Option<mpsc::Sender<(SocketAddr, Vec<u8>)>>,
    mut stopped: oneshot::Receiver<()>,
) {
    let mut buf = vec![0u8; 65_536];
    let mut next: Option<Instant> = None;
    loop {
        let Some(shared) = shared.upgrade() else {
            return;
        };
        let deadline = next.unwrap_or_else(|| Instant::now() + Duration::from_secs(3600));
        let outbox_waiting = !shared.lock().outbox.is_empty();
        tokio::select! {
            _ = &mut stopped => return,
            readable = udp.readable() => {
                if readable.is_err() {
                    return;
                }
                receive(&shared, &udp, &mut buf, others.as_ref());
            }
            writable = udp.writable(), if outbox_waiting => {
                if writable.is_err() {
                    return;
                }
                send_waiting(&shared);
            }
            () = shared.wake.notified() => send_waiting(&shared),
            () = tokio::time::sleep_until(deadline.into()) => {}
        }
        let mut inner = shared.lock();
        let (due, gone, deadline) = inner.timers(Instant::now());
        for key in due {
            shared.flush(&mut inner, key);
            inner.after_event(key);
        }
        for key in gone {
            shared.flush(&mut inner, key);
            inner.remove(&key);
        }
        inner.driver_deadline = deadline;
        next = deadline;
    }
}

/// Reads what the socket has (a batch at most), hands it out, and lets the
/// connections that got packets answer.
fn receive(
    shared: &Shared,
    udp: &UdpSocket,
    buf: &mut [u8],
    others: Option<&mpsc::Sender<(SocketAddr, Vec<u8>)>>,
) {
    let now = Instant::now();
    let mut touched = Vec::new();
    let mut refuse = Vec::new();
    {
        let mut inner = shared.lock();
        for _ in 0..RECV_BATCH {
            let (len, from) = match udp.try_recv_from(buf) {
                Ok(got) => got,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                // An ICMP error for an earlier send, and the like.
                Err(_) => continue,
            };
            let datagram = &buf[..len];
            if !is_utp(datagram) {
                if let Some(others) = others {
                    let _ = others.try_send((from, datagram.to_vec()));
                }
                continue;
            }
            let Ok(packet) = Packet::decode(datagram) else {
                continue;
            };
            let h = packet.header;
            let mut key = if h.kind == PacketType::Syn {
                (from, h.connection_id.wrapping_add(1))
            } else {
                (from, h.connection_id)
            };
            if h.kind == PacketType::Reset && !inner.conns.contains_key(&key) {
                // Peers differ on which id a reset carries: ours, or the
                // one we send with.
                if let Some((k, _)) = inner
                    .conns
                    .iter()
                    .find(|(k, e)| k.0 == from && e.conn.send_id() == h.connection_id)
                {
                    key = *k;
                }
            }
            if let Some(entry) = inner.conns.get_mut(&key) {
                entry.conn.handle(now, &packet);
            } else if h.kind == PacketType::Syn {
                if !inner.on_syn(from, &packet, now) {
                    refuse.push((from, h));
                    continue;
                }
            } else {
                if h.kind != PacketType::Reset {
                    refuse.push((from, h));
                }
                continue;
            }
            if !touched.contains(&key) {
                touched.push(key);
            }
        }
        for key in touched {
            shared.flush(&mut inner, key);
            inner.after_event(key);
        }
    }
    for (to, h) in refuse {
        let _ = shared.udp.try_send_to(&crate::reset_for(&h), to);
    }
}

/// Sends a path MTU probe with don't-fragment: past the path's MTU (the
/// interface's first) it is lost, not cut in pieces and delivered, which
/// would tell the probe it fits. Everything else may be fragmented: the
/// resend of a probe that did not fit gets through, and IP fragments a
/// datagram the route's MTU has shrunk under.
fn send_unfragmented(udp: &UdpSocket, datagram: &[u8], to: SocketAddr) -> io::Result<usize> {
    #[cfg(target_os = "linux")]
    {
        use rustix::net::sockopt;
        let probe = |on: bool| {
            // Best effort: without it a probe may pass in fragments.
            let _ = if to.is_ipv4() {
                let mode = if on {
                    sockopt::Ipv4PathMtuDiscovery::PROBE
                } else {
                    sockopt::Ipv4PathMtuDiscovery::WANT
                };
                sockopt::set_ip_mtu_discover(udp, mode)
            } else {
                let mode = if on {
                    sockopt::Ipv6PathMtuDiscovery::PROBE
                } else {
                    sockopt::Ipv6PathMtuDiscovery::WANT
                };
                sockopt::set_ipv6_mtu_discover(udp, mode)
            };
        };
        probe(true);
        let sent = udp.try_send_to(datagram, to);
        probe(false);
        sent
    }
    #[cfg(not(target_os = "linux"))]
    udp.try_send_to(datagram, to)
}

/// Sends the datagrams the socket would not take before, while it takes
/// them.
fn send_waiting(shared: &Shared) {
    let mut inner = shared.lock();
    while let Some((to, datagram)) = inner.outbox.front() {
        match shared.udp.try_send_to(datagram, *to) {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
            _ => {
                inner.outbox.pop_front();
            }
        }
    }
}

/// A stream's path and counters ([`Stream::info`]).
#[derive(Clone, Copy, Debug)]
pub struct Info {
    /// The smoothed round trip, once measured.
    pub rtt: Option<Duration>,
    /// Bytes that may be in flight.
    pub congestion_window: u32,
    /// The queueing delay LEDBAT last saw.
    pub queueing_delay: Duration,
    /// The datagram size known to get through.
    pub packet_size: u16,
    /// Packets sent, resent, lost, received.
    pub stats: crate::Stats,
}

/// One uTP connection: bytes in order, both ways, with back-pressure.
/// Dropped, it closes gracefully (its FIN goes after what was written)
/// within [`SocketConfig::linger`], and resets past it.
#[derive(Debug)]
pub struct Stream {
    handle: Arc<Handle>,
}

/// The reading half of a [`Stream`] ([`Stream::into_split`]).
#[derive(Debug)]
pub struct ReadHalf {
    handle: Arc<Handle>,
}

/// The writing half of a [`Stream`] ([`Stream::into_split`]); dropped,
/// it closes the write side (the FIN goes after what was written).
#[derive(Debug)]
pub struct WriteHalf {
    handle: Arc<Handle>,
}

/// What a stream and its halves share: the connection goes when the last
/// of them does.
#[derive(Debug)]
struct Handle {
    shared: Arc<Shared>,
    key: Key,
}

impl Stream {
    fn new(shared: Arc<Shared>, key: Key) -> Stream {
        Stream {
            handle: Arc::new(Handle { shared, key }),
        }
    }

    /// The peer's address.
    pub fn peer_addr(&self) -> SocketAddr {
        self.handle.key.0
    }

    /// The local address (the socket's).
    pub fn local_addr(&self) -> SocketAddr {
        self.handle.shared.local
    }

    /// What the connection knows of its path and has done so far.
    pub fn info(&self) -> Option<Info> {
        self.handle.info()
    }

    /// Resets the connection at once (nothing more is sent or read).
    pub fn reset(&self) {
        self.handle.reset();
    }

    /// Splits the stream into halves that can be used from two tasks.
    pub fn into_split(self) -> (ReadHalf, WriteHalf) {
        let read = ReadHalf {
            handle: self.handle.clone(),
        };
        (
            read,
            WriteHalf {
                handle: self.handle,
            },
        )
    }
}

impl ReadHalf {
    /// What the connection knows of its path and has done so far.
    pub fn info(&self) -> Option<Info> {
        self.handle.info()
    }
}

impl WriteHalf {
    /// Resets the connection at once (nothing more is sent or read).
    pub fn reset(&self) {
        self.handle.reset();
    }
}

impl Handle {
    fn info(&self) -> Option<Info> {
        let inner = self.shared.lock();
        let conn = &inner.conns.get(&self.key)?.conn;
        Some(Info {
            rtt: conn.rtt(),
            congestion_window: conn.congestion_window(),
            queueing_delay: conn.queueing_delay(),
            packet_size: conn.packet_size(),
            stats: conn.stats(),
        })
    }

    fn reset(&self) {
        let mut inner = self.shared.lock();
        if let Some(entry) = inner.conns.get_mut(&self.key) {
            entry.conn.reset();
            entry.wake();
        }
        self.shared.flush(&mut inner, self.key);
    }

    fn poll_read(&self, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let mut inner = self.shared.lock();
        let Some(entry) = inner.conns.get_mut(&self.key) else {
            return Poll::Ready(Err(io::ErrorKind::ConnectionAborted.into()));
        };
        let n = entry.conn.read(buf.initialize_unfilled());
        if n > 0 {
            buf.advance(n);
            // The window may have reopened: the peer hears of it.
            self.shared.flush(&mut inner, self.key);
            return Poll::Ready(Ok(()));
        }
        if entry.conn.is_read_closed() {
            return Poll::Ready(Ok(()));
        }
        if let Some(e) = entry.conn.error() {
            return Poll::Ready(Err(to_io(e, false)));
        }
        entry.read = Some(cx.waker().clone());
        Poll::Pending
    }

    fn poll_write(&self, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        let mut inner = self.shared.lock();
        let Some(entry) = inner.conns.get_mut(&self.key) else {
            return Poll::Ready(Err(io::ErrorKind::ConnectionAborted.into()));
        };
        if let Some(e) = entry.conn.error() {
            return Poll::Ready(Err(to_io(e, false)));
        }
        if data.is_empty() {
            return Poll::Ready(Ok(0));
        }
        let n = entry.conn.write(data);
        if n == 0 {
            if entry.conn.write_capacity() == 0 && entry.conn.is_write_closed() {
                return Poll::Ready(Err(io::ErrorKind::BrokenPipe.into()));
            }
            entry.write = Some(cx.waker().clone());
            return Poll::Pending;
        }
        self.shared.flush(&mut inner, self.key);
        Poll::Ready(Ok(n))
    }

    fn shutdown(&self) {
        let mut inner = self.shared.lock();
        if let Some(entry) = inner.conns.get_mut(&self.key) {
            entry.conn.close();
        }
        self.shared.flush(&mut inner, self.key);
    }
}

impl Drop for Handle {
    fn drop(&mut self) {
        let mut inner = self.shared.lock();
        let linger = inner.config.linger;
        let Some(entry) = inner.conns.get_mut(&self.key) else {
            return;
        };
        entry.dropped = true;
        if entry.conn.is_connected() {
            entry.conn.close();
            entry.linger_until = Some(Instant::now() + linger);
        } else {
            entry.conn.reset();
        }
        self.shared.flush(&mut inner, self.key);
        // The driver drops it once closed, or at the linger's end.
        self.shared.wake.notify_one();
    }
}

impl Drop for WriteHalf {
    fn drop(&mut self) {
        self.handle.shutdown();
    }
}

macro_rules! read_impl {
    ($t:ty) => {
        impl AsyncRead for $t {
            fn poll_read(
                self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                buf: &mut ReadBuf<'_>,
            ) -> Poll<io::Result<()>> {
                self.handle.poll_read(cx, buf)
            }
        }
    };
}

macro_rules! write_impl {
    ($t:ty) => {
        impl AsyncWrite for $t {
            fn poll_write(
                self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                data: &[u8],
            ) -> Poll<io::Result<usize>> {
                self.handle.poll_write(cx, data)
            }

            fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
                // Written bytes are in the connection's hands, as with TCP.
                Poll::Ready(Ok(()))
            }

            fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
                self.handle.shutdown();
                Poll::Ready(Ok(()))
            }
        }
    };
}

read_impl!(Stream);
read_impl!(ReadHalf);
write_impl!(Stream);
write_impl!(WriteHalf);
