//! `btc download` and `btc seed`: the engine, end to end.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use engine::{Allocation, Session, SessionConfig, TorrentHandle, TorrentOptions, TorrentState};
use metainfo::Metainfo;

use crate::format::{self, size};
use crate::watch::{GiveUp, Until, duration, watch_progress};

/// The user stopped a download before it finished (Ctrl-C or SIGTERM):
/// not a failure to report with "error:", but not success either. The
/// exit status is the signal's (see [`crate::tracker::stop_signals`]).
#[derive(Debug)]
pub(crate) struct Interrupted {
    pub(crate) message: String,
    pub(crate) status: u8,
}

impl std::fmt::Display for Interrupted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Interrupted {}

/// After a first Ctrl-C has started a graceful stop, a second one quits at
/// once (exit status 130, or 143 for SIGTERM), as users of other clients
/// expect.
fn quit_on_second_signal(quiet: bool) {
    if let Ok(second) = crate::tracker::stop_signals() {
        tokio::spawn(async move {
            let status = second.await;
            if !quiet {
                eprintln!("stopped at once; the next run checks what was written");
            }
            std::process::exit(i32::from(status));
        });
    }
}

/// Stops the session: data flushed, resume data saved and trackers told
/// `stopped` (each has a few seconds). A tracker that does not answer
/// holds the exit that long, so past a second it is said; a second Ctrl-C
/// quits at once.
async fn shut_down(session: Session, quiet: bool) {
    quit_on_second_signal(quiet);
    let shutdown = session.shutdown();
    tokio::pin!(shutdown);
    tokio::select! {
        () = &mut shutdown => return,
        () = tokio::time::sleep(Duration::from_secs(1)) => {}
    }
    if !quiet {
        eprintln!("telling the trackers we leave (Ctrl-C again to quit at once)");
    }
    shutdown.await;
}

/// Download a torrent, then exit (or go on seeding with --seed).
#[derive(Debug, clap::Args)]
pub(crate) struct DownloadArgs {
    /// The .torrent file, or a magnet link.
    torrent: PathBuf,
    /// With a magnet link: also save the torrent, once its metadata is
    /// fetched, as this file.
    #[arg(long, value_name = "FILE")]
    save_torrent: Option<PathBuf>,
    /// The folder to download into.
    #[arg(
        short,
        long,
        visible_short_alias = 'd',
        visible_alias = "dir",
        value_name = "DIR",
        default_value = "."
    )]
    output: PathBuf,
    #[command(flatten)]
    net: NetArgs,
    /// Keep seeding after the download completes, until Ctrl-C.
    #[arg(long)]
    seed: bool,
    /// Seed after the download until this many times its size is uploaded.
    #[arg(long, value_name = "R", value_parser = parse_ratio)]
    seed_ratio: Option<f64>,
    /// Seed after the download for this long (such as 30m or 2h).
    #[arg(long, value_name = "DURATION", value_parser = format::parse_duration)]
    seed_time: Option<std::time::Duration>,
    /// Ask trackers for the full peer list instead of the compact one.
    #[arg(long)]
    no_compact: bool,
    /// A peer to connect to besides those the trackers give (repeatable).
    #[arg(long = "peer", value_name = "HOST:PORT")]
    peers: Vec<String>,
    /// Show no progress, and print nothing but errors.
    #[arg(short, long)]
    quiet: bool,
    /// Download only the files that match this glob, as .gitignore matches:
    /// '*.flac' at any depth, 'extras' or 'extras/' a whole folder,
    /// 'disc1/*.flac' a path from the top (the torrent's folder name, as
    /// btc info shows it, may lead); repeatable.
    #[arg(long, value_name = "GLOB")]
    only: Vec<String>,
    /// Skip the files that match this glob (as --only reads it);
    /// repeatable.
    #[arg(long, value_name = "GLOB")]
    exclude: Vec<String>,
    /// Create files sparse, taking disk space only as pieces arrive,
    /// instead of reserving all of it at the start.
    #[arg(long)]
    sparse: bool,
    /// Hash the data already on disk again instead of trusting the resume
    /// data (which trusts files whose size and modification time are
    /// unchanged).
    #[arg(long)]
    recheck: bool,
}

