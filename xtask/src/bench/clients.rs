//! The clients the benchmark drives, as seeders and leechers on 127.0.0.1.
//!
//! Every client finds its peers through the benchmark's tracker (the
//! torrent's only announce URL), speaks plaintext, and runs with DHT, local
//! discovery, PEX, UPnP, NAT-PMP and uTP off, in its own process group with
//! its own fresh profile. Otherwise each keeps its defaults: the benchmark
//! compares what users get. `../shared/LAB.md` explains the settings.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};
use serde::Serialize;
use testnet::real::{Process, free_port, installed, qbittorrent_config, qbittorrent_done};

/// GNU time, for the CPU time and peak RSS of clients that exit when done.
pub(crate) const TIME: &str = "/usr/bin/time";

/// How often qBittorrent's web API is asked whether it is done; its times
/// are so up to this much late.
const API_POLL: Duration = Duration::from_millis(100);

/// A client the benchmark can run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Client {
    /// This project's `btc download` and `btc seed`.
    Btc,
    /// libtorrent (rasterbar) through python3-libtorrent.
    Libtorrent,
    /// qbittorrent-nox, driven through its web API.
    Qbittorrent,
    /// aria2c.
    Aria2,
    /// rqbit, if `cargo install rqbit` put it on the PATH (it takes about
    /// 14 minutes to build here, so CI goes without).
    Rqbit,
}

impl Client {
    /// Every client, in the order tables list them.
    pub(crate) const ALL: [Client; 5] = [
        Client::Btc,
        Client::Libtorrent,
        Client::Qbittorrent,
        Client::Aria2,
        Client::Rqbit,
    ];

    /// Its name in tables and on the command line.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Client::Btc => "btc",
            Client::Libtorrent => "libtorrent",
            Client::Qbittorrent => "qbittorrent",
            Client::Aria2 => "aria2",
            Client::Rqbit => "rqbit",
        }
    }

    /// The client named `name`.
    pub(crate) fn parse(name: &str) -> Option<Client> {
        Client::ALL.into_iter().find(|c| c.name() == name)
    }

    /// Whether the bench runs it over uTP alone (rqbit's uTP is
    /// experimental and aria2 has none).
    pub(crate) fn speaks_utp(self) -> bool {
        matches!(self, Client::Btc | Client::Libtorrent | Client::Qbittorrent)
    }

    /// How to install it.
    pub(crate) fn install(self) -> &'static str {
        match self {
            Client::Btc => "cargo build --release -p btc",
            Client::Libtorrent => "apt-get install python3-libtorrent",
            Client::Qbittorrent => "apt-get install qbittorrent-nox",
            Client::Aria2 => "apt-get install aria2",
            Client::Rqbit => "cargo install rqbit --locked",
        }
    }

    /// Whether `.ci/run` installs it (a Debian package).
    #[cfg(test)]
    pub(crate) fn in_ci(self) -> bool {
        self != Client::Rqbit
    }
}

/// What the benchmark needs to start clients.
#[derive(Debug)]
pub(crate) struct Tools {
    /// The btc binary.
    pub(crate) btc: PathBuf,
    /// A python3 that can import libtorrent, if any.
    pub(crate) python: Option<PathBuf>,
    /// Where the libtorrent script is written, and scratch folders go.
    pub(crate) work: tempfile::TempDir,
}

impl Tools {
    /// Finds what is installed.
    pub(crate) fn new(btc: PathBuf) -> Result<Tools> {
        let work = tempfile::tempdir()?;
        std::fs::write(
            work.path().join("lt_peer.py"),
            testnet::real::LT_PEER_SCRIPT,
        )?;
        // Debian's module is for Debian's python3, which may not be the
        // first python3 on PATH (pyenv, a venv).
        let python = ["/usr/bin/python3", "python3"]
            .into_iter()
            .map(PathBuf::from)
            .find(|python| {
                Command::new(python)
                    .args(["-c", "import libtorrent"])
                    .stdout(std::process::Stdio::null())
                    .stderr(std::process::Stdio::null())
                    .status()
                    .is_ok_and(|s| s.success())
            });
        Ok(Tools { btc, python, work })
    }

    /// Whether `client` can run here.
    pub(crate) fn available(&self, client: Client) -> bool {
        match client {
            Client::Btc => self.btc.is_file(),
            Client::Libtorrent => self.python.is_some(),
            Client::Qbittorrent => installed("qbittorrent-nox"),
            Client::Aria2 => installed("aria2c"),
            Client::Rqbit => installed("rqbit"),
        }
    }

