//! `cargo xtask bench`: btc against the real clients installed here, on
//! 127.0.0.1, in one run.
//!
//! Six scenarios, each a set of seeders that every leecher downloads the
//! same torrent from, one leecher client after the other, round after
//! round (btc, libtorrent, qBittorrent, aria2, btc, …) so that drift on a
//! shared machine hits everyone alike:
//!
//! - `one`: one seeder, one leecher, a single file (the shape of a Debian
//!   netinst image), with every client in turn as the seeder: it compares
//!   leechers from the same seeder and seeders for the same leecher;
//! - `four`: four seeders (every client, topped up with btc) to one leecher;
//! - `swarm`: one seeder to eight leechers of the same client at once;
//! - `files`: one seeder, one leecher, a torrent of many small files;
//! - `encrypted`: one seeder (libtorrent, then btc), one leecher, every one
//!   of them requiring MSE/PE with RC4 (rqbit, which has no MSE, sits it
//!   out);
//! - `utp`: one seeder (btc, then libtorrent), one leecher, everyone over
//!   TCP alone and then over uTP alone (the clients that speak it: btc,
//!   libtorrent, qBittorrent).
//!
//! Every set of seeders first serves one unmeasured download: the first
//! download from a freshly started seeder ran 20–100% slower than the
//! next ones (libtorrent maps the file in, every seeder warms its caches),
//! and it would always fall on the same leecher, the first in turn.
//!
//! Every client finds its peers through an in-process tracker. For each
//! leecher it records the wall time to a complete, verified copy (checked
//! byte for byte afterwards), MB/s, CPU seconds and peak RSS, and prints
//! medians beside the machine's bounds measured in the same run.

mod bounds;
mod clients;
mod report;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::{Parser, ValueEnum};
use serde::Serialize;
use testnet::Content;
use testnet::real::wait_until;
use tracker::{HttpTracker, Tracker};

use bounds::Bounds;
use clients::{Client, How, Peer, TIME, Tools, Transport, Usage};
use report::table;

/// Benchmark btc against the real clients installed here.
#[derive(Debug, Parser)]
#[command(name = "cargo xtask bench", bin_name = "cargo xtask bench")]
pub(crate) struct Args {
    /// Content size, such as 1GiB; the `files` scenario uses a quarter.
    #[arg(long, default_value = "1GiB", value_parser = crate::testnet::parse_size)]
    size: u64,
    /// Rounds; the tables show medians.
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// Scenarios to run, comma-separated (default: all).
    #[arg(long = "scenario", value_delimiter = ',')]
    scenarios: Vec<Scenario>,
    /// Clients to run, comma-separated: btc, libtorrent, qbittorrent,
    /// aria2, rqbit (default: every one installed).
    #[arg(long = "client", value_delimiter = ',', value_parser = parse_client)]
    clients: Vec<Client>,
    /// Leechers in the swarm scenario.
    #[arg(long, default_value_t = 8)]
    swarm: usize,
    /// Files in the files scenario.
    #[arg(long, default_value_t = 1000)]
    files: usize,
    /// The btc binary to benchmark (default: build it in release mode).
    #[arg(long, value_name = "PATH")]
    btc: Option<PathBuf>,
}

fn parse_client(name: &str) -> Result<Client, String> {
    Client::parse(name).ok_or_else(|| {
        let names: Vec<&str> = Client::ALL.iter().map(|c| c.name()).collect();
        format!("unknown client; the clients are {}", names.join(", "))
    })
}

/// A benchmark scenario.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, ValueEnum)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Scenario {
    /// One seeder to one leecher, every client as seeder in turn.
    One,
    /// Four seeders to one leecher.
    Four,
    /// One seeder to several leechers at once.
    Swarm,
    /// Many small files, one seeder to one leecher.
    Files,
    /// One seeder to one leecher, every one of them requiring encryption
    /// (MSE/PE with RC4): from a libtorrent and from a btc seeder.
    Encrypted,
    /// One seeder to one leecher over TCP alone, then over uTP alone: from
    /// a btc and from a libtorrent seeder.
    Utp,
}

impl Scenario {
    const ALL: [Scenario; 6] = [
        Scenario::One,
        Scenario::Four,
        Scenario::Swarm,
        Scenario::Files,
        Scenario::Encrypted,
        Scenario::Utp,
    ];

