//! `cargo xtask bench`: the same torrent downloaded on 127.0.0.1 by btc and
//! by each real client that is installed, from the same `btc seed`, in
//! turns (btc, then each other client, round after round) so that drift on
//! a shared machine hits everyone alike; medians of wall time, MB/s, CPU
//! seconds and peak RSS of each leecher process, beside the machine's own
//! bounds measured in the same run (SHA-1, loopback TCP, file writes).

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::Parser;
use serde::Serialize;
use testnet::Content;
use testnet::real::{Process, free_port, installed, wait_until};

/// Benchmark btc against the real clients installed here.
#[derive(Debug, Parser)]
#[command(name = "cargo xtask bench", bin_name = "cargo xtask bench")]
pub(crate) struct Args {
    /// Content size, such as 1GiB (the shape of a Debian netinst image).
    #[arg(long, default_value = "1GiB", value_parser = crate::testnet::parse_size)]
    size: u64,
    /// Rounds; the table shows medians.
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// The btc binary to benchmark (default: build it in release mode).
    #[arg(long, value_name = "PATH")]
    btc: Option<PathBuf>,
}

/// One leecher run.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct Run {
    pub(crate) client: String,
    pub(crate) seconds: f64,
    pub(crate) cpu_seconds: f64,
    pub(crate) peak_rss_mib: f64,
}

/// The machine's bounds, measured in the same run.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct Bounds {
    pub(crate) sha1_mb_s: f64,
    pub(crate) loopback_mb_s: f64,
    pub(crate) file_write_mb_s: f64,
}

/// A whole benchmark.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct Bench {
    pub(crate) size: u64,
    pub(crate) piece_length: u64,
    pub(crate) rounds: usize,
    pub(crate) bounds: Bounds,
    pub(crate) runs: Vec<Run>,
    pub(crate) missing: Vec<String>,
}

const PIECE_LENGTH: u64 = 256 * 1024;

pub(crate) fn run(args: &[String]) -> Result<()> {
    let args =
        Args::try_parse_from(std::iter::once("bench".to_string()).chain(args.iter().cloned()))
            .unwrap_or_else(|e| e.exit());
    let btc = match &args.btc {
        Some(path) => path.clone(),
        None => build_btc()?,
    };
    let bench = measure(&btc, args.size, args.rounds.max(1), &mut |line| {
        eprintln!("{line}")
    })?;
    let table = table(&bench);
    println!("{table}");
    let dir = crate::testnet::target_dir().join("bench");
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let dir = dir.canonicalize().unwrap_or(dir);
    std::fs::write(dir.join("bench.md"), &table)?;
    std::fs::write(
        dir.join("bench.json"),
        serde_json::to_string_pretty(&bench)?,
    )?;
    println!("written: {}/bench.md and bench.json", dir.display());
    Ok(())
}

/// Builds btc in release mode and returns its path.
fn build_btc() -> Result<PathBuf> {
    eprintln!("building btc (release)…");
    let status = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args(["build", "--release", "--quiet", "-p", "btc"])
        .status()
        .context("cannot run cargo")?;
    if !status.success() {
        bail!("building btc failed");
    }
    Ok(crate::testnet::target_dir().join("release/btc"))
}

/// Runs the benchmark: `rounds` rounds of every installed client leeching
/// `size` bytes from one btc seeder, plus the machine's bounds.
pub(crate) fn measure(
    btc: &Path,
    size: u64,
    rounds: usize,
    say: &mut dyn FnMut(String),
) -> Result<Bench> {
    if !Path::new(TIME).is_file() {
        bail!("{TIME} is needed to measure CPU time and memory: apt-get install time");
    }
    let bounds = bounds(size.min(1 << 30))?;
    say(format!(
        "machine: SHA-1 {:.0} MB/s, loopback TCP {:.0} MB/s, file writes {:.0} MB/s",
        bounds.sha1_mb_s, bounds.loopback_mb_s, bounds.file_write_mb_s
    ));
    let content = Content::generate("bench.bin", &[size], true, PIECE_LENGTH, &[], 0xbe9c)
        .context("cannot generate the content")?;
    let state = tempfile::tempdir()?;
    let port = free_port()?;
    let mut seeder = Process::spawn(
        "btc seed",
        Command::new(btc)
            .args([
                "seed",
                "-q",
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "-d",
            ])
            .arg(content.data_dir())
            .arg(content.torrent_file())
            .env("XDG_STATE_HOME", state.path()),
    )?;
    let seeder_addr = SocketAddr::from(([127, 0, 0, 1], port));
    wait_until("the btc seeder listens", Duration::from_secs(120), || {
        seeder.check_running()?;
        Ok(TcpStream::connect_timeout(&seeder_addr, Duration::from_millis(200)).is_ok())
    })?;

    let mut clients = vec!["btc"];
    let mut missing = Vec::new();
    for (client, program) in [("aria2", "aria2c")] {
        if installed(program) {
            clients.push(client);
        } else {
            missing.push(format!("{client} (apt-get install aria2)"));
        }
    }
    let mut runs = Vec::new();
    for round in 1..=rounds {
        for client in &clients {
            let run = leech(client, btc, &content, seeder_addr, state.path())?;
            say(format!(
                "round {round}: {client}: {:.2} s, {:.0} MB/s",
                run.seconds,
                size as f64 / run.seconds / 1e6
            ));
            runs.push(run);
        }
    }
    drop(seeder);
    Ok(Bench {
        size,
        piece_length: PIECE_LENGTH,
        rounds,
        bounds,
        runs,
        missing,
    })
}