    fn scratch(&self) -> Result<tempfile::TempDir> {
        Ok(tempfile::tempdir_in(self.work.path())?)
    }
}

/// What one finished leecher used.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Usage {
    /// From start to a complete, verified download, in seconds.
    pub(crate) seconds: f64,
    /// User plus system CPU seconds of the leecher process.
    pub(crate) cpu_seconds: f64,
    /// Peak resident memory of the leecher process, in MiB.
    pub(crate) peak_rss_mib: f64,
}

/// A running client.
#[derive(Debug)]
pub(crate) struct Peer {
    pub(crate) client: Client,
    process: Process,
    started: Instant,
    /// qBittorrent's web API port.
    api: Option<u16>,
    /// When its API was last asked.
    asked: Option<Instant>,
    /// GNU time's report, for clients that exit when done.
    time_report: Option<PathBuf>,
    /// Where a leecher downloads to.
    pub(crate) out: PathBuf,
    /// Its profile and download folders, removed on drop.
    _scratch: tempfile::TempDir,
}

/// What every peer of a run connects over.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) enum Transport {
    /// Each client's own default (btc's: uTP first, TCP if it fails; the
    /// others here: TCP).
    #[default]
    Default,
    /// TCP alone.
    Tcp,
    /// uTP alone, for the clients that speak it.
    Utp,
}

/// How every peer of a run connects.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct How {
    /// Only MSE/PE connections with RC4, both ways.
    pub(crate) encrypted: bool,
    /// Over what.
    pub(crate) transport: Transport,
}

impl Peer {
    /// Starts `client` seeding `torrent` from `data`, the folder that holds
    /// its content, connecting as `how` says.
    pub(crate) fn seed(
        tools: &Tools,
        client: Client,
        torrent: &Path,
        data: &Path,
        how: How,
    ) -> Result<Peer> {
        Peer::start(tools, client, torrent, Some(data), how)
    }

    /// Starts `client` downloading `torrent` into a fresh folder,
    /// connecting as `how` says.
    pub(crate) fn leech(tools: &Tools, client: Client, torrent: &Path, how: How) -> Result<Peer> {
        Peer::start(tools, client, torrent, None, how)
    }

