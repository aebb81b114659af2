//! One uTP connection as a state machine: bytes written go out as packets
//! within the congestion and receive windows, packets that arrive are put
//! back in order, and timers resend what was lost. No socket and no clock:
//! the caller feeds it packets and the time, and sends what it gives back.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use crate::packet::encode;
use crate::{
    HEADER_LEN, Header, Ledbat, MAX_SACK_BYTES, Packet, PacketType, Rtt, SelectiveAck,
    UNANNOUNCED_DATAGRAM,
};

/// What a connection may hold and how large its packets may be.
#[derive(Clone, Debug)]
pub struct Config {
    /// Bytes received and not yet read, in order or not, at most: what
    /// the connection advertises as its receive window.
    pub receive_buffer: u32,
    /// Bytes written and not yet acknowledged, at most: a writer waits
    /// past this.
    pub send_buffer: u32,
    /// The datagram every path is assumed to carry. 1,232 bytes, IPv6's
    /// minimum MTU less its header and UDP's, unless told otherwise.
    pub min_datagram: u16,
    /// The largest datagram the path carries and we read whole (the
    /// interface's MTU less the IP and UDP headers, when the caller knows
    /// it): the path MTU probe goes no further, nor past
    /// [`UNANNOUNCED_DATAGRAM`] unless the peer announced it takes more
    /// (see [`Packet::largest_datagram`]). Past that, our SYN and our
    /// answer to one announce it.
    pub max_datagram: u16,
    /// Sends of one packet before the connection gives up on the peer.
    pub max_transmissions: u32,
    /// Sends of the SYN before a connection attempt fails.
    pub max_syn_transmissions: u32,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            receive_buffer: 1 << 20,
            send_buffer: 1 << 20,
            min_datagram: 1232,
            max_datagram: 1472,
            max_transmissions: 8,
            max_syn_transmissions: 3,
        }
    }
}

/// Why a connection ended before both sides closed it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The peer sent `ST_RESET` (or refused the SYN with it).
    #[error("the peer reset the uTP connection")]
    Reset,
    /// A packet went unanswered through every resend.
    #[error("the uTP peer stopped answering")]
    TimedOut,
    /// This side reset it ([`Connection::reset`]).
    #[error("the uTP connection was reset here")]
    Aborted,
}

/// What a connection has done so far.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Data packets (and SYN and FIN) sent, resends included.
    pub packets_sent: u64,
    /// Of them, resends.
    pub packets_resent: u64,
    /// Loss events that halved the window.
    pub losses: u64,
    /// Retransmission timeouts.
    pub timeouts: u64,
    /// Packets received.
    pub packets_received: u64,
}

/// A datagram to send.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transmit {
    /// Its bytes.
    pub datagram: Vec<u8>,
    /// Whether it is a path MTU probe, to be sent with the IP
    /// don't-fragment bit set: if the path cannot carry it, it is lost
    /// rather than fragmented, and the probe learns the path's limit.
    pub dont_fragment: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// Our SYN is out, no answer yet.
    SynSent,
    /// We answered a SYN and wait for the peer's first packet before
    /// sending data: until our answer reaches it, the peer cannot know
    /// where our sequence numbers start.
    SynReceived,
    /// Data flows (both ways, until each side's FIN).
    Connected,
    /// Both FINs acknowledged, or an error.
    Closed,
}

/// A packet sent (or about to be) and not yet acknowledged.
#[derive(Debug)]
struct Sent {
    seq: u16,
    kind: PacketType,
    payload: Vec<u8>,
    /// When it was last sent.
    sent_at: Instant,
    transmissions: u32,
    /// Acknowledged by a selective ACK, but not yet cumulatively.
    acked: bool,
    /// To be sent (again): lost, or never sent yet.
    pending: bool,
    /// Already resent because later packets were acknowledged past it: a
    /// second loss waits for the timeout.
    fast_resent: bool,
}

impl Sent {
    /// What it counts for in the window.
    fn size(&self) -> u32 {
        (HEADER_LEN + self.payload.len()) as u32
    }
}

/// Packets past the next expected one that the receiver keeps for later
/// (a selective ACK reports 256 of them; the rest of the window is kept
/// too, within the receive buffer).
const MAX_REORDER: u16 = 2048;

/// Packets in flight at most: well within half the sequence space, so
/// that old and new numbers never mix.
const MAX_IN_FLIGHT: usize = 4096;

/// Duplicate acknowledgements (or packets acknowledged past one) that
/// mean it was lost.
const DUPLICATE_ACKS: u32 = 3;

