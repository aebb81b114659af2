//! btc against real clients on 127.0.0.1: btc downloads from aria2 and
//! Transmission seeders, and aria2 and Transmission download from a btc
//! seeder. Every file is checked byte for byte. `.ci/run` installs the
//! clients; without them these tests fail, saying which is missing.

#![allow(clippy::unwrap_used)] // test code: a panic is a failure report

use std::net::SocketAddr;
use std::time::Duration;

use engine::{Session, TorrentHandle, TorrentOptions, TorrentState};
use testnet::Content;
use testnet::real::{Aria2, Transmission, wait_until};
use tracker::HttpTracker;

mod clients;
mod crowd;
mod encrypted;
mod mainline;
mod paths;
mod scenarios;
mod utp;

/// Several files, one of them empty, one a byte, across pieces.
const SIZES: [u64; 5] = [0, 1, 300_000, 1 << 20, 500_001];

/// The same without the empty file: Transmission 3.00 does not create
/// zero-length files, so a download by it cannot have one.
const SIZES_NOT_EMPTY: [u64; 4] = [1, 300_000, 1 << 20, 500_001];

async fn session() -> Session {
    Session::start(testnet::local_config()).await.unwrap()
}

async fn tracker() -> HttpTracker {
    testnet::local_tracker().await.unwrap()
}

async fn complete(handle: &TorrentHandle) {
    match tokio::time::timeout(Duration::from_secs(90), handle.wait_complete()).await {
        Ok(result) => result.unwrap(),
        Err(_) => panic!("not complete after 90 s: {:?}", handle.stats()),
    }
}

/// Blocks this test's thread (not the runtime's others) on a poll.
fn poll(what: &str, seconds: u64, ready: impl FnMut() -> std::io::Result<bool>) {
    tokio::task::block_in_place(|| wait_until(what, Duration::from_secs(seconds), ready)).unwrap();
}

fn accepts(addr: SocketAddr) -> bool {
    std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn btc_downloads_from_an_aria2_seeder() {
    let content = Content::generate("multi", &SIZES, false, 32 * 1024, &[], 11).unwrap();
    let mut aria2 = Aria2::seed(content.torrent_file(), &content.data_dir()).unwrap();
    let addr = aria2.addr();
    poll("aria2 listens", 30, || {
        aria2.process().check_running()?;
        Ok(accepts(addr))
    });
    clients::leech_from(&content, addr, testnet::local_config()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn btc_downloads_from_a_transmission_seeder() {
    let content = Content::generate("multi", &SIZES, false, 32 * 1024, &[], 12).unwrap();
    let mut transmission = Transmission::start(&content.data_dir()).unwrap();
    transmission.add(content.torrent_file()).unwrap();
    poll("transmission has checked its data", 30, || {
        transmission.process().check_running()?;
        Ok(transmission.percent_done()? == Some(100))
    });
    clients::leech_from(&content, transmission.addr(), testnet::local_config()).await;
}

/// A btc seeder, announced to an in-process tracker, with its data checked.
async fn btc_seeder(content: &Content) -> (Session, TorrentHandle) {
    clients::seeder(content, testnet::local_config()).await
}

/// Waits (at most 30 s) until `handle` has checked its data and seeds.
async fn wait_seeding(handle: &TorrentHandle) {
    let mut watch = handle.watch();
    let seeding = watch.wait_for(|s| s.state == TorrentState::Seeding);
    tokio::time::timeout(Duration::from_secs(30), seeding)
        .await
        .unwrap()
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aria2_downloads_from_a_btc_seeder() {
    let tracker = tracker().await;
    let content = Content::generate(
        "multi",
        &SIZES,
        false,
        32 * 1024,
        &[tracker.announce_url()],
        13,
    )
    .unwrap();
    let (seeder, handle) = btc_seeder(&content).await;
    let target = tempfile::tempdir().unwrap();
    let mut aria2 = Aria2::leech(content.torrent_file(), target.path()).unwrap();
    let status = tokio::task::block_in_place(|| aria2.process().wait_exit(Duration::from_secs(90)));
    let status = status.unwrap_or_else(|e| panic!("{e}; the seeder: {:?}", handle.stats()));
    assert!(status.success(), "aria2 failed: {status}");
    content.verify(target.path()).unwrap();
    assert!(handle.stats().uploaded >= content.torrent().layout().total_length());
    seeder.shutdown().await;
    tracker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transmission_downloads_from_a_btc_seeder() {
    let tracker = tracker().await;
    let content = Content::generate(
        "multi",
        &SIZES_NOT_EMPTY,
        false,
        32 * 1024,
        &[tracker.announce_url()],
        14,
    )
    .unwrap();
    let (seeder, handle) = btc_seeder(&content).await;
    let target = tempfile::tempdir().unwrap();
    let mut transmission = Transmission::start(target.path()).unwrap();
    transmission.add(content.torrent_file()).unwrap();
    // Transmission never dials 127.0.0.1 peers from a tracker: the btc
    // seeder must find it in its next announce and dial it.
    poll("transmission has every piece", 90, || {
        transmission.process().check_running()?;
        Ok(transmission.percent_done()? == Some(100))
    });
    content.verify(target.path()).unwrap();
    assert!(handle.stats().uploaded > 0);
    seeder.shutdown().await;
    tracker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn btc_fetches_a_magnet_links_metadata_from_aria2_then_downloads() {
    let content = Content::generate("multi", &SIZES, false, 32 * 1024, &[], 15).unwrap();
    let mut aria2 = Aria2::seed(content.torrent_file(), &content.data_dir()).unwrap();
    let addr = aria2.addr();
    poll("aria2 listens", 30, || {
        aria2.process().check_running()?;
        Ok(accepts(addr))
    });
    let mut link = metainfo::MagnetLink::new(content.torrent().info_hash());
    link.peers = vec![addr.to_string()];
    let leecher = session().await;
    let torrent = leecher
        .fetch_metadata(&link, &[], Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(torrent.raw_info(), content.torrent().raw_info());
    let target = tempfile::tempdir().unwrap();
    let mut options = TorrentOptions::new(target.path());
    options.peers = vec![addr];
    let handle = leecher.add(torrent, options).await.unwrap();
    complete(&handle).await;
    content.verify(target.path()).unwrap();
    leecher.shutdown().await;
}
