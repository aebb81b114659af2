//! Where a connection is made: dial or accept, over TCP or uTP as the
//! session's [`Transport`] says, Message Stream Encryption (MSE/PE) or
//! plaintext as its [`Encryption`] policy says, and the BitTorrent
//! handshake. What comes out is a [`Wire`]: the two halves
//! of the connection, ciphered or not, that everything above reads and
//! writes without knowing which.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::Duration;

use metainfo::InfoHash;
use mse::{Method, Methods};
use peerwire::extension::ExtensionHandshake;
use peerwire::{HANDSHAKE_LEN, Handshake};

use crate::DropReason;
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _, ReadBuf};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};

/// Which transports peers are dialled and accepted over.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Transport {
    /// uTP first (what libtorrent, qBittorrent and Transmission prefer,
    /// and what gives way to other traffic on a shared line), TCP when a
    /// peer does not answer over uTP; both accepted.
    #[default]
    Both,
    /// TCP only.
    Tcp,
    /// uTP only.
    Utp,
}

/// A connection to a peer, over either transport.
#[derive(Debug)]
pub(crate) enum PeerStream {
    Tcp(TcpStream),
    Utp(utp::Stream),
}

/// The reading half of a [`PeerStream`].
#[derive(Debug)]
pub(crate) enum StreamRead {
    Tcp(OwnedReadHalf),
    Utp(utp::ReadHalf),
}

/// The writing half of a [`PeerStream`].
#[derive(Debug)]
pub(crate) enum StreamWrite {
    Tcp(OwnedWriteHalf),
    Utp(utp::WriteHalf),
}

impl PeerStream {
    fn into_split(self) -> (StreamRead, StreamWrite) {
        match self {
            PeerStream::Tcp(s) => {
                let (r, w) = s.into_split();
                (StreamRead::Tcp(r), StreamWrite::Tcp(w))
            }
            PeerStream::Utp(s) => {
                let (r, w) = s.into_split();
                (StreamRead::Utp(r), StreamWrite::Utp(w))
            }
        }
    }
}

macro_rules! delegate_read {
    ($t:ident) => {
        impl AsyncRead for $t {
            fn poll_read(
                self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                buf: &mut ReadBuf<'_>,
            ) -> Poll<std::io::Result<()>> {
                match self.get_mut() {
                    $t::Tcp(s) => Pin::new(s).poll_read(cx, buf),
                    $t::Utp(s) => Pin::new(s).poll_read(cx, buf),
                }
            }
        }
    };
}

macro_rules! delegate_write {
    ($t:ident) => {
        impl AsyncWrite for $t {
            fn poll_write(
                self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                data: &[u8],
            ) -> Poll<std::io::Result<usize>> {
                match self.get_mut() {
                    $t::Tcp(s) => Pin::new(s).poll_write(cx, data),
                    $t::Utp(s) => Pin::new(s).poll_write(cx, data),
                }
            }

            fn poll_write_vectored(
                self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                bufs: &[std::io::IoSlice<'_>],
            ) -> Poll<std::io::Result<usize>> {
                match self.get_mut() {
                    $t::Tcp(s) => Pin::new(s).poll_write_vectored(cx, bufs),
                    $t::Utp(s) => Pin::new(s).poll_write_vectored(cx, bufs),
                }
            }

            fn is_write_vectored(&self) -> bool {
                match self {
                    $t::Tcp(s) => s.is_write_vectored(),
                    $t::Utp(s) => s.is_write_vectored(),
                }
            }

            fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
                match self.get_mut() {
                    $t::Tcp(s) => Pin::new(s).poll_flush(cx),
                    $t::Utp(s) => Pin::new(s).poll_flush(cx),
                }
            }

            fn poll_shutdown(
                self: Pin<&mut Self>,
                cx: &mut Context<'_>,
            ) -> Poll<std::io::Result<()>> {
                match self.get_mut() {
                    $t::Tcp(s) => Pin::new(s).poll_shutdown(cx),
                    $t::Utp(s) => Pin::new(s).poll_shutdown(cx),
                }
            }
        }
    };
}