/// The path MTU probe stops when the limit is known to within this.
const MTU_PRECISION: u16 = 32;

/// Room kept in every packet for a selective ACK, so that a resend fits
/// in the datagram the original did.
const SACK_ROOM: usize = 2 + MAX_SACK_BYTES;

/// One uTP connection (BEP 29), sans-IO.
///
/// Made by [`connect`](Connection::connect) (it sends the SYN) or
/// [`accept`](Connection::accept) (given a SYN), then driven with
/// [`handle`](Connection::handle) for each packet whose connection id is
/// [`recv_id`](Connection::recv_id), [`handle_timeout`](Connection::handle_timeout)
/// at [`poll_timeout`](Connection::poll_timeout), and
/// [`poll_transmit`](Connection::poll_transmit) until it gives nothing.
/// The application [`write`](Connection::write)s, [`read`](Connection::read)s
/// and [`close`](Connection::close)s.
///
/// ```
/// use std::time::Instant;
/// use utp::{Config, Connection, Packet};
///
/// let now = Instant::now();
/// let mut client = Connection::connect(now, Config::default(), 1000, 1);
/// let syn = Packet::decode(&client.poll_transmit(now).unwrap().datagram)?;
/// let mut server = Connection::accept(now, Config::default(), &syn, 500);
///
/// client.write(b"hello");
/// // Carry packets both ways until neither side has more to send.
/// loop {
///     let mut quiet = true;
///     while let Some(t) = server.poll_transmit(now) {
///         client.handle(now, &Packet::decode(&t.datagram)?);
///         quiet = false;
///     }
///     while let Some(t) = client.poll_transmit(now) {
///         server.handle(now, &Packet::decode(&t.datagram)?);
///         quiet = false;
///     }
///     if quiet {
///         break;
///     }
/// }
/// let mut buf = [0; 16];
/// let n = server.read(&mut buf);
/// assert_eq!(&buf[..n], b"hello");
/// # Ok::<(), utp::PacketError>(())
/// ```
#[derive(Debug)]
pub struct Connection {
    config: Config,
    state: State,
    error: Option<Error>,
    recv_id: u16,
    send_id: u16,
    /// Our timestamps count microseconds from here.
    epoch: Instant,

    /// The sequence number the next data packet takes.
    seq_nr: u16,
    /// Written, not yet in a packet.
    unsent: VecDeque<u8>,
    /// From the oldest packet not acknowledged to `seq_nr - 1`.
    in_flight: VecDeque<Sent>,
    /// Bytes counted in the window: sent, neither acknowledged nor lost.
    flight_bytes: u32,
    /// Payload bytes in `in_flight`.
    in_flight_payload: usize,
    write_closed: bool,
    fin_sent: bool,
    peer_window: u32,
    ledbat: Ledbat,
    rtt: Rtt,
    /// When the oldest packet in flight is deemed lost.
    rto_at: Option<Instant>,
    last_ack: u16,
    duplicate_acks: u32,
    /// Losses of packets before this sequence number are one event: the
    /// window halves once a round trip, not once a packet.
    recovery: Option<u16>,
    /// Datagrams of this size are known to get through.
    mtu_floor: u16,
    /// Datagrams above this are known not to (or not tried).
    mtu_ceiling: u16,
    /// The probe in flight: its sequence number and size.
    mtu_probe: Option<(u16, u16)>,

    /// The last sequence number received in order.
    ack_nr: u16,
    /// Received in order, not yet read.
    readable: VecDeque<Vec<u8>>,
    read_offset: usize,
    readable_bytes: usize,
    /// Received past a gap, by sequence number.
    out_of_order: HashMap<u16, (PacketType, Vec<u8>)>,
    out_of_order_bytes: usize,
    /// The sequence number of the peer's FIN, once seen.
    fin_seq: Option<u16>,
    need_ack: bool,
    /// The window advertised last.
    advertised: u32,
    /// The one-way delay of the last packet received, as our clock minus
    /// its timestamp (the peer's LEDBAT needs it).
    reply_micro: u32,
    /// A reset to send.
    send_reset: bool,
    stats: Stats,
}

