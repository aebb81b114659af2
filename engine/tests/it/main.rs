//! End-to-end: btc sessions trading over real sockets on 127.0.0.1, with
//! the tracker crate's server in process.

#![allow(clippy::unwrap_used)] // test code: a panic is a failure report

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use engine::{
    Faults, Session, SessionConfig, TorrentEvent, TorrentHandle, TorrentOptions, TorrentState,
};
use metainfo::{Metainfo, TorrentBuilder};
use rand::{Rng as _, SeedableRng as _};
use tracker::{HttpTracker, TrackerConfig};

mod crowded;
mod encryption;
mod hostile;
mod ipv6;
mod seeding;
mod swarm;
mod trackerless;
mod utp;
mod webseed;

/// Generated content on disk and its torrent.
struct Content {
    /// Holds the content under `dir/<name>`.
    dir: tempfile::TempDir,
    torrent: Metainfo,
    /// Relative paths (under the download folder) and bytes.
    files: Vec<(PathBuf, Vec<u8>)>,
}

/// Makes a multi-file torrent named `content` from files of these sizes,
/// with bytes from `seed`.
fn content(sizes: &[usize], piece_length: u64, trackers: &[String], seed: u64) -> Content {
    content_in_tiers(sizes, piece_length, &[trackers.to_vec()], seed)
}

/// As [`content`], with an announce list of these tiers.
fn content_in_tiers(
    sizes: &[usize],
    piece_length: u64,
    tiers: &[Vec<String>],
    seed: u64,
) -> Content {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("content");
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut files = Vec::new();
    for (i, size) in sizes.iter().enumerate() {
        let relative = PathBuf::from(format!("content/d{}/f{i:02}.bin", i % 2));
        let path = dir.path().join(&relative);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        let mut data = vec![0u8; *size];
        rng.fill(&mut data[..]);
        std::fs::write(&path, &data).unwrap();
        files.push((relative, data));
    }
    let mut builder = TorrentBuilder::new(&root).piece_length(piece_length);
    for tier in tiers.iter().filter(|t| !t.is_empty()) {
        builder = builder.tracker_tier(tier.clone());
    }
    let torrent = builder.build(|_, _| {}).unwrap();
    Content {
        dir,
        torrent,
        files,
    }
}

impl Content {
    /// Options to seed this content from where it was made.
    fn seed_options(&self) -> TorrentOptions {
        TorrentOptions::new(self.dir.path())
    }

    /// Asserts that `dir` holds every file byte for byte.
    fn assert_downloaded(&self, dir: &Path) {
        for (relative, data) in &self.files {
            let got = std::fs::read(dir.join(relative))
                .unwrap_or_else(|e| panic!("{}: {e}", relative.display()));
            assert!(got == *data, "{} differs", relative.display());
        }
    }
}

/// Settings on 127.0.0.1 with timings fit for tests.
fn test_config() -> SessionConfig {
    SessionConfig {
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        snub_timeout: Duration::from_secs(5),
        // The test trackers ask for a second.
        min_announce_interval: Duration::from_secs(1),
        ..SessionConfig::default()
    }
}

/// A session with [`test_config`].
async fn session() -> Session {
    Session::start(test_config()).await.unwrap()
}

/// A session on 127.0.0.1 started with `config`, seeding `content` from
/// where it was made.
async fn seeder_of(content: &Content, config: SessionConfig) -> Session {
    let seeder = Session::start(SessionConfig {
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        ..config
    })
    .await
    .unwrap();
    seeder
        .add(content.torrent.clone(), content.seed_options())
        .await
        .unwrap();
    seeder
}

/// A session started with `config`, seeding `content` at `rate` bytes a
/// second: slow enough that its connections are seen in the once-a-second
/// stats.
async fn slow_seeder(content: &Content, config: SessionConfig, rate: u64) -> Session {
    let seeder = Session::start(config).await.unwrap();
    let mut options = content.seed_options();
    options.faults.upload_rate = Some(rate);
    seeder.add(content.torrent.clone(), options).await.unwrap();
    seeder
}