delegate_read!(PeerStream);
delegate_read!(StreamRead);
delegate_write!(PeerStream);
delegate_write!(StreamWrite);

/// Which connections are encrypted (MSE/PE), as Transmission and
/// libtorrent let their users choose.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Encryption {
    /// Plaintext only: MSE is never offered, and an MSE handshake from a
    /// peer is refused.
    Off,
    /// Plaintext first; MSE when a peer refuses plaintext. MSE from peers
    /// is taken, as with `Prefer`.
    Allow,
    /// MSE first, plaintext once when a peer does not speak MSE; plaintext
    /// handshakes from peers are taken. MSE offers RC4 and plaintext
    /// payload and, offered both, takes plaintext: the handshake is
    /// obfuscated, and the payload ciphered only for a peer that insists
    /// (libtorrent's default choice too). RC4 costs a core about 4 ns a
    /// byte, which is most of what a fast link leaves.
    #[default]
    Prefer,
    /// MSE with RC4 only, both ways: not a plaintext byte is sent or
    /// taken.
    Require,
}

impl Encryption {
    /// What an MSE initiator offers.
    fn provide(self) -> Methods {
        match self {
            Encryption::Require => Methods::RC4,
            _ => Methods::BOTH,
        }
    }

    /// What an MSE responder takes, and which it picks when offered both.
    fn accept(self) -> (Methods, Method) {
        match self {
            Encryption::Require => (Methods::RC4, Method::Rc4),
            _ => (Methods::BOTH, Method::Plaintext),
        }
    }
}

/// The read half of a peer connection, deciphering if the connection is
/// encrypted.
pub(crate) type WireRead = mse::Reader<StreamRead>;
/// The write half of a peer connection, ciphering if the connection is
/// encrypted.
pub(crate) type WireWrite = mse::Writer<StreamWrite>;

/// A connection past its handshakes.
#[derive(Debug)]
pub(crate) struct Wire {
    pub(crate) read: WireRead,
    pub(crate) write: WireWrite,
    /// Whether the payload is ciphered (RC4).
    pub(crate) encrypted: bool,
    /// Whether it runs over uTP (else TCP).
    pub(crate) utp: bool,
}

impl Wire {
    fn plain(stream: PeerStream, first: Vec<u8>) -> Wire {
        let utp = matches!(stream, PeerStream::Utp(_));
        let (read, write) = stream.into_split();
        Wire {
            read: mse::Reader::plain(read, first),
            write: mse::Writer::new(write, None),
            encrypted: false,
            utp,
        }
    }

    fn from_mse(stream: PeerStream, mut done: mse::Established) -> Wire {
        let utp = matches!(stream, PeerStream::Utp(_));
        let (read, write) = stream.into_split();
        let mut first = std::mem::take(&mut done.initial_payload);
        first.append(&mut done.rest);
        Wire {
            utp,
            encrypted: done.method == Method::Rc4,
            read: mse::Reader::new(read, done.decrypt, first),
            write: mse::Writer::new(write, done.encrypt),
        }
    }

    /// Reads the peer's BitTorrent handshake.
    async fn read_handshake(&mut self) -> std::io::Result<[u8; HANDSHAKE_LEN]> {
        let mut buf = [0u8; HANDSHAKE_LEN];
        self.read.read_exact(&mut buf).await?;
        Ok(buf)
    }
}

/// How the session reaches peers: its uTP sockets, the transports it
/// may use, and what each address took when last dialled (uTP or TCP, MSE
/// or plaintext), so that the next dial tries that first. The memory is
/// bounded: forgotten whole when full.
#[derive(Debug, Default)]
pub(crate) struct Dialer {
    memory: Mutex<HashMap<SocketAddr, Took>>,
    /// uTP sockets: one per address family.
    pub(crate) utp: Vec<utp::Socket>,
    pub(crate) transport: Transport,
}