    fn title(self, swarm: usize) -> String {
        match self {
            Scenario::One => "one seeder → one leecher".into(),
            Scenario::Four => "four seeders → one leecher".into(),
            Scenario::Swarm => format!("one seeder → {swarm} leechers at once"),
            Scenario::Files => "many small files, one seeder → one leecher".into(),
            Scenario::Encrypted => {
                "encrypted (RC4 required by everyone), one seeder → one leecher".into()
            }
            Scenario::Utp => "TCP alone, then uTP alone, one seeder → one leecher".into(),
        }
    }
}

/// What to measure.
#[derive(Clone, Debug)]
pub(crate) struct Options {
    pub(crate) size: u64,
    pub(crate) rounds: usize,
    pub(crate) scenarios: Vec<Scenario>,
    /// The clients asked for; empty means every one installed.
    pub(crate) clients: Vec<Client>,
    pub(crate) swarm: usize,
    pub(crate) files: usize,
}

/// One leecher's run.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct Run {
    pub(crate) scenario: Scenario,
    /// The seeders, such as `btc` or `btc+libtorrent+qbittorrent+aria2`.
    pub(crate) seeders: String,
    pub(crate) leecher: Client,
    pub(crate) round: usize,
    /// The torrent's size in bytes.
    pub(crate) bytes: u64,
    pub(crate) seconds: f64,
    pub(crate) cpu_seconds: f64,
    pub(crate) peak_rss_mib: f64,
    /// CPU seconds all the seeders used while this run's leechers ran.
    pub(crate) seeder_cpu_seconds: f64,
    /// CPU seconds the whole machine used from this run's start until its
    /// data was on the disk: leechers, seeders, and the kernel's own
    /// threads (writeback, loopback), shared by every leecher of a swarm.
    pub(crate) machine_cpu_seconds: f64,
}

/// A whole benchmark.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct Bench {
    /// The day it ran (UTC) and the machine.
    pub(crate) date: String,
    pub(crate) machine: String,
    pub(crate) size: u64,
    pub(crate) piece_length: u64,
    pub(crate) rounds: usize,
    pub(crate) swarm: usize,
    pub(crate) files: usize,
    pub(crate) bounds: Bounds,
    pub(crate) runs: Vec<Run>,
    /// Clients not installed, with the package that provides each.
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
    let options = Options {
        size: args.size,
        rounds: args.rounds.max(1),
        scenarios: if args.scenarios.is_empty() {
            Scenario::ALL.to_vec()
        } else {
            args.scenarios
        },
        clients: args.clients,
        swarm: args.swarm.max(1),
        files: args.files.max(1),
    };
    let bench = measure(&btc, &options, &mut |line| eprintln!("{line}"))?;
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
pub(crate) fn build_btc() -> Result<PathBuf> {
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

/// The in-process tracker every client announces to, on its own runtime.
struct LocalTracker {
    runtime: tokio::runtime::Runtime,
    server: Option<HttpTracker>,
    state: Arc<Mutex<Tracker>>,
}

impl LocalTracker {
    fn start() -> Result<LocalTracker> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()?;
        let server = runtime.block_on(testnet::local_tracker())?;
        let state = Arc::clone(server.state());
        Ok(LocalTracker {
            runtime,
            server: Some(server),
            state,
        })
    }

    fn announce_url(&self) -> String {
        self.server
            .as_ref()
            .map(HttpTracker::announce_url)
            .unwrap_or_default()
    }

    /// Forgets every peer (those of a finished setup, killed without a
    /// `stopped` announce, would otherwise be handed out).
    fn reset(&self) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        *state = Tracker::new(state.config().clone());
    }

    /// The seeders it lists for `info_hash`.
    fn seeders(&self, info_hash: &metainfo::InfoHash) -> u32 {
        let state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        state.stats(info_hash).map_or(0, |s| s.complete)
    }
}

impl Drop for LocalTracker {
    fn drop(&mut self) {
        if let Some(server) = self.server.take() {
            self.runtime.block_on(server.stop());
        }
    }
}

