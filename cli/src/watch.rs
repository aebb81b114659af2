//! Watching a running torrent: when to stop watching (complete, seeding
//! goal reached, or nobody to download from), and the progress display.

use std::io::IsTerminal as _;
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use engine::{Stats, TorrentEvent, TorrentHandle, TorrentState};

use crate::format::size;

/// When watching a torrent ends.
pub(crate) enum Until {
    /// Every piece is verified; or nobody could be found to download from
    /// (see [`GiveUp`]).
    Complete(GiveUp),
    /// Seeding has reached its goal: a ratio of the size uploaded, or a
    /// time spent (whichever comes first); with neither, never.
    Seeded {
        ratio: Option<f64>,
        time: Option<Duration>,
        started: Instant,
        total: u64,
    },
}

impl Until {
    pub(crate) fn seeding(ratio: Option<f64>, time: Option<Duration>, total: u64) -> Until {
        Until::Seeded {
            ratio,
            time,
            started: Instant::now(),
            total,
        }
    }

    fn reached(&self, stats: &Stats) -> bool {
        match self {
            Until::Complete(_) => stats.state == TorrentState::Seeding,
            Until::Seeded {
                ratio,
                time,
                started,
                total,
            } => {
                ratio.is_some_and(|r| stats.uploaded as f64 >= r * *total as f64)
                    || time.is_some_and(|t| started.elapsed() >= t)
            }
        }
    }
}

/// When a download gives up: nobody was ever reached, after this many tries
/// with the trackers and with each direct peer.
pub(crate) struct GiveUp {
    pub(crate) trackers: bool,
    /// The torrent looks for peers in the DHT: never give up, as other
    /// clients do not (peers may appear there at any time).
    pub(crate) dht: bool,
    pub(crate) direct: u32,
    pub(crate) started: Instant,
}

/// Announces, and dials of each direct peer, before giving up.
const TRACKER_TRIES: u32 = 5;
const DIAL_TRIES: u32 = 3;
/// Never sooner than this: a seeder may refuse connections while it checks
/// its data.
const GIVE_UP_AFTER: Duration = Duration::from_secs(30);

impl GiveUp {
    /// Why to give up now, if it is time.
    fn now(&self, stats: &Stats) -> Option<String> {
        if self.dht
            || stats.peers_ever > 0
            || stats.connections > 0
            || stats.candidates > 0
            || self.started.elapsed() < GIVE_UP_AFTER
        {
            return None;
        }
        let trackers_done = !self.trackers || stats.announces >= TRACKER_TRIES;
        let direct_done = stats.dial_failures >= DIAL_TRIES * self.direct;
        if !(trackers_done && direct_done) {
            return None;
        }
        Some(match (&stats.tracker_error, self.trackers) {
            (Some(error), true) => format!(
                "no peers found after {} tries: the trackers did not answer (last: {error}); try again later",
                stats.announces
            ),
            (None, true) => format!(
                "no peers found after {} tries: the trackers know nobody sharing this torrent right now; try again later",
                stats.announces
            ),
            (_, false) => format!(
                "no peer could be reached after {DIAL_TRIES} tries each: check the --peer addresses, or try again later"
            ),
        })
    }
}

/// The progress bar on the terminal, if one is shown: log lines are
/// written above it rather than onto it.
static BAR: std::sync::Mutex<Option<indicatif::ProgressBar>> = std::sync::Mutex::new(None);

/// Where log lines go: stderr, with the progress bar, if any, cleared
/// while a line is written and drawn again after.
pub(crate) struct LogWriter;

impl std::io::Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let bar = BAR.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let write = || std::io::Write::write_all(&mut std::io::stderr(), buf);
        match bar {
            Some(bar) => bar.suspend(write)?,
            None => write()?,
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::Write::flush(&mut std::io::stderr())
    }
}