/// What an address took.
#[derive(Clone, Copy, Debug, Default)]
struct Took {
    mse: Option<bool>,
    utp: Option<bool>,
}

/// Addresses remembered at most.
const MEMORY: usize = 16_384;

/// How long a uTP dial waits before TCP is tried instead: two SYNs.
const UTP_FIRST: Duration = Duration::from_secs(3);

impl Dialer {
    pub(crate) fn new(utp: Vec<utp::Socket>, transport: Transport) -> Dialer {
        Dialer {
            memory: Mutex::default(),
            utp,
            transport,
        }
    }

    fn took(&self, addr: SocketAddr) -> Took {
        self.memory
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&addr)
            .copied()
            .unwrap_or_default()
    }

    fn remember(&self, addr: SocketAddr, f: impl FnOnce(&mut Took)) {
        let mut map = self.memory.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() >= MEMORY {
            map.clear();
        }
        f(map.entry(addr).or_default());
    }

    /// The uTP socket for `addr`'s family, if the transport allows uTP.
    fn utp_for(&self, addr: SocketAddr) -> Option<&utp::Socket> {
        if self.transport == Transport::Tcp {
            return None;
        }
        self.utp
            .iter()
            .find(|s| s.local_addr().is_ipv4() == addr.is_ipv4())
    }

    /// The transports to try for `addr`, in order (`true` for uTP).
    fn order(&self, addr: SocketAddr) -> Vec<bool> {
        let utp = self.utp_for(addr).is_some();
        match self.transport {
            Transport::Tcp => vec![false],
            Transport::Utp => vec![true],
            Transport::Both if !utp => vec![false],
            Transport::Both => match self.took(addr).utp {
                Some(false) => vec![false, true],
                _ => vec![true, false],
            },
        }
    }
}

/// How to reach a peer.
pub(crate) struct Dial<'a> {
    pub(crate) addr: SocketAddr,
    /// The address our dials come from (see [`crate::peer::dial`]).
    pub(crate) local: Option<std::net::IpAddr>,
    pub(crate) ours: &'a Handshake,
    pub(crate) policy: Encryption,
    pub(crate) memory: &'a Dialer,
    pub(crate) connect_timeout: Duration,
    /// For MSE and the BitTorrent handshake together, each try.
    pub(crate) handshake_timeout: Duration,
}

/// Dials a peer and makes both handshakes: over uTP or TCP as the
/// transport says (the other once, where it allows, if the first does not
/// connect), MSE or plaintext as the policy says, trying the other way
/// once where the policy allows. Returns the wire and the peer's handshake
/// (checked to be for our torrent).
pub(crate) async fn dial(how: Dial<'_>) -> Result<(Wire, Handshake), DropReason> {
    let order = how.memory.order(how.addr);
    let mut failed: Option<DropReason> = None;
    for (i, &utp) in order.iter().enumerate() {
        let last = i + 1 == order.len();
        match dial_over(&how, utp, !last).await {
            Ok(done) => {
                if order.len() > 1 {
                    how.memory.remember(how.addr, |t| t.utp = Some(utp));
                }
                return Ok(done);
            }
            // Not reachable this way: the other, if there is one.
            Err(DropReason::Connect(why)) if !last => {
                failed = Some(DropReason::Connect(format!(
                    "over {}: {why}",
                    if utp { "uTP" } else { "TCP" }
                )));
            }
            Err(reason) => {
                return Err(match (failed, reason) {
                    (Some(DropReason::Connect(first)), DropReason::Connect(then)) => {
                        DropReason::Connect(format!("{first}; then {then}"))
                    }
                    (_, reason) => reason,
                });
            }
        }
    }
    Err(failed.unwrap_or_else(|| DropReason::Connect("no transport to dial with".into())))
}