fn parse_ratio(text: &str) -> Result<f64, String> {
    match text.trim().parse::<f64>() {
        Ok(r) if r.is_finite() && r > 0.0 => Ok(r),
        _ => Err(format!("{text:?} is not a ratio above 0, such as 1.5")),
    }
}

/// Which files `--only` and `--exclude` leave, one flag per file; `None`
/// when neither is given.
fn chosen_files(
    torrent: &Metainfo,
    only: &[String],
    exclude: &[String],
) -> Result<Option<Vec<bool>>> {
    if only.is_empty() && exclude.is_empty() {
        return Ok(None);
    }
    let (only_set, exclude_set) = (
        Patterns::new(only, "--only")?,
        Patterns::new(exclude, "--exclude")?,
    );
    let info = torrent.info();
    let name = info.is_multi_file().then(|| info.name());
    let wanted: Vec<bool> = info
        .files()
        .iter()
        .map(|file| {
            // The path inside the torrent, without its own folder's name.
            let parts: Vec<&str> = info.file_path(file).collect();
            let inner = if info.is_multi_file() {
                &parts[1..]
            } else {
                &parts[..]
            };
            !file.is_padding()
                && (only.is_empty() || only_set.matches(inner, name))
                && !exclude_set.matches(inner, name)
        })
        .collect();
    if !wanted.iter().any(|w| *w) {
        bail!("--only and --exclude leave no file to download; see the files with btc info");
    }
    Ok(Some(wanted))
}

/// `--only` or `--exclude` globs, read as `.gitignore` reads its lines: a
/// glob without a `/` matches a file or folder name at any depth (`*.flac`,
/// `extras`); one with a `/` matches a path from the top (`disc1/*.flac`),
/// with or without the torrent's own folder name first, as `btc info` shows
/// it. `*` stays within one name, `**` crosses folders, and a folder that
/// matches takes everything in it.
struct Patterns {
    /// Globs to match against one name.
    names: globset::GlobSet,
    /// Globs to match against a path from the top.
    paths: globset::GlobSet,
}

impl Patterns {
    fn new(globs: &[String], flag: &str) -> Result<Patterns> {
        let mut names = globset::GlobSetBuilder::new();
        let mut paths = globset::GlobSetBuilder::new();
        for glob in globs {
            let trimmed = glob.trim_end_matches('/');
            let trimmed = trimmed.strip_prefix('/').unwrap_or(trimmed);
            let compiled = globset::GlobBuilder::new(trimmed)
                .literal_separator(true)
                .build()
                .with_context(|| format!("{flag} {glob:?} is not a glob"))?;
            if trimmed.contains('/') {
                paths.add(compiled);
            } else {
                names.add(compiled);
            }
        }
        Ok(Patterns {
            names: names.build()?,
            paths: paths.build()?,
        })
    }

    /// Whether the file at `inner` (its path inside the torrent's folder
    /// `name`, if it has one) or a folder holding it matches.
    fn matches(&self, inner: &[&str], name: Option<&str>) -> bool {
        if inner.iter().any(|part| self.names.is_match(part)) {
            return true;
        }
        if self.paths.is_empty() {
            return false;
        }
        (1..=inner.len()).any(|depth| {
            let path = inner[..depth].join("/");
            self.paths.is_match(&path)
                || name.is_some_and(|name| self.paths.is_match(format!("{name}/{path}")))
        })
    }
}

/// Seed a torrent from data already on disk, until Ctrl-C.
#[derive(Debug, clap::Args)]
pub(crate) struct SeedArgs {
    /// The .torrent file.
    torrent: PathBuf,
    /// The folder holding the torrent's data (its files or its folder).
    #[arg(short, long = "dir", value_name = "DIR", default_value = ".")]
    dir: PathBuf,
    #[command(flatten)]
    net: NetArgs,
    /// A peer to connect to besides those the trackers give (repeatable).
    #[arg(long = "peer", value_name = "HOST:PORT")]
    peers: Vec<String>,
    /// Show no progress, and print nothing but errors.
    #[arg(short, long)]
    quiet: bool,
    /// Hash the data again instead of trusting the resume data (which
    /// trusts files whose size and modification time are unchanged).
    #[arg(long)]
    recheck: bool,
}