impl Connection {
    /// Opens a connection: the SYN is the first thing
    /// [`poll_transmit`](Connection::poll_transmit) gives. `recv_id` is
    /// the id packets to us will carry (random, and not in use on the
    /// socket for this peer; ours carry `recv_id + 1`), `seq_nr` the SYN's
    /// sequence number.
    pub fn connect(now: Instant, config: Config, recv_id: u16, seq_nr: u16) -> Connection {
        let mut conn = Connection::new(
            now,
            config,
            State::SynSent,
            recv_id,
            recv_id.wrapping_add(1),
        );
        conn.seq_nr = seq_nr;
        conn.push(now, PacketType::Syn, Vec::new());
        conn
    }

    /// Accepts a connection from its SYN: the answer is the first thing
    /// [`poll_transmit`](Connection::poll_transmit) gives. `seq_nr` is
    /// our first sequence number (random).
    pub fn accept(now: Instant, config: Config, syn: &Packet, seq_nr: u16) -> Connection {
        let h = &syn.header;
        let mut conn = Connection::new(
            now,
            config,
            State::SynReceived,
            h.connection_id.wrapping_add(1),
            h.connection_id,
        );
        conn.seq_nr = seq_nr;
        conn.last_ack = seq_nr.wrapping_sub(1);
        conn.ack_nr = h.seq_nr;
        conn.peer_window = h.window;
        conn.reply_micro = conn.timestamp(now).wrapping_sub(h.timestamp_us);
        conn.need_ack = true;
        if let Some(largest) = syn.largest_datagram {
            conn.peer_takes(largest);
        }
        conn
    }

    /// The peer announced the largest datagram it reads whole: the path
    /// MTU probe may go that far (and no further than the path).
    fn peer_takes(&mut self, largest: u16) {
        self.mtu_ceiling = self.config.max_datagram.min(largest).max(self.mtu_floor);
    }

    /// What our SYN and our answer to one announce: the largest datagram
    /// we read whole, if past what every peer takes.
    fn announcement(&self) -> Option<u16> {
        (self.config.max_datagram > UNANNOUNCED_DATAGRAM).then_some(self.config.max_datagram)
    }

    fn new(now: Instant, config: Config, state: State, recv_id: u16, send_id: u16) -> Connection {
        let min_datagram = config
            .min_datagram
            .max(HEADER_LEN as u16 + SACK_ROOM as u16 + 64);
        let max_datagram = config.max_datagram.max(min_datagram);
        let window_max = config.send_buffer.max(u32::from(max_datagram));
        Connection {
            state,
            error: None,
            recv_id,
            send_id,
            epoch: now,
            seq_nr: 0,
            unsent: VecDeque::new(),
            in_flight: VecDeque::new(),
            flight_bytes: 0,
            in_flight_payload: 0,
            write_closed: false,
            fin_sent: false,
            // Until the peer says: room for the SYN and a few packets.
            peer_window: 4 * u32::from(min_datagram),
            ledbat: Ledbat::new(
                now,
                4 * u32::from(min_datagram),
                u32::from(min_datagram),
                window_max,
            ),
            rtt: Rtt::default(),
            rto_at: None,
            last_ack: 0,
            duplicate_acks: 0,
            recovery: None,
            mtu_floor: min_datagram,
            // Past this only once the peer says it takes more.
            mtu_ceiling: max_datagram.min(UNANNOUNCED_DATAGRAM).max(min_datagram),
            mtu_probe: None,
            ack_nr: 0,
            readable: VecDeque::new(),
            read_offset: 0,
            readable_bytes: 0,
            out_of_order: HashMap::new(),
            out_of_order_bytes: 0,
            fin_seq: None,
            need_ack: false,
            advertised: config.receive_buffer,
            reply_micro: 0,
            send_reset: false,
            stats: Stats::default(),
            config,
        }
    }

    /// The connection id packets to us carry.
    pub fn recv_id(&self) -> u16 {
        self.recv_id
    }

    /// The connection id our packets carry (the SYN excepted).
    pub fn send_id(&self) -> u16 {
        self.send_id
    }

    /// Whether the handshake is done: for the side that connected, its SYN
    /// was answered; for the side that accepted, the peer sent something
    /// after its SYN. Data written before waits.
    pub fn is_connected(&self) -> bool {
        self.state == State::Connected
    }

    /// Whether the connection is over and has nothing more to send: both
    /// sides closed and were acknowledged, or it failed
    /// ([`error`](Connection::error)).
    pub fn is_closed(&self) -> bool {
        self.state == State::Closed && !self.need_ack && !self.send_reset
    }

    /// Why the connection failed, if it did.
    pub fn error(&self) -> Option<Error> {
        self.error
    }

    /// The datagram size known to get through (the path MTU probe's
    /// floor).
    pub fn packet_size(&self) -> u16 {
        self.mtu_floor
    }