/// [`dial`] over one transport; `hurry` if another may be tried after.
async fn dial_over(
    how: &Dial<'_>,
    utp: bool,
    hurry: bool,
) -> Result<(Wire, Handshake), DropReason> {
    let took = how.memory.took(how.addr);
    let mse_first = match how.policy {
        Encryption::Off => false,
        Encryption::Require => true,
        Encryption::Prefer => took.mse.unwrap_or(true),
        Encryption::Allow => took.mse.unwrap_or(false),
    };
    let may_switch = matches!(how.policy, Encryption::Prefer | Encryption::Allow);
    match try_dial(how, utp, hurry, mse_first).await {
        Ok(done) => {
            if may_switch {
                how.memory.remember(how.addr, |t| t.mse = Some(mse_first));
            }
            Ok(done)
        }
        Err(Failure::Refused(first)) if may_switch => {
            match try_dial(how, utp, hurry, !mse_first).await {
                Ok(done) => {
                    how.memory.remember(how.addr, |t| t.mse = Some(!mse_first));
                    Ok(done)
                }
                Err(again) => Err(again.into_reason(Some(&first))),
            }
        }
        Err(failure) => Err(failure.into_reason(None)),
    }
}

/// Opens the transport connection.
async fn open(how: &Dial<'_>, utp: bool, hurry: bool) -> Result<PeerStream, Failure> {
    if utp {
        let socket = how
            .memory
            .utp_for(how.addr)
            .ok_or_else(|| Failure::Connect("no uTP socket for this address".into()))?;
        let timeout = if hurry {
            how.connect_timeout.min(UTP_FIRST)
        } else {
            how.connect_timeout
        };
        let stream = tokio::time::timeout(timeout, socket.connect(how.addr))
            .await
            .map_err(|_| Failure::Connect("connect timed out".into()))?
            .map_err(|e| Failure::Connect(format!("connect failed: {e}")))?;
        return Ok(PeerStream::Utp(stream));
    }
    let stream = tokio::time::timeout(how.connect_timeout, crate::peer::dial(how.addr, how.local))
        .await
        .map_err(|_| Failure::Connect("connect timed out".into()))?
        .map_err(|e| Failure::Connect(format!("connect failed: {e}")))?;
    crate::peer::tune(&stream);
    Ok(PeerStream::Tcp(stream))
}

/// Why a try failed: the peer may not speak this way (another way may
/// work), or nothing will; a failed dial is a [`DropReason::Connect`].
enum Failure {
    Connect(String),
    Refused(String),
    Final(String),
}

impl Failure {
    /// The reason, after `first` (an earlier try's) if there was one.
    fn into_reason(self, first: Option<&str>) -> DropReason {
        let (text, connect) = match self {
            Failure::Connect(r) => (r, true),
            Failure::Refused(r) | Failure::Final(r) => (r, false),
        };
        let text = match first {
            Some(first) => format!("{first}; then {text}"),
            None => text,
        };
        if connect {
            DropReason::Connect(text)
        } else {
            DropReason::Handshake(text)
        }
    }
}

async fn try_dial(
    how: &Dial<'_>,
    utp: bool,
    hurry: bool,
    use_mse: bool,
) -> Result<(Wire, Handshake), Failure> {
    let mut stream = open(how, utp, hurry).await?;
    let info_hash = how.ours.info_hash;
    let ours = how.ours.encode().to_vec();
    let handshakes = async {
        let mut wire = if use_mse {
            let done = mse::initiate(&mut stream, info_hash.0, how.policy.provide(), ours)
                .await
                .map_err(|e| Failure::Refused(format!("MSE handshake failed: {e}")))?;
            Wire::from_mse(stream, done)
        } else {
            stream
                .write_all(&ours)
                .await
                .map_err(|e| Failure::Refused(format!("handshake failed: {e}")))?;
            Wire::plain(stream, Vec::new())
        };
        let theirs = wire.read_handshake().await.map_err(|e| {
            let reason = format!("handshake failed: {e}");
            // A peer that takes only MSE closes on a plaintext handshake.
            if use_mse {
                Failure::Final(reason)
            } else {
                Failure::Refused(reason)
            }
        })?;
        let handshake = Handshake::decode_for(&theirs, info_hash)
            .map_err(|e| Failure::Final(format!("bad handshake: {e}")))?;
        Ok((wire, handshake))
    };
    match tokio::time::timeout(how.handshake_timeout, handshakes).await {
        Ok(result) => result,
        Err(_) => Err(Failure::Refused(
            if use_mse {
                "MSE handshake timed out"
            } else {
                "handshake timed out"
            }
            .into(),
        )),
    }
}

