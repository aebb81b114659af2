//! Transfers between btc and the real clients, both ways, byte-exact, for
//! the tests that set each side up a certain way (encryption, transport).

use std::net::SocketAddr;
use std::time::Duration;

use engine::{Session, SessionConfig, TorrentHandle, TorrentOptions};
use testnet::Content;
use testnet::real::{Crypto, Libtorrent, LtNetwork, Qbittorrent, Transmission};

use super::{accepts, complete, poll, wait_seeding};

/// A btc leecher set up as `config` that dials `addr`, done and checked.
/// Its stats at the end.
pub(super) async fn leech_from(
    content: &Content,
    addr: SocketAddr,
    config: SessionConfig,
) -> engine::Stats {
    let leecher = Session::start(config).await.unwrap();
    let target = tempfile::tempdir().unwrap();
    let mut options = TorrentOptions::new(target.path());
    options.peers = vec![addr];
    let handle = leecher
        .add(content.torrent().clone(), options)
        .await
        .unwrap();
    complete(&handle).await;
    content.verify(target.path()).unwrap();
    let stats = handle.stats();
    assert!(stats.peers_ever > 0);
    leecher.shutdown().await;
    stats
}

/// A btc seeder set up as `config`, its data checked.
pub(super) async fn seeder(content: &Content, config: SessionConfig) -> (Session, TorrentHandle) {
    let seeder = Session::start(config).await.unwrap();
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

/// Waits until the seeder's stats (published once a second) show what it
/// sent: the copy came from it.
pub(super) async fn uploaded(handle: &TorrentHandle) {
    let mut watch = handle.watch();
    let sent = watch.wait_for(|s| s.uploaded > 0);
    tokio::time::timeout(Duration::from_secs(10), sent)
        .await
        .expect("the btc seeder sent the data")
        .unwrap();
}

/// Content whose torrent lists `tracker`.
pub(super) fn content_with(tracker: &tracker::HttpTracker, sizes: &[u64], seed: u64) -> Content {
    Content::generate(
        "multi",
        sizes,
        false,
        32 * 1024,
        &[tracker.announce_url()],
        seed,
    )
    .unwrap()
}

/// A libtorrent seeder of `content`, listening. (Over uTP alone it has no
/// TCP port to poll: it is ready once its process runs and has read its
/// data, which the leecher's retries wait out.)
pub(super) fn libtorrent_seeds(content: &Content, network: LtNetwork) -> Libtorrent {
    let mut lt = Libtorrent::seed_in(content.torrent_file(), &content.data_dir(), network).unwrap();
    if network.transport != engine::Transport::Utp {
        let addr = lt.addr();
        poll("libtorrent listens", 30, || {
            lt.process().check_running()?;
            Ok(accepts(addr))
        });
    }
    lt
}

/// A libtorrent leecher told of the btc `seeder`, done and checked.
pub(super) fn libtorrent_leeches(
    content: &Content,
    seeder: &Session,
    handle: &TorrentHandle,
    network: LtNetwork,
) {
    let target = tempfile::tempdir().unwrap();
    let mut lt = Libtorrent::leech_in(
        content.torrent_file(),
        target.path(),
        &[seeder.local_addr()],
        network,
    )
    .unwrap();
    let status = tokio::task::block_in_place(|| lt.process().wait_exit(Duration::from_secs(90)));
    let status = status.unwrap_or_else(|e| panic!("{e}; the seeder: {:?}", handle.stats()));
    assert!(status.success(), "libtorrent failed: {status}");
    content.verify(target.path()).unwrap();
}

/// A Transmission seeder of `content` (`encryption` its setting, uTP on
/// or off), its data checked.
pub(super) fn transmission_seeds(content: &Content, encryption: u8, utp: bool) -> Transmission {
    let mut transmission = Transmission::start_with(&content.data_dir(), encryption, utp).unwrap();
    transmission.add(content.torrent_file()).unwrap();
    poll("transmission has checked its data", 30, || {
        transmission.process().check_running()?;
        Ok(transmission.percent_done()? == Some(100))
    });
    transmission
}

/// A Transmission leecher (`encryption` its setting, uTP on or off) of
/// the btc seeder whose torrent `handle` is, done and checked.
/// Transmission never dials 127.0.0.1 peers from a tracker: the btc seeder
/// finds it in its next announce and dials it.
pub(super) async fn transmission_leeches(
    content: &Content,
    handle: &TorrentHandle,
    encryption: u8,
    utp: bool,
) {
    let target = tempfile::tempdir().unwrap();
    let mut transmission = Transmission::start_with(target.path(), encryption, utp).unwrap();
    transmission.add(content.torrent_file()).unwrap();
    poll("transmission has every piece", 90, || {
        transmission.process().check_running()?;
        Ok(transmission.percent_done()? == Some(100))
    });
    content.verify(target.path()).unwrap();
    uploaded(handle).await;
}

/// A qBittorrent seeder of `content`, its data checked.
pub(super) fn qbittorrent_seeds(
    content: &Content,
    crypto: Crypto,
    transport: engine::Transport,
) -> Qbittorrent {
    let mut qbittorrent = Qbittorrent::start(
        content.torrent_file(),
        &content.data_dir(),
        crypto,
        transport,
    )
    .unwrap();
    poll("qbittorrent has checked its data", 60, || {
        qbittorrent.process().check_running()?;
        qbittorrent.done()
    });
    qbittorrent
}

/// A qBittorrent leecher of the btc seeder whose torrent `handle` is
/// (found through the tracker), done and checked.
pub(super) async fn qbittorrent_leeches(
    content: &Content,
    handle: &TorrentHandle,
    crypto: Crypto,
    transport: engine::Transport,
) {
    let target = tempfile::tempdir().unwrap();
    let mut qbittorrent =
        Qbittorrent::start(content.torrent_file(), target.path(), crypto, transport).unwrap();
    poll("qbittorrent has every piece", 90, || {
        qbittorrent.process().check_running()?;
        qbittorrent.done()
    });
    content.verify(target.path()).unwrap();
    uploaded(handle).await;
}
