//! `cargo xtask siege`: a `btc` binary attacked as a stranger on the
//! internet would attack it, on 127.0.0.1, and what it withstands
//! measured. Each attacker dials from a loopback address of its own
//! (`testnet::crowd`), so limits per host see them as different hosts.
//!
//! - `idle`: a `btc seed` (its table of 50) is offered 400 connections that
//!   finish their handshake and then only keep alive; 30 s later a
//!   libtorrent leecher dials it. How long until the leecher has
//!   everything?
//! - `burst`: 500 handshakes at once to a `btc seed --max-peers 600`. How
//!   many are answered?
//! - `load`: 500 greedy leechers download from a `btc seed --max-peers 600`
//!   for a while. What is the seed's peak resident memory?
//! - `udp`: 10,000 announces and scrapes with forged connection ids to
//!   `btc tracker`. How many replies come back?
//!
//! Give `--btc PATH` to besiege another build (an older one, to compare).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};
use clap::Parser;
use testnet::Content;
use testnet::crowd::{self, SilentPeer};
use testnet::real::{Libtorrent, Process, free_port, wait_until};

/// Attack a btc binary on 127.0.0.1 and measure what it withstands.
#[derive(Debug, Parser)]
#[command(name = "cargo xtask siege", bin_name = "cargo xtask siege")]
struct Args {
    /// The btc binary (default: this workspace's release build, built
    /// first).
    #[arg(long)]
    btc: Option<PathBuf>,
    /// The attacks: idle, burst, load, udp (default: all).
    attacks: Vec<String>,
    /// Silent connections offered to the seed in `idle`.
    #[arg(long, default_value_t = 400)]
    silent: usize,
    /// Handshakes sent at once in `burst`, and greedy leechers in `load`.
    #[arg(long, default_value_t = 500)]
    crowd: usize,
    /// How long the greedy leechers of `load` download, in seconds.
    #[arg(long, default_value_t = 30)]
    seconds: u64,
    /// Forged packets sent in `udp`.
    #[arg(long, default_value_t = 10_000)]
    packets: usize,
    /// How long the silent connections of `idle` have been there when the
    /// honest leecher comes, in seconds (an attack holds them for as long
    /// as it likes).
    #[arg(long, default_value_t = 30)]
    hold: u64,
    /// The seeds' content, such as 64MiB.
    #[arg(long, value_parser = crate::testnet::parse_size, default_value = "64MiB")]
    size: u64,
    /// How long the honest leecher of `idle` is given, in seconds.
    #[arg(long, default_value_t = 120)]
    patience: u64,
}

const ATTACKS: [&str; 4] = ["idle", "burst", "load", "udp"];

pub(crate) fn run(args: &[String]) -> Result<()> {
    let args =
        Args::try_parse_from(std::iter::once("siege".to_string()).chain(args.iter().cloned()))
            .map_err(|e| anyhow::anyhow!("{e}"))?;
    let attacks: Vec<&str> = if args.attacks.is_empty() {
        ATTACKS.to_vec()
    } else {
        args.attacks.iter().map(String::as_str).collect()
    };
    if let Some(unknown) = attacks.iter().find(|a| !ATTACKS.contains(a)) {
        bail!(
            "unknown attack {unknown:?}; the attacks are {}",
            ATTACKS.join(", ")
        );
    }
    let btc = match &args.btc {
        Some(path) => path
            .canonicalize()
            .with_context(|| format!("{}", path.display()))?,
        None => crate::bench::build_btc()?,
    };
    println!("besieging {}", btc.display());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(async {
        for attack in attacks {
            match attack {
                "idle" => idle(&btc, &args).await?,
                "burst" => drop(burst(&btc, &args).await?),
                "load" => drop(load(&btc, &args).await?),
                _ => drop(udp(&btc, &args).await?),
            }
        }
        Ok(())
    })
}

/// A `btc seed` of `content` on 127.0.0.1 with room for `max_peers`, in a
/// state folder of its own, once it accepts connections.
struct Seed {
    process: Process,
    addr: SocketAddr,
    _state: tempfile::TempDir,
}

impl Seed {
    fn start(btc: &Path, content: &Content, max_peers: usize) -> Result<Seed> {
        let state = tempfile::tempdir()?;
        let port = free_port()?;
        let mut command = Command::new(btc);
        command
            .args([
                "seed",
                "-q",
                "--no-dht",
                "--bind",
                "127.0.0.1",
                "--port",
                &port.to_string(),
            ])
            .args(["--max-peers", &max_peers.to_string(), "-d"])
            .arg(content.data_dir())
            .arg(content.torrent_file())
            .env("XDG_STATE_HOME", state.path());
        let mut process = Process::spawn("btc seed", &mut command)?;
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        wait_until("btc seed accepts peers", Duration::from_secs(30), || {
            process.check_running()?;
            Ok(std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok())
        })?;
        Ok(Seed {
            process,
            addr,
            _state: state,
        })
    }

