//! Real clients meet a btc peer whose table is full of silent strangers
//! (each from a loopback address of its own, sending only keep-alives):
//! the strangers give way, and the download completes.

use std::time::Duration;

use engine::turnover::Grace;
use engine::{Session, SessionConfig, TorrentEvent, TorrentHandle, TorrentOptions};
use testnet::Content;
use testnet::crowd::{self, SilentPeer};
use testnet::real::{Aria2, Libtorrent};

use super::{complete, tracker};

/// Places in the btc peer's table, all taken by strangers first.
const PLACES: usize = 12;

/// A small table whose mute peers give way to a newcomer at once (a real
/// client refused at first may not dial again for a minute).
fn crowded() -> SessionConfig {
    SessionConfig {
        max_peers_per_torrent: PLACES,
        turnover: Grace {
            mute: Duration::ZERO,
            idle: Duration::from_secs(60),
            stalled: Duration::from_secs(60),
        },
        ..testnet::local_config()
    }
}

/// Fills `session`'s table for `content` with silent strangers.
async fn fill(session: &Session, content: &Content) -> Vec<SilentPeer> {
    let hash = content.torrent().info_hash();
    let crowd = crowd::fill(
        session.local_addr(),
        hash,
        0,
        PLACES,
        Duration::from_millis(200),
    )
    .await
    .unwrap();
    assert_eq!(crowd.len(), PLACES, "the strangers take every place");
    crowd
}

/// Whether `events` told of a stranger giving its place.
fn gave_way(events: &mut tokio::sync::broadcast::Receiver<TorrentEvent>) -> bool {
    std::iter::from_fn(|| events.try_recv().ok()).any(|e| {
        matches!(
            e,
            TorrentEvent::PeerDropped {
                reason: engine::DropReason::GaveWay | engine::DropReason::DialGaveWay,
                ..
            }
        )
    })
}

async fn crowded_seeder(content: &Content) -> (Session, TorrentHandle, Vec<SilentPeer>) {
    let seeder = Session::start(crowded()).await.unwrap();
    let handle = seeder
        .add(
            content.torrent().clone(),
            TorrentOptions::new(content.data_dir()),
        )
        .await
        .unwrap();
    super::wait_seeding(&handle).await;
    let crowd = fill(&seeder, content).await;
    (seeder, handle, crowd)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn libtorrent_downloads_from_a_btc_seeder_full_of_silent_peers() {
    let content = Content::generate("multi", &super::SIZES, false, 32 * 1024, &[], 31).unwrap();
    let (seeder, handle, crowd) = crowded_seeder(&content).await;
    let mut events = handle.events();
    let target = tempfile::tempdir().unwrap();
    let mut lt = Libtorrent::leech(
        content.torrent_file(),
        target.path(),
        &[seeder.local_addr()],
    )
    .unwrap();
    let status = tokio::task::block_in_place(|| lt.process().wait_exit(Duration::from_secs(90)));
    let status = status.unwrap_or_else(|e| panic!("{e}; the seeder: {:?}", handle.stats()));
    assert!(status.success(), "libtorrent failed: {status}");
    content.verify(target.path()).unwrap();
    assert!(gave_way(&mut events), "a stranger made room");
    assert!(crowd.iter().any(SilentPeer::is_closed));
    seeder.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aria2_downloads_from_a_btc_seeder_full_of_silent_peers() {
    let tracker = tracker().await;
    let urls = [tracker.announce_url()];
    let content = Content::generate("multi", &super::SIZES, false, 32 * 1024, &urls, 32).unwrap();
    let (seeder, handle, _crowd) = crowded_seeder(&content).await;
    let target = tempfile::tempdir().unwrap();
    let mut aria2 = Aria2::leech(content.torrent_file(), target.path()).unwrap();
    let status = tokio::task::block_in_place(|| aria2.process().wait_exit(Duration::from_secs(90)));
    let status = status.unwrap_or_else(|e| panic!("{e}; the seeder: {:?}", handle.stats()));
    assert!(status.success(), "aria2 failed: {status}");
    content.verify(target.path()).unwrap();
    seeder.shutdown().await;
    tracker.stop().await;
}

/// A btc leecher full of strangers, and a real seeder that appears later
/// and dials it (libtorrent) or that its tracker lists (aria2).
async fn crowded_leecher_downloads(content: &Content, seed: impl FnOnce(&Session)) {
    let leecher = Session::start(crowded()).await.unwrap();
    let target = tempfile::tempdir().unwrap();
    let handle = leecher
        .add(
            content.torrent().clone(),
            TorrentOptions::new(target.path()),
        )
        .await
        .unwrap();
    let mut events = handle.events();
    let _crowd = fill(&leecher, content).await;
    seed(&leecher);
    complete(&handle).await;
    content.verify(target.path()).unwrap();
    assert!(gave_way(&mut events), "a stranger made room");
    leecher.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_btc_leecher_full_of_silent_peers_downloads_from_libtorrent() {
    let content = Content::generate("multi", &super::SIZES, false, 32 * 1024, &[], 33).unwrap();
    let mut seeder = None;
    crowded_leecher_downloads(&content, |leecher| {
        let dir = content.data_dir();
        let lt = Libtorrent::seed(content.torrent_file(), &dir, &[leecher.local_addr()]);
        seeder = Some(lt.unwrap());
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_btc_leecher_full_of_silent_peers_downloads_from_aria2() {
    let tracker = tracker().await;
    let urls = [tracker.announce_url()];
    let content = Content::generate("multi", &super::SIZES, false, 32 * 1024, &urls, 34).unwrap();
    let mut seeder = None;
    crowded_leecher_downloads(&content, |_| {
        seeder = Some(Aria2::seed(content.torrent_file(), &content.data_dir()).unwrap());
    })
    .await;
    tracker.stop().await;
}