/// Runs the benchmark with the btc binary `btc`.
pub(crate) fn measure(btc: &Path, options: &Options, say: &mut dyn FnMut(String)) -> Result<Bench> {
    if !Path::new(TIME).is_file() {
        bail!("{TIME} is needed to measure CPU time and memory: apt-get install time");
    }
    let tools = Tools::new(btc.to_path_buf())?;
    let mut clients = Vec::new();
    let mut missing = Vec::new();
    for client in Client::ALL {
        let wanted = options.clients.is_empty() || options.clients.contains(&client);
        if !wanted {
            continue;
        }
        if tools.available(client) {
            clients.push(client);
        } else if client == Client::Btc {
            bail!("no btc binary at {}", btc.display());
        } else {
            missing.push(format!("{} ({})", client.name(), client.install()));
        }
    }
    if clients.is_empty() {
        bail!(
            "none of the clients asked for is installed: {}",
            missing.join(", ")
        );
    }
    for line in &missing {
        say(format!("not installed: {line}"));
    }

    let bounds = bounds::measure(options.size.min(1 << 30))?;
    say(format!(
        "machine: SHA-1 {:.0} MB/s, loopback TCP {:.0} MB/s, file writes {:.0} MB/s",
        bounds.sha1_mb_s, bounds.loopback_mb_s, bounds.file_write_mb_s
    ));

    let tracker = LocalTracker::start().context("cannot start the tracker")?;
    let trackers = [tracker.announce_url()];
    let mut runs = Vec::new();
    let single = if options.scenarios.iter().any(|s| *s != Scenario::Files) {
        say(format!("generating {} MiB of content…", options.size >> 20));
        Some(
            Content::generate(
                "bench.bin",
                &[options.size],
                true,
                PIECE_LENGTH,
                &trackers,
                0xbe9c,
            )
            .context("cannot generate the content")?,
        )
    } else {
        None
    };
    settle();
    // The seeder of the scenarios that have one: the first real client
    // (a third party to every leecher), else btc.
    let reference = clients
        .iter()
        .copied()
        .find(|c| *c != Client::Btc)
        .unwrap_or(Client::Btc);
    let bench = Bench {
        date: today(),
        machine: machine(),
        size: options.size,
        piece_length: PIECE_LENGTH,
        rounds: options.rounds,
        swarm: options.swarm,
        files: options.files,
        bounds,
        runs: Vec::new(),
        missing,
    };
    let setup = Setup {
        tools: &tools,
        tracker: &tracker,
        leechers: &clients,
        rounds: options.rounds,
        how: How::default(),
    };
    // rqbit speaks no MSE.
    let encrypting: Vec<Client> = clients
        .iter()
        .copied()
        .filter(|c| *c != Client::Rqbit)
        .collect();
    for scenario in &options.scenarios {
        say(format!("— {}", scenario.title(options.swarm)));
        match scenario {
            Scenario::One => {
                let content = single.as_ref().context("no content")?;
                for seeder in &clients {
                    runs.extend(setup.run(*scenario, content, &[*seeder], 1, say)?);
                }
            }
            Scenario::Four => {
                let content = single.as_ref().context("no content")?;
                let seeders: Vec<Client> = clients.iter().copied().cycle().take(4).collect();
                runs.extend(setup.run(*scenario, content, &seeders, 1, say)?);
            }
            Scenario::Swarm => {
                let content = single.as_ref().context("no content")?;
                runs.extend(setup.run(*scenario, content, &[reference], options.swarm, say)?);
            }
            Scenario::Encrypted => {
                let content = single.as_ref().context("no content")?;
                let encrypted = Setup {
                    leechers: &encrypting,
                    how: How {
                        encrypted: true,
                        ..How::default()
                    },
                    ..setup
                };
                for seeder in [Client::Libtorrent, Client::Btc] {
                    if encrypting.contains(&seeder) {
                        runs.extend(encrypted.run(*scenario, content, &[seeder], 1, say)?);
                    }
                }
            }
            Scenario::Utp => {
                let content = single.as_ref().context("no content")?;
                let utp_clients: Vec<Client> =
                    clients.iter().copied().filter(|c| c.speaks_utp()).collect();
                for seeder in [Client::Btc, Client::Libtorrent] {
                    if !utp_clients.contains(&seeder) {
                        continue;
                    }
                    for transport in [Transport::Tcp, Transport::Utp] {
                        let over = Setup {
                            leechers: &utp_clients,
                            how: How {
                                transport,
                                ..How::default()
                            },
                            ..setup
                        };
                        runs.extend(over.run(*scenario, content, &[seeder], 1, say)?);
                    }
                }
            }
            Scenario::Files => {
                let sizes = small_files(options.size / 4, options.files);
                let content =
                    Content::generate("files", &sizes, false, PIECE_LENGTH, &trackers, 0xf11e)
                        .context("cannot generate the content")?;
                settle();
                runs.extend(setup.run(*scenario, &content, &[reference], 1, say)?);
            }
        }
    }
    drop(tracker);
    Ok(Bench { runs, ..bench })
}