    /// What the connection has done so far.
    pub fn stats(&self) -> Stats {
        self.stats
    }

    /// The congestion window, in bytes.
    pub fn congestion_window(&self) -> u32 {
        self.ledbat.window()
    }

    /// The queueing delay LEDBAT last measured on the path.
    pub fn queueing_delay(&self) -> Duration {
        self.ledbat.queueing_delay()
    }

    /// The smoothed round trip, once measured.
    pub fn rtt(&self) -> Option<Duration> {
        self.rtt.smoothed()
    }

    /// Bytes [`write`](Connection::write) would take now.
    pub fn write_capacity(&self) -> usize {
        if self.write_closed || self.state == State::Closed {
            return 0;
        }
        let held = self.unsent.len() + self.in_flight_payload;
        (self.config.send_buffer as usize).saturating_sub(held)
    }

    /// Queues bytes to send; returns how many it took (none once the send
    /// buffer is full, the write side closed or the connection over).
    pub fn write(&mut self, data: &[u8]) -> usize {
        let n = data.len().min(self.write_capacity());
        self.unsent.extend(&data[..n]);
        n
    }

    /// Whether [`close`](Connection::close) was called (or the
    /// connection is over).
    pub fn is_write_closed(&self) -> bool {
        self.write_closed || self.state == State::Closed
    }

    /// Bytes that [`read`](Connection::read) would give now.
    pub fn readable(&self) -> usize {
        self.readable_bytes
    }

    /// Whether the peer's stream has ended and everything in it was read.
    pub fn is_read_closed(&self) -> bool {
        self.readable_bytes == 0 && self.fin_seq.is_some_and(|fin| fin == self.ack_nr)
    }

    /// Copies received bytes, in order, into `buf`; returns how many (0:
    /// nothing to read now, or the end).
    pub fn read(&mut self, buf: &mut [u8]) -> usize {
        let mut n = 0;
        while n < buf.len() {
            let Some(front) = self.readable.front() else {
                break;
            };
            let chunk = &front[self.read_offset..];
            let take = chunk.len().min(buf.len() - n);
            buf[n..n + take].copy_from_slice(&chunk[..take]);
            n += take;
            self.read_offset += take;
            if self.read_offset == front.len() {
                self.readable.pop_front();
                self.read_offset = 0;
            }
        }
        self.readable_bytes -= n;
        // The window reopened: say so, or a sender that saw it shut waits
        // for its timeout.
        let window = self.receive_window();
        if n > 0
            && self.advertised < window
            && (self.advertised < u32::from(self.mtu_floor)
                || window - self.advertised >= self.config.receive_buffer / 2)
        {
            self.need_ack = true;
        }
        n
    }

    /// Closes the write side: the FIN goes after what was written. Reads
    /// go on until the peer closes too.
    pub fn close(&mut self) {
        self.write_closed = true;
    }

    /// Ends the connection at once: a reset is sent and nothing more.
    pub fn reset(&mut self) {
        if self.state != State::Closed {
            self.send_reset = true;
            self.fail(Error::Aborted);
        }
    }

    /// Takes a packet for this connection (its connection id is
    /// [`recv_id`](Connection::recv_id), or it is the SYN that
    /// [`accept`](Connection::accept) took, again).
    pub fn handle(&mut self, now: Instant, packet: &Packet) {
        let h = &packet.header;
        self.stats.packets_received += 1;
        if self.state == State::Closed {
            // A FIN resent because our ack was lost: acknowledge it again.
            if self.error.is_none() && matches!(h.kind, PacketType::Fin | PacketType::Data) {
                self.need_ack = true;
            }
            return;
        }
        match h.kind {
            PacketType::Reset => {
                self.fail(Error::Reset);
                return;
            }
            PacketType::Syn => {
                // Our answer to it was lost.
                if h.seq_nr == self.ack_nr && self.in_flight.is_empty() {
                    self.need_ack = true;
                }
                return;
            }
            _ => {}
        }
        if self.state == State::SynSent {
            // The answer to our SYN acknowledges it; its sequence number
            // is the one the peer's first data packet takes. (Data cannot
            // come first: a peer sends none until it hears from us.)
            if h.kind != PacketType::State || h.ack_nr != self.seq_nr.wrapping_sub(1) {
                return;
            }
            self.ack_nr = h.seq_nr.wrapping_sub(1);
            self.last_ack = h.ack_nr;
            self.state = State::Connected;
            if let Some(largest) = packet.largest_datagram {
                self.peer_takes(largest);
            }
        }
        if self.state == State::SynReceived {
            self.state = State::Connected;
        }
        self.reply_micro = self.timestamp(now).wrapping_sub(h.timestamp_us);
        self.peer_window = h.window;
        self.on_ack(now, packet);
        if matches!(h.kind, PacketType::Data | PacketType::Fin) {
            self.on_data(h.kind, h.seq_nr, &packet.payload);
        }
        self.check_closed();
    }