#[derive(Debug, clap::Args)]
struct NetArgs {
    /// The port to accept peers on; 0 picks a free one.
    #[arg(long, value_name = "N", default_value_t = 6881)]
    port: u16,
    /// The address to accept peers on.
    #[arg(long, value_name = "IP", default_value = "0.0.0.0")]
    bind: IpAddr,
    /// Most peers connected at once.
    #[arg(long, value_name = "N", default_value_t = 50,
          value_parser = clap::value_parser!(u16).range(1..=2000))]
    max_peers: u16,
    /// Most download rate, such as 5MiB/s.
    #[arg(long, value_name = "RATE", value_parser = format::parse_rate)]
    download_limit: Option<u64>,
    /// Most upload rate, such as 500KiB/s.
    #[arg(long, value_name = "RATE", value_parser = format::parse_rate)]
    upload_limit: Option<u64>,
    /// Find no peers through the DHT (private torrents never use it).
    #[arg(long)]
    no_dht: bool,
    /// A DHT node to start from instead of the public routers
    /// (repeatable).
    #[arg(long, value_name = "HOST:PORT", conflicts_with = "no_dht")]
    dht_bootstrap: Vec<String>,
    /// The UDP port of the DHT node; by default the peer port.
    #[arg(long, value_name = "N", conflicts_with = "no_dht")]
    dht_port: Option<u16>,
    /// Ask the DHT but answer nobody (BEP 43), as a node behind a firewall
    /// or on a metered line should.
    #[arg(long, conflicts_with = "no_dht")]
    dht_read_only: bool,
    /// Exchange no peers with peers (ut_pex; private torrents never do).
    #[arg(long)]
    no_pex: bool,
    /// Encrypted connections (MSE/PE): prefer (an MSE handshake first,
    /// plaintext if a peer cannot; the payload in RC4 only for a peer
    /// that insists), require (RC4 only: never a plaintext byte), allow
    /// (plaintext first, MSE if a peer insists), off.
    #[arg(long, value_name = "POLICY", default_value = "prefer", value_parser = parse_encryption)]
    encryption: engine::Encryption,
    /// Transports to peers: both (uTP first, TCP if a peer does not answer
    /// over uTP; both accepted), tcp, utp. uTP shares the listen port's
    /// number with the DHT, over UDP.
    #[arg(long, value_name = "WHICH", default_value = "both", value_parser = parse_transport)]
    transport: engine::Transport,
}

fn parse_transport(s: &str) -> Result<engine::Transport, String> {
    match s {
        "both" => Ok(engine::Transport::Both),
        "tcp" => Ok(engine::Transport::Tcp),
        "utp" => Ok(engine::Transport::Utp),
        _ => Err(format!("{s:?}: expected both, tcp or utp")),
    }
}

fn parse_encryption(s: &str) -> Result<engine::Encryption, String> {
    match s {
        "prefer" => Ok(engine::Encryption::Prefer),
        "require" => Ok(engine::Encryption::Require),
        "allow" => Ok(engine::Encryption::Allow),
        "off" => Ok(engine::Encryption::Off),
        _ => Err(format!("{s:?}: expected prefer, require, allow or off")),
    }
}

impl NetArgs {
    /// The session's DHT, unless turned off: from the saved table, else
    /// from the given nodes or the public routers.
    fn dht(&self) -> Option<engine::DhtConfig> {
        if self.no_dht {
            return None;
        }
        let bootstrap = if self.dht_bootstrap.is_empty() {
            dht::PUBLIC_ROUTERS.iter().map(|r| r.to_string()).collect()
        } else {
            self.dht_bootstrap.clone()
        };
        Some(engine::DhtConfig {
            bind: SocketAddr::new(self.bind, self.dht_port.unwrap_or(0)),
            bootstrap,
            state_file: state_dir().map(|d| d.join("dht.dat")),
            node: dht::Config {
                read_only: self.dht_read_only,
                ..dht::Config::default()
            },
            ..engine::DhtConfig::default()
        })
    }
}

impl DownloadArgs {
    /// Whether only errors are to be said.
    pub(crate) fn quiet(&self) -> bool {
        self.quiet
    }
}

