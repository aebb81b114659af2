//! Running a scenario: the tracker, the btc sessions and the real clients on
//! 127.0.0.1, sampled until everyone has the content or the deadline.

use std::collections::{BTreeMap, HashSet};
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use engine::{Session, SessionConfig, Stats, TorrentEvent, TorrentHandle, TorrentOptions};
use metainfo::PeerId;
use tracker::{HttpTracker, TrackerConfig};

use crate::content::Content;
use crate::crowd::{self, SilentPeer};
use crate::real::{Aria2, Transmission};
use crate::report::{MemberReport, Report};
use crate::scenario::{Discovery, PeerSpec, RealPeer, Scenario};
use crate::webseed::WebSeedServer;

/// A tracker on 127.0.0.1 (an ephemeral port) that tells peers to come
/// back every second, so that a swarm finds itself quickly.
pub async fn local_tracker() -> std::io::Result<HttpTracker> {
    let config = TrackerConfig {
        interval: 1,
        min_interval: 1,
        ..TrackerConfig::default()
    };
    HttpTracker::bind(SocketAddr::from(([127, 0, 0, 1], 0)), config).await
}

/// The loopback address of swarm member `i`: 127.100.y.z, one of its own
/// for each of the first 62,500, as if every peer were its own host.
pub fn swarm_ip(i: usize) -> std::net::IpAddr {
    let octet = |n: usize| u8::try_from(n % 250 + 1).unwrap_or(1);
    std::net::IpAddr::V4(std::net::Ipv4Addr::new(127, 100, octet(i / 250), octet(i)))
}

/// Session settings for a peer at `ip` (a loopback address of its own):
/// it listens there, and its dials and announces come from there, so
/// every other peer and the tracker see it as a host of its own (limits
/// per host apply as across the internet).
pub fn local_config_at(ip: std::net::IpAddr) -> SessionConfig {
    let http = tracker::HttpOptions {
        local_address: Some(ip),
        ..tracker::HttpOptions::default()
    };
    let udp = tracker::UdpOptions {
        local_address: Some(ip),
        ..tracker::UdpOptions::default()
    };
    SessionConfig {
        listen: SocketAddr::new(ip, 0),
        tracker_client: tracker::TrackerClient::new(http, udp),
        max_peers_per_ip: SessionConfig::default().max_peers_per_ip,
        ..local_config()
    }
}

/// Session settings for a peer of a test swarm: 127.0.0.1, an ephemeral
/// port, a 5 s snub timeout (peers here answer in milliseconds) and
/// announces as often as the tracker asks (every second). Every member of
/// a swarm is on 127.0.0.1, so the limit on connections per host is
/// lifted.
pub fn local_config() -> SessionConfig {
    SessionConfig {
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        snub_timeout: Duration::from_secs(5),
        min_announce_interval: Duration::from_secs(1),
        max_peers_per_ip: usize::MAX,
        ..SessionConfig::default()
    }
}

/// How often everyone's progress is sampled.
const SAMPLE_EVERY: Duration = Duration::from_millis(50);
/// Real clients are asked for their progress every this many samples.
const REAL_EVERY: u64 = 20;

/// Why a run ended early.
enum Failure {
    /// A member could not be started or failed.
    Error(String),
    /// Not everyone finished in time.
    Deadline(Duration),
}

/// One member's progress now, for a live display.
#[derive(Clone, Debug)]
pub struct Progress {
    /// The member's name.
    pub name: String,
    /// Share of the content verified, 0 to 1 (`None` for a real client that
    /// does not say).
    pub fraction: Option<f64>,
    /// Whether it is in the swarm now.
    pub present: bool,
}