    /// When [`handle_timeout`](Connection::handle_timeout) is due next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.state == State::Closed {
            return None;
        }
        self.rto_at
    }

    /// Runs the timers due at `now`: a packet unanswered for the
    /// retransmission timeout is sent again (and the window starts over
    /// from one packet), or the connection gives up.
    pub fn handle_timeout(&mut self, now: Instant) {
        let Some(at) = self.rto_at else {
            return;
        };
        if now < at || self.state == State::Closed {
            return;
        }
        self.rto_at = None;
        let limit = if self.state == State::SynSent {
            self.config.max_syn_transmissions
        } else {
            self.config.max_transmissions
        };
        let oldest = self.in_flight.iter().position(|s| !s.acked);
        let unacked = self.in_flight.iter().filter(|s| !s.acked).count();
        match oldest.map(|i| (i, &self.in_flight[i])) {
            Some((_, s)) if s.transmissions >= limit => self.fail(Error::TimedOut),
            // The path MTU probe, alone unanswered: too large for the path,
            // not congestion. It goes again within the packet size known.
            Some((i, s)) if unacked == 1 && self.mtu_probe.is_some_and(|(p, _)| p == s.seq) => {
                self.lose(i, false);
            }
            Some(_) => {
                self.stats.timeouts += 1;
                self.rtt.on_timeout();
                self.ledbat.on_timeout();
                self.duplicate_acks = 0;
                for i in 0..self.in_flight.len() {
                    self.lose(i, false);
                    self.in_flight[i].fast_resent = false;
                }
                self.recovery = Some(self.seq_nr);
            }
            None => {}
        }
    }

    /// The next datagram to send, if any: a packet to send again, new
    /// data within the windows, or an acknowledgement.
    pub fn poll_transmit(&mut self, now: Instant) -> Option<Transmit> {
        if self.send_reset {
            self.send_reset = false;
            let header = self.header(now, PacketType::Reset, self.seq_nr);
            return Some(Transmit {
                datagram: encode(&header, None, None, &[]),
                dont_fragment: false,
            });
        }
        if self.state == State::Closed {
            return self.need_ack.then(|| self.ack(now));
        }
        if let Some(i) = self.in_flight.iter().position(|s| s.pending) {
            if self.fits(self.in_flight[i].size()) {
                return Some(self.send(now, i));
            }
        } else if self.state == State::Connected
            && let Some(t) = self.send_new(now)
        {
            return Some(t);
        }
        self.need_ack.then(|| self.ack(now))
    }

    /// Whether a packet of `size` bytes may go now.
    fn fits(&self, size: u32) -> bool {
        if self.flight_bytes == 0 {
            // One packet may always go, or nothing ever would: with the
            // peer's window shut it is the probe that learns it reopened
            // (resent at the timeout if the peer had no room for it).
            return true;
        }
        let window = self.ledbat.window().min(self.peer_window);
        self.flight_bytes + size <= window
    }

    /// Makes and sends a new packet from what was written (or the FIN).
    fn send_new(&mut self, now: Instant) -> Option<Transmit> {
        if self.in_flight.len() >= MAX_IN_FLIGHT {
            return None;
        }
        if self.unsent.is_empty() {
            if self.write_closed && !self.fin_sent && self.fits(HEADER_LEN as u32) {
                self.fin_sent = true;
                self.push(now, PacketType::Fin, Vec::new());
                return Some(self.send(now, self.in_flight.len() - 1));
            }
            return None;
        }
        let room = usize::from(self.mtu_floor) - HEADER_LEN - SACK_ROOM;
        let mut len = self.unsent.len().min(room);
        let mut probe = None;
        if self.mtu_probe.is_none()
            && self.mtu_ceiling.saturating_sub(self.mtu_floor) > MTU_PRECISION
        {
            // The datagram as large as the size tried: the selective ACK
            // it will carry counts.
            let size = self.mtu_floor + (self.mtu_ceiling - self.mtu_floor) / 2;
            let sack = self.selective_ack().map_or(0, |s| 2 + s.mask().len());
            let probe_len = usize::from(size) - HEADER_LEN - sack;
            // Not larger than the window, not to go as the one packet that
            // may always go: a probe lost alone is found only at the
            // timeout.
            let window = self.ledbat.window().min(self.peer_window);
            if self.unsent.len() >= probe_len && u32::from(size) <= window {
                len = probe_len;
                probe = Some(size);
            }
        }
        if !self.fits((HEADER_LEN + len) as u32) {
            return None;
        }
        let mut payload = Vec::with_capacity(len);
        let (front, back) = self.unsent.as_slices();
        let from_front = front.len().min(len);
        payload.extend_from_slice(&front[..from_front]);
        payload.extend_from_slice(&back[..len - from_front]);
        self.unsent.drain(..len);
        if let Some(size) = probe {
            self.mtu_probe = Some((self.seq_nr, size));
        }
        self.push(now, PacketType::Data, payload);
        Some(self.send(now, self.in_flight.len() - 1))
    }

    /// Adds a packet to the queue in flight, to be sent.
    fn push(&mut self, now: Instant, kind: PacketType, payload: Vec<u8>) {
        self.in_flight_payload += payload.len();
        self.in_flight.push_back(Sent {
            seq: self.seq_nr,
            kind,
            payload,
            sent_at: now,
            transmissions: 0,
            acked: false,
            pending: true,
            fast_resent: false,
        });
        self.seq_nr = self.seq_nr.wrapping_add(1);
    }

    /// Sends the packet at `i` in flight.
    fn send(&mut self, now: Instant, i: usize) -> Transmit {
        let sack = self.selective_ack();
        let mut header = self.header(now, self.in_flight[i].kind, self.in_flight[i].seq);
        let mut announce = None;
        if header.kind == PacketType::Syn {
            header.connection_id = self.recv_id;
            announce = self.announcement();
        }
        let sent = &mut self.in_flight[i];
        sent.pending = false;
        sent.sent_at = now;
        sent.transmissions += 1;
        self.stats.packets_sent += 1;
        if sent.transmissions > 1 {
            self.stats.packets_resent += 1;
        }
        let size = sent.size();
        let datagram = encode(&header, sack.as_ref(), announce, &sent.payload);
        let mut dont_fragment = false;
        if let Some((seq, size)) = &mut self.mtu_probe
            && *seq == sent.seq
            && sent.transmissions == 1
        {
            // What the probe tests is the datagram as sent.
            *size = datagram.len() as u16;
            dont_fragment = true;
        }
        self.flight_bytes += size;
        self.need_ack = false;
        if self.rto_at.is_none() {
            self.rto_at = Some(now + self.rtt.timeout());
        }
        Transmit {
            datagram,
            dont_fragment,
        }
    }

    /// A bare acknowledgement.
    fn ack(&mut self, now: Instant) -> Transmit {
        self.need_ack = false;
        let sack = self.selective_ack();
        let header = self.header(now, PacketType::State, self.seq_nr);
        // The answer to a SYN that announced it takes large datagrams
        // says whether we do.
        let announce = (self.state == State::SynReceived
            && self.mtu_ceiling > UNANNOUNCED_DATAGRAM)
            .then(|| self.announcement())
            .flatten();
        Transmit {
            datagram: encode(&header, sack.as_ref(), announce, &[]),
            dont_fragment: false,
        }
    }

    fn header(&mut self, now: Instant, kind: PacketType, seq_nr: u16) -> Header {
        self.advertised = self.receive_window();
        Header {
            kind,
            connection_id: self.send_id,
            timestamp_us: self.timestamp(now),
            timestamp_difference_us: self.reply_micro,
            window: self.advertised,
            seq_nr,
            ack_nr: self.ack_nr,
        }
    }

    fn selective_ack(&self) -> Option<SelectiveAck> {
        (!self.out_of_order.is_empty())
            .then(|| SelectiveAck::new(self.ack_nr, self.out_of_order.keys().copied()))
    }

    /// Our clock for timestamps: microseconds, wrapping.
    fn timestamp(&self, now: Instant) -> u32 {
        now.saturating_duration_since(self.epoch).as_micros() as u32
    }

    fn receive_window(&self) -> u32 {
        let held = (self.readable_bytes + self.out_of_order_bytes) as u32;
        self.config.receive_buffer.saturating_sub(held)
    }

    /// The acknowledgement a packet carries: cumulative, selective, and
    /// what the duplicates among them mean.
    fn on_ack(&mut self, now: Instant, packet: &Packet) {
        let h = &packet.header;
        let Some(first) = self.in_flight.front().map(|s| s.seq) else {
            self.last_ack = h.ack_nr;
            return;
        };
        let count = usize::from(h.ack_nr.wrapping_sub(first).wrapping_add(1));
        if count > self.in_flight.len() {
            // Older than what is acknowledged already, or for packets
            // never sent: nothing to learn.
            return;
        }
        let mut acked_bytes = 0;
        let mut sample = None;
        for _ in 0..count {
            let Some(s) = self.in_flight.pop_front() else {
                break;
            };
            self.in_flight_payload -= s.payload.len();
            if !s.acked {
                acked_bytes += s.size();
                self.acknowledged(Acked::of(&s, now), &mut sample);
            }
        }
        let mut newly_sacked = 0;
        if let Some(sack) = &packet.selective_ack
            && let Some(first) = self.in_flight.front().map(|s| s.seq)
        {
            for seq in sack.acked(h.ack_nr) {
                let i = usize::from(seq.wrapping_sub(first));
                let Some(s) = self.in_flight.get_mut(i) else {
                    continue;
                };
                if s.acked || s.transmissions == 0 {
                    continue;
                }
                let acked = Acked::of(s, now);
                s.acked = true;
                s.pending = false;
                acked_bytes += acked.size;
                newly_sacked += 1;
                self.acknowledged(acked, &mut sample);
            }
        }
        if count == 0 && newly_sacked == 0 {
            if h.kind == PacketType::State
                && h.ack_nr == self.last_ack
                && !self.in_flight.is_empty()
            {
                self.duplicate_acks += 1;
                if self.duplicate_acks == DUPLICATE_ACKS && !self.in_flight[0].fast_resent {
                    self.in_flight[0].fast_resent = true;
                    self.lose(0, true);
                }
            }
        } else {
            self.duplicate_acks = 0;
        }
        self.last_ack = h.ack_nr;
        if packet.selective_ack.is_some() {
            self.sack_losses();
        }
        if let Some(rtt) = sample {
            self.rtt.on_sample(rtt);
        }
        if acked_bytes > 0 {
            // Zero: the peer has no measurement to give (yet).
            let delay = (h.timestamp_difference_us != 0).then_some(h.timestamp_difference_us);
            self.ledbat.on_ack(now, delay, acked_bytes);
            // Progress: the timer restarts for what is still in flight.
            self.rto_at = self
                .in_flight
                .iter()
                .any(|s| !s.acked && !s.pending)
                .then(|| now + self.rtt.timeout());
        }
    }

    /// A packet acknowledged, cumulatively or selectively: out of the
    /// window, its round trip the latest sample.
    fn acknowledged(&mut self, acked: Acked, sample: &mut Option<Duration>) {
        if !acked.pending {
            self.flight_bytes -= acked.size;
        }
        if acked.rtt.is_some() {
            *sample = acked.rtt;
        }
        self.probe_done(acked.seq, true);
    }

    /// Packets with [`DUPLICATE_ACKS`] or more packets acknowledged past
    /// them were lost.
    fn sack_losses(&mut self) {
        let mut acked_after = 0;
        for i in (0..self.in_flight.len()).rev() {
            let s = &self.in_flight[i];
            if s.acked {
                acked_after += 1;
            } else if acked_after >= DUPLICATE_ACKS && !s.pending && !s.fast_resent {
                self.in_flight[i].fast_resent = true;
                self.lose(i, true);
            }
        }
    }

    /// Marks the packet at `i` lost, to be sent again. A loss (not a
    /// timeout, which has its own reaction) of a packet sent after the
    /// last loss event halves the window.
    fn lose(&mut self, i: usize, congestion: bool) {
        let s = &mut self.in_flight[i];
        if s.acked || s.pending {
            return;
        }
        s.pending = true;
        let (seq, size) = (s.seq, s.size());
        self.flight_bytes -= size;
        let probe = self.mtu_probe.is_some_and(|(p, _)| p == seq);
        if probe {
            // Too large for the path (most likely): not congestion.
            self.probe_done(seq, false);
            return;
        }
        let new_event = self.recovery.is_none_or(|r| !before(seq, r));
        if congestion && new_event {
            self.stats.losses += 1;
            self.ledbat.on_loss();
            self.recovery = Some(self.seq_nr);
        }
    }

    /// The path MTU probe at `seq`, if it is one, got through or not.
    fn probe_done(&mut self, seq: u16, delivered: bool) {
        if let Some((probe, size)) = self.mtu_probe
            && probe == seq
        {
            self.mtu_probe = None;
            if delivered {
                self.mtu_floor = self.mtu_floor.max(size);
            } else {
                self.mtu_ceiling = (size - 1).max(self.mtu_floor);
            }
        }
    }

    /// A data packet (or the FIN) arrived.
    fn on_data(&mut self, kind: PacketType, seq: u16, payload: &[u8]) {
        self.need_ack = true;
        let ahead = seq.wrapping_sub(self.ack_nr);
        if ahead == 0 || ahead > MAX_REORDER {
            // Had it already (or hopelessly far ahead): the ack tells.
            return;
        }
        if self.fin_seq.is_some_and(|fin| before(fin, seq)) {
            return;
        }
        let held = self.readable_bytes + self.out_of_order_bytes;
        if held + payload.len() > self.config.receive_buffer as usize {
            // Past the window we advertised: dropped, sent again later.
            return;
        }
        if ahead > 1 {
            if self
                .out_of_order
                .insert(seq, (kind, payload.to_vec()))
                .is_none()
            {
                self.out_of_order_bytes += payload.len();
            }
            return;
        }
        self.deliver(kind, seq, payload.to_vec());
        while let Some((kind, payload)) = self.out_of_order.remove(&self.ack_nr.wrapping_add(1)) {
            self.out_of_order_bytes -= payload.len();
            self.deliver(kind, self.ack_nr.wrapping_add(1), payload);
        }
    }

    fn deliver(&mut self, kind: PacketType, seq: u16, payload: Vec<u8>) {
        self.ack_nr = seq;
        if kind == PacketType::Fin {
            self.fin_seq = Some(seq);
            // Nothing past the FIN counts.
            self.out_of_order_bytes = 0;
            self.out_of_order.clear();
        }
        if !payload.is_empty() {
            self.readable_bytes += payload.len();
            self.readable.push_back(payload);
        }
    }

    /// Both sides closed and each FIN was acknowledged.
    fn check_closed(&mut self) {
        let ours_done = self.fin_sent && self.in_flight.is_empty();
        let theirs_done = self.fin_seq.is_some_and(|fin| fin == self.ack_nr);
        if ours_done && theirs_done {
            self.state = State::Closed;
            self.rto_at = None;
        }
    }

    fn fail(&mut self, error: Error) {
        // A reset once both streams ended (the peer gave up waiting for
        // our last ack) loses nothing.
        let graceful = self.fin_sent
            && self.in_flight.iter().all(|s| s.kind == PacketType::Fin)
            && self.fin_seq.is_some_and(|fin| fin == self.ack_nr);
        if !graceful || error == Error::Aborted {
            self.error = Some(error);
        }
        self.state = State::Closed;
        self.need_ack = false;
        self.rto_at = None;
        self.unsent.clear();
    }
}