impl SeedArgs {
    /// Whether only errors are to be said.
    pub(crate) fn quiet(&self) -> bool {
        self.quiet
    }
}

pub(crate) fn download(args: &DownloadArgs) -> Result<String> {
    runtime()?.block_on(run_download(args))
}

pub(crate) fn seed(args: &SeedArgs) -> Result<String> {
    runtime()?.block_on(run_seed(args))
}

/// The engine's runtime: one thread for every connection and torrent
/// task, beside the disk thread that hashes and writes. Tasks then wake
/// each other without crossing threads; with a worker per core they
/// crossed for nearly every block, and the wake-ups cost more CPU than the
/// work (`cargo xtask bench`; the issue 9 note has the numbers).
fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

/// How long peers have to hand over a magnet link's metadata.
const METADATA_DEADLINE: Duration = Duration::from_secs(300);

async fn start_session(net: &NetArgs) -> Result<Session> {
    let config = |port| SessionConfig {
        listen: SocketAddr::new(net.bind, port),
        max_peers_per_torrent: usize::from(net.max_peers),
        max_peers: usize::from(net.max_peers).max(500),
        download_limit: net.download_limit,
        upload_limit: net.upload_limit,
        dht: net.dht(),
        pex: !net.no_pex,
        encryption: net.encryption,
        transport: net.transport,
        ..SessionConfig::default()
    };
    match Session::start(config(net.port)).await {
        Ok(session) => Ok(session),
        // The default port taken (another client?): any port will do.
        Err(e) if e.kind() == std::io::ErrorKind::AddrInUse && net.port == 6881 => {
            tracing::warn!("port 6881 is in use; listening on another");
            Session::start(config(0))
                .await
                .context("cannot listen for peers")
        }
        Err(e) => Err(e).with_context(|| format!("cannot listen for peers on port {}", net.port)),
    }
}

/// Claims the torrent in its folder for this process, with a lock on a
/// file beside its resume data, held as long as the returned file is: a
/// second btc on the same torrent and folder would fetch the same pieces
/// and overwrite the first one's resume data. Without resume data, or
/// where locks do not work, nothing is claimed.
fn claim(resume: Option<&Path>, folder: &Path) -> Result<Option<std::fs::File>> {
    let Some(resume) = resume else {
        return Ok(None);
    };
    let path = resume.with_extension("lock");
    let opened = std::fs::File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path);
    let file = match opened {
        Ok(file) => file,
        Err(e) => {
            tracing::debug!(path = %path.display(), error = %e, "cannot open the lock file");
            return Ok(None);
        }
    };
    match file.try_lock() {
        Ok(()) => Ok(Some(file)),
        Err(std::fs::TryLockError::WouldBlock) => bail!(
            "another btc is already running this torrent in {}: stop it first",
            folder.display()
        ),
        Err(std::fs::TryLockError::Error(e)) => {
            tracing::debug!(path = %path.display(), error = %e, "cannot lock");
            Ok(None)
        }
    }
}

async fn resolve(peers: &[String]) -> Result<Vec<SocketAddr>> {
    let mut out = Vec::new();
    for peer in peers {
        let addrs = tokio::net::lookup_host(peer.as_str())
            .await
            .with_context(|| format!("--peer {peer}: not a reachable HOST:PORT"))?;
        out.extend(addrs.take(1));
    }
    Ok(out)
}

/// btc's state folder: `$XDG_STATE_HOME/btc`, else `~/.local/state/btc`
/// (the DHT's table, and resume data under `resume`), made if missing.
pub(crate) fn state_dir() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_STATE_HOME")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/state")))?;
    let dir = base.join("btc");
    std::fs::create_dir_all(&dir).ok()?;
    Some(dir)
}

