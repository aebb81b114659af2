//! Real BitTorrent clients as child processes on 127.0.0.1: aria2,
//! Transmission and libtorrent (Debian's `aria2`, `transmission-daemon` and
//! `python3-libtorrent`; see `../shared/LAB.md` for the settings each
//! needs).
//!
//! Each client runs in its own process group with its own fresh profile,
//! with DHT, local discovery, PEX and port mapping off, and is killed with
//! its whole group when its value is dropped, also when a test fails.

use std::io;
use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A child process in its own process group, killed with the group on
/// drop.
#[derive(Debug)]
pub struct Process {
    child: Child,
    name: &'static str,
    /// Whether the child was waited for (its id may then be reused).
    reaped: bool,
}

impl Process {
    /// Starts `command` in a new process group, without a terminal.
    pub fn spawn(name: &'static str, command: &mut Command) -> io::Result<Process> {
        let child = command
            .process_group(0)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| {
                io::Error::new(
                    e.kind(),
                    format!("cannot start {name} ({e}); is it installed?"),
                )
            })?;
        Ok(Process {
            child,
            name,
            reaped: false,
        })
    }

    /// Fails if the process has exited.
    pub fn check_running(&mut self) -> io::Result<()> {
        match self.child.try_wait()? {
            Some(status) => Err(io::Error::other(format!("{} exited: {status}", self.name))),
            None => Ok(()),
        }
    }

    /// The child's process id (also its process group's).
    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// The exit status if the process has exited, without waiting. Once it
    /// has, whatever it started in its group is killed.
    pub fn try_wait(&mut self) -> io::Result<Option<std::process::ExitStatus>> {
        let status = self.child.try_wait()?;
        if status.is_some() {
            self.reaped = true;
            self.kill_group();
        }
        Ok(status)
    }

    /// Waits (at most `timeout`) for the process to exit by itself.
    pub fn wait_exit(&mut self, timeout: Duration) -> io::Result<std::process::ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.try_wait()? {
                return Ok(status);
            }
            if Instant::now() >= deadline {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("{} still running after {timeout:?}", self.name),
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Process {
    /// Kills the process group the child leads (itself and anything it
    /// started). The group outlives a reaped leader while members remain;
    /// once none do, the call fails harmlessly.
    fn kill_group(&self) {
        if let Some(group) = i32::try_from(self.child.id())
            .ok()
            .and_then(rustix::process::Pid::from_raw)
        {
            let _ = rustix::process::kill_process_group(group, rustix::process::Signal::KILL);
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        if self.reaped {
            return;
        }
        self.kill_group();
        // If the group kill could not be sent, the child at least.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A port free for both TCP and UDP on 127.0.0.1, for a client that takes
/// its port on the command line.
pub fn free_port() -> io::Result<u16> {
    for _ in 0..100 {
        let tcp = TcpListener::bind("127.0.0.1:0")?;
        let port = tcp.local_addr()?.port();
        if UdpSocket::bind(("127.0.0.1", port)).is_ok() {
            return Ok(port);
        }
    }
    Err(io::Error::other("no free port"))
}

/// Whether `program` can be run (found on `PATH`).
pub fn installed(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|dir| dir.join(program).is_file()))
}

/// Polls `ready` every 50 ms until it holds or `timeout` passes.
pub fn wait_until(
    what: &str,
    timeout: Duration,
    mut ready: impl FnMut() -> io::Result<bool>,
) -> io::Result<()> {
    let deadline = Instant::now() + timeout;
    loop {
        if ready()? {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("{what}: not after {timeout:?}"),
            ));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// aria2's options for taking and making only encrypted connections
/// (MSE/PE with RC4).
pub const ARIA2_REQUIRE_CRYPTO: &[&str] =
    &["--bt-require-crypto=true", "--bt-min-crypto-level=arc4"];

/// aria2 (`aria2c`), as a seeder or a leecher.
#[derive(Debug)]
pub struct Aria2 {
    process: Process,
    /// The port it accepts peers on.
    pub port: u16,
}

impl Aria2 {
    fn command(torrent: &Path, dir: &Path, port: u16) -> Command {
        let mut command = Command::new("aria2c");
        command
            .args([
                "--no-conf",
                "--enable-dht=false",
                "--enable-dht6=false",
                "--bt-enable-lpd=false",
                "--enable-peer-exchange=false",
                "--bt-tracker-interval=1",
                "--file-allocation=none",
                "--summary-interval=0",
                "--console-log-level=warn",
            ])
            .arg(format!("--listen-port={port}"))
            .arg("-d")
            .arg(dir)
            .arg(torrent);
        command
    }

    /// Seeds `torrent` from `dir` (which holds its data) until dropped.
    pub fn seed(torrent: &Path, dir: &Path) -> io::Result<Aria2> {
        Aria2::seed_with(torrent, dir, &[])
    }

    /// [`Aria2::seed`] with more options, such as
    /// [`ARIA2_REQUIRE_CRYPTO`].
    pub fn seed_with(torrent: &Path, dir: &Path, options: &[&str]) -> io::Result<Aria2> {
        let port = free_port()?;
        let mut command = Aria2::command(torrent, dir, port);
        command.args(["-V", "--seed-ratio=0.0"]).args(options);
        Ok(Aria2 {
            process: Process::spawn("aria2c", &mut command)?,
            port,
        })
    }

    /// Downloads `torrent` into `dir` (finding peers through its tracker)
    /// and exits when done.
    pub fn leech(torrent: &Path, dir: &Path) -> io::Result<Aria2> {
        Aria2::leech_with(torrent, dir, &[])
    }

    /// [`Aria2::leech`] with more options, such as
    /// [`ARIA2_REQUIRE_CRYPTO`].
    pub fn leech_with(torrent: &Path, dir: &Path, options: &[&str]) -> io::Result<Aria2> {
        let port = free_port()?;
        let mut command = Aria2::command(torrent, dir, port);
        command.arg("--seed-time=0").args(options);
        Ok(Aria2 {
            process: Process::spawn("aria2c", &mut command)?,
            port,
        })
    }

    /// Where peers reach it.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// The process.
    pub fn process(&mut self) -> &mut Process {
        &mut self.process
    }
}

/// Transmission (`transmission-daemon` 3.00, driven with
/// `transmission-remote`). It never dials peers on 127.0.0.1 that a
/// tracker lists, so as a leecher it must be dialled by its seeder.
#[derive(Debug)]
pub struct Transmission {
    process: Process,
    /// The port it accepts peers on.
    pub port: u16,
    rpc_port: u16,
    /// Its profile folder (kept until drop).
    _profile: tempfile::TempDir,
}

impl Transmission {
    /// Starts a daemon that downloads into (and seeds from) `dir`.
    pub fn start(dir: &Path) -> io::Result<Transmission> {
        Transmission::start_with(dir, 0, false)
    }

    /// [`Transmission::start`] with its `encryption` setting (0 prefers
    /// plaintext, 1 prefers encryption, 2 requires it) and uTP on or off
    /// (on, it takes uTP connections beside TCP ones).
    pub fn start_with(dir: &Path, encryption: u8, utp: bool) -> io::Result<Transmission> {
        let profile = tempfile::tempdir()?;
        let port = free_port()?;
        let rpc_port = free_port()?;
        let settings = serde_json::json!({
            "dht-enabled": false,
            "lpd-enabled": false,
            "pex-enabled": false,
            "utp-enabled": utp,
            "port-forwarding-enabled": false,
            "bind-address-ipv4": "127.0.0.1",
            "bind-address-ipv6": "::1",
            "peer-port": port,
            "peer-port-random-on-start": false,
            "rpc-port": rpc_port,
            "rpc-bind-address": "127.0.0.1",
            "rpc-authentication-required": false,
            "rpc-whitelist-enabled": false,
            "rpc-host-whitelist-enabled": false,
            "rename-partial-files": false,
            "incomplete-dir-enabled": false,
            "download-dir": dir,
            "encryption": encryption,
            "ratio-limit-enabled": false,
            "idle-seeding-limit-enabled": false,
            "speed-limit-up-enabled": false,
            "speed-limit-down-enabled": false,
            "start-added-torrents": true,
            "message-level": 1,
        });
        std::fs::write(profile.path().join("settings.json"), settings.to_string())?;
        let mut command = Command::new("transmission-daemon");
        command.arg("-f").arg("-g").arg(profile.path());
        let mut transmission = Transmission {
            process: Process::spawn("transmission-daemon", &mut command)?,
            port,
            rpc_port,
            _profile: profile,
        };
        // Ready when its RPC answers.
        wait_until(
            "transmission-daemon answers",
            Duration::from_secs(20),
            || {
                transmission.process.check_running()?;
                Ok(transmission.remote(&["-l"]).is_ok())
            },
        )?;
        Ok(transmission)
    }

    /// Runs `transmission-remote` against the daemon; its output on success.
    pub fn remote(&self, args: &[&str]) -> io::Result<String> {
        let output = Command::new("transmission-remote")
            .arg(format!("127.0.0.1:{}", self.rpc_port))
            .args(args)
            .stdin(Stdio::null())
            .output()?;
        if output.status.success() {
            Ok(String::from_utf8_lossy(&output.stdout).into_owned())
        } else {
            Err(io::Error::other(format!(
                "transmission-remote {args:?}: {}",
                String::from_utf8_lossy(&output.stderr).trim()
            )))
        }
    }

    /// Adds a torrent file (it then checks what `dir` holds and seeds or
    /// downloads).
    pub fn add(&self, torrent: &Path) -> io::Result<()> {
        let path: PathBuf = torrent.canonicalize()?;
        self.remote(&["-a", &path.to_string_lossy()]).map(drop)
    }

    /// Percent done of the first torrent, as `transmission-remote -l` says.
    pub fn percent_done(&self) -> io::Result<Option<u32>> {
        let list = self.remote(&["-l"])?;
        // "    ID   Done       Have  ETA ..." then one line per torrent.
        Ok(list
            .lines()
            .nth(1)
            .and_then(|line| line.split_whitespace().nth(1))
            .and_then(|done| done.trim_end_matches('%').parse().ok()))
    }

    /// Where peers reach it.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// The process.
    pub fn process(&mut self) -> &mut Process {
        &mut self.process
    }
}

/// The libtorrent peer script, run by a python3 with python3-libtorrent:
/// `lt_peer.py seed|leech TORRENT SAVE_PATH PORT [HOST:PORT...]`.
pub const LT_PEER_SCRIPT: &str = include_str!("lt_peer.py");

/// libtorrent (rasterbar, through Debian's python3-libtorrent), as a seeder
/// or a leecher that exits once it has every piece.
#[derive(Debug)]
pub struct Libtorrent {
    process: Process,
    /// The address it accepts peers on.
    pub ip: std::net::IpAddr,
    /// The port it accepts peers on.
    pub port: u16,
    /// Where its script is written (kept until drop).
    _script: tempfile::TempDir,
}

/// How a real client treats encryption (MSE/PE).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Crypto {
    /// Plaintext (libtorrent dials in plaintext and takes either;
    /// qBittorrent has encryption off), as every peer of the benchmark's
    /// plain scenarios.
    #[default]
    Plaintext,
    /// The client's own defaults.
    Defaults,
    /// Encrypted connections only, with RC4.
    Required,
}

/// Where a libtorrent peer listens and whether its DHT runs.
#[derive(Clone, Copy, Debug)]
pub struct LtNetwork {
    /// Its address (a loopback one).
    pub ip: std::net::IpAddr,
    /// A DHT node to bootstrap from; `None` leaves its DHT off.
    pub dht: Option<SocketAddr>,
    /// Its upload rate cap, in bytes per second.
    pub upload_limit: Option<u64>,
    /// How it treats encryption.
    pub crypto: Crypto,
    /// What it dials and accepts over: TCP, uTP or both.
    pub transport: engine::Transport,
}

impl Default for LtNetwork {
    fn default() -> LtNetwork {
        LtNetwork {
            ip: std::net::Ipv4Addr::LOCALHOST.into(),
            dht: None,
            upload_limit: None,
            crypto: Crypto::Plaintext,
            transport: engine::Transport::Tcp,
        }
    }
}

impl Libtorrent {
    fn start(
        mode: &str,
        torrent: &std::ffi::OsStr,
        dir: &Path,
        peers: &[SocketAddr],
        network: LtNetwork,
    ) -> io::Result<Libtorrent> {
        let script = tempfile::tempdir()?;
        let path = script.path().join("lt_peer.py");
        std::fs::write(&path, LT_PEER_SCRIPT)?;
        let port = free_port()?;
        // Debian's module is for Debian's python3, which may not be the
        // first python3 on PATH.
        let python = if Path::new("/usr/bin/python3").exists() {
            "/usr/bin/python3"
        } else {
            "python3"
        };
        let mut command = Command::new(python);
        command
            .arg(&path)
            .arg(mode)
            .arg(torrent)
            .arg(dir)
            .arg(port.to_string())
            .args(peers.iter().map(ToString::to_string))
            .env("LT_IP", network.ip.to_string());
        if let Some(dht) = network.dht {
            command.env("LT_DHT", dht.to_string());
        }
        if let Some(limit) = network.upload_limit {
            command.env("LT_UPLOAD_LIMIT", limit.to_string());
        }
        match network.transport {
            engine::Transport::Tcp => {}
            engine::Transport::Utp => {
                command.env("LT_TRANSPORT", "utp");
            }
            engine::Transport::Both => {
                command.env("LT_TRANSPORT", "both");
            }
        }
        match network.crypto {
            Crypto::Plaintext => {}
            Crypto::Defaults => {
                command.env("LT_ENCRYPTION", "default");
            }
            Crypto::Required => {
                command.env("LT_ENCRYPTION", "require");
            }
        }
        Ok(Libtorrent {
            process: Process::spawn("python3-libtorrent", &mut command)?,
            ip: network.ip,
            port,
            _script: script,
        })
    }

    /// Seeds `torrent` from `dir` (which holds its data) until dropped,
    /// finding peers through its tracker and dialling `peers`.
    pub fn seed(torrent: &Path, dir: &Path, peers: &[SocketAddr]) -> io::Result<Libtorrent> {
        Libtorrent::start(
            "seed",
            torrent.as_os_str(),
            dir,
            peers,
            LtNetwork::default(),
        )
    }

    /// Seeds `torrent` from `dir` at `network.ip`, announcing it in the
    /// DHT `network.dht` leads to.
    pub fn seed_in(torrent: &Path, dir: &Path, network: LtNetwork) -> io::Result<Libtorrent> {
        Libtorrent::start("seed", torrent.as_os_str(), dir, &[], network)
    }

    /// Downloads a magnet link into `dir` at `network.ip`, finding its
    /// peers (and metadata) through the DHT; exits with status 0 once
    /// done.
    pub fn leech_magnet(magnet: &str, dir: &Path, network: LtNetwork) -> io::Result<Libtorrent> {
        Libtorrent::start("leech", magnet.as_ref(), dir, &[], network)
    }

    /// Downloads `torrent` into `dir` at `network.ip`, dialling `peers`
    /// (and finding more through its tracker, the DHT if `network.dht`,
    /// and peer exchange); exits with status 0 once done.
    pub fn leech_in(
        torrent: &Path,
        dir: &Path,
        peers: &[SocketAddr],
        network: LtNetwork,
    ) -> io::Result<Libtorrent> {
        Libtorrent::start("leech", torrent.as_os_str(), dir, peers, network)
    }

    /// Downloads `torrent` into `dir`, finding peers through its tracker
    /// and dialling `peers`; exits with status 0 once done.
    pub fn leech(torrent: &Path, dir: &Path, peers: &[SocketAddr]) -> io::Result<Libtorrent> {
        Libtorrent::start(
            "leech",
            torrent.as_os_str(),
            dir,
            peers,
            LtNetwork::default(),
        )
    }

    /// Where peers reach it.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::new(self.ip, self.port)
    }

    /// The process.
    pub fn process(&mut self) -> &mut Process {
        &mut self.process
    }
}

/// qBittorrent's settings: the listen port on 127.0.0.1, encryption as
/// `crypto` says (`Session\Encryption` 2 off, 1 required, else its
/// default), over `transport` (`Session\BTProtocol`), several connections per IP, no DHT, LSD, PEX or
/// UPnP, no queueing, and its web API on 127.0.0.1 without login.
pub fn qbittorrent_config(
    port: &str,
    web: u16,
    crypto: Crypto,
    transport: engine::Transport,
) -> String {
    let encryption = match crypto {
        Crypto::Plaintext => "Session\\Encryption=2\n",
        Crypto::Required => "Session\\Encryption=1\n",
        Crypto::Defaults => "",
    };
    let protocol = match transport {
        engine::Transport::Tcp => "TCP",
        engine::Transport::Utp => "UTP",
        engine::Transport::Both => "Both",
    };
    format!(
        "[LegalNotice]\nAccepted=true\n\n\
         [BitTorrent]\n\
         Session\\Port={port}\n\
         Session\\InterfaceAddress=127.0.0.1\n\
         Session\\DHTEnabled=false\n\
         Session\\LSDEnabled=false\n\
         Session\\PeXEnabled=false\n\
         {encryption}\
         Session\\MultiConnectionsPerIp=true\n\
         Session\\BTProtocol={protocol}\n\
         Session\\QueueingSystemEnabled=false\n\n\
         [Preferences]\n\
         Connection\\UPnP=false\n\
         WebUI\\Address=127.0.0.1\n\
         WebUI\\Port={web}\n\
         WebUI\\LocalHostAuth=false\n\
         WebUI\\CSRFProtection=false\n\
         WebUI\\HostHeaderValidation=false\n"
    )
}

/// Whether qBittorrent's (only) torrent is complete and seeding, asked of
/// its web API on 127.0.0.1:`api`. An API that does not answer yet (still
/// starting) means not done; a torrent in error fails.
pub fn qbittorrent_done(api: u16) -> io::Result<bool> {
    let Ok(body) = http_get(api, "/api/v2/torrents/info") else {
        return Ok(false);
    };
    let torrents: serde_json::Value = serde_json::from_slice(&body).map_err(|e| {
        io::Error::other(format!(
            "qBittorrent's API answered {:?}: {e}",
            String::from_utf8_lossy(&body)
        ))
    })?;
    let Some(torrent) = torrents.get(0) else {
        return Ok(false);
    };
    let state = torrent["state"].as_str().unwrap_or_default();
    if state == "error" || state == "missingFiles" {
        return Err(io::Error::other(format!(
            "qBittorrent's torrent is in state {state}"
        )));
    }
    let progress = torrent["progress"].as_f64().unwrap_or_default();
    Ok(progress >= 1.0 && state.ends_with("UP") && state != "checkingUP")
}

/// A bounded GET on 127.0.0.1:`port`; the body of a 200 answer. The body
/// ends at its `Content-Length`: qBittorrent keeps the connection open
/// whatever the request asks.
fn http_get(port: u16, path: &str) -> io::Result<Vec<u8>> {
    use std::io::{Read as _, Write as _};
    const MAX: usize = 16 << 20;
    let fail = |what: String| Err(io::Error::other(what));
    let timeout = Duration::from_secs(2);
    let mut stream =
        std::net::TcpStream::connect_timeout(&SocketAddr::from(([127, 0, 0, 1], port)), timeout)?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n"
    )?;
    let mut answer = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    loop {
        if let Some(split) = answer.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&answer[..split]).to_ascii_lowercase();
            let status = head.lines().next().unwrap_or_default().to_string();
            if !status.starts_with("http/1.1 200") && !status.starts_with("http/1.0 200") {
                return fail(status);
            }
            let length = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|l| l.trim().parse::<usize>().ok());
            let body = &answer[split + 4..];
            match length {
                Some(length) if length > MAX => {
                    return fail(format!("an answer of {length} bytes"));
                }
                Some(length) if body.len() >= length => return Ok(body[..length].to_vec()),
                _ => {}
            }
        }
        let read = stream.read(&mut buf)?;
        if read == 0 {
            return fail("the connection closed before the whole answer".into());
        }
        answer.extend_from_slice(&buf[..read]);
        if answer.len() > MAX {
            return fail(format!("an answer over {MAX} bytes"));
        }
    }
}

