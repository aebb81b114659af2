//! btc against real clients (aria2, libtorrent, Transmission, qBittorrent)
//! that take and make only encrypted connections (MSE/PE with RC4), both
//! ways, byte-exact; btc requires encryption too, so a plaintext byte
//! either way would have ended the connection. Then btc's default against
//! each client's own defaults.

use std::net::SocketAddr;
use std::time::Duration;

use engine::{Encryption, Session, SessionConfig, TorrentHandle, Transport};
use testnet::Content;
use testnet::real::{ARIA2_REQUIRE_CRYPTO, Aria2, Crypto, LtNetwork, Qbittorrent, Transmission};

use super::clients::{self, content_with, libtorrent_leeches, libtorrent_seeds};
use super::{SIZES, SIZES_NOT_EMPTY, accepts, poll, tracker};

/// A btc session set up with `encryption`.
fn config(encryption: Encryption) -> SessionConfig {
    SessionConfig {
        encryption,
        ..testnet::local_config()
    }
}

/// A btc leecher with `encryption` that dials `addr`, done and checked.
async fn leech_from(content: &Content, addr: SocketAddr, encryption: Encryption) {
    clients::leech_from(content, addr, config(encryption)).await;
}

/// A btc seeder with `encryption`, its data checked.
async fn seeder(content: &Content, encryption: Encryption) -> (Session, TorrentHandle) {
    clients::seeder(content, config(encryption)).await
}

fn transmission_seeds(content: &Content, encryption: u8) -> Transmission {
    clients::transmission_seeds(content, encryption, false)
}

async fn transmission_leeches(content: &Content, handle: &TorrentHandle, encryption: u8) {
    clients::transmission_leeches(content, handle, encryption, false).await;
}

fn qbittorrent_seeds(content: &Content, crypto: Crypto) -> Qbittorrent {
    clients::qbittorrent_seeds(content, crypto, Transport::Tcp)
}

async fn qbittorrent_leeches(content: &Content, handle: &TorrentHandle, crypto: Crypto) {
    clients::qbittorrent_leeches(content, handle, crypto, Transport::Tcp).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn btc_downloads_from_an_aria2_seeder_that_requires_encryption() {
    let content = Content::generate("multi", &SIZES, false, 32 * 1024, &[], 91).unwrap();
    let mut aria2 = Aria2::seed_with(
        content.torrent_file(),
        &content.data_dir(),
        ARIA2_REQUIRE_CRYPTO,
    )
    .unwrap();
    let addr = aria2.addr();
    poll("aria2 listens", 30, || {
        aria2.process().check_running()?;
        Ok(accepts(addr))
    });
    leech_from(&content, addr, Encryption::Require).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aria2_requiring_encryption_downloads_from_a_btc_seeder() {
    let tracker = tracker().await;
    let content = content_with(&tracker, &SIZES, 92);
    let (seeder, handle) = seeder(&content, Encryption::Require).await;
    let target = tempfile::tempdir().unwrap();
    let mut aria2 =
        Aria2::leech_with(content.torrent_file(), target.path(), ARIA2_REQUIRE_CRYPTO).unwrap();
    let status = tokio::task::block_in_place(|| aria2.process().wait_exit(Duration::from_secs(90)));
    let status = status.unwrap_or_else(|e| panic!("{e}; the seeder: {:?}", handle.stats()));
    assert!(status.success(), "aria2 failed: {status}");
    content.verify(target.path()).unwrap();
    seeder.shutdown().await;
    tracker.stop().await;
}

fn lt_requiring() -> LtNetwork {
    LtNetwork {
        crypto: Crypto::Required,
        ..LtNetwork::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn btc_downloads_from_a_libtorrent_seeder_that_requires_encryption() {
    let content = Content::generate("multi", &SIZES, true, 32 * 1024, &[], 93).unwrap();
    let lt = libtorrent_seeds(&content, lt_requiring());
    leech_from(&content, lt.addr(), Encryption::Require).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn libtorrent_requiring_encryption_downloads_from_a_btc_seeder() {
    let content = Content::generate("multi", &SIZES, true, 32 * 1024, &[], 94).unwrap();
    let (seeder, handle) = seeder(&content, Encryption::Require).await;
    libtorrent_leeches(&content, &seeder, &handle, lt_requiring());
    seeder.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn btc_downloads_from_a_transmission_seeder_that_requires_encryption() {
    let content = Content::generate("multi", &SIZES, false, 32 * 1024, &[], 95).unwrap();
    let transmission = transmission_seeds(&content, 2);
    leech_from(&content, transmission.addr(), Encryption::Require).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transmission_requiring_encryption_downloads_from_a_btc_seeder() {
    let tracker = tracker().await;
    let content = content_with(&tracker, &SIZES_NOT_EMPTY, 96);
    let (seeder, handle) = seeder(&content, Encryption::Require).await;
    transmission_leeches(&content, &handle, 2).await;
    seeder.shutdown().await;
    tracker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn btc_downloads_from_a_qbittorrent_seeder_that_requires_encryption() {
    let content = Content::generate("multi", &SIZES, false, 32 * 1024, &[], 97).unwrap();
    let qbittorrent = qbittorrent_seeds(&content, Crypto::Required);
    leech_from(&content, qbittorrent.addr(), Encryption::Require).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn qbittorrent_requiring_encryption_downloads_from_a_btc_seeder() {
    let tracker = tracker().await;
    let content = content_with(&tracker, &SIZES, 98);
    let (seeder, handle) = seeder(&content, Encryption::Require).await;
    qbittorrent_leeches(&content, &handle, Crypto::Required).await;
    seeder.shutdown().await;
    tracker.stop().await;
}

/// btc's default (MSE first, plaintext if refused) against each client's
/// own encryption defaults, both ways: libtorrent (MSE both ways, either
/// method), Transmission (`"encryption": 1`, preferred) and qBittorrent
/// (its default). aria2's defaults are those of the plain interop tests.
mod defaults {
    use super::*;

    const BTC: Encryption = Encryption::Prefer;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn with_libtorrent_both_ways() {
        let content = Content::generate("multi", &SIZES, true, 32 * 1024, &[], 101).unwrap();
        let defaults = LtNetwork {
            crypto: Crypto::Defaults,
            ..LtNetwork::default()
        };
        let lt = libtorrent_seeds(&content, defaults);
        leech_from(&content, lt.addr(), BTC).await;

        let (seeder, handle) = seeder(&content, BTC).await;
        libtorrent_leeches(&content, &seeder, &handle, defaults);
        seeder.shutdown().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn with_transmission_both_ways() {
        let tracker = tracker().await;
        let content = content_with(&tracker, &SIZES_NOT_EMPTY, 102);
        let seeding = transmission_seeds(&content, 1);
        leech_from(&content, seeding.addr(), BTC).await;
        drop(seeding);

        let (seeder, handle) = seeder(&content, BTC).await;
        transmission_leeches(&content, &handle, 1).await;
        seeder.shutdown().await;
        tracker.stop().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn with_qbittorrent_both_ways() {
        let tracker = tracker().await;
        let content = content_with(&tracker, &SIZES, 103);
        let seeding = qbittorrent_seeds(&content, Crypto::Defaults);
        leech_from(&content, seeding.addr(), BTC).await;
        drop(seeding);

        let (seeder, handle) = seeder(&content, BTC).await;
        qbittorrent_leeches(&content, &handle, Crypto::Defaults).await;
        seeder.shutdown().await;
        tracker.stop().await;
    }
}