const TIME: &str = "/usr/bin/time";

/// One download by `client` into a fresh folder, timed by GNU time, and
/// checked byte for byte.
fn leech(
    client: &str,
    btc: &Path,
    content: &Content,
    seeder: SocketAddr,
    state: &Path,
) -> Result<Run> {
    let dir = tempfile::tempdir()?;
    let report = dir.path().join("time.txt");
    let out = dir.path().join("out");
    std::fs::create_dir(&out)?;
    let mut command = Command::new(TIME);
    command.arg("-f").arg("%e %U %S %M").arg("-o").arg(&report);
    match client {
        "btc" => {
            command
                .arg(btc)
                .args(["download", "-q", "--port", "0", "--bind", "127.0.0.1"])
                .args(["--peer", &seeder.to_string(), "-o"])
                .arg(&out)
                .arg(content.torrent_file())
                .env("XDG_STATE_HOME", state);
        }
        "aria2" => {
            // aria2 takes peers only from trackers (DHT and PEX are off
            // here): it is pointed at the seeder by a one-peer tracker.
            command.arg("aria2c");
            let tracker = one_peer_tracker(seeder)?;
            command
                .args(["--no-conf", "--enable-dht=false", "--enable-dht6=false"])
                .args(["--bt-enable-lpd=false", "--enable-peer-exchange=false"])
                .args([
                    "--seed-time=0",
                    "--file-allocation=none",
                    "--summary-interval=0",
                ])
                .args(["--console-log-level=error", "--bt-tracker", &tracker])
                .arg(format!("--listen-port={}", free_port()?))
                .arg("-d")
                .arg(&out)
                .arg(content.torrent_file());
        }
        other => bail!("unknown client {other}"),
    }
    command
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let started = Instant::now();
    let status = command
        .status()
        .with_context(|| format!("cannot run {client}"))?;
    let seconds = started.elapsed().as_secs_f64();
    if !status.success() {
        bail!("{client} failed: {status}");
    }
    content
        .verify(&out)
        .map_err(|e| anyhow::anyhow!("{client}'s copy is wrong: {e}"))?;
    let mut text = String::new();
    std::fs::File::open(&report)?.read_to_string(&mut text)?;
    let (cpu_seconds, peak_rss_mib) =
        parse_time(&text).with_context(|| format!("cannot read {TIME}'s report: {text:?}"))?;
    Ok(Run {
        client: client.to_string(),
        seconds,
        cpu_seconds,
        peak_rss_mib,
    })
}

/// Reads GNU time's `%e %U %S %M` line: CPU seconds (user + system) and
/// peak RSS in MiB.
pub(crate) fn parse_time(text: &str) -> Option<(f64, f64)> {
    let line = text.lines().rev().find(|l| !l.trim().is_empty())?;
    let fields: Vec<f64> = line
        .split_whitespace()
        .map(str::parse)
        .collect::<Result<_, _>>()
        .ok()?;
    match fields[..] {
        [_, user, system, rss_kib] => Some((user + system, rss_kib / 1024.0)),
        _ => None,
    }
}

/// A tracker, on its own thread, that answers every announce with the one
/// peer `peer` (compact), for clients that take peers only from trackers.
/// It lives until the process ends (the benchmark is short).
fn one_peer_tracker(peer: SocketAddr) -> Result<String> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let url = format!("http://{}/announce", listener.local_addr()?);
    let SocketAddr::V4(v4) = peer else {
        bail!("the seeder must be on IPv4");
    };
    let mut compact = v4.ip().octets().to_vec();
    compact.extend_from_slice(&v4.port().to_be_bytes());
    let mut body = b"d8:intervali60e5:peers6:".to_vec();
    body.extend_from_slice(&compact);
    body.push(b'e');
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let mut stream = stream;
            let mut buf = [0u8; 4096];
            let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
            let _ = stream.read(&mut buf);
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = stream.write_all(head.as_bytes());
            let _ = stream.write_all(&body);
        }
    });
    Ok(url)
}

