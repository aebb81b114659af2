//! `cargo xtask dhtnet`: a DHT of many nodes on loopback, and what a
//! lookup in it costs, for btc and for libtorrent side by side.
//!
//! Every node has a loopback address of its own (127.20.x.y) and starts
//! from the first one, as nodes of the real network start from a router.
//! A btc seeder announces a torrent in it; then lookups from random nodes
//! are timed and counted, a new btc node joins and looks the torrent up
//! again and again, `btc download` of the torrent's bare magnet link (`xt`
//! alone) is timed to its first peer and to its end, and a new libtorrent
//! node (python3-libtorrent) does the same lookups, once bootstrapped, and
//! the same download.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};
use clap::Parser;
use testnet::Content;

/// A DHT on loopback, and what lookups in it cost.
#[derive(Debug, Parser)]
#[command(name = "cargo xtask dhtnet", bin_name = "cargo xtask dhtnet")]
struct Args {
    /// DHT nodes.
    #[arg(long, default_value_t = 1000)]
    nodes: u32,
    /// Lookups timed, each from a random node.
    #[arg(long, default_value_t = 30)]
    lookups: usize,
    /// The btc binary (default: this workspace's release build, built
    /// first).
    #[arg(long)]
    btc: Option<PathBuf>,
    /// Leave libtorrent out.
    #[arg(long)]
    no_libtorrent: bool,
}

/// Node `i` at 127.20.y.z, z from 1 to 250.
fn node_addr(i: u32) -> SocketAddr {
    let y = u8::try_from(i / 250).unwrap_or(u8::MAX);
    let z = u8::try_from(i % 250 + 1).unwrap_or(1);
    SocketAddr::new(IpAddr::V4(Ipv4Addr::new(127, 20, y, z)), 0)
}