    /// Waits until the seed answers a handshake for `content`: it listens
    /// before its torrent has checked its data, and an attack must meet
    /// the torrent, not the check.
    async fn serving(&self, content: &Content) -> Result<()> {
        let hash = content.torrent().info_hash();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            let probe = std::net::IpAddr::from([127, 0, 0, 1]);
            if let Ok(mut stream) = crowd::dial(probe, self.addr, hash).await
                && crowd::answered(&mut stream, hash, Duration::from_secs(2)).await
            {
                return Ok(());
            }
            if tokio::time::Instant::now() >= deadline {
                anyhow::bail!("btc seed did not answer a handshake in 30 s");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Peak and current resident memory, in KiB (`VmHWM`, `VmRSS`).
    fn memory(&self) -> Result<(u64, u64)> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.process.id()))?;
        let field = |name: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
                .unwrap_or(0)
        };
        Ok((field("VmHWM:"), field("VmRSS:")))
    }
}

fn content(size: u64) -> Result<Content> {
    Content::generate("siege", &[size], true, 256 * 1024, &[], 21).map_err(anyhow::Error::msg)
}

async fn idle(btc: &Path, args: &Args) -> Result<()> {
    let content = content(args.size)?;
    let seed = Seed::start(btc, &content, 50)?;
    seed.serving(&content).await?;
    let hash = content.torrent().info_hash();
    let mut crowd = Vec::new();
    for i in 0..args.silent {
        let from = crowd::member_ip(i);
        if let Some(peer) = SilentPeer::join(from, seed.addr, hash, Duration::from_secs(10)).await?
        {
            crowd.push(peer);
        }
    }
    println!(
        "idle: {} of {} silent connections answered; the leecher comes {} s later",
        crowd.len(),
        args.silent,
        args.hold
    );
    tokio::time::sleep(Duration::from_secs(args.hold)).await;
    let target = tempfile::tempdir()?;
    let started = Instant::now();
    let mut leecher = Libtorrent::leech(content.torrent_file(), target.path(), &[seed.addr])?;
    let patience = Duration::from_secs(args.patience);
    let status = tokio::task::block_in_place(|| leecher.process().wait_exit(patience));
    let gave_way = crowd.iter().filter(|p| p.is_closed()).count();
    match status {
        Ok(status) if status.success() => {
            content.verify(target.path()).map_err(anyhow::Error::msg)?;
            println!(
                "idle: a libtorrent leecher had all {} in {:.1} s; {gave_way} silent peers gave way",
                testnet::size(args.size),
                started.elapsed().as_secs_f64()
            );
        }
        Ok(status) => println!("idle: the libtorrent leecher failed: {status}"),
        Err(_) => println!(
            "idle: the libtorrent leecher did not finish in {} s; {gave_way} silent peers gave way",
            args.patience
        ),
    }
    Ok(())
}

/// The handshakes answered.
async fn burst(btc: &Path, args: &Args) -> Result<usize> {
    let content = content(args.size)?;
    let seed = Seed::start(btc, &content, args.crowd + 100)?;
    seed.serving(&content).await?;
    let hash = content.torrent().info_hash();
    let answered = crowd::burst(seed.addr, hash, 0, args.crowd, Duration::from_secs(30)).await?;
    println!(
        "burst: {answered} of {} handshakes sent at once answered (--max-peers {})",
        args.crowd,
        args.crowd + 100
    );
    Ok(answered)
}

/// The leechers that connected, and the seed's peak resident memory in
/// KiB.
async fn load(btc: &Path, args: &Args) -> Result<(usize, u64)> {
    let content = content(args.size)?;
    let seed = Seed::start(btc, &content, args.crowd + 100)?;
    seed.serving(&content).await?;
    let (before, _) = seed.memory()?;
    let until = tokio::time::Instant::now() + Duration::from_secs(args.seconds);
    let torrent = content.torrent().clone();
    let mut leechers = tokio::task::JoinSet::new();
    for i in 0..args.crowd {
        let torrent = torrent.clone();
        let to = seed.addr;
        leechers
            .spawn(async move { crowd::greedy(crowd::member_ip(i), to, &torrent, until).await });
    }
    let mut received = 0;
    let mut served = 0;
    let mut refused = 0;
    while let Some(result) = leechers.join_next().await {
        match result {
            Ok(Ok(Some(bytes))) => {
                received += bytes;
                served += 1;
            }
            _ => refused += 1,
        }
    }
    let (peak, now) = seed.memory()?;
    println!(
        "load: {served} of {} greedy leechers connected ({refused} refused) and pulled {} MiB in {} s; \
         the seed's resident memory: {} MiB at the start, {} MiB at its peak, {} MiB at the end",
        args.crowd,
        received >> 20,
        args.seconds,
        before / 1024,
        peak / 1024,
        now / 1024
    );
    Ok((served, peak))
}

