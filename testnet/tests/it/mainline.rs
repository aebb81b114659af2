//! btc and libtorrent find each other through the DHT alone: a magnet link
//! with nothing but its info-hash, no tracker, no peer given. Each client
//! and the router node have a loopback address of their own.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use engine::{DhtConfig, Session, SessionConfig, TorrentOptions};
use testnet::Content;
use testnet::real::{Libtorrent, LtNetwork};

use super::complete;

fn host(i: u32) -> IpAddr {
    IpAddr::V4(Ipv4Addr::from(0x7f00_0400 + i))
}

/// A DHT node of the test's own for everyone to start from.
async fn router(i: u32) -> dht::Dht {
    dht::Dht::bind(SocketAddr::new(host(i), 0), dht::Config::default())
        .await
        .unwrap()
}

/// Waits until the DHT gives `peer` for `hash` (at most 60 s).
async fn wait_in_dht(node: &dht::Dht, hash: metainfo::InfoHash, peer: SocketAddr, who: &str) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let mut found = node.get_peers(dht::NodeId(hash.0), None).await;
        while let Some(next) = found.recv().await {
            match next {
                dht::Found::Peers(peers) if peers.contains(&peer) => return,
                dht::Found::Done(_) => break,
                dht::Found::Peers(_) => {}
            }
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{who} never announced itself in the DHT: {:?}",
            node.stats().await
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn bare_magnet(content: &Content) -> String {
    format!("magnet:?xt=urn:btih:{}", content.torrent().info_hash())
}

async fn dht_session(i: u32, router: SocketAddr) -> Session {
    Session::start(SessionConfig {
        listen: SocketAddr::new(host(i), 0),
        dht: Some(DhtConfig {
            bootstrap: vec![router.to_string()],
            ..DhtConfig::default()
        }),
        ..testnet::local_config()
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn btc_downloads_a_bare_magnet_from_a_libtorrent_seeder_found_in_the_dht() {
    let content = Content::generate("multi", &super::SIZES, false, 32 * 1024, &[], 41).unwrap();
    let router = router(1).await;
    let network = LtNetwork {
        ip: host(2),
        dht: Some(router.local_addr()),
        ..LtNetwork::default()
    };
    let mut lt = Libtorrent::seed_in(content.torrent_file(), &content.data_dir(), network).unwrap();
    let hash = content.torrent().info_hash();
    let announce = wait_in_dht(&router, hash, lt.addr(), "libtorrent");
    tokio::select! {
        () = announce => {}
        () = async {
            loop {
                tokio::time::sleep(Duration::from_millis(200)).await;
                if let Err(e) = lt.process().check_running() {
                    panic!("{e}");
                }
            }
        } => {}
    }
    let leecher = dht_session(3, router.local_addr()).await;
    let link = bare_magnet(&content).parse().unwrap();
    let torrent = leecher
        .fetch_metadata(&link, &[], Duration::from_secs(60))
        .await
        .unwrap();
    let target = tempfile::tempdir().unwrap();
    let handle = leecher
        .add(torrent, TorrentOptions::new(target.path()))
        .await
        .unwrap();
    complete(&handle).await;
    content.verify(target.path()).unwrap();
    leecher.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn libtorrent_downloads_a_bare_magnet_from_a_btc_seeder_found_in_the_dht() {
    let content = Content::generate("multi", &super::SIZES, false, 32 * 1024, &[], 42).unwrap();
    let router = router(11).await;
    let seeder = dht_session(12, router.local_addr()).await;
    let handle = seeder
        .add(
            content.torrent().clone(),
            TorrentOptions::new(content.data_dir()),
        )
        .await
        .unwrap();
    super::wait_seeding(&handle).await;
    let hash = content.torrent().info_hash();
    wait_in_dht(&router, hash, seeder.local_addr(), "the btc seeder").await;
    let target = tempfile::tempdir().unwrap();
    let network = LtNetwork {
        ip: host(13),
        dht: Some(router.local_addr()),
        ..LtNetwork::default()
    };
    let mut lt = Libtorrent::leech_magnet(&bare_magnet(&content), target.path(), network).unwrap();
    let status = tokio::task::block_in_place(|| lt.process().wait_exit(Duration::from_secs(90)));
    let status = status.unwrap_or_else(|e| panic!("{e}; the seeder: {:?}", handle.stats()));
    assert!(status.success(), "libtorrent failed: {status}");
    content.verify(target.path()).unwrap();
    seeder.shutdown().await;
}

/// btc peers at their own addresses that know only `peers`.
async fn leecher_at(
    i: u32,
    content: &Content,
    peers: Vec<SocketAddr>,
) -> (Session, engine::TorrentHandle, tempfile::TempDir) {
    let config = testnet::local_config_at(host(i));
    let session = Session::start(config).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut options = TorrentOptions::new(dir.path());
    options.peers = peers;
    let handle = session
        .add(content.torrent().clone(), options)
        .await
        .unwrap();
    (session, handle, dir)
}

/// libtorrent's `ut_pex` names one btc peer to the other: both know only
/// the libtorrent seeder (no tracker, no DHT). Its first peer list to the
/// second names the first; the seeder is slow, so both are still
/// downloading from it then.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_libtorrent_seeder_tells_btc_peers_of_each_other_through_pex() {
    let content = Content::generate("multi", &[8 << 20], true, 64 * 1024, &[], 43).unwrap();
    let network = LtNetwork {
        ip: host(21),
        upload_limit: Some(32 * 1024),
        ..LtNetwork::default()
    };
    let mut lt = Libtorrent::seed_in(content.torrent_file(), &content.data_dir(), network).unwrap();
    let addr = lt.addr();
    super::poll("libtorrent listens", 30, || {
        lt.process().check_running()?;
        Ok(super::accepts(addr))
    });
    let (_a, a_handle, _a_dir) = leecher_at(22, &content, vec![addr]).await;
    let (_b, b_handle, _b_dir) = leecher_at(23, &content, vec![addr]).await;
    // Nothing but libtorrent's ut_pex could have named one to the other:
    // no tracker, no DHT. (Which connection each keeps when both dial at
    // once decides which of them counts the other as found through PEX.)
    let met = || a_handle.stats().sources_ever.pex + b_handle.stats().sources_ever.pex > 0;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(90);
    while !met() {
        let (a, b) = (a_handle.stats(), b_handle.stats());
        assert!(
            tokio::time::Instant::now() < deadline,
            "the btc peers never met: {:?} / {:?}",
            a.sources_ever,
            b.sources_ever,
        );
        // Met while still downloading: the seeder was not yet done with
        // either, or the test proves nothing of PEX among leechers.
        assert!(
            a.bytes_left > 0 && b.bytes_left > 0,
            "a btc peer finished before they met: the seeder is not slow"
        );
        if let Err(e) = lt.process().check_running() {
            panic!("{e}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// A btc seeder's `ut_pex` names a btc leecher to a libtorrent leecher,
/// which dials it. The btc leecher knows only the seeder and exchanges no
/// peers itself, and there is no tracker or DHT: libtorrent can only have
/// learnt its address from the seeder.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn libtorrent_learns_of_a_btc_peer_through_a_btc_seeders_pex() {
    let content = Content::generate("multi", &[8 << 20], true, 64 * 1024, &[], 44).unwrap();
    let seeder = Session::start(SessionConfig {
        pex_interval: Duration::from_millis(500),
        upload_limit: Some(256 * 1024),
        ..testnet::local_config_at(host(31))
    })
    .await
    .unwrap();
    seeder
        .add(
            content.torrent().clone(),
            TorrentOptions::new(content.data_dir()),
        )
        .await
        .unwrap();
    let quiet = Session::start(SessionConfig {
        pex: false,
        ..testnet::local_config_at(host(32))
    })
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut options = TorrentOptions::new(dir.path());
    options.peers = vec![seeder.local_addr()];
    let leech = quiet.add(content.torrent().clone(), options).await.unwrap();
    let mut events = leech.events();
    super::poll("the btc leecher reaches the seeder", 30, || {
        Ok(leech.stats().peers > 0)
    });
    // libtorrent, told only of the seeder, joins after the btc leecher:
    // the seeder's first ut_pex to it names the leecher.
    let target = tempfile::tempdir().unwrap();
    let network = LtNetwork {
        ip: host(33),
        ..LtNetwork::default()
    };
    let mut lt = Libtorrent::leech_in(
        content.torrent_file(),
        target.path(),
        &[seeder.local_addr()],
        network,
    )
    .unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        match tokio::time::timeout(Duration::from_millis(200), events.recv()).await {
            Ok(Ok(engine::TorrentEvent::PeerConnected { addr })) if addr.ip() == host(33) => break,
            Ok(Err(tokio::sync::broadcast::error::RecvError::Closed)) => {
                panic!("the leecher stopped")
            }
            _ => {}
        }
        if let Err(e) = lt.process().check_running() {
            panic!("{e}");
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "libtorrent never dialled the btc leecher: {:?}",
            leech.stats()
        );
    }
    quiet.shutdown().await;
    seeder.shutdown().await;
}