/// Shows progress on stderr until `until` or an error: a bar on a
/// terminal, a line every ten seconds otherwise, nothing when `quiet`.
pub(crate) async fn watch_progress(
    handle: &TorrentHandle,
    until: Until,
    quiet: bool,
) -> Result<()> {
    let bar = (!quiet && std::io::stderr().is_terminal()).then(|| {
        let stats = handle.stats();
        let bar = indicatif::ProgressBar::new(stats.bytes_total);
        if let Ok(style) =
            indicatif::ProgressStyle::with_template("{spinner} [{bar:30}] {percent:>3}% {msg}")
        {
            bar.set_style(style.progress_chars("=> "));
        }
        bar
    });
    BAR.lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone_from(&bar);
    let result = show_progress(handle, &until, quiet, bar.as_ref()).await;
    *BAR.lock().unwrap_or_else(|e| e.into_inner()) = None;
    if let Some(bar) = bar {
        // Gone before anything else is said.
        bar.finish_and_clear();
    }
    result
}

async fn show_progress(
    handle: &TorrentHandle,
    until: &Until,
    quiet: bool,
    bar: Option<&indicatif::ProgressBar>,
) -> Result<()> {
    let mut events = handle.events();
    let mut tick = tokio::time::interval(Duration::from_millis(500));
    let mut last_line = Instant::now();
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            event = events.recv() => match event {
                Ok(TorrentEvent::Error(e)) => bail!("{e}"),
                Ok(TorrentEvent::Finished) if matches!(until, Until::Complete(_)) => return Ok(()),
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
            _ => {}
        }
        if until.reached(&stats) {
            return Ok(());
        }
        if let Until::Complete(give_up) = until
            && let Some(why) = give_up.now(&stats)
        {
            bail!("{why}");
        }
        if let Some(bar) = bar {
            bar.set_length(stats.bytes_total);
            bar.set_position(stats.bytes_total - stats.bytes_left);
            bar.set_message(status(&stats));
            bar.tick();
        } else if !quiet && last_line.elapsed() >= Duration::from_secs(10) {
            eprintln!("{}", progress_line(&stats));
            last_line = Instant::now();
        }
    }
}

/// Rates, peers and time left, for the progress bar.
fn status(stats: &Stats) -> String {
    let state = match stats.state {
        TorrentState::Checking => "checking  ",
        TorrentState::Seeding => "seeding  ",
        _ => "",
    };
    let eta = stats
        .eta
        .filter(|_| stats.state == TorrentState::Downloading)
        .map(|d| format!("  ETA {}", duration(d)))
        .unwrap_or_default();
    format!(
        "{state}down {}/s  up {}/s  {}{eta}",
        size(stats.download_rate as u64),
        size(stats.upload_rate as u64),
        peers(stats),
    )
}

/// The peers, or while a download has none, what it is doing about it:
/// a UDP tracker may take two minutes to be found silent.
fn peers(stats: &Stats) -> String {
    let web = match stats.web_seeds {
        0 => String::new(),
        1 => "  web seed".into(),
        n => format!("  web seeds {n}"),
    };
    match (stats.state == TorrentState::Downloading, stats.peers) {
        (true, 0) if stats.web_seeds > 0 => web.trim_start().to_string(),
        (true, 0) if stats.connections > 0 => format!("connecting to {}", stats.connections),
        (true, 0) => "looking for peers".into(),
        // With -v, where they came from.
        (_, n) if n > 0 && tracing::enabled!(tracing::Level::INFO) => {
            let utp = match stats.utp_peers {
                0 => String::new(),
                u => format!("; {u} over uTP"),
            };
            format!("peers {n} ({}{utp}){web}", sources(stats))
        }
        (_, n) => match stats.utp_peers {
            0 => format!("peers {n}{web}"),
            u => format!("peers {n} ({u} uTP){web}"),
        },
    }
}