/// The reset (a datagram) that answers a packet for no connection we
/// know, so that its sender gives up at once.
pub fn reset_for(h: &Header) -> Vec<u8> {
    let header = Header {
        kind: PacketType::Reset,
        connection_id: if h.kind == PacketType::Syn {
            h.connection_id
        } else {
            // The peer's packets carry our id; ours to it carry its.
            h.connection_id.wrapping_sub(1)
        },
        timestamp_us: 0,
        timestamp_difference_us: 0,
        window: 0,
        seq_nr: 0,
        ack_nr: h.seq_nr,
    };
    encode(&header, None, None, &[])
}

/// What an acknowledgement of a packet changes.
#[derive(Clone, Copy)]
struct Acked {
    seq: u16,
    size: u32,
    /// Waiting to be resent: not counted in the window.
    pending: bool,
    /// The round trip it measures, if the packet was sent once (a resent
    /// packet's ack could answer either copy).
    rtt: Option<Duration>,
}

impl Acked {
    fn of(s: &Sent, now: Instant) -> Acked {
        Acked {
            seq: s.seq,
            size: s.size(),
            pending: s.pending,
            rtt: (s.transmissions == 1 && !s.pending)
                .then(|| now.saturating_duration_since(s.sent_at)),
        }
    }
}

/// Whether sequence number `a` comes before `b`, with wrap-around.
fn before(a: u16, b: u16) -> bool {
    (a.wrapping_sub(b) as i16) < 0
}

#[cfg(test)]
mod tests;