pub(crate) fn run(args: &[String]) -> Result<()> {
    let args =
        Args::try_parse_from(std::iter::once("dhtnet".to_string()).chain(args.iter().cloned()))?;
    let btc = match &args.btc {
        Some(path) => path.clone(),
        None => crate::bench::build_btc()?,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(measure(&args, &btc))
}

fn median(mut values: Vec<f64>) -> (f64, f64) {
    values.sort_by(f64::total_cmp);
    if values.is_empty() {
        return (0.0, 0.0);
    }
    let p90 = values[(values.len() * 9 / 10).min(values.len() - 1)];
    (values[values.len() / 2], p90)
}

async fn measure(args: &Args, btc: &std::path::Path) -> Result<()> {
    let addr = node_addr;
    let first = dht::Dht::bind(addr(0), dht::Config::default()).await?;
    let router = first.local_addr();
    let mut nodes = vec![first];
    for i in 1..args.nodes {
        let config = dht::Config {
            bootstrap: vec![router],
            ..dht::Config::default()
        };
        nodes.push(dht::Dht::bind(addr(i), config).await?);
    }
    // Settled: the tables stop growing.
    let mut last = 0;
    for _ in 0..60 {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let mut total = 0;
        for node in &nodes {
            total += node.stats().await.map_or(0, |(_, s)| s.nodes);
        }
        if total == last {
            break;
        }
        last = total;
    }
    println!(
        "{} nodes on loopback, {:.0} nodes in the average table",
        nodes.len(),
        last as f64 / nodes.len() as f64
    );

    let content = Content::generate("dhtnet", &[16 << 20], true, 256 * 1024, &[], 5)
        .map_err(anyhow::Error::msg)?;
    let hash = content.torrent().info_hash();
    let seeder = engine::Session::start(engine::SessionConfig {
        listen: SocketAddr::from(([127, 21, 0, 1], 0)),
        dht: Some(engine::DhtConfig {
            bootstrap: vec![nodes[1].local_addr().to_string()],
            ..engine::DhtConfig::default()
        }),
        ..testnet::local_config()
    })
    .await?;
    seeder
        .add(
            content.torrent().clone(),
            engine::TorrentOptions::new(content.data_dir()),
        )
        .await?;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (peers, _) = lookup(&nodes[2], hash).await;
        if peers.is_some() {
            break;
        }
        if Instant::now() > deadline {
            bail!("the seeder's announce never reached the DHT");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    let mut times = Vec::new();
    let mut first_peer = Vec::new();
    let mut queries = Vec::new();
    for i in 0..args.lookups {
        let from = &nodes[(i * 7919 + 13) % nodes.len()];
        let (peer_after, done) = lookup(from, hash).await;
        let done = done.context("a lookup did not end")?;
        times.push(done.elapsed.as_secs_f64() * 1000.0);
        queries.push(f64::from(done.queries));
        if let Some(after) = peer_after {
            first_peer.push(after.as_secs_f64() * 1000.0);
        }
    }
    let (t, t90) = median(times);
    let (q, q90) = median(queries);
    let (f, f90) = median(first_peer.clone());
    println!(
        "btc get_peers, {} lookups: median {t:.0} ms (p90 {t90:.0}) and {q:.0} queries (p90 {q90:.0}); \
         the seeder found in {} of them, first after a median {f:.0} ms (p90 {f90:.0})",
        args.lookups,
        first_peer.len()
    );

    // As libtorrent's are measured below: one new node, 30 lookups of the
    // same torrent once it has joined.
    let newcomer = dht::Dht::bind(
        SocketAddr::from(([127, 21, 0, 4], 0)),
        dht::Config {
            bootstrap: vec![nodes[3].local_addr()],
            ..dht::Config::default()
        },
    )
    .await?;
    let joined = Instant::now();
    while newcomer.stats().await.is_some_and(|(_, s)| s.lookups > 0) {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let joined = joined.elapsed();
    let table = newcomer.stats().await.map_or(0, |(_, s)| s.nodes);
    let (mut times, mut queries) = (Vec::new(), Vec::new());
    for _ in 0..args.lookups {
        let (_, done) = lookup(&newcomer, hash).await;
        let done = done.context("a lookup did not end")?;
        times.push(done.elapsed.as_secs_f64() * 1000.0);
        queries.push(f64::from(done.queries));
    }
    let (t, t90) = median(times);
    let (q, q90) = median(queries);
    println!(
        "btc, a new node: joined after {:.2} s ({table} nodes in its table); get_peers, {} lookups from it: \
         median {t:.1} ms (p90 {t90:.1}) and {q:.0} queries (p90 {q90:.0})",
        joined.as_secs_f64(),
        args.lookups
    );

    let bootstrap = nodes[3].local_addr().to_string();
    let magnet = format!("magnet:?xt=urn:btih:{hash}");
    let (first, end) = btc_download(btc, &magnet, &bootstrap)?;
    println!(
        "btc download of the bare magnet: first peer after {:.2} s, done after {:.2} s",
        first.as_secs_f64(),
        end.as_secs_f64()
    );
    if !args.no_libtorrent {
        match libtorrent_download(&magnet, &bootstrap, args.lookups) {
            Ok(lines) => println!("libtorrent: {lines}"),
            Err(e) => println!("libtorrent: not measured: {e:#}"),
        }
    }
    seeder.shutdown().await;
    Ok(())
}

/// One get_peers lookup: when it first gave a peer, and how it ended.
async fn lookup(
    node: &dht::Dht,
    hash: metainfo::InfoHash,
) -> (Option<Duration>, Option<dht::LookupDone>) {
    let started = Instant::now();
    let mut found = node.get_peers(dht::NodeId(hash.0), None).await;
    let mut first = None;
    while let Some(next) = found.recv().await {
        match next {
            dht::Found::Peers(peers) if !peers.is_empty() => {
                first.get_or_insert(started.elapsed());
            }
            dht::Found::Peers(_) => {}
            dht::Found::Done(done) => return (first, Some(done)),
        }
    }
    (first, None)
}

/// Runs `btc download` of `magnet` with the DHT starting from `bootstrap`;
/// the time to its first peer (from its -v log) and to its exit.
fn btc_download(
    btc: &std::path::Path,
    magnet: &str,
    bootstrap: &str,
) -> Result<(Duration, Duration)> {
    let dir = tempfile::tempdir()?;
    let started = Instant::now();
    let mut child = Command::new(btc)
        .args([
            "download",
            magnet,
            "-q",
            "-v",
            "--no-pex",
            "--bind",
            "127.21.0.2",
            "--port",
            "0",
        ])
        .args(["--dht-bootstrap", bootstrap, "-o"])
        .arg(dir.path())
        .env("XDG_STATE_HOME", dir.path())
        .stderr(Stdio::piped())
        .spawn()
        .context("cannot run btc")?;
    let stderr = child.stderr.take().context("no stderr")?;
    let mut first = None;
    for line in std::io::BufRead::lines(std::io::BufReader::new(stderr)) {
        let line = line?;
        if first.is_none() && line.contains("DHT lookup (metadata)") && !line.contains("peers=0") {
            first = Some(started.elapsed());
        }
    }
    let status = child.wait()?;
    let end = started.elapsed();
    if !status.success() {
        bail!("btc download failed: {status}");
    }
    Ok((first.unwrap_or(end), end))
}

const LT_LOOKUP: &str = r#"
import sys, time, tempfile
import libtorrent as lt
magnet, bootstrap, lookups = sys.argv[1], sys.argv[2], int(sys.argv[3])
s = lt.session({"listen_interfaces": "127.21.0.3:0", "enable_dht": True,
    "enable_lsd": False, "enable_upnp": False, "enable_natpmp": False,
    "dht_bootstrap_nodes": bootstrap, "dht_restrict_routing_ips": False,
    "dht_restrict_search_ips": False, "dht_block_ratelimit": 1000,
    "alert_mask": lt.alert.category_t.all_categories})
started = time.monotonic()

sent = 0

def wait_alert(kind, deadline=60):
    global sent
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        s.wait_for_alert(100)
        for a in s.pop_alerts():
            if isinstance(a, lt.dht_outgoing_get_peers_alert):
                sent += 1
            if isinstance(a, kind):
                return a
    raise SystemExit("no %s within %d s" % (kind.__name__, deadline))

wait_alert(lt.dht_bootstrap_alert)
bootstrapped = time.monotonic() - started
p = lt.parse_magnet_uri(magnet)
times, queries, found = [], [], 0
for _ in range(lookups):
    t = time.monotonic()
    sent = 0
    s.dht_get_peers(p.info_hashes.v1)
    reply = wait_alert(lt.dht_get_peers_reply_alert)
    times.append((time.monotonic() - t) * 1000)
    queries.append(sent)
    found += reply.num_peers() > 0
times.sort()
queries.sort()
mid, p90 = len(times) // 2, min(len(times) - 1, len(times) * 9 // 10)
print("its own DHT bootstrapped after %.2f s (%d nodes in its table); get_peers, %d lookups from it: "
      "median %.1f ms (p90 %.1f) and %d queries (p90 %d); the seeder found in %d"
      % (bootstrapped, s.status().dht_nodes, lookups, times[mid], times[p90], queries[mid], queries[p90], found))
p.save_path = tempfile.mkdtemp()
start = time.monotonic()
h = s.add_torrent(p)
first = None
while not h.status().is_seeding:
    if first is None and h.status().num_peers > 0:
        first = time.monotonic() - start
    s.pop_alerts()
    time.sleep(0.005)
end = time.monotonic() - start
print("libtorrent download of the bare magnet, once bootstrapped: first peer after %.2f s, done after %.2f s" % (first or end, end))
"#;

fn libtorrent_download(magnet: &str, bootstrap: &str, lookups: usize) -> Result<String> {
    let dir = tempfile::tempdir()?;
    let script = dir.path().join("lt_lookup.py");
    std::fs::write(&script, LT_LOOKUP)?;
    let output = Command::new("/usr/bin/python3")
        .arg(&script)
        .args([magnet, bootstrap, &lookups.to_string()])
        .output()
        .context("cannot run python3")?;
    if !output.status.success() {
        bail!("{}", String::from_utf8_lossy(&output.stderr).trim());
    }
    Ok(String::from_utf8_lossy(&output.stdout).trim().to_string())
}
