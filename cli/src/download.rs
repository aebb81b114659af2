//! `btc download` and `btc seed`: the engine, end to end.

use std::io::IsTerminal as _;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use engine::{
    Session, SessionConfig, Stats, TorrentEvent, TorrentHandle, TorrentOptions, TorrentState,
};
use metainfo::Metainfo;

use crate::format::size;

/// The user stopped a download before it finished (Ctrl-C or SIGTERM):
/// not a failure to report with "error:", but not success either.
#[derive(Debug)]
pub(crate) struct Interrupted(pub(crate) String);

impl std::fmt::Display for Interrupted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Interrupted {}

/// After a first Ctrl-C has started a graceful stop, a second one quits at
/// once (exit status 130), as users of other clients expect.
fn quit_on_second_signal() {
    if let Ok(second) = crate::tracker::stop_signals() {
        tokio::spawn(async move {
            second.await;
            eprintln!("stopped at once; the next run checks what was written");
            std::process::exit(130);
        });
    }
}

/// Download a torrent, then exit (or go on seeding with --seed).
#[derive(Debug, clap::Args)]
pub(crate) struct DownloadArgs {
    /// The .torrent file.
    torrent: PathBuf,
    /// The folder to download into.
    #[arg(short, long, value_name = "DIR", default_value = ".")]
    output: PathBuf,
    #[command(flatten)]
    net: NetArgs,
    /// Keep seeding after the download completes, until Ctrl-C.
    #[arg(long)]
    seed: bool,
    /// Ask trackers for the full peer list instead of the compact one.
    #[arg(long)]
    no_compact: bool,
    /// A peer to connect to besides those the trackers give (repeatable).
    #[arg(long = "peer", value_name = "HOST:PORT")]
    peers: Vec<String>,
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
}

#[derive(Debug, clap::Args)]
struct NetArgs {
    /// The port to accept peers on; 0 picks a free one.
    #[arg(long, value_name = "N", default_value_t = 6881)]
    port: u16,
    /// The address to accept peers on.
    #[arg(long, value_name = "IP", default_value = "0.0.0.0")]
    bind: IpAddr,
}

pub(crate) fn download(args: &DownloadArgs) -> Result<String> {
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    runtime.block_on(run_download(args))
}

pub(crate) fn seed(args: &SeedArgs) -> Result<String> {
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    runtime.block_on(run_seed(args))
}

fn read_torrent(path: &Path) -> Result<Metainfo> {
    if path.to_str().is_some_and(|s| s.starts_with("magnet:")) {
        bail!("magnet links cannot be downloaded yet: give the .torrent file");
    }
    crate::info::read_torrent(path)
}