/// SHA-1, loopback TCP and file-write speeds, over `size` bytes each.
fn bounds(size: u64) -> Result<Bounds> {
    let size = size.max(1 << 20) as usize;
    let chunk = vec![0x5au8; 1 << 20];
    // SHA-1 with the backend btc uses, in 256 KiB pieces.
    let data = vec![0xa5u8; 256 * 1024];
    let started = Instant::now();
    let mut n = 0;
    while n < size {
        std::hint::black_box(metainfo::sha1(&data));
        n += data.len();
    }
    let sha1 = size as f64 / started.elapsed().as_secs_f64() / 1e6;
    // Loopback TCP: one thread writes, this one reads.
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    let writer = {
        let chunk = chunk.clone();
        std::thread::spawn(move || -> std::io::Result<()> {
            let mut stream = TcpStream::connect(addr)?;
            let mut sent = 0;
            while sent < size {
                stream.write_all(&chunk)?;
                sent += chunk.len();
            }
            Ok(())
        })
    };
    let (mut stream, _) = listener.accept()?;
    let started = Instant::now();
    let mut buf = vec![0u8; 1 << 20];
    let mut got = 0;
    while got < size {
        let read = stream.read(&mut buf)?;
        if read == 0 {
            break;
        }
        got += read;
    }
    let loopback = got as f64 / started.elapsed().as_secs_f64() / 1e6;
    let _ = writer.join();
    // File writes of 1 MiB, then one sync.
    let dir = tempfile::tempdir()?;
    let started = Instant::now();
    let mut file = std::fs::File::create(dir.path().join("write.bin"))?;
    let mut written = 0;
    while written < size {
        file.write_all(&chunk)?;
        written += chunk.len();
    }
    file.sync_all()?;
    let write = written as f64 / started.elapsed().as_secs_f64() / 1e6;
    Ok(Bounds {
        sha1_mb_s: sha1,
        loopback_mb_s: loopback,
        file_write_mb_s: write,
    })
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    match values.len() {
        0 => 0.0,
        n if n % 2 == 1 => values[n / 2],
        n => (values[n / 2 - 1] + values[n / 2]) / 2.0,
    }
}

/// The Markdown table of medians.
pub(crate) fn table(bench: &Bench) -> String {
    let mut out = format!(
        "### btc bench: {} MiB, {} KiB pieces, one btc seeder, {} round(s), medians\n\n",
        bench.size >> 20,
        bench.piece_length >> 10,
        bench.rounds
    );
    out.push_str("| leecher | seconds | MB/s | CPU s | peak RSS MiB |\n|---|---|---|---|---|\n");
    let mut clients: Vec<&str> = bench.runs.iter().map(|r| r.client.as_str()).collect();
    clients.dedup();
    clients.sort_unstable();
    clients.dedup();
    for client in clients {
        let runs: Vec<&Run> = bench.runs.iter().filter(|r| r.client == client).collect();
        let seconds = median(runs.iter().map(|r| r.seconds).collect());
        out.push_str(&format!(
            "| {client} | {seconds:.2} | {:.0} | {:.2} | {:.1} |\n",
            bench.size as f64 / seconds / 1e6,
            median(runs.iter().map(|r| r.cpu_seconds).collect()),
            median(runs.iter().map(|r| r.peak_rss_mib).collect()),
        ));
    }
    out.push_str(&format!(
        "\nmachine bounds: SHA-1 {:.0} MB/s, loopback TCP {:.0} MB/s, file writes {:.0} MB/s\n",
        bench.bounds.sha1_mb_s, bench.bounds.loopback_mb_s, bench.bounds.file_write_mb_s
    ));
    if !bench.missing.is_empty() {
        out.push_str(&format!("not installed: {}\n", bench.missing.join(", ")));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gnu_time_reports_parse() {
        assert_eq!(parse_time("3.21 1.50 0.75 20480\n"), Some((2.25, 20.0)));
        assert_eq!(
            parse_time("Command exited with non-zero status 1\n0.01 0.00 0.00 1024\n"),
            Some((0.0, 1.0))
        );
        assert_eq!(parse_time("garbage"), None);
    }

    /// The whole benchmark at a tiny size: it runs btc (the debug build
    /// the workspace tests already made) and every installed client, checks
    /// every copy, and writes its table. Timings are not asserted.
    #[test]
    fn the_benchmark_runs_at_a_tiny_size() {
        let btc = crate::testnet::target_dir().join("debug/btc");
        let status = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
            .args(["build", "--quiet", "-p", "btc"])
            .status()
            .unwrap();
        assert!(status.success());
        let bench = measure(&btc, 4 << 20, 1, &mut |_| {}).unwrap();
        let clients: Vec<&str> = bench.runs.iter().map(|r| r.client.as_str()).collect();
        assert!(clients.contains(&"btc"), "{clients:?}");
        assert!(
            clients.contains(&"aria2"),
            "aria2 is installed by .ci/run: {clients:?}"
        );
        assert!(
            bench
                .runs
                .iter()
                .all(|r| r.seconds > 0.0 && r.peak_rss_mib > 0.0)
        );
        let table = table(&bench);
        assert!(
            table.contains("| btc |") && table.contains("| aria2 |"),
            "{table}"
        );
    }
}