/// `session` downloads `content` into a new folder from `peers` alone.
async fn leech_from(
    session: &Session,
    content: &Content,
    peers: Vec<SocketAddr>,
) -> (TorrentHandle, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let mut options = engine::TorrentOptions::new(dir.path());
    options.peers = peers;
    let handle = session.add(content.torrent.clone(), options).await.unwrap();
    (handle, dir)
}

/// Waits (at most 30 s) until `tracker` lists a peer of `hash`; `who` says
/// whose announce that is, for the failure message.
async fn wait_listed(tracker: &HttpTracker, hash: &metainfo::InfoHash, who: &str) {
    let listed = async {
        while tracker.state().lock().unwrap().peers(hash).is_empty() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(30), listed)
        .await
        .unwrap_or_else(|_| panic!("{who} announces"));
}

/// An in-process tracker that tells peers to come back every second.
async fn tracker() -> HttpTracker {
    tracker_at(SocketAddr::from(([127, 0, 0, 1], 0))).await
}

/// [`tracker`] at `addr`.
async fn tracker_at(addr: SocketAddr) -> HttpTracker {
    HttpTracker::bind(
        addr,
        TrackerConfig {
            interval: 1,
            min_interval: 1,
            ..TrackerConfig::default()
        },
    )
    .await
    .unwrap()
}

/// Waits (at most a minute) for `handle` to have every piece.
async fn complete(handle: &TorrentHandle) {
    match tokio::time::timeout(Duration::from_secs(60), handle.wait_complete()).await {
        Ok(result) => result.unwrap(),
        Err(_) => panic!("not complete after 60 s: {:?}", handle.stats()),
    }
}

/// Waits (at most a minute) until `pred` holds for the handle's stats.
async fn wait_for(handle: &TorrentHandle, what: &str, pred: impl Fn(&engine::Stats) -> bool) {
    let mut watch = handle.watch();
    let waited = tokio::time::timeout(Duration::from_secs(60), watch.wait_for(|s| pred(s))).await;
    assert!(
        matches!(waited, Ok(Ok(_))),
        "{what}: not after 60 s: {:?}",
        handle.stats()
    );
}

