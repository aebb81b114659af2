//! uTP on paths loopback lacks: a distant, lossy one (through the relay
//! of `testnet::relay`), and a bottleneck shared with TCP (a `tbf` rate
//! limit on the loopback of a private network namespace, as root).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use engine::{SessionConfig, Transport};
use testnet::Content;
use testnet::real::{Libtorrent, LtNetwork};
use testnet::relay::{Conditions, Relay};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::clients;

fn host(i: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(127, 0, 6, i))
}

/// btc over uTP alone through 25 ms each way (50 ms round trips), up to
/// 10 ms of jitter (which reorders) and 1% loss each way: byte-exact, and
/// every byte went through the relay.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn btc_over_utp_through_a_lossy_distant_path_is_byte_exact() {
    let content =
        Content::generate("multi", &[3 << 20, 700_001, 1], false, 64 * 1024, &[], 121).unwrap();
    let config = |i| SessionConfig {
        transport: Transport::Utp,
        pex: false,
        ..testnet::local_config_at(host(i))
    };
    let (seeder, _) = clients::seeder(&content, config(1)).await;
    let conditions = Conditions {
        delay: Duration::from_millis(25),
        jitter: Duration::from_millis(10),
        loss: 0.01,
    };
    let relay = Relay::start(host(2), seeder.local_addr(), conditions)
        .await
        .unwrap();
    let stats = clients::leech_from(&content, relay.addr(), config(3)).await;
    let (passed, lost) = relay.counts();
    assert!(lost > 0, "the relay lost nothing of {passed} datagrams");
    assert!(
        relay.bytes() >= content.torrent().info().total_length(),
        "the data did not all go through the relay: {} bytes did",
        relay.bytes()
    );
    assert_eq!(stats.utp_peers_ever, 1);
    seeder.shutdown().await;
}

/// libtorrent and btc over uTP alone through a relay that loses 1% each
/// way and reorders, both ways, byte-exact: libtorrent's selective ACKs
/// (as long as their bits need, not the multiple of four bytes BEP 29
/// asks) and its answers to ours come into play.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn btc_and_libtorrent_over_utp_through_a_lossy_path_both_ways() {
    let content =
        Content::generate("multi", &[6 << 20, 300_001], true, 64 * 1024, &[], 122).unwrap();
    let conditions = Conditions {
        delay: Duration::from_millis(5),
        jitter: Duration::from_millis(5),
        loss: 0.01,
    };
    let utp_only = SessionConfig {
        transport: Transport::Utp,
        pex: false,
        ..testnet::local_config_at(host(11))
    };
    let network = LtNetwork {
        ip: host(12),
        transport: Transport::Utp,
        ..LtNetwork::default()
    };
    let lt = clients::libtorrent_seeds(&content, network);
    let relay = Relay::start(host(13), lt.addr(), conditions).await.unwrap();
    let stats = clients::leech_from(&content, relay.addr(), utp_only.clone()).await;
    assert_eq!(stats.utp_peers_ever, stats.peers_ever);
    assert!(relay.counts().1 > 0, "the relay lost nothing");
    drop(lt);

    let (seeder, handle) = clients::seeder(&content, utp_only).await;
    let relay = Relay::start(host(14), seeder.local_addr(), conditions)
        .await
        .unwrap();
    let target = tempfile::tempdir().unwrap();
    let mut lt = Libtorrent::leech_in(
        content.torrent_file(),
        target.path(),
        &[relay.addr()],
        LtNetwork {
            ip: host(15),
            ..network
        },
    )
    .unwrap();
    let status = tokio::task::block_in_place(|| lt.process().wait_exit(Duration::from_secs(90)));
    let status = status.unwrap_or_else(|e| panic!("{e}; the seeder: {:?}", handle.stats()));
    assert!(status.success(), "libtorrent failed: {status}");
    content.verify(target.path()).unwrap();
    assert!(relay.counts().1 > 0, "the relay lost nothing");
    seeder.shutdown().await;
}

/// Set in the copy of the test binary that runs in a network namespace.
const IN_NETNS: &str = "BTC_TEST_IN_NETNS";