/// `count` file sizes adding up to `total`, from a tenth to nearly twice
/// their mean (at least one byte each).
fn small_files(total: u64, count: usize) -> Vec<u64> {
    let count = count.max(1) as u64;
    let mean = (total / count).max(1);
    let mut sizes: Vec<u64> = (0..count)
        .map(|i| (mean / 10 + mean * ((i * 7919) % 19) / 10).max(1))
        .collect();
    // Spread the difference to `total` over the files, keeping each ≥ 1.
    let sum: u64 = sizes.iter().sum();
    if sum > total {
        let mut over = sum - total;
        for size in sizes.iter_mut() {
            let cut = over.min(*size - 1);
            *size -= cut;
            over -= cut;
        }
    } else if let Some(last) = sizes.last_mut() {
        *last += total - sum;
    }
    sizes
}

/// What every setup shares.
struct Setup<'a> {
    tools: &'a Tools,
    tracker: &'a LocalTracker,
    leechers: &'a [Client],
    rounds: usize,
    /// How every peer connects.
    how: How,
}

impl Setup<'_> {
    /// Starts `seeders`, waits until the tracker lists them all, lets the
    /// first leecher client download once unmeasured, then, for every round
    /// and every leecher client in turn, runs `count` leechers of that
    /// client at once and checks every copy.
    fn run(
        &self,
        scenario: Scenario,
        content: &Content,
        seeders: &[Client],
        count: usize,
        say: &mut dyn FnMut(String),
    ) -> Result<Vec<Run>> {
        let names: Vec<&str> = seeders.iter().map(|c| c.name()).collect();
        let seeder_names = names.join("+")
            + match self.how.transport {
                Transport::Default => "",
                Transport::Tcp => " (TCP)",
                Transport::Utp => " (uTP)",
            };
        let bytes = content.torrent().info().total_length();
        let info_hash = content.torrent().info_hash();
        self.tracker.reset();
        let mut running = seeders
            .iter()
            .map(|c| {
                Peer::seed(
                    self.tools,
                    *c,
                    content.torrent_file(),
                    &content.data_dir(),
                    self.how,
                )
            })
            .collect::<Result<Vec<_>>>()?;
        // Seeders check the data first; slow ones take a while.
        wait_until(
            "the seeders announce",
            Duration::from_secs(60) + Duration::from_secs(bytes / 20_000_000),
            || {
                for seeder in &mut running {
                    seeder.check_running().map_err(std::io::Error::other)?;
                }
                Ok(self.tracker.seeders(&info_hash) as usize >= seeders.len())
            },
        )
        .with_context(|| format!("seeders {seeder_names}"))?;
        if let Some(first) = self.leechers.first() {
            self.leech(content, *first, 1, &mut running)
                .with_context(|| format!("warming up {seeder_names}"))?;
        }

        let mut runs = Vec::new();
        for round in 1..=self.rounds {
            for leecher in self.leechers {
                let (usages, seeder_cpu_seconds, machine_cpu_seconds) = self
                    .leech(content, *leecher, count, &mut running)
                    .with_context(|| {
                        format!("{} from {seeder_names}, round {round}", leecher.name())
                    })?;
                let seconds = median(usages.iter().map(|u| u.seconds).collect());
                say(format!(
                    "{:>6} → {:<11} round {round}: {seconds:.2} s, {:.0} MB/s{}",
                    seeder_names,
                    leecher.name(),
                    bytes as f64 / seconds / 1e6,
                    if count > 1 { " (median leecher)" } else { "" },
                ));
                runs.extend(usages.into_iter().map(|usage| Run {
                    scenario,
                    seeders: seeder_names.clone(),
                    leecher: *leecher,
                    round,
                    bytes,
                    seconds: usage.seconds,
                    cpu_seconds: usage.cpu_seconds,
                    peak_rss_mib: usage.peak_rss_mib,
                    seeder_cpu_seconds,
                    machine_cpu_seconds,
                }));
            }
        }
        Ok(runs)
    }

    /// Runs `count` leechers of `client` at once until each is complete;
    /// checks every copy byte for byte. Returns what each leecher used, the
    /// CPU seconds the seeders used meanwhile, and the CPU seconds the whole
    /// machine used until the copies were on the disk.
    fn leech(
        &self,
        content: &Content,
        client: Client,
        count: usize,
        seeders: &mut [Peer],
    ) -> Result<(Vec<Usage>, f64, f64)> {
        let bytes = content.torrent().info().total_length();
        settle();
        let seeder_cpu = |seeders: &[Peer]| -> Result<f64> {
            seeders.iter().map(Peer::cpu_seconds).sum::<Result<f64>>()
        };
        let seeder_cpu_before = seeder_cpu(seeders)?;
        let machine_before = clients::machine_busy_seconds()?;
        let mut leechers = (0..count)
            .map(|_| Peer::leech(self.tools, client, content.torrent_file(), self.how))
            .collect::<Result<Vec<_>>>()?;
        let mut usages: Vec<Option<Usage>> = vec![None; count];
        let timeout = Duration::from_secs(60) + Duration::from_secs(bytes / 2_000_000);
        let deadline = Instant::now() + timeout;
        while usages.iter().any(Option::is_none) {
            for (leecher, usage) in leechers.iter_mut().zip(&mut usages) {
                if usage.is_none() {
                    *usage = leecher.poll_done()?;
                }
            }
            for seeder in seeders.iter_mut() {
                seeder.check_running()?;
            }
            if Instant::now() >= deadline {
                let done = usages.iter().filter(|u| u.is_some()).count();
                bail!("{done} of {count} done after {timeout:?}");
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let seeder_cpu_seconds = seeder_cpu(seeders)? - seeder_cpu_before;
        // btc writes its copy to the disk before it exits; the others leave
        // that to the kernel's threads, which count here once `sync` is done.
        settle();
        let machine_cpu_seconds = clients::machine_busy_seconds()? - machine_before;
        for leecher in &leechers {
            content
                .verify(&leecher.out)
                .map_err(|e| anyhow::anyhow!("{}'s copy is wrong: {e}", client.name()))?;
        }
        Ok((
            usages.into_iter().flatten().collect(),
            seeder_cpu_seconds,
            machine_cpu_seconds,
        ))
    }
}

/// Flushes every file written so far to the disk (`sync`), so that no run
/// pays for the writeback of data written before it: the content just
/// generated, or a leecher's copy (btc flushes its own when it completes;
/// the others leave it to the kernel).
fn settle() {
    let _ = Command::new("sync").status();
}

/// Today's date (UTC), as `date` prints it.
fn today() -> String {
    Command::new("date")
        .args(["-u", "+%Y-%m-%d"])
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "unknown date".into())
}