/// qBittorrent (`qbittorrent-nox`) with one torrent, seeding what `dir`
/// holds or downloading into it, watched through its web API.
#[derive(Debug)]
pub struct Qbittorrent {
    process: Process,
    /// The port it accepts peers on.
    pub port: u16,
    api: u16,
    /// Its profile folder (kept until drop).
    _profile: tempfile::TempDir,
}

impl Qbittorrent {
    /// Starts it with `torrent`, saving into (or seeding from) `dir`,
    /// treating encryption as `crypto` says, over `transport`.
    pub fn start(
        torrent: &Path,
        dir: &Path,
        crypto: Crypto,
        transport: engine::Transport,
    ) -> io::Result<Qbittorrent> {
        let profile = tempfile::tempdir()?;
        let port = free_port()?;
        let api = free_port()?;
        let config = profile.path().join("profile/qBittorrent/config");
        std::fs::create_dir_all(&config)?;
        std::fs::write(
            config.join("qBittorrent.conf"),
            qbittorrent_config(&port.to_string(), api, crypto, transport),
        )?;
        let mut command = Command::new("qbittorrent-nox");
        command
            .arg(format!(
                "--profile={}",
                profile.path().join("profile").display()
            ))
            .arg(format!("--save-path={}", dir.display()))
            .arg(torrent);
        Ok(Qbittorrent {
            process: Process::spawn("qbittorrent-nox", &mut command)?,
            port,
            api,
            _profile: profile,
        })
    }