/// The replies to forged packets.
async fn udp(btc: &Path, args: &Args) -> Result<usize> {
    use tracker::{UdpRequest, UdpResponse};

    // Bound first: an ephemeral port taken after the tracker's was chosen
    // could be the tracker's.
    let socket = tokio::net::UdpSocket::bind((IpAddr::V4(Ipv4Addr::LOCALHOST), 0)).await?;
    let port = free_port()?;
    let mut command = Command::new(btc);
    command.args(["tracker", "--bind", &format!("127.0.0.1:{port}")]);
    let mut process = Process::spawn("btc tracker", &mut command)?;
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    socket.connect(addr).await?;
    // Ready when a connect is answered (until then, sends are refused at
    // once).
    let mut buf = vec![0u8; 2048];
    let mut ready = false;
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut attempt = 0u32;
    while !ready && Instant::now() < deadline {
        process.check_running()?;
        attempt += 1;
        let _ = socket
            .send(
                &UdpRequest::Connect {
                    transaction_id: attempt,
                }
                .encode(),
            )
            .await;
        match tokio::time::timeout(Duration::from_millis(100), socket.recv(&mut buf)).await {
            Ok(Ok(n)) => {
                ready = matches!(
                    UdpResponse::decode(&buf[..n], false),
                    Ok(UdpResponse::Connect { .. })
                );
            }
            Ok(Err(_)) => tokio::time::sleep(Duration::from_millis(50)).await,
            Err(_) => {}
        }
    }
    if !ready {
        bail!("btc tracker does not answer a connect");
    }
    // Drain the answers to the other connects.
    while let Ok(Ok(_)) =
        tokio::time::timeout(Duration::from_millis(200), socket.recv(&mut buf)).await
    {}
    // Replies are counted as they come, so that none is lost to a full
    // socket buffer; the tracker answers in order, so once the connect
    // sent last is answered, anything said to the forged packets has come.
    let socket = std::sync::Arc::new(socket);
    let last = u32::MAX;
    let counter = {
        let socket = std::sync::Arc::clone(&socket);
        tokio::spawn(async move {
            let mut buf = vec![0u8; 2048];
            let mut replies = 0usize;
            loop {
                let Ok(Ok(n)) =
                    tokio::time::timeout(Duration::from_secs(10), socket.recv(&mut buf)).await
                else {
                    return None;
                };
                match UdpResponse::decode(&buf[..n], false) {
                    Ok(UdpResponse::Connect { transaction_id, .. }) if transaction_id == last => {
                        return Some(replies);
                    }
                    _ => replies += 1,
                }
            }
        })
    };
    for i in 0..args.packets {
        let transaction_id = u32::try_from(i).unwrap_or(u32::MAX);
        let forged = if i % 2 == 0 {
            UdpRequest::Scrape {
                connection_id: forged_id(i),
                transaction_id,
                info_hashes: vec![metainfo::InfoHash([7; 20])],
            }
        } else {
            UdpRequest::Announce {
                connection_id: forged_id(i),
                transaction_id,
                info_hash: metainfo::InfoHash([7; 20]),
                peer_id: metainfo::PeerId([1; 20]),
                downloaded: 0,
                left: 0,
                uploaded: 0,
                event: None,
                key: 0,
                numwant: None,
                port: 6881,
            }
        };
        socket.send(&forged.encode()).await?;
        // Paced a little, so that no socket buffer overflows.
        if i % 50 == 49 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
    socket
        .send(
            &UdpRequest::Connect {
                transaction_id: last,
            }
            .encode(),
        )
        .await?;
    let replies = counter
        .await?
        .context("no answer to the connect sent last")?;
    println!(
        "udp: {replies} replies to {} packets with forged connection ids",
        args.packets
    );
    Ok(replies)
}

/// A connection id no tracker issued.
fn forged_id(i: usize) -> u64 {
    (i as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A few of each attack on the debug build: every handshake of a burst
    /// answered, every greedy leecher connected, no forged packet
    /// answered. Timings are not asserted.
    #[test]
    fn the_siege_runs_at_a_tiny_size() {
        let btc = crate::testnet::target_dir().join("debug/btc");
        let status = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
            .args(["build", "--quiet", "-p", "btc"])
            .status()
            .unwrap();
        assert!(status.success());
        let args = Args::try_parse_from([
            "siege",
            "--size",
            "1MiB",
            "--crowd",
            "40",
            "--seconds",
            "2",
            "--packets",
            "400",
        ])
        .unwrap();
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            assert_eq!(burst(&btc, &args).await.unwrap(), 40);
            let (connected, peak) = load(&btc, &args).await.unwrap();
            assert_eq!(connected, 40);
            assert!(peak > 0);
            assert_eq!(udp(&btc, &args).await.unwrap(), 0);
        });
    }
}