/// Our extension handshake (BEP 10), for a torrent's connections and the
/// metadata fetcher's alike: `ut_metadata` always (with `metadata_size`
/// when we have the info dictionary to serve), `ut_pex` if `pex`, and, on a
/// torrent's connection (`listen` given), the port we listen on (a peer
/// that we dialled can then name us in its peer exchange) and how many
/// requests we queue (`reqq`).
pub(crate) fn extension_handshake(
    listen: Option<u16>,
    metadata_size: Option<u32>,
    pex: bool,
) -> ExtensionHandshake {
    let mut ours = ExtensionHandshake {
        v: Some(concat!("btc ", env!("CARGO_PKG_VERSION")).to_string()),
        reqq: listen.map(|_| crate::peer::MAX_SERVE_QUEUE as u32),
        p: listen,
        metadata_size,
        ..ExtensionHandshake::default()
    };
    ours.m
        .insert("ut_metadata".into(), crate::metadata::UT_METADATA_ID);
    if pex {
        ours.m.insert("ut_pex".into(), crate::torrent::UT_PEX_ID);
    }
    ours
}

/// Bytes read to tell a plaintext handshake from an MSE one.
const SNIFF: usize = 20;

/// Takes an incoming connection through its first handshake: the peer's
/// BitTorrent handshake read, in plaintext or inside MSE as the policy
/// allows; `torrents` gives the info-hashes an MSE peer may ask for (asked
/// only for MSE). Ours is not sent: that is for whoever takes the
/// connection, once it knows the torrent has room.
pub(crate) async fn accept(
    mut stream: PeerStream,
    policy: Encryption,
    torrents: impl FnOnce() -> Vec<InfoHash>,
) -> Result<(Wire, Handshake), String> {
    let mut first = [0u8; SNIFF];
    stream
        .read_exact(&mut first)
        .await
        .map_err(|e| format!("closed before a handshake: {e}"))?;
    let mut skey = None;
    let mut wire = if mse::is_plaintext_handshake(&first) {
        if policy == Encryption::Require {
            return Err("a plaintext handshake, and encryption is required".into());
        }
        Wire::plain(stream, first.to_vec())
    } else {
        if policy == Encryption::Off {
            return Err("not a BitTorrent handshake (MSE, and encryption is off)".into());
        }
        let hashes: Vec<([u8; 20], [u8; 20])> =
            torrents().iter().map(|h| (mse::req2(&h.0), h.0)).collect();
        let skeys = |req2: &[u8; 20]| hashes.iter().find(|(r, _)| r == req2).map(|(_, h)| *h);
        let (accept, prefer) = policy.accept();
        let done = mse::respond(&mut stream, &first, accept, prefer, &skeys)
            .await
            .map_err(|e| format!("MSE handshake failed: {e}"))?;
        skey = Some(InfoHash(done.skey));
        Wire::from_mse(stream, done)
    };
    let theirs = wire
        .read_handshake()
        .await
        .map_err(|e| format!("handshake failed: {e}"))?;
    let handshake = match skey {
        // The torrent MSE asked for, and no other.
        Some(skey) => Handshake::decode_for(&theirs, skey),
        None => Handshake::decode(&theirs),
    }
    .map_err(|e| format!("bad handshake: {e}"))?;
    Ok((wire, handshake))
}