/// Where resume data lives: `$XDG_STATE_HOME/btc/resume`, else
/// `~/.local/state/btc/resume`; none if neither can be found or made. One
/// file per torrent and download folder, so that two copies of a torrent
/// in two folders never share one.
fn resume_file(torrent: &Metainfo, folder: &Path) -> Option<PathBuf> {
    let dir = state_dir()?.join("resume");
    if let Err(e) = std::fs::create_dir_all(&dir) {
        tracing::warn!(
            "cannot create {} ({e}): without resume data, the next run hashes everything again",
            dir.display()
        );
        return None;
    }
    let folder = std::fs::canonicalize(folder).ok()?;
    let tag = metainfo::sha1(folder.as_os_str().as_encoded_bytes());
    let tag: String = tag[..4].iter().map(|b| format!("{b:02x}")).collect();
    Some(dir.join(format!("{}-{tag}.resume", torrent.info_hash().to_hex())))
}

async fn run_download(args: &DownloadArgs) -> Result<String> {
    let stop = crate::tracker::stop_signals()?;
    tokio::pin!(stop);
    let session = start_session(&args.net).await?;
    let mut peers = resolve(&args.peers).await?;
    let magnet: Option<metainfo::MagnetLink> = args
        .torrent
        .to_str()
        .filter(|s| {
            s.get(..7)
                .is_some_and(|p| p.eq_ignore_ascii_case("magnet:"))
        })
        .map(|text| text.parse().context("not a usable magnet link"))
        .transpose()?;
    if let Some(link) = &magnet {
        // The link's own peers serve the data too, not just the metadata.
        for peer in &link.peers {
            if let Ok(mut addrs) = tokio::net::lookup_host(peer.as_str()).await
                && let Some(addr) = addrs.next()
            {
                peers.push(addr);
            }
        }
    }
    let torrent = match &magnet {
        Some(link) => {
            if link.trackers.is_empty() && peers.is_empty() && session.dht().is_none() {
                let web = if link.web_seeds.is_empty() {
                    ""
                } else {
                    " (its web seeds serve the data, but the torrent itself must come from a peer)"
                };
                bail!(
                    "this magnet link names no tracker and no peer{web}, and the DHT is off: give peers with --peer HOST:PORT, or leave out --no-dht"
                );
            }
            // Said now, not after the metadata has come.
            if let Some(path) = &args.save_torrent {
                crate::create::check_folder(path)?;
            }
            if !args.quiet {
                eprintln!("fetching the torrent's metadata from its peers…");
            }
            let fetch = session.fetch_metadata(link, &peers, METADATA_DEADLINE);
            let torrent = tokio::select! {
                torrent = fetch => torrent?,
                status = &mut stop => {
                    shut_down(session, args.quiet).await;
                    let message = "stopped while fetching the metadata".into();
                    return Err(Interrupted { message, status }.into());
                }
            };
            if let Some(path) = &args.save_torrent {
                crate::create::write_atomically(path, &torrent.to_bytes(), true)?;
            }
            torrent
        }
        None => {
            if args.save_torrent.is_some() {
                bail!("--save-torrent is for magnet links; this is already a torrent file");
            }
            crate::info::read_torrent(&args.torrent)?
        }
    };
    let name = torrent.info().name().to_string();
    let mut options = TorrentOptions::new(&args.output);
    options.peers = peers;
    options.compact = !args.no_compact;
    if args.sparse {
        options.storage.allocation = Allocation::Sparse;
    }
    options.wanted_files = chosen_files(&torrent, &args.only, &args.exclude)?;
    // The content chosen, padding files (BEP 47) left out.
    let total: u64 = torrent
        .info()
        .files()
        .iter()
        .enumerate()
        .filter(|(i, f)| {
            !f.is_padding()
                && options
                    .wanted_files
                    .as_ref()
                    .is_none_or(|wanted| wanted.get(*i) == Some(&true))
        })
        .map(|(_, f)| f.length)
        .sum();
    if torrent.trackers().is_empty()
        && !torrent
            .url_list
            .iter()
            .any(|url| engine::is_usable_web_seed(url))
        && options.peers.is_empty()
        && magnet.is_none()
        && (session.dht().is_none() || torrent.info().is_private())
    {
        let why = if torrent.info().is_private() {
            "this private torrent names no tracker and no web seed"
        } else {
            "this torrent names no tracker and no web seed, and the DHT is off"
        };
        bail!("{why}: give peers with --peer HOST:PORT");
    }
    std::fs::create_dir_all(&args.output)
        .with_context(|| format!("cannot create {}", args.output.display()))?;
    options.resume_file = resume_file(&torrent, &args.output);
    let _claim = claim(options.resume_file.as_deref(), &args.output)?;
    options.recheck = args.recheck;
    let give_up = GiveUp {
        trackers: !torrent.trackers().is_empty(),
        dht: session.dht().is_some() && !torrent.info().is_private(),
        direct: options.peers.len() as u32,
        started: Instant::now(),
    };
    let handle = session
        .add(torrent, options)
        .await
        .with_context(|| format!("cannot download into {}", args.output.display()))?;
    tracing::info!(port = session.local_addr().port(), "listening for peers");
    let started = Instant::now();
    let outcome = tokio::select! {
        result = watch_progress(&handle, Until::Complete(give_up), args.quiet) => Ok(result),
        status = &mut stop => Err(status),
    };
    let elapsed = started.elapsed();
    match outcome {
        Ok(Ok(())) => {}
        Ok(Err(e)) => {
            session.shutdown().await;
            return Err(e);
        }
        Err(status) => {
            shut_down(session, args.quiet).await;
            let stats = handle.stats();
            let message = format!(
                "stopped with {} of {} pieces; run the same command again to resume",
                stats.pieces_have, stats.pieces_total
            );
            return Err(Interrupted { message, status }.into());
        }
    }
    let stats = handle.stats();
    let rate = stats.downloaded as f64 / elapsed.as_secs_f64().max(0.001);
    // The rate is this run's; a resumed download says how much that was.
    let done = if stats.downloaded == 0 {
        format!(
            "{name} ({}) is already complete in {}\n",
            size(total),
            args.output.display()
        )
    } else if stats.downloaded < total {
        format!(
            "downloaded {name} ({}, {} of it in this run) in {:.1} s, {}/s, into {}\n",
            size(total),
            size(stats.downloaded),
            elapsed.as_secs_f64(),
            size(rate as u64),
            args.output.display()
        )
    } else {
        format!(
            "downloaded {name} ({}) in {:.1} s, {}/s, into {}\n",
            size(total),
            elapsed.as_secs_f64(),
            size(rate as u64),
            args.output.display()
        )
    };
    let done = if args.quiet { String::new() } else { done };
    if args.seed || args.seed_ratio.is_some() || args.seed_time.is_some() {
        crate::print(&done)?;
        let goal = match (args.seed_ratio, args.seed_time) {
            (None, None) => "until Ctrl-C".to_string(),
            (ratio, time) => {
                let mut goals = Vec::new();
                if let Some(r) = ratio {
                    goals.push(format!("until {r} times its size is uploaded"));
                }
                if let Some(t) = time {
                    goals.push(format!("for {}", duration(t)));
                }
                goals.join(" or ")
            }
        };
        if !args.quiet {
            crate::print(&format!("seeding {goal}; stop with Ctrl-C\n"))?;
        }
        let until = Until::seeding(args.seed_ratio, args.seed_time, total);
        let said = seed_until_stopped(session, &handle, stop, until, args.quiet).await?;
        return Ok(if args.quiet { String::new() } else { said });
    }
    shut_down(session, args.quiet).await;
    Ok(done)
}