/// Runs one test of this binary again in a network namespace of its own
/// (`unshare --net`, which needs root: `.ci/run` runs as root), where it
/// may rate-limit its loopback without touching the machine's.
fn in_netns(test: &str) {
    let exe = std::env::current_exe().unwrap();
    let status = Command::new("unshare")
        .arg("--net")
        .arg(exe)
        .args([test, "--exact", "--nocapture", "--test-threads=1"])
        .env(IN_NETNS, "1")
        .status()
        .unwrap_or_else(|e| panic!("cannot run unshare (util-linux): {e}"));
    assert!(
        status.success(),
        "{test} in a network namespace failed ({status}); it needs root, unshare and tc (iproute2)"
    );
}

fn run(program: &str, args: &[&str]) {
    let status = Command::new(program)
        .args(args)
        .status()
        .unwrap_or_else(|e| panic!("cannot run {program}: {e}"));
    assert!(status.success(), "{program} {args:?}: {status}");
}

/// A UDP echo on loopback, to time round trips through the bottleneck.
struct Echo {
    socket: tokio::net::UdpSocket,
    server: SocketAddr,
}

impl Echo {
    async fn start() -> Echo {
        let server = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let addr = server.local_addr().unwrap();
        tokio::spawn(async move {
            let mut buf = [0u8; 64];
            while let Ok((n, from)) = server.recv_from(&mut buf).await {
                let _ = server.send_to(&buf[..n], from).await;
            }
        });
        let socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        Echo {
            socket,
            server: addr,
        }
    }