    fn start(
        tools: &Tools,
        client: Client,
        torrent: &Path,
        data: Option<&Path>,
        how: How,
    ) -> Result<Peer> {
        let encrypted = how.encrypted;
        if how.transport == Transport::Utp && !client.speaks_utp() {
            bail!("{} speaks no uTP", client.name());
        }
        let scratch = tools.scratch()?;
        let out = match data {
            Some(data) => data.to_path_buf(),
            None => {
                let out = scratch.path().join("out");
                std::fs::create_dir(&out)?;
                out
            }
        };
        let seeding = data.is_some();
        let port = free_port()?.to_string();
        let mut api = None;
        let mut command = match client {
            Client::Btc => {
                let mut command = Command::new(&tools.btc);
                if seeding {
                    command.args(["seed", "-q", "-d"]).arg(&out);
                } else {
                    command.args(["download", "-q", "-o"]).arg(&out);
                }
                command
                    .args(["--port", &port, "--bind", "127.0.0.1", "--no-dht"])
                    .args(["--encryption", if encrypted { "require" } else { "prefer" }])
                    .args(match how.transport {
                        Transport::Default => &[][..],
                        Transport::Tcp => &["--transport", "tcp"],
                        Transport::Utp => &["--transport", "utp"],
                    })
                    .arg(torrent)
                    .env("XDG_STATE_HOME", scratch.path());
                command
            }
            Client::Libtorrent => {
                let python = tools
                    .python
                    .as_ref()
                    .context("python3-libtorrent is not installed")?;
                let mut command = Command::new(python);
                command
                    .arg(tools.work.path().join("lt_peer.py"))
                    .arg(if seeding { "seed" } else { "leech" })
                    .arg(torrent)
                    .arg(&out)
                    .arg(&port);
                if encrypted {
                    command.env("LT_ENCRYPTION", "require");
                }
                if how.transport == Transport::Utp {
                    command.env("LT_TRANSPORT", "utp");
                }
                command
            }
            Client::Aria2 => {
                let mut command = Command::new("aria2c");
                command
                    .args(["--no-conf", "--enable-dht=false", "--enable-dht6=false"])
                    .args(["--bt-enable-lpd=false", "--enable-peer-exchange=false"])
                    .args(["--bt-tracker-interval=1", "--file-allocation=none"])
                    .args(["--summary-interval=0", "--console-log-level=error"])
                    .arg(format!("--listen-port={port}"))
                    .arg(if seeding {
                        "--seed-ratio=0.0"
                    } else {
                        "--seed-time=0"
                    })
                    .arg("-d")
                    .arg(&out)
                    .arg(torrent);
                if seeding {
                    command.arg("-V");
                }
                if encrypted {
                    command.args(testnet::real::ARIA2_REQUIRE_CRYPTO);
                }
                command
            }
            Client::Rqbit => {
                if encrypted {
                    bail!("rqbit speaks no MSE/PE");
                }
                let mut command = Command::new("rqbit");
                command
                    .args([
                        "--disable-dht",
                        "--disable-dht-persistence",
                        "--disable-lsd",
                    ])
                    .args(["--disable-upnp-port-forward", "--ipv4-only"])
                    .args(["--listen-ip", "127.0.0.1", "--listen-port", &port])
                    // rqbit 9.1 announces port 4240 unless told.
                    .args(["--announce-port", &port])
                    .args(["-i", "1s", "--http-api-listen-addr"])
                    .arg(format!("127.0.0.1:{}", free_port()?))
                    .args(["download", "--overwrite", "-o"])
                    .arg(&out);
                if !seeding {
                    // Exit once the download is complete.
                    command.arg("-e");
                }
                command
                    .arg(torrent)
                    // Its session files go with the scratch folder.
                    .env("HOME", scratch.path())
                    .env("XDG_DATA_HOME", scratch.path())
                    .env("XDG_CACHE_HOME", scratch.path())
                    .env("XDG_CONFIG_HOME", scratch.path());
                command
            }
            Client::Qbittorrent => {
                let web = free_port()?;
                api = Some(web);
                let config = scratch.path().join("profile/qBittorrent/config");
                std::fs::create_dir_all(&config)?;
                std::fs::write(
                    config.join("qBittorrent.conf"),
                    qbittorrent_config(
                        &port,
                        web,
                        if encrypted {
                            testnet::real::Crypto::Required
                        } else {
                            testnet::real::Crypto::Plaintext
                        },
                        if how.transport == Transport::Utp {
                            engine::Transport::Utp
                        } else {
                            engine::Transport::Tcp
                        },
                    ),
                )?;
                let mut command = Command::new("qbittorrent-nox");
                command
                    .arg(format!(
                        "--profile={}",
                        scratch.path().join("profile").display()
                    ))
                    .arg(format!("--save-path={}", out.display()))
                    .arg(torrent);
                command
            }
        };
        // Clients that exit when done are timed by GNU time; qBittorrent
        // runs on and is measured through /proc.
        let time_report =
            (!seeding && client != Client::Qbittorrent).then(|| scratch.path().join("time.txt"));
        let process = match &time_report {
            Some(report) => {
                let mut timed = Command::new(TIME);
                timed.arg("-f").arg("%e %U %S %M").arg("-o").arg(report);
                timed.arg(command.get_program()).args(command.get_args());
                for (key, value) in command.get_envs() {
                    if let Some(value) = value {
                        timed.env(key, value);
                    }
                }
                Process::spawn(client.name(), &mut timed)?
            }
            None => Process::spawn(client.name(), &mut command)?,
        };
        Ok(Peer {
            client,
            process,
            started: Instant::now(),
            api,
            asked: None,
            time_report,
            out,
            _scratch: scratch,
        })
    }

    /// User plus system CPU seconds the client has used so far (for
    /// seeders, which run without GNU time).
    pub(crate) fn cpu_seconds(&self) -> Result<f64> {
        Ok(proc_usage(self.process.id())?.0)
    }

    /// Fails if the client has exited (for seeders).
    pub(crate) fn check_running(&mut self) -> Result<()> {
        Ok(self.process.check_running()?)
    }

    /// For a leecher: its usage once its download is complete, or `None`
    /// while it is still running. A client that exits with an error fails.
    pub(crate) fn poll_done(&mut self) -> Result<Option<Usage>> {
        if let Some(api) = self.api {
            self.process.check_running()?;
            // Each question costs qBittorrent CPU: ask 10 times a second.
            if self.asked.is_some_and(|at| at.elapsed() < API_POLL) {
                return Ok(None);
            }
            self.asked = Some(Instant::now());
            if !qbittorrent_done(api)? {
                return Ok(None);
            }
            let seconds = self.started.elapsed().as_secs_f64();
            let (cpu_seconds, peak_rss_mib) = proc_usage(self.process.id())?;
            return Ok(Some(Usage {
                seconds,
                cpu_seconds,
                peak_rss_mib,
            }));
        }
        let Some(status) = self.process.try_wait()? else {
            return Ok(None);
        };
        let seconds = self.started.elapsed().as_secs_f64();
        let report = self
            .time_report
            .as_ref()
            .context("a seeder does not finish")?;
        let text = std::fs::read_to_string(report).unwrap_or_default();
        if !status.success() {
            bail!("{} failed ({status}): {}", self.client.name(), text.trim());
        }
        let (cpu_seconds, peak_rss_mib) =
            parse_time(&text).with_context(|| format!("cannot read {TIME}'s report {text:?}"))?;
        Ok(Some(Usage {
            seconds,
            cpu_seconds,
            peak_rss_mib,
        }))
    }
}