async fn run_seed(args: &SeedArgs) -> Result<String> {
    let torrent = crate::info::read_torrent(&args.torrent)?;
    let name = torrent.info().name().to_string();
    if !args.dir.is_dir() {
        bail!(
            "{} is not a folder: give the folder that holds the data with -d",
            args.dir.display()
        );
    }
    let stop = crate::tracker::stop_signals()?;
    tokio::pin!(stop);
    let session = start_session(&args.net).await?;
    let mut options = TorrentOptions::new(&args.dir);
    options.peers = resolve(&args.peers).await?;
    options.resume_file = resume_file(&torrent, &args.dir);
    let _claim = claim(options.resume_file.as_deref(), &args.dir)?;
    options.recheck = args.recheck;
    let handle = session
        .add(torrent, options)
        .await
        .with_context(|| format!("cannot seed from {}", args.dir.display()))?;
    let mut watch = handle.watch();
    let checked = tokio::select! {
        checked = watch.wait_for(|s| s.state != TorrentState::Checking) => checked.map(|s| s.clone()),
        status = &mut stop => {
            shut_down(session, args.quiet).await;
            let message = "stopped while checking the data".into();
            return Err(Interrupted { message, status }.into());
        }
    };
    let stats = match checked {
        Ok(stats) => stats,
        Err(_) => bail!("the torrent stopped while checking"),
    };
    if let TorrentState::Error(e) = &stats.state {
        session.shutdown().await;
        bail!("{e}");
    }
    if stats.pieces_have < stats.pieces_total && stats.pieces_have > 0 {
        tracing::warn!(
            "{} holds {} of {} pieces: seeding those, and downloading the rest",
            args.dir.display(),
            stats.pieces_have,
            stats.pieces_total
        );
    }
    if stats.pieces_have == 0 {
        session.shutdown().await;
        bail!(
            "{} holds none of {name}'s data: give the folder that contains it with -d",
            args.dir.display()
        );
    }
    if !args.quiet {
        crate::print(&format!(
            "seeding {name} from {} on port {} ({} of {} pieces verified)\nstop with Ctrl-C\n",
            args.dir.display(),
            session.local_addr().port(),
            stats.pieces_have,
            stats.pieces_total
        ))?;
    }
    let total = handle.stats().bytes_total;
    let said = seed_until_stopped(
        session,
        &handle,
        stop,
        Until::seeding(None, None, total),
        args.quiet,
    )
    .await?;
    Ok(if args.quiet { String::new() } else { said })
}