/// The connected peers by where they came from: "tracker 2, dht 1".
fn sources(stats: &Stats) -> String {
    let s = stats.sources;
    let parts: Vec<String> = [
        ("tracker", s.tracker),
        ("dht", s.dht),
        ("pex", s.pex),
        ("given", s.given),
        ("incoming", s.incoming),
    ]
    .into_iter()
    .filter(|(_, n)| *n > 0)
    .map(|(name, n)| format!("{name} {n}"))
    .collect();
    parts.join(", ")
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
        "{state}{}{percent:5.1}%  {}/{} pieces  down {}/s  up {}/s  {}{eta}",
        if state.is_empty() { "" } else { "  " },
        stats.pieces_have,
        stats.pieces_total,
        size(stats.download_rate as u64),
        size(stats.upload_rate as u64),
        peers(stats),
    )
}

pub(crate) fn duration(d: Duration) -> String {
    let s = d.as_secs();
    if s >= 3600 {
        format!("{}h{:02}m", s / 3600, s / 60 % 60)
    } else if s >= 60 {
        format!("{}m{:02}s", s / 60, s % 60)
    } else {
        format!("{s}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stats() -> Stats {
        Stats {
            state: TorrentState::Downloading,
            ..Stats::new(10, 100)
        }
    }

    #[test]
    fn a_download_gives_up_only_when_nobody_was_ever_reached() {
        let long_ago = Instant::now() - GIVE_UP_AFTER;
        let trackers = GiveUp {
            trackers: true,
            dht: false,
            direct: 0,
            started: long_ago,
        };
        let mut s = stats();
        s.announces = 4;
        assert_eq!(trackers.now(&s), None, "not yet");
        s.announces = 5;
        s.tracker_error = Some("http://t/announce: the tracker refused: not authorized".into());
        assert_eq!(
            trackers.now(&s).unwrap(),
            "no peers found after 5 tries: the trackers did not answer \
             (last: http://t/announce: the tracker refused: not authorized); try again later"
        );
        s.tracker_error = None;
        assert!(trackers.now(&s).unwrap().contains("know nobody sharing"));
        s.peers_ever = 1;
        assert_eq!(trackers.now(&s), None, "someone was reached once");
        s.peers_ever = 0;
        s.connections = 1;
        assert_eq!(trackers.now(&s), None, "a dial is under way");
        let young = GiveUp {
            trackers: true,
            dht: false,
            direct: 0,
            started: Instant::now(),
        };
        s.connections = 0;
        assert_eq!(young.now(&s), None, "too soon");

        let direct = GiveUp {
            trackers: false,
            dht: false,
            direct: 2,
            started: long_ago,
        };
        let mut s = stats();
        s.dial_failures = 5;
        assert_eq!(direct.now(&s), None);
        s.dial_failures = 6;
        let with_dht = GiveUp {
            dht: true,
            ..direct
        };
        assert_eq!(with_dht.now(&s), None, "the DHT may find peers at any time");
        assert!(
            direct
                .now(&s)
                .unwrap()
                .contains("check the --peer addresses")
        );
    }

    #[test]
    fn a_download_without_peers_says_what_it_is_doing() {
        let mut s = stats();
        assert_eq!(status(&s), "down 0 B/s  up 0 B/s  looking for peers");
        s.connections = 3;
        assert!(progress_line(&s).ends_with("up 0 B/s  connecting to 3"));
        s.web_seeds = 1;
        assert!(progress_line(&s).ends_with("up 0 B/s  web seed"));
        s.peers = 2;
        s.sources.dht = 1;
        s.sources.incoming = 1;
        assert_eq!(sources(&s), "dht 1, incoming 1");
        s.web_seeds = 2;
        assert!(progress_line(&s).ends_with("up 0 B/s  peers 2  web seeds 2"));
        s.web_seeds = 0;
        assert_eq!(status(&s), "down 0 B/s  up 0 B/s  peers 2");
        s.utp_peers = 1;
        assert_eq!(status(&s), "down 0 B/s  up 0 B/s  peers 2 (1 uTP)");
        s.utp_peers = 0;
        s.peers = 0;
        s.state = TorrentState::Seeding;
        assert_eq!(status(&s), "seeding  down 0 B/s  up 0 B/s  peers 0");
    }
}