/// The CPU model and core count.
fn machine() -> String {
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find_map(|l| l.strip_prefix("model name"))
                .map(|l| l.trim_start_matches([' ', '\t', ':']).to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    format!("{model}, {cores} cores")
}

pub(crate) fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    match values.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => values[n / 2],
        n => (values[n / 2 - 1] + values[n / 2]) / 2.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_files_add_up() {
        for (total, count) in [(256 << 20, 1000), (1 << 20, 7), (5, 10), (0, 3), (1000, 1)] {
            let sizes = small_files(total, count);
            assert_eq!(sizes.len(), count);
            assert!(sizes.iter().all(|s| *s >= 1), "{sizes:?}");
            assert_eq!(
                sizes.iter().sum::<u64>(),
                total.max(count as u64),
                "{total} {count}"
            );
        }
        // They vary.
        let sizes = small_files(256 << 20, 1000);
        assert!(sizes.iter().max() > sizes.iter().min());
    }

    fn run(scenario: Scenario, seeders: &str, leecher: Client, seconds: f64) -> Run {
        Run {
            scenario,
            seeders: seeders.into(),
            leecher,
            round: 1,
            bytes: 1 << 30,
            seconds,
            cpu_seconds: seconds / 2.0,
            peak_rss_mib: 10.0,
            seeder_cpu_seconds: seconds / 4.0,
            machine_cpu_seconds: seconds,
        }
    }

    #[test]
    fn tables_and_comparisons() {
        let bench = Bench {
            date: "2026-11-24".into(),
            machine: "test CPU, 2 cores".into(),
            size: 1 << 30,
            piece_length: PIECE_LENGTH,
            rounds: 3,
            swarm: 8,
            files: 1000,
            bounds: Bounds {
                sha1_mb_s: 2000.0,
                loopback_mb_s: 1500.0,
                file_write_mb_s: 400.0,
            },
            runs: vec![
                run(Scenario::One, "btc", Client::Btc, 2.0),
                run(Scenario::One, "btc", Client::Btc, 4.0),
                run(Scenario::One, "btc", Client::Btc, 3.0),
                run(Scenario::One, "btc", Client::Aria2, 8.0),
                run(Scenario::One, "aria2", Client::Btc, 2.0),
                run(Scenario::One, "aria2", Client::Aria2, 4.0),
            ],
            missing: vec!["qbittorrent (apt-get install qbittorrent-nox)".into()],
        };
        insta::assert_snapshot!(table(&bench));
    }

    /// The whole benchmark at a tiny size, every scenario: it runs btc (the
    /// debug build) and every installed client, checks every copy, and
    /// writes its table. Timings are not asserted.
    #[test]
    fn the_benchmark_runs_at_a_tiny_size() {
        let btc = crate::testnet::target_dir().join("debug/btc");
        let status = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
            .args(["build", "--quiet", "-p", "btc"])
            .status()
            .unwrap();
        assert!(status.success());
        let options = Options {
            size: 2 << 20,
            rounds: 1,
            scenarios: Scenario::ALL.to_vec(),
            clients: Vec::new(),
            swarm: 2,
            files: 20,
        };
        let bench = measure(&btc, &options, &mut |_| {}).unwrap();
        let ran: Vec<Client> = Client::ALL
            .into_iter()
            .filter(|c| bench.runs.iter().any(|r| r.leecher == *c))
            .collect();
        assert!(ran.contains(&Client::Btc), "{ran:?}");
        if std::env::var_os("CI").is_some() {
            // .ci/run installs every client.
            let in_ci: Vec<Client> = Client::ALL.into_iter().filter(|c| c.in_ci()).collect();
            assert!(
                in_ci.iter().all(|c| ran.contains(c)),
                "missing: {:?}",
                bench.missing
            );
        }
        // Every scenario, every leecher, every seeder of `one`.
        let n = ran.len();
        let per_scenario = |s: Scenario| bench.runs.iter().filter(|r| r.scenario == s).count();
        assert_eq!(per_scenario(Scenario::One), n * n);
        assert_eq!(per_scenario(Scenario::Four), n);
        assert_eq!(per_scenario(Scenario::Swarm), 2 * n);
        assert_eq!(per_scenario(Scenario::Files), n);
        let utp = ran.iter().filter(|c| c.speaks_utp()).count();
        let utp_seeders = [Client::Btc, Client::Libtorrent]
            .iter()
            .filter(|c| ran.contains(c))
            .count();
        assert_eq!(per_scenario(Scenario::Utp), utp_seeders * 2 * utp);
        assert!(
            bench.runs.iter().all(|r| r.seconds > 0.0
                && r.peak_rss_mib > 0.0
                && r.cpu_seconds >= 0.0
                && r.seeder_cpu_seconds >= 0.0
                // Counted in ticks of 10 ms: a tiny run may take none.
                && r.machine_cpu_seconds >= 0.0),
            "{:?}",
            bench.runs
        );
        let table = table(&bench);
        for client in &ran {
            assert!(table.contains(&format!("| {} |", client.name())), "{table}");
        }
        assert!(table.contains("btc leecher"), "{table}");
    }
}