/// A btc member.
struct BtcMember {
    spec: PeerSpec,
    id: PeerId,
    /// Its own loopback address.
    ip: IpAddr,
    /// Pieces it verified, from its events: progress between the stats
    /// the engine publishes once a second.
    verified: HashSet<u32>,
    /// The most peers connected at once from each source.
    learnt: BTreeMap<String, usize>,
    /// Of those, the most over uTP.
    over_utp: usize,
    /// Where its copy lives (the shared source for seeders).
    dir: PathBuf,
    _dir_guard: Option<tempfile::TempDir>,
    resume: PathBuf,
    session: Option<Session>,
    handle: Option<TorrentHandle>,
    /// Whether it left for good (churn over, or never joined yet).
    state: Presence,
    /// Totals of earlier sessions (a churned peer restarts its counters).
    earlier: Totals,
    completed_after: Option<Duration>,
    /// Ids of the peers it banned.
    banned: Vec<Option<PeerId>>,
    /// Connections that ended, by kind of reason.
    dropped: BTreeMap<String, usize>,
    events: Option<tokio::sync::broadcast::Receiver<TorrentEvent>>,
    samples: Vec<(f64, f64)>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Presence {
    NotYet,
    In,
    Away,
}

#[derive(Clone, Debug, Default)]
struct Totals {
    downloaded: u64,
    uploaded: u64,
    hash_failures: u32,
    from: BTreeMap<PeerId, u64>,
}

impl Totals {
    fn add(&mut self, stats: &Stats) {
        self.downloaded += stats.downloaded;
        self.uploaded += stats.uploaded;
        self.hash_failures += stats.hash_failures;
        for peer in &stats.peer_totals {
            *self.from.entry(peer.id).or_default() += peer.downloaded;
        }
    }
}

/// A real member.
enum RealClient {
    Aria2(Aria2),
    Transmission(Transmission),
}

struct RealMember {
    kind: RealPeer,
    client: RealClient,
    dir: PathBuf,
    _dir_guard: Option<tempfile::TempDir>,
    completed_after: Option<Duration>,
    samples: Vec<(f64, f64)>,
}

/// Runs `scenario`, calling `progress` with everyone's progress every 50 ms. Fails on a setup error (a missing real client, say) or
/// if the deadline passes; otherwise the report says what happened,
/// including whether every download was byte-exact.
pub async fn run(
    scenario: &Scenario,
    mut progress: impl FnMut(f64, &[Progress]),
) -> Result<Report, String> {
    for real in &scenario.real {
        if !crate::real::installed(real.program()) {
            return Err(format!(
                "{} is not installed: apt-get install {}",
                real.program(),
                real.package()
            ));
        }
    }
    let tracker = local_tracker()
        .await
        .map_err(|e| format!("cannot start the tracker: {e}"))?;
    let sizes = split(scenario.size, scenario.files);
    let trackers = match scenario.discovery {
        Discovery::Tracker => vec![tracker.announce_url()],
        Discovery::Dht | Discovery::Pex => Vec::new(),
    };
    // Where DHT nodes start: a node of the run's own, at an address apart.
    let router = match scenario.discovery {
        Discovery::Dht => {
            let at = SocketAddr::from(([127, 101, 0, 1], 0));
            let node = dht::Dht::bind(at, dht::Config::default())
                .await
                .map_err(|e| format!("cannot start the DHT router: {e}"))?;
            Some(node)
        }
        _ => None,
    };
    let mut net = Network {
        discovery: scenario.discovery,
        router: router.as_ref().map(dht::Dht::local_addr),
        seeds: Vec::new(),
    };
    let mut content = Content::generate(
        "testnet",
        &sizes,
        scenario.files == 1,
        scenario.piece_length,
        &trackers,
        0x7e57,
    )
    .map_err(|e| format!("cannot generate the content: {e}"))?;
    let web_seed = match scenario.web_seed {
        Some(spec) => {
            let server = WebSeedServer::start(content.data_dir(), spec.rate)
                .await
                .map_err(|e| format!("cannot start the web seed: {e}"))?;
            content
                .set_web_seeds(vec![server.url()])
                .map_err(|e| format!("cannot write the torrent: {e}"))?;
            Some(server)
        }
        None => None,
    };
    let state = tempfile::tempdir().map_err(|e| e.to_string())?;

    let mut btc = Vec::new();
    for (i, spec) in scenario.peers.iter().enumerate() {
        let (dir, guard) = if spec.seeder {
            (content.data_dir(), None)
        } else {
            let guard = tempfile::tempdir().map_err(|e| e.to_string())?;
            (guard.path().to_path_buf(), Some(guard))
        };
        btc.push(BtcMember {
            spec: spec.clone(),
            id: PeerId::generate(),
            ip: swarm_ip(i),
            verified: HashSet::new(),
            learnt: BTreeMap::new(),
            over_utp: 0,
            dropped: BTreeMap::new(),
            dir,
            _dir_guard: guard,
            resume: state.path().join(format!("{i}.resume")),
            session: None,
            handle: None,
            state: Presence::NotYet,
            earlier: Totals::default(),
            completed_after: None,
            banned: Vec::new(),
            events: None,
            samples: Vec::new(),
        });
    }

    let start = Instant::now();
    let mut real = Vec::new();
    let mut setup = Ok(());
    for kind in &scenario.real {
        // Starting a client waits for it (up to seconds): off the runtime.
        let (kind, torrent, data) = (
            *kind,
            content.torrent_file().to_path_buf(),
            content.data_dir(),
        );
        match tokio::task::spawn_blocking(move || start_real(kind, &torrent, data)).await {
            Ok(Ok(member)) => real.push(member),
            Ok(Err(e)) => setup = Err(e),
            Err(e) => setup = Err(e.to_string()),
        }
        if setup.is_err() {
            break;
        }
    }

    // Silent strangers at the seeders, and the next one's number (each has
    // a loopback address of its own).
    let mut strangers: Vec<SilentPeer> = Vec::new();
    let mut next_stranger = 0;
    let mut ticker = tokio::time::interval(SAMPLE_EVERY);
    let mut ticks = 0u64;
    let outcome = loop {
        if let Err(e) = &setup {
            break Err(Failure::Error(e.clone()));
        }
        ticker.tick().await;
        ticks += 1;
        let now = start.elapsed();
        let t = now.as_secs_f64();
        let mut failed = None;
        for member in &mut btc {
            let was = member.state;
            if let Err(e) = step(member, &content, &net, now).await {
                failed = Some(e);
                break;
            }
            // Seeders come first: the leechers joining in the same round
            // are told of them.
            if member.spec.seeder
                && let Some(session) = &member.session
                && !net.seeds.contains(&session.local_addr())
            {
                net.seeds.push(session.local_addr());
            }
            if was == Presence::NotYet
                && member.state == Presence::In
                && member.spec.seeder
                && scenario.strangers > 0
                && let Some(session) = &member.session
            {
                let hash = content.torrent().info_hash();
                let filled = crowd::fill(
                    session.local_addr(),
                    hash,
                    next_stranger,
                    scenario.strangers,
                    Duration::from_secs(5),
                )
                .await;
                next_stranger += scenario.strangers;
                match filled {
                    Ok(held) => strangers.extend(held),
                    Err(e) => {
                        failed = Some(format!("strangers: {e}"));
                        break;
                    }
                }
            }
            drain_events(member);
            if let Some(handle) = &member.handle {
                let stats = handle.stats();
                let ever = stats.sources_ever;
                for (source, count) in [
                    ("tracker", ever.tracker),
                    ("dht", ever.dht),
                    ("pex", ever.pex),
                    ("given", ever.given),
                    ("incoming", ever.incoming),
                ] {
                    // Kept across a churned peer's sessions.
                    let most = member.learnt.entry(source.into()).or_default();
                    *most = (*most).max(count);
                }
                member.over_utp = member.over_utp.max(stats.utp_peers_ever as usize);
                let have = (stats.pieces_have as usize).max(member.verified.len());
                let fraction = have as f64 / f64::from(stats.pieces_total.max(1));
                member.samples.push((t, fraction));
                if stats.pieces_have == stats.pieces_total
                    && member.completed_after.is_none()
                    && !member.spec.seeder
                {
                    member.completed_after = Some(now);
                }
            }
        }
        // Real clients are asked once a second (it runs their tools).
        if ticks.is_multiple_of(REAL_EVERY) {
            for member in &mut real {
                if let Err(e) = check_real(member, &content, now) {
                    failed = Some(e);
                }
            }
        }
        if let Some(e) = failed {
            break Err(Failure::Error(e));
        }
        let view: Vec<Progress> = btc
            .iter()
            .map(|m| Progress {
                name: m.spec.name.clone(),
                fraction: m.samples.last().map(|s| s.1),
                present: m.state == Presence::In,
            })
            .chain(real.iter().map(|m| Progress {
                name: m.kind.name().into(),
                fraction: m.samples.last().map(|s| s.1),
                present: true,
            }))
            .collect();
        progress(t, &view);
        let btc_done = btc
            .iter()
            .all(|m| m.spec.seeder || m.completed_after.is_some());
        let real_done = real
            .iter()
            .all(|m| m.kind.is_seeder() || m.completed_after.is_some());
        if btc_done && real_done {
            break Ok(now);
        }
        if now > scenario.deadline {
            break Err(Failure::Deadline(now));
        }
    };

    // Counted before the seeders stop, which closes the rest.
    let strangers_gave_way = strangers.iter().filter(|s| s.is_closed()).count();
    // Stop everyone; after shutdown each session's statistics are final.
    for member in &mut btc {
        if let Some(session) = member.session.take() {
            session.shutdown().await;
        }
        drain_events(member);
        if let Some(handle) = member.handle.take() {
            member.earlier.add(&handle.stats());
        }
    }
    tracker.stop().await;
    let duration = match outcome {
        Ok(d) => d,
        Err(Failure::Error(e)) => return Err(e),
        Err(Failure::Deadline(d)) => {
            let stuck: Vec<String> = btc
                .iter()
                .filter(|m| !m.spec.seeder && m.completed_after.is_none())
                .map(|m| m.spec.name.clone())
                .chain(
                    real.iter()
                        .filter(|m| !m.kind.is_seeder() && m.completed_after.is_none())
                        .map(|m| m.kind.name().to_string()),
                )
                .collect();
            return Err(format!(
                "not finished after {:.1} s: {} still downloading",
                d.as_secs_f64(),
                stuck.join(", ")
            ));
        }
    };
    let served = web_seed.as_ref().map(WebSeedServer::sent);
    let mut report = report(scenario, &content, &btc, &real, served, duration);
    report.strangers = strangers.len();
    report.strangers_gave_way = strangers_gave_way;
    Ok(report)
}

/// How members find each other, as a member joins.
struct Network {
    discovery: Discovery,
    /// The DHT node everyone starts from.
    router: Option<SocketAddr>,
    /// Where the seeders present listen.
    seeds: Vec<SocketAddr>,
}

/// Joins, leaves and comes back as the spec says.
async fn step(
    member: &mut BtcMember,
    content: &Content,
    net: &Network,
    now: Duration,
) -> Result<(), String> {
    match member.state {
        Presence::NotYet if now >= member.spec.join_at => join(member, content, net).await,
        Presence::In => {
            if let Some(leave) = member.spec.leave
                && now >= leave.at
                && now < leave.at + leave.away
                && member.completed_after.is_none()
            {
                if let Some(session) = member.session.take() {
                    session.shutdown().await;
                }
                drain_events(member);
                if let Some(handle) = member.handle.take() {
                    member.earlier.add(&handle.stats());
                }
                member.state = Presence::Away;
            }
            Ok(())
        }
        Presence::Away => {
            let back = member.spec.leave.is_some_and(|l| now >= l.at + l.away);
            if back {
                join(member, content, net).await?;
            }
            Ok(())
        }
        Presence::NotYet => Ok(()),
    }
}

async fn join(member: &mut BtcMember, content: &Content, net: &Network) -> Result<(), String> {
    let dht = net.router.map(|router| engine::DhtConfig {
        bootstrap: vec![router.to_string()],
        // A swarm of seconds: lookups while peers are few come often.
        reannounce_few: Duration::from_secs(2),
        ..engine::DhtConfig::default()
    });
    let session = Session::start(SessionConfig {
        peer_id: member.id,
        dht,
        // A swarm of seconds: peers are exchanged every second.
        pex_interval: Duration::from_secs(1),
        ..local_config_at(member.ip)
    })
    .await
    .map_err(|e| format!("{}: cannot listen: {e}", member.spec.name))?;
    let mut options = TorrentOptions::new(&member.dir);
    if net.discovery == Discovery::Pex && !member.spec.seeder {
        options.peers.clone_from(&net.seeds);
    }
    options.faults = member.spec.faults.clone();
    options.resume_file = Some(member.resume.clone());
    let handle = session
        .add(content.torrent().clone(), options)
        .await
        .map_err(|e| format!("{}: {e}", member.spec.name))?;
    member.events = Some(handle.events());
    member.handle = Some(handle);
    member.session = Some(session);
    member.state = Presence::In;
    Ok(())
}

fn drain_events(member: &mut BtcMember) {
    let Some(events) = &mut member.events else {
        return;
    };
    loop {
        match events.try_recv() {
            Ok(TorrentEvent::PeerBanned { id, .. }) => member.banned.push(id),
            Ok(TorrentEvent::PeerDropped { reason, .. }) => {
                *member.dropped.entry(reason.kind().into()).or_default() += 1;
            }
            Ok(TorrentEvent::PieceVerified(piece)) => {
                member.verified.insert(piece);
            }
            Ok(_) | Err(tokio::sync::broadcast::error::TryRecvError::Lagged(_)) => {}
            Err(_) => break,
        }
    }
}

fn start_real(
    kind: RealPeer,
    torrent: &std::path::Path,
    data: PathBuf,
) -> Result<RealMember, String> {
    let (dir, guard) = if kind.is_seeder() {
        (data, None)
    } else {
        let guard = tempfile::tempdir().map_err(|e| e.to_string())?;
        (guard.path().to_path_buf(), Some(guard))
    };
    let fail = |e: std::io::Error| format!("{}: {e}", kind.name());
    let client = match kind {
        RealPeer::Aria2Seeder => RealClient::Aria2(Aria2::seed(torrent, &dir).map_err(fail)?),
        RealPeer::Aria2Leecher => RealClient::Aria2(Aria2::leech(torrent, &dir).map_err(fail)?),
        RealPeer::TransmissionSeeder | RealPeer::TransmissionLeecher => {
            let transmission = Transmission::start(&dir).map_err(fail)?;
            transmission.add(torrent).map_err(fail)?;
            RealClient::Transmission(transmission)
        }
    };
    Ok(RealMember {
        kind,
        client,
        dir,
        _dir_guard: guard,
        completed_after: None,
        samples: Vec::new(),
    })
}

fn check_real(member: &mut RealMember, content: &Content, now: Duration) -> Result<(), String> {
    if member.kind.is_seeder() || member.completed_after.is_some() {
        if member.kind.is_seeder() {
            member.samples.push((now.as_secs_f64(), 1.0));
        }
        return Ok(());
    }
    let fraction = match &mut member.client {
        RealClient::Aria2(aria2) => {
            // aria2 exits when its download is complete and checked.
            match aria2.process().check_running() {
                Ok(()) => None,
                Err(_) => Some(1.0),
            }
        }
        RealClient::Transmission(transmission) => {
            transmission
                .process()
                .check_running()
                .map_err(|e| format!("{}: {e}", member.kind.name()))?;
            transmission
                .percent_done()
                .ok()
                .flatten()
                .map(|p| f64::from(p) / 100.0)
        }
    };
    if let Some(fraction) = fraction {
        member.samples.push((now.as_secs_f64(), fraction));
        if fraction >= 1.0 && content.is_downloaded(&member.dir) {
            member.completed_after = Some(now);
        } else if fraction >= 1.0 && matches!(member.client, RealClient::Aria2(_)) {
            return Err(format!(
                "{} exited without a byte-exact copy: {}",
                member.kind.name(),
                content.verify(&member.dir).err().unwrap_or_default()
            ));
        }
    }
    Ok(())
}

/// `total` bytes in `files` files of unequal sizes (the last ones bigger),
/// so that pieces straddle file boundaries.
fn split(total: u64, files: usize) -> Vec<u64> {
    let files = files.max(1) as u64;
    if files == 1 {
        return vec![total];
    }
    let weights: u64 = (1..=files).sum();
    let mut sizes: Vec<u64> = (1..=files).map(|w| total * w / weights).collect();
    let assigned: u64 = sizes.iter().sum();
    if let Some(last) = sizes.last_mut() {
        *last += total - assigned;
    }
    sizes
}

/// The web seed's name in reports.
const WEB_SEED: &str = "web-seed";

fn report(
    scenario: &Scenario,
    content: &Content,
    btc: &[BtcMember],
    real: &[RealMember],
    web_seed_sent: Option<u64>,
    duration: Duration,
) -> Report {
    let names: BTreeMap<PeerId, String> = btc.iter().map(|m| (m.id, m.spec.name.clone())).collect();
    let name_of = |id: &PeerId| -> String {
        names.get(id).cloned().unwrap_or_else(|| {
            // Real clients: by their id's client prefix.
            let prefix = String::from_utf8_lossy(&id.0[..8]).into_owned();
            if prefix.starts_with("A2") {
                "aria2".into()
            } else if prefix.starts_with("-WS") {
                WEB_SEED.into()
            } else if prefix.starts_with("-TR") {
                "transmission".into()
            } else {
                prefix
            }
        })
    };
    let mut members = Vec::new();
    for m in btc {
        let received_from: BTreeMap<String, u64> = m
            .earlier
            .from
            .iter()
            .map(|(id, bytes)| (name_of(id), *bytes))
            .fold(BTreeMap::new(), |mut map, (name, bytes)| {
                *map.entry(name).or_default() += bytes;
                map
            });
        let banned: Vec<String> = m
            .banned
            .iter()
            .map(|id| id.as_ref().map_or_else(|| "?".into(), name_of))
            .collect();
        members.push(MemberReport {
            name: m.spec.name.clone(),
            kind: if m.spec.seeder {
                "btc seeder"
            } else {
                "btc leecher"
            }
            .into(),
            faults: m.spec.describe_faults(),
            completed_after: m.completed_after.map(|d| d.as_secs_f64()),
            byte_exact: (!m.spec.seeder).then(|| content.is_downloaded(&m.dir)),
            downloaded: m.earlier.downloaded,
            uploaded: m.earlier.uploaded,
            hash_failures: m.earlier.hash_failures,
            banned,
            received_from,
            progress: m.samples.clone(),
            learnt: m.learnt.clone(),
            over_utp: m.over_utp,
            dropped: m.dropped.clone(),
        });
    }
    for m in real {
        members.push(MemberReport {
            name: m.kind.name().into(),
            kind: if m.kind.is_seeder() {
                "real seeder"
            } else {
                "real leecher"
            }
            .into(),
            faults: "-".into(),
            completed_after: m.completed_after.map(|d| d.as_secs_f64()),
            byte_exact: (!m.kind.is_seeder()).then(|| content.is_downloaded(&m.dir)),
            downloaded: 0,
            uploaded: 0,
            hash_failures: 0,
            banned: Vec::new(),
            received_from: BTreeMap::new(),
            progress: m.samples.clone(),
            learnt: BTreeMap::new(),
            over_utp: 0,
            dropped: BTreeMap::new(),
        });
    }
    if let (Some(sent), Some(spec)) = (web_seed_sent, scenario.web_seed) {
        members.push(MemberReport {
            name: WEB_SEED.into(),
            kind: "web seed".into(),
            faults: spec
                .rate
                .map_or_else(|| "-".into(), |r| format!("capped ({} MiB/s)", r >> 20)),
            completed_after: None,
            byte_exact: None,
            downloaded: 0,
            uploaded: sent,
            hash_failures: 0,
            banned: Vec::new(),
            received_from: BTreeMap::new(),
            progress: Vec::new(),
            learnt: BTreeMap::new(),
            over_utp: 0,
            dropped: BTreeMap::new(),
        });
    }
    Report::new(
        scenario,
        content.torrent().layout().num_pieces(),
        duration.as_secs_f64(),
        members,
    )
}