/// CPU seconds (user + system) and peak RSS in MiB of a running process,
/// from `/proc`.
fn proc_usage(pid: u32) -> Result<(f64, f64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    parse_proc(&stat, &status).with_context(|| format!("cannot read /proc/{pid}"))
}

/// Reads `utime` and `stime` (fields 14 and 15, in clock ticks of 1/100 s,
/// which Linux fixes for `/proc`) from `/proc/PID/stat`, and `VmHWM` (kB)
/// from `/proc/PID/status`.
pub(crate) fn parse_proc(stat: &str, status: &str) -> Option<(f64, f64)> {
    // The command name (field 2) is in parentheses and may hold spaces.
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // `rest` starts at field 3, so field N is at index N - 3.
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    let hwm_kib: f64 = status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()?;
    Some(((utime + stime) / 100.0, hwm_kib / 1024.0))
}

/// CPU seconds the whole machine has spent busy since boot, every process
/// and kernel thread together (the `cpu` line of `/proc/stat`).
pub(crate) fn machine_busy_seconds() -> Result<f64> {
    let stat = std::fs::read_to_string("/proc/stat")?;
    parse_machine_busy(&stat).context("cannot read the cpu line of /proc/stat")
}

/// Sums `user nice system irq softirq` (in ticks of 1/100 s) from the
/// `cpu` line of `/proc/stat`; idle, iowait and steal are not busy. Guest
/// time is already inside `user` and `nice`.
pub(crate) fn parse_machine_busy(stat: &str) -> Option<f64> {
    let line = stat.lines().find_map(|l| l.strip_prefix("cpu "))?;
    let fields: Vec<u64> = line
        .split_whitespace()
        .map(str::parse)
        .collect::<Result<_, _>>()
        .ok()?;
    let [user, nice, system, _idle, _iowait, irq, softirq, ..] = fields[..] else {
        return None;
    };
    Some((user + nice + system + irq + softirq) as f64 / 100.0)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn machine_busy_time_is_user_nice_system_irq_and_softirq() {
        let stat =
            "cpu  100 20 300 9000 50 4 6 70 0 0\ncpu0 50 10 150 4500 25 2 3 35 0 0\nintr 1\n";
        assert_eq!(parse_machine_busy(stat), Some(4.3));
        assert_eq!(parse_machine_busy("cpu  1 2 3\n"), None);
        assert_eq!(parse_machine_busy("cpu0 1 2 3 4 5 6 7 8\n"), None);
        assert_eq!(parse_machine_busy("cpu  1 2 x 4 5 6 7 8\n"), None);
    }

    #[test]
    fn gnu_time_reports_parse() {
        assert_eq!(parse_time("3.21 1.50 0.75 20480\n"), Some((2.25, 20.0)));
        assert_eq!(
            parse_time("Command exited with non-zero status 1\n0.01 0.00 0.00 1024\n"),
            Some((0.0, 1.0))
        );
        assert_eq!(parse_time("garbage"), None);
    }

    #[test]
    fn proc_files_parse() {
        let stat = "4242 (qbittorrent nox) S 1 4242 4242 0 -1 4194560 5000 0 0 0 \
                    150 50 0 0 20 0 12 0 100 1000000 2000 18446744073709551615";
        let status =
            "Name:\tqbittorrent-nox\nVmPeak:\t 900000 kB\nVmHWM:\t   51200 kB\nVmRSS:\t 40000 kB\n";
        assert_eq!(parse_proc(stat, status), Some((2.0, 50.0)));
        assert_eq!(parse_proc("4242 (x) S 1", status), None);
        assert_eq!(parse_proc(stat, "Name:\tx\n"), None);
    }

    #[test]
    fn client_names_round_trip() {
        for client in Client::ALL {
            assert_eq!(Client::parse(client.name()), Some(client));
        }
        assert_eq!(Client::parse("rtorrent"), None);
    }
}
