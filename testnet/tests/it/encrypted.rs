//! btc against real clients (aria2, libtorrent, Transmission, qBittorrent)
//! that take and make only encrypted connections
//! (MSE/PE with RC4), both ways, byte-exact; btc requires encryption too,
//! so a plaintext byte either way would have ended the connection.

use std::time::Duration;

use engine::{Encryption, Session, SessionConfig, TorrentHandle, TorrentOptions};
use testnet::Content;
use testnet::real::{
    ARIA2_REQUIRE_CRYPTO, Aria2, Crypto, Libtorrent, LtNetwork, Qbittorrent, Transmission,
};

use super::{SIZES, SIZES_NOT_EMPTY, accepts, complete, poll, tracker, wait_seeding};

async fn requiring() -> Session {
    Session::start(SessionConfig {
        encryption: Encryption::Require,
        ..testnet::local_config()
    })
    .await
    .unwrap()
}

/// A btc leecher requiring encryption that dials `addr`, done and checked.
async fn leech_from(content: &Content, addr: std::net::SocketAddr) {
    let leecher = requiring().await;
    let target = tempfile::tempdir().unwrap();
    let mut options = TorrentOptions::new(target.path());
    options.peers = vec![addr];
    let handle = leecher
        .add(content.torrent().clone(), options)
        .await
        .unwrap();
    complete(&handle).await;
    content.verify(target.path()).unwrap();
    assert!(handle.stats().peers_ever > 0);
    leecher.shutdown().await;
}

/// Waits until the seeder's stats (published once a second) show what it
/// sent: the copy came from it.
async fn uploaded(handle: &TorrentHandle) {
    let mut watch = handle.watch();
    let sent = watch.wait_for(|s| s.uploaded > 0);
    tokio::time::timeout(Duration::from_secs(10), sent)
        .await
        .expect("the btc seeder sent the data")
        .unwrap();
}