    /// The median of ten round trips, 100 ms apart (a lost one counts as
    /// a second).
    async fn round_trip(&self) -> Duration {
        let mut times = Vec::new();
        for i in 0u8..10 {
            let sent = tokio::time::Instant::now();
            self.socket.send_to(&[i], self.server).await.unwrap();
            let mut buf = [0u8; 64];
            let answer = loop {
                let wait = Duration::from_secs(1).saturating_sub(sent.elapsed());
                match tokio::time::timeout(wait, self.socket.recv(&mut buf)).await {
                    Ok(Ok(1)) if buf[0] == i => break sent.elapsed(),
                    Ok(_) => continue,
                    Err(_) => break Duration::from_secs(1),
                }
            };
            times.push(answer);
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        times.sort();
        times[times.len() / 2]
    }
}

/// Bytes a reader has taken so far.
type Counter = Arc<AtomicU64>;

async fn drain(mut from: impl tokio::io::AsyncRead + Unpin, counter: Counter) {
    let mut buf = vec![0u8; 64 * 1024];
    while let Ok(n) = from.read(&mut buf).await {
        if n == 0 {
            break;
        }
        counter.fetch_add(n as u64, Ordering::Relaxed);
    }
}

async fn flood(mut to: impl tokio::io::AsyncWrite + Unpin) {
    let block = vec![0x5a_u8; 64 * 1024];
    while to.write_all(&block).await.is_ok() {}
}

/// LEDBAT yields: over a 20 Mbit/s bottleneck (with a queue of up to
/// 300 ms), a uTP transfer that had the link to itself gives way to a TCP
/// (CUBIC) transfer that joins it, which then gets most of the link; the
/// uTP one goes on.
#[test]
fn utp_yields_to_tcp_on_a_shared_bottleneck() {
    if std::env::var_os(IN_NETNS).is_none() {
        in_netns("paths::utp_yields_to_tcp_on_a_shared_bottleneck");
        return;
    }
    // An Ethernet-sized MTU, as on the paths LEDBAT shares with TCP
    // (loopback's 64 KiB packets would leave LEDBAT a floor of a few of
    // them per round trip).
    run("ip", &["link", "set", "lo", "mtu", "1500", "up"]);
    // The bottleneck is on the way in, not in the senders' own queue,
    // where Linux holds a TCP sender to a couple of packets at a time (TCP
    // small queues) and so starves it behind a standing queue of UDP: what
    // loopback delivers goes through an ifb device rate-limited by tbf.
    run("ip", &["link", "add", "ifb0", "type", "ifb"]);
    run("ip", &["link", "set", "ifb0", "up"]);
    run(
        "tc",
        &["qdisc", "add", "dev", "lo", "handle", "ffff:", "ingress"],
    );
    run(
        "tc",
        &[
            "filter", "add", "dev", "lo", "parent", "ffff:", "protocol", "all", "u32", "match",
            "u32", "0", "0", "action", "mirred", "egress", "redirect", "dev", "ifb0",
        ],
    );
    run(
        "tc",
        &[
            "qdisc", "add", "dev", "ifb0", "root", "tbf", "rate", "20mbit", "burst", "32kb",
            "latency", "300ms",
        ],
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let localhost = SocketAddr::from(([127, 0, 0, 1], 0));
        let echo = Echo::start().await;
        let idle = echo.round_trip().await;
        let utp_bytes = Counter::default();
        let tcp_bytes = Counter::default();

        let server = utp::Socket::bind(localhost, utp::SocketConfig::default())
            .await
            .unwrap();
        let client = utp::Socket::bind(localhost, utp::SocketConfig::default())
            .await
            .unwrap();
        let ten = Duration::from_secs(10);
        // Accepting from the start (a socket refuses SYNs until then); the
        // accepting side hears of a connection once its peer speaks.
        let accepting = tokio::spawn({
            let server = server.clone();
            async move { tokio::time::timeout(ten, server.accept()).await }
        });
        let connecting = tokio::time::timeout(ten, client.connect(server.local_addr()));
        let sending = connecting.await.expect("uTP connects within 10 s").unwrap();
        let utp_sender = tokio::spawn(flood(sending));
        let accepted = accepting.await.unwrap();
        let (receiving, _) = accepted.expect("uTP accepts within 10 s").unwrap();
        tokio::spawn(drain(receiving, utp_bytes.clone()));

        let wait = |seconds| tokio::time::sleep(Duration::from_secs(seconds));
        wait(3).await;
        let alone = utp_bytes.load(Ordering::Relaxed);
        // Every datagram crosses the bottleneck's queue, the echo's both
        // ways: half the round trip it adds is the queueing delay.
        let loaded = echo.round_trip().await;
        println!(
            "uTP alone adds {:.0} ms of queueing delay (an echo's round trip: {:.1} ms idle, \
             {:.1} ms beside uTP)",
            (loaded.as_secs_f64() - idle.as_secs_f64()) * 500.0,
            idle.as_secs_f64() * 1e3,
            loaded.as_secs_f64() * 1e3,
        );

        let listener = tokio::net::TcpListener::bind(localhost).await.unwrap();
        let tcp_addr = listener.local_addr().unwrap();
        let (connected, accepted) = tokio::time::timeout(ten, async {
            tokio::join!(tokio::net::TcpStream::connect(tcp_addr), listener.accept())
        })
        .await
        .expect("TCP connects within 10 s");
        let connected = connected.unwrap();
        // CUBIC, Linux's default, which fills the queue until it loses a
        // packet: this machine's may be BBR, which keeps no queue for
        // LEDBAT to see (and which LEDBAT therefore never yields to).
        socket2::SockRef::from(&connected)
            .set_tcp_congestion(b"cubic")
            .expect("CUBIC is available");
        tokio::spawn(drain(accepted.unwrap().0, tcp_bytes.clone()));
        tokio::spawn(flood(connected));
        // LEDBAT gives way a little each round trip (as BEP 29 and RFC
        // 6817 have it, not at once): TCP has most of the link after ten
        // seconds or so.
        let mut last = (
            utp_bytes.load(Ordering::Relaxed),
            tcp_bytes.load(Ordering::Relaxed),
        );
        let mut shared = last;
        for second in 0..20 {
            wait(1).await;
            let now = (
                utp_bytes.load(Ordering::Relaxed),
                tcp_bytes.load(Ordering::Relaxed),
            );
            println!(
                "{second:2} s with TCP: uTP {:7} B/s, TCP {:7} B/s",
                now.0 - last.0,
                now.1 - last.1
            );
            if second == 11 {
                shared = now;
            }
            last = now;
        }
        let (utp, tcp) = (last.0 - shared.0, last.1 - shared.1);
        let share = tcp as f64 / (tcp + utp).max(1) as f64;
        println!(
            "uTP alone: {alone} bytes in 3 s; from 12 to 20 s with TCP: TCP {tcp}, uTP {utp} \
             (TCP's share {:.0}%)",
            share * 100.0
        );
        assert!(alone > 0, "uTP moved nothing alone");
        assert!(
            share >= 0.75,
            "TCP kept only {:.0}% of the bottleneck",
            share * 100.0
        );
        assert!(
            utp > 0 && !utp_sender.is_finished(),
            "the uTP transfer stopped"
        );
    });
}