const SIZES: [usize; 6] = [0, 1, 100_000, 300_000, 16 * 1024, 700_001];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leecher_downloads_a_multi_file_torrent_from_a_seeder_through_a_tracker() {
    let tracker = tracker().await;
    let content = content(&SIZES, 32 * 1024, &[tracker.announce_url()], 1);
    let seeder = session().await;
    let seed = seeder
        .add(content.torrent.clone(), content.seed_options())
        .await
        .unwrap();
    wait_for(&seed, "the seeder checks its data", |s| {
        s.state == TorrentState::Seeding
    })
    .await;

    let leecher = session().await;
    let target = tempfile::tempdir().unwrap();
    let leech = leecher
        .add(content.torrent.clone(), TorrentOptions::new(target.path()))
        .await
        .unwrap();
    complete(&leech).await;
    content.assert_downloaded(target.path());
    let stats = leech.stats();
    assert_eq!(stats.bytes_left, 0);
    assert_eq!(stats.pieces_have, stats.pieces_total);
    assert_eq!(stats.hash_failures, 0);
    leecher.shutdown().await;
    seeder.shutdown().await;
    tracker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn direct_peers_work_without_any_tracker() {
    let content = content(&[200_000], 16 * 1024, &[], 2);
    let seeder = session().await;
    seeder
        .add(content.torrent.clone(), content.seed_options())
        .await
        .unwrap();
    let leecher = session().await;
    let target = tempfile::tempdir().unwrap();
    let mut options = TorrentOptions::new(target.path());
    options.peers = vec![seeder.local_addr()];
    let leech = leecher.add(content.torrent.clone(), options).await.unwrap();
    complete(&leech).await;
    content.assert_downloaded(target.path());
    leecher.shutdown().await;
    seeder.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_liar_is_banned_and_the_download_completes_from_honest_peers() {
    let content = content(&[400_000], 16 * 1024, &[], 3);
    let liar = session().await;
    let mut lying = content.seed_options();
    lying.faults = Faults {
        corrupt_uploads: true,
        ..Faults::default()
    };
    liar.add(content.torrent.clone(), lying).await.unwrap();
    // The honest seeder is slow, so that the liar is surely asked for
    // pieces before the honest one has sent everything.
    let honest = session().await;
    let mut slow = content.seed_options();
    slow.faults.upload_rate = Some(128 * 1024);
    honest.add(content.torrent.clone(), slow).await.unwrap();

    let leecher = session().await;
    let target = tempfile::tempdir().unwrap();
    let mut options = TorrentOptions::new(target.path());
    options.peers = vec![liar.local_addr(), honest.local_addr()];
    let leech = leecher.add(content.torrent.clone(), options).await.unwrap();
    let mut events = leech.events();
    complete(&leech).await;
    content.assert_downloaded(target.path());
    let stats = leech.stats();
    assert!(stats.hash_failures >= 1, "{stats:?}");
    assert_eq!(stats.banned, 1, "{stats:?}");
    let mut banned = Vec::new();
    while let Ok(event) = events.try_recv() {
        if let engine::TorrentEvent::PeerBanned { addr, .. } = event {
            banned.push(addr);
        }
    }
    assert_eq!(banned, vec![liar.local_addr()]);
    leecher.shutdown().await;
    liar.shutdown().await;
    honest.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_magnet_link_gets_its_metadata_from_a_btc_seeder_then_downloads() {
    let content = content(&[300_000, 5], 16 * 1024, &[], 11);
    let seeder = session().await;
    seeder
        .add(content.torrent.clone(), content.seed_options())
        .await
        .unwrap();
    let mut link = metainfo::MagnetLink::new(content.torrent.info_hash());
    link.peers = vec![seeder.local_addr().to_string()];
    let leecher = session().await;
    let torrent = leecher
        .fetch_metadata(&link, &[], Duration::from_secs(30))
        .await
        .unwrap();
    assert_eq!(torrent.info_hash(), content.torrent.info_hash());
    assert_eq!(torrent.raw_info(), content.torrent.raw_info());
    let target = tempfile::tempdir().unwrap();
    let mut options = TorrentOptions::new(target.path());
    options.peers = vec![seeder.local_addr()];
    let leech = leecher.add(torrent, options).await.unwrap();
    complete(&leech).await;
    content.assert_downloaded(target.path());
    leecher.shutdown().await;
    seeder.shutdown().await;
}

/// A magnet's trackers are asked at once: a first one that never answers
/// does not keep the metadata from the peers the second one knows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_magnet_link_gets_its_peers_past_a_silent_tracker() {
    let silent = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let tracker = tracker().await;
    let content = content(&[300_000], 16 * 1024, &[tracker.announce_url()], 13);
    let seeder = seeder_of(&content, test_config()).await;
    // The seeder is listed before the leecher asks.
    let hash = content.torrent.info_hash();
    wait_listed(&tracker, &hash, "the seeder").await;
    let mut link = metainfo::MagnetLink::new(hash);
    link.trackers = vec![
        format!("udp://{}/announce", silent.local_addr().unwrap()),
        tracker.announce_url(),
    ];
    let leecher = session().await;
    let torrent = leecher
        .fetch_metadata(&link, &[], Duration::from_secs(30))
        .await
        .unwrap();
    assert_eq!(torrent.info_hash(), hash);
    leecher.shutdown().await;
    seeder.shutdown().await;
    tracker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_magnet_link_without_anyone_to_ask_fails_in_time() {
    let content = content(&[1000], 16 * 1024, &[], 12);
    let link = metainfo::MagnetLink::new(content.torrent.info_hash());
    let leecher = session().await;
    let err = leecher
        .fetch_metadata(&link, &[], Duration::from_secs(5))
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("no peer gave the torrent's metadata"),
        "{err}"
    );
    leecher.shutdown().await;
}