async fn start_session(net: &NetArgs) -> Result<Session> {
    let config = |port| SessionConfig {
        listen: SocketAddr::new(net.bind, port),
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

/// Where resume data lives: `$XDG_STATE_HOME/btc/resume`, else
/// `~/.local/state/btc/resume`; none if neither can be found or made. One
/// file per torrent and download folder, so that two copies of a torrent
/// in two folders never share one.
fn resume_file(torrent: &Metainfo, folder: &Path) -> Option<PathBuf> {
    let base = std::env::var_os("XDG_STATE_HOME")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/state")))?;
    let dir = base.join("btc").join("resume");
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
    let torrent = read_torrent(&args.torrent)?;
    let name = torrent.info().name().to_string();
    let total = torrent.layout().total_length();
    let stop = crate::tracker::stop_signals()?;
    tokio::pin!(stop);
    let session = start_session(&args.net).await?;
    let mut options = TorrentOptions::new(&args.output);
    options.peers = resolve(&args.peers).await?;
    options.compact = !args.no_compact;
    if torrent.trackers().is_empty() && options.peers.is_empty() {
        bail!("this torrent names no tracker: give peers with --peer HOST:PORT");
    }
    std::fs::create_dir_all(&args.output)
        .with_context(|| format!("cannot create {}", args.output.display()))?;
    options.resume_file = resume_file(&torrent, &args.output);
    let handle = session
        .add(torrent, options)
        .await
        .with_context(|| format!("cannot download into {}", args.output.display()))?;
    tracing::info!(port = session.local_addr().port(), "listening for peers");
    let started = Instant::now();
    let outcome = tokio::select! {
        result = watch_progress(&handle, true) => Some(result),
        () = &mut stop => None,
    };
    let elapsed = started.elapsed();
    match outcome {
        Some(Ok(())) => {}
        Some(Err(e)) => {
            session.shutdown().await;
            return Err(e);
        }
        None => {
            quit_on_second_signal();
            session.shutdown().await;
            let stats = handle.stats();
            return Err(Interrupted(format!(
                "stopped with {} of {} pieces; run the same command again to resume",
                stats.pieces_have, stats.pieces_total
            ))
            .into());
        }
    }
    let stats = handle.stats();
    let rate = stats.downloaded as f64 / elapsed.as_secs_f64().max(0.001);
    let done = format!(
        "downloaded {name} ({}) in {:.1} s, {}/s, into {}\n",
        size(total),
        elapsed.as_secs_f64(),
        size(rate as u64),
        args.output.display()
    );
    if args.seed {
        crate::print(&done)?;
        crate::print("seeding; stop with Ctrl-C\n")?;
        return seed_until_stopped(session, &handle, stop).await;
    }
    session.shutdown().await;
    Ok(done)
}

async fn run_seed(args: &SeedArgs) -> Result<String> {
    let torrent = read_torrent(&args.torrent)?;
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
    let handle = session
        .add(torrent, options)
        .await
        .with_context(|| format!("cannot seed from {}", args.dir.display()))?;
    let mut watch = handle.watch();
    let checked = tokio::select! {
        checked = watch.wait_for(|s| s.state != TorrentState::Checking) => checked.map(|s| s.clone()),
        () = &mut stop => {
            quit_on_second_signal();
            session.shutdown().await;
            return Err(Interrupted("stopped while checking the data".into()).into());
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
    crate::print(&format!(
        "seeding {name} from {} on port {} ({} of {} pieces verified)\nstop with Ctrl-C\n",
        args.dir.display(),
        session.local_addr().port(),
        stats.pieces_have,
        stats.pieces_total
    ))?;
    seed_until_stopped(session, &handle, stop).await
}

/// Seeds until Ctrl-C (or SIGTERM), or an error; then stops the session
/// gracefully and says how much was uploaded.
async fn seed_until_stopped(
    session: Session,
    handle: &TorrentHandle,
    stop: std::pin::Pin<&mut impl std::future::Future<Output = ()>>,
) -> Result<String> {
    let seeding = tokio::select! {
        result = watch_progress(handle, false) => result,
        () = stop => Ok(()),
    };
    quit_on_second_signal();
    session.shutdown().await;
    seeding?;
    let uploaded = handle.stats().uploaded;
    Ok(format!(
        "stopped seeding after uploading {}\n",
        size(uploaded)
    ))
}

/// Shows progress on stderr (a live line on a terminal, a line every ten
/// seconds otherwise) until the download completes (`until_complete`) or
/// the torrent fails.
async fn watch_progress(handle: &TorrentHandle, until_complete: bool) -> Result<()> {
    let result = show_progress(handle, until_complete).await;
    if std::io::stderr().is_terminal() {
        // The live line goes before anything else is said.
        eprint!("\r\x1b[2K");
    }
    result
}

async fn show_progress(handle: &TorrentHandle, until_complete: bool) -> Result<()> {
    let tty = std::io::stderr().is_terminal();
    let mut events = handle.events();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let mut last_line = Instant::now();
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            event = events.recv() => match event {
                Ok(TorrentEvent::Error(e)) => bail!("{e}"),
                Ok(TorrentEvent::Finished) if until_complete => return Ok(()),
                Ok(TorrentEvent::TrackerError(e)) => tracing::warn!("tracker: {e}"),
                Ok(TorrentEvent::PeerBanned { addr, .. }) => {
                    tracing::warn!(%addr, "banned a peer that sent bad data");
                }
                _ => {}
            },
        }
        let stats = handle.stats();
        match &stats.state {
            TorrentState::Error(e) => bail!("{e}"),
            TorrentState::Stopped => bail!("the torrent stopped"),
            TorrentState::Seeding if until_complete => return Ok(()),
            _ => {}
        }
        if tty {
            eprint!("\r\x1b[2K{}", progress_line(&stats));
        } else if last_line.elapsed() >= Duration::from_secs(10) {
            eprintln!("{}", progress_line(&stats));
            last_line = Instant::now();
        }
    }
}

fn progress_line(stats: &Stats) -> String {
    let done = stats.bytes_total - stats.bytes_left;
    let percent = if stats.bytes_total == 0 {
        100.0
    } else {
        done as f64 * 100.0 / stats.bytes_total as f64
    };
    let eta = stats
        .eta
        .map(|d| format!("  ETA {}", duration(d)))
        .unwrap_or_default();
    let state = match stats.state {
        TorrentState::Checking => "checking",
        TorrentState::Seeding => "seeding",
        _ => "",
    };
    format!(
        "{state}{}{percent:5.1}%  {}/{} pieces  down {}/s  up {}/s  peers {}{eta}",
        if state.is_empty() { "" } else { "  " },
        stats.pieces_have,
        stats.pieces_total,
        size(stats.download_rate as u64),
        size(stats.upload_rate as u64),
        stats.peers,
    )
}

fn duration(d: Duration) -> String {
    let s = d.as_secs();
    if s >= 3600 {
        format!("{}h{:02}m", s / 3600, s / 60 % 60)
    } else if s >= 60 {
        format!("{}m{:02}s", s / 60, s % 60)
    } else {
        format!("{s}s")
    }
}