/// Seeds until Ctrl-C (or SIGTERM), or an error; then stops the session
/// gracefully and says how much was uploaded.
async fn seed_until_stopped(
    session: Session,
    handle: &TorrentHandle,
    stop: std::pin::Pin<&mut impl std::future::Future<Output = u8>>,
    until: Until,
    quiet: bool,
) -> Result<String> {
    let seeding = tokio::select! {
        result = watch_progress(handle, until, quiet) => result,
        _ = stop => Ok(()),
    };
    shut_down(session, quiet).await;
    seeding?;
    let uploaded = handle.stats().uploaded;
    Ok(format!(
        "stopped seeding after uploading {}\n",
        size(uploaded)
    ))
}

#[cfg(test)]
mod tests {
    use super::Patterns;

    fn matches(globs: &[&str], path: &str) -> bool {
        let globs: Vec<String> = globs.iter().map(|g| g.to_string()).collect();
        let patterns = Patterns::new(&globs, "--only").unwrap();
        let inner: Vec<&str> = path.split('/').collect();
        patterns.matches(&inner, Some("album"))
    }

    #[test]
    fn globs_read_as_gitignore_lines() {
        // A name at any depth.
        assert!(matches(&["*.flac"], "a.flac"));
        assert!(matches(&["*.flac"], "disc1/deeper/a.flac"));
        assert!(!matches(&["*.flac"], "a.flac.txt"));
        // A folder takes what it holds, with or without a slash.
        assert!(matches(&["disc1"], "disc1/deeper/a.flac"));
        assert!(matches(&["disc1/"], "disc1/a.flac"));
        assert!(!matches(&["disc1"], "disc10/a.flac"));
        // A path from the top: `*` stays within one name, `**` does not.
        assert!(matches(&["disc1/*.flac"], "disc1/a.flac"));
        assert!(!matches(&["disc1/*.flac"], "disc1/deeper/a.flac"));
        assert!(matches(&["disc1/**/*.flac"], "disc1/deeper/a.flac"));
        assert!(!matches(&["disc1/*.flac"], "other/disc1/a.flac"));
        // The torrent's folder name may lead, as `btc info` prints paths.
        assert!(matches(&["album/disc1/**"], "disc1/deeper/a.flac"));
        assert!(matches(&["album/cover.jpg"], "cover.jpg"));
        assert!(!matches(&["other/cover.jpg"], "cover.jpg"));
        assert!(!matches(&[], "cover.jpg"));
    }

    #[test]
    fn a_bad_glob_is_named() {
        let error = Patterns::new(&["a[".to_string()], "--exclude")
            .err()
            .unwrap();
        assert!(format!("{error:#}").starts_with("--exclude \"a[\" is not a glob"));
    }
}