/// A btc seeder requiring encryption, its data checked.
async fn seeder(content: &Content) -> (Session, TorrentHandle) {
    let seeder = requiring().await;
    let handle = seeder
        .add(
            content.torrent().clone(),
            TorrentOptions::new(content.data_dir()),
        )
        .await
        .unwrap();
    wait_seeding(&handle).await;
    (seeder, handle)
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
    leech_from(&content, addr).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aria2_requiring_encryption_downloads_from_a_btc_seeder() {
    let tracker = tracker().await;
    let content = Content::generate(
        "multi",
        &SIZES,
        false,
        32 * 1024,
        &[tracker.announce_url()],
        92,
    )
    .unwrap();
    let (seeder, handle) = seeder(&content).await;
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
    let mut lt =
        Libtorrent::seed_in(content.torrent_file(), &content.data_dir(), lt_requiring()).unwrap();
    let addr = lt.addr();
    poll("libtorrent listens", 30, || {
        lt.process().check_running()?;
        Ok(accepts(addr))
    });
    leech_from(&content, addr).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn libtorrent_requiring_encryption_downloads_from_a_btc_seeder() {
    let content = Content::generate("multi", &SIZES, true, 32 * 1024, &[], 94).unwrap();
    let (seeder, handle) = seeder(&content).await;
    let target = tempfile::tempdir().unwrap();
    let mut lt = Libtorrent::leech_in(
        content.torrent_file(),
        target.path(),
        &[seeder.local_addr()],
        lt_requiring(),
    )
    .unwrap();
    let status = tokio::task::block_in_place(|| lt.process().wait_exit(Duration::from_secs(90)));
    let status = status.unwrap_or_else(|e| panic!("{e}; the seeder: {:?}", handle.stats()));
    assert!(status.success(), "libtorrent failed: {status}");
    content.verify(target.path()).unwrap();
    seeder.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn btc_downloads_from_a_transmission_seeder_that_requires_encryption() {
    let content = Content::generate("multi", &SIZES, false, 32 * 1024, &[], 95).unwrap();
    let mut transmission = Transmission::start_with_encryption(&content.data_dir(), 2).unwrap();
    transmission.add(content.torrent_file()).unwrap();
    poll("transmission has checked its data", 30, || {
        transmission.process().check_running()?;
        Ok(transmission.percent_done()? == Some(100))
    });
    leech_from(&content, transmission.addr()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transmission_requiring_encryption_downloads_from_a_btc_seeder() {
    let tracker = tracker().await;
    let content = Content::generate(
        "multi",
        &SIZES_NOT_EMPTY,
        false,
        32 * 1024,
        &[tracker.announce_url()],
        96,
    )
    .unwrap();
    let (seeder, handle) = seeder(&content).await;
    let target = tempfile::tempdir().unwrap();
    let mut transmission = Transmission::start_with_encryption(target.path(), 2).unwrap();
    transmission.add(content.torrent_file()).unwrap();
    // Transmission never dials 127.0.0.1 peers from a tracker: the btc
    // seeder finds it in its next announce and dials it, encrypted.
    poll("transmission has every piece", 90, || {
        transmission.process().check_running()?;
        Ok(transmission.percent_done()? == Some(100))
    });
    content.verify(target.path()).unwrap();
    uploaded(&handle).await;
    seeder.shutdown().await;
    tracker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn btc_downloads_from_a_qbittorrent_seeder_that_requires_encryption() {
    let content = Content::generate("multi", &SIZES, false, 32 * 1024, &[], 97).unwrap();
    let mut qbittorrent = Qbittorrent::start(
        content.torrent_file(),
        &content.data_dir(),
        Crypto::Required,
    )
    .unwrap();
    poll("qbittorrent has checked its data", 60, || {
        qbittorrent.process().check_running()?;
        qbittorrent.done()
    });
    leech_from(&content, qbittorrent.addr()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn qbittorrent_requiring_encryption_downloads_from_a_btc_seeder() {
    let tracker = tracker().await;
    let content = Content::generate(
        "multi",
        &SIZES,
        false,
        32 * 1024,
        &[tracker.announce_url()],
        98,
    )
    .unwrap();
    let (seeder, handle) = seeder(&content).await;
    let target = tempfile::tempdir().unwrap();
    let mut qbittorrent =
        Qbittorrent::start(content.torrent_file(), target.path(), Crypto::Required).unwrap();
    poll("qbittorrent has every piece", 90, || {
        qbittorrent.process().check_running()?;
        qbittorrent.done()
    });
    content.verify(target.path()).unwrap();
    uploaded(&handle).await;
    seeder.shutdown().await;
    tracker.stop().await;
}

/// btc's default (MSE first, plaintext if refused) against each client's
/// own encryption defaults, both ways: libtorrent (MSE both ways, either
/// method), Transmission (`"encryption": 1`, preferred) and qBittorrent
/// (its default). aria2's defaults are those of the plain interop tests.
mod defaults {
    use super::*;

    async fn btc_leech_from(content: &Content, addr: std::net::SocketAddr) {
        let leecher = super::super::session().await;
        let target = tempfile::tempdir().unwrap();
        let mut options = TorrentOptions::new(target.path());
        options.peers = vec![addr];
        let handle = leecher
            .add(content.torrent().clone(), options)
            .await
            .unwrap();
        complete(&handle).await;
        content.verify(target.path()).unwrap();
        leecher.shutdown().await;
    }

    async fn btc_seeder(content: &Content) -> (Session, TorrentHandle) {
        let seeder = super::super::session().await;
        let handle = seeder
            .add(
                content.torrent().clone(),
                TorrentOptions::new(content.data_dir()),
            )
            .await
            .unwrap();
        wait_seeding(&handle).await;
        (seeder, handle)
    }

    fn lt_defaults() -> LtNetwork {
        LtNetwork {
            crypto: Crypto::Defaults,
            ..LtNetwork::default()
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn with_libtorrent_both_ways() {
        let content = Content::generate("multi", &SIZES, true, 32 * 1024, &[], 101).unwrap();
        let mut lt =
            Libtorrent::seed_in(content.torrent_file(), &content.data_dir(), lt_defaults())
                .unwrap();
        let addr = lt.addr();
        poll("libtorrent listens", 30, || {
            lt.process().check_running()?;
            Ok(accepts(addr))
        });
        btc_leech_from(&content, addr).await;

        let (seeder, handle) = btc_seeder(&content).await;
        let target = tempfile::tempdir().unwrap();
        let mut lt = Libtorrent::leech_in(
            content.torrent_file(),
            target.path(),
            &[seeder.local_addr()],
            lt_defaults(),
        )
        .unwrap();
        let status =
            tokio::task::block_in_place(|| lt.process().wait_exit(Duration::from_secs(90)));
        let status = status.unwrap_or_else(|e| panic!("{e}; the seeder: {:?}", handle.stats()));
        assert!(status.success(), "libtorrent failed: {status}");
        content.verify(target.path()).unwrap();
        seeder.shutdown().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn with_transmission_both_ways() {
        let tracker = tracker().await;
        let content = Content::generate(
            "multi",
            &SIZES_NOT_EMPTY,
            false,
            32 * 1024,
            &[tracker.announce_url()],
            102,
        )
        .unwrap();
        let mut seeding = Transmission::start_with_encryption(&content.data_dir(), 1).unwrap();
        seeding.add(content.torrent_file()).unwrap();
        poll("transmission has checked its data", 30, || {
            seeding.process().check_running()?;
            Ok(seeding.percent_done()? == Some(100))
        });
        btc_leech_from(&content, seeding.addr()).await;
        drop(seeding);

        let (seeder, handle) = btc_seeder(&content).await;
        let target = tempfile::tempdir().unwrap();
        let mut leeching = Transmission::start_with_encryption(target.path(), 1).unwrap();
        leeching.add(content.torrent_file()).unwrap();
        poll("transmission has every piece", 90, || {
            leeching.process().check_running()?;
            Ok(leeching.percent_done()? == Some(100))
        });
        content.verify(target.path()).unwrap();
        uploaded(&handle).await;
        seeder.shutdown().await;
        tracker.stop().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn with_qbittorrent_both_ways() {
        let tracker = tracker().await;
        let content = Content::generate(
            "multi",
            &SIZES,
            false,
            32 * 1024,
            &[tracker.announce_url()],
            103,
        )
        .unwrap();
        let mut seeding = Qbittorrent::start(
            content.torrent_file(),
            &content.data_dir(),
            Crypto::Defaults,
        )
        .unwrap();
        poll("qbittorrent has checked its data", 60, || {
            seeding.process().check_running()?;
            seeding.done()
        });
        btc_leech_from(&content, seeding.addr()).await;
        drop(seeding);

        let (seeder, handle) = btc_seeder(&content).await;
        let target = tempfile::tempdir().unwrap();
        let mut leeching =
            Qbittorrent::start(content.torrent_file(), target.path(), Crypto::Defaults).unwrap();
        poll("qbittorrent has every piece", 90, || {
            leeching.process().check_running()?;
            leeching.done()
        });
        content.verify(target.path()).unwrap();
        uploaded(&handle).await;
        seeder.shutdown().await;
        tracker.stop().await;
    }
}