    /// Whether it has every piece (and seeds).
    pub fn done(&self) -> io::Result<bool> {
        qbittorrent_done(self.api)
    }

    /// Where peers reach it.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// The process.
    pub fn process(&mut self) -> &mut Process {
        &mut self.process
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn qbittorrent_config_binds_loopback_and_says_the_encryption_and_transport() {
        let config = qbittorrent_config("6881", 8080, Crypto::Plaintext, engine::Transport::Tcp);
        for line in [
            "Accepted=true",
            "Session\\Port=6881",
            "Session\\InterfaceAddress=127.0.0.1",
            "Session\\Encryption=2",
            "Session\\BTProtocol=TCP",
            "WebUI\\Address=127.0.0.1",
            "WebUI\\Port=8080",
        ] {
            assert!(
                config.lines().any(|l| l == line),
                "{line} missing: {config}"
            );
        }
        let required = qbittorrent_config("6881", 8080, Crypto::Required, engine::Transport::Tcp);
        assert!(required.lines().any(|l| l == "Session\\Encryption=1"));
        let defaults = qbittorrent_config("6881", 8080, Crypto::Defaults, engine::Transport::Utp);
        assert!(!defaults.contains("Encryption"));
        assert!(defaults.lines().any(|l| l == "Session\\BTProtocol=UTP"));
    }
}
