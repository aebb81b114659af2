//! Peers found through the DHT alone: no tracker, no given peer. Every
//! session and node has its own loopback address, as across hosts.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use engine::{DhtConfig, Session, SessionConfig, TorrentOptions};
use metainfo::MagnetLink;

use super::*;

fn host(i: u32) -> IpAddr {
    IpAddr::V4(Ipv4Addr::from(0x7f00_0300 + i))
}

/// A session at `host(i)` whose DHT node starts from `bootstrap`.
async fn dht_session(i: u32, bootstrap: SocketAddr) -> Session {
    dht_session_with(i, bootstrap, test_config()).await
}

async fn dht_session_with(i: u32, bootstrap: SocketAddr, config: SessionConfig) -> Session {
    Session::start(SessionConfig {
        listen: SocketAddr::new(host(i), 0),
        dht: Some(DhtConfig {
            bootstrap: vec![bootstrap.to_string()],
            ..DhtConfig::default()
        }),
        ..config
    })
    .await
    .unwrap()
}

/// Waits until the DHT gives `peer` for the torrent.
async fn wait_in_dht(node: &dht::Dht, hash: metainfo::InfoHash, peer: SocketAddr) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
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
            "{peer} never announced itself: {:?}",
            node.stats().await
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A router node of the test's own, and a seeder that has announced.
async fn network(content: &Content, upload_limit: Option<u64>) -> (dht::Dht, Session) {
    let router = dht::Dht::bind(SocketAddr::new(host(1), 0), dht::Config::default())
        .await
        .unwrap();
    let config = SessionConfig {
        upload_limit,
        ..test_config()
    };
    let seeder = dht_session_with(2, router.local_addr(), config).await;
    seeder
        .add(content.torrent.clone(), content.seed_options())
        .await
        .unwrap();
    let at = seeder.local_addr();
    wait_in_dht(&router, content.torrent.info_hash(), at).await;
    (router, seeder)
}

#[tokio::test]
async fn leechers_with_no_tracker_find_a_seeder_and_each_other_through_the_dht() {
    let content = content(&SIZES, 32 * 1024, &[], 31);
    // Slow enough that the leechers are seen trading before they finish.
    let (router, _seeder) = network(&content, Some(256 * 1024)).await;
    let mut leechers = Vec::new();
    for i in 0..3 {
        let session = dht_session(10 + i, router.local_addr()).await;
        let dir = tempfile::tempdir().unwrap();
        let handle = session
            .add(content.torrent.clone(), TorrentOptions::new(dir.path()))
            .await
            .unwrap();
        leechers.push((session, handle, dir));
    }
    // The seeder came from the DHT: nobody else named any peer.
    wait_for(&leechers[0].1, "a peer from the DHT", |s| s.sources.dht > 0).await;
    let sources = leechers[0].1.stats().sources;
    assert_eq!(
        sources.tracker + sources.given + sources.pex,
        0,
        "{sources:?}"
    );
    for (_, handle, dir) in &leechers {
        complete(handle).await;
        content.assert_downloaded(dir.path());
    }
}

#[tokio::test]
async fn a_magnet_link_with_only_its_hash_downloads_through_the_dht() {
    let content = content(&SIZES, 32 * 1024, &[], 32);
    let (router, _seeder) = network(&content, None).await;
    let link: MagnetLink = format!("magnet:?xt=urn:btih:{}", content.torrent.info_hash())
        .parse()
        .unwrap();
    assert!(link.trackers.is_empty() && link.peers.is_empty());
    let leecher = dht_session(20, router.local_addr()).await;
    let torrent = leecher
        .fetch_metadata(&link, &[], Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(torrent.info_hash(), content.torrent.info_hash());
    let dir = tempfile::tempdir().unwrap();
    let handle = leecher
        .add(torrent, TorrentOptions::new(dir.path()))
        .await
        .unwrap();
    complete(&handle).await;
    content.assert_downloaded(dir.path());
}

#[tokio::test]
async fn a_private_torrent_never_touches_the_dht() {
    let content = content(&SIZES[..3], 32 * 1024, &[], 33);
    let private = {
        let root = content.dir.path().join("content");
        metainfo::TorrentBuilder::new(&root)
            .piece_length(32 * 1024)
            .private(true)
            .build(|_, _| {})
            .unwrap()
    };
    let router = dht::Dht::bind(SocketAddr::new(host(30), 0), dht::Config::default())
        .await
        .unwrap();
    let seeder = dht_session(31, router.local_addr()).await;
    seeder
        .add(private.clone(), content.seed_options())
        .await
        .unwrap();
    // A public torrent of the same session does announce: once it is
    // found, the private one would have been too.
    let public = content.torrent.clone();
    seeder
        .add(public.clone(), content.seed_options())
        .await
        .unwrap();
    wait_in_dht(&router, public.info_hash(), seeder.local_addr()).await;
    let mut found = router
        .get_peers(dht::NodeId(private.info_hash().0), None)
        .await;
    // The first thing the lookup reports is its end, not peers.
    let first = found.recv().await;
    assert!(
        matches!(first, Some(dht::Found::Done(_))),
        "the private torrent was announced: {first:?}"
    );
}

#[tokio::test]
async fn peers_learn_of_each_other_through_peer_exchange() {
    peer_exchange_brings_together(host, 34).await;
}

/// A seeder, a leecher A that knows it, and a leecher B that knows only A,
/// each at `at(i)` (with a port of its own): B and the seeder meet through
/// A's ut_pex.
pub(crate) async fn peer_exchange_brings_together(at: impl Fn(u32) -> IpAddr, seed: u64) {
    let content = content(&SIZES, 32 * 1024, &[], seed);
    let fast_pex = || SessionConfig {
        pex_interval: Duration::from_millis(500),
        ..test_config()
    };
    // A slow seeder, so that the leechers still trade when they meet.
    let seeder = Session::start(SessionConfig {
        listen: SocketAddr::new(at(40), 0),
        upload_limit: Some(256 * 1024),
        ..fast_pex()
    })
    .await
    .unwrap();
    let seeding = seeder
        .add(content.torrent.clone(), content.seed_options())
        .await
        .unwrap();
    // A knows the seeder; B knows only A, and must learn of the seeder
    // from A's ut_pex.
    let leecher = |i, peers: Vec<SocketAddr>| {
        let content = &content;
        let config = fast_pex();
        let ip = at(i);
        async move {
            let session = Session::start(SessionConfig {
                listen: SocketAddr::new(ip, 0),
                ..config
            })
            .await
            .unwrap();
            let dir = tempfile::tempdir().unwrap();
            let mut options = TorrentOptions::new(dir.path());
            options.peers = peers;
            let handle = session.add(content.torrent.clone(), options).await.unwrap();
            (session, handle, dir)
        }
    };
    let (a, a_handle, a_dir) = leecher(41, vec![seeder.local_addr()]).await;
    let (_b, b_handle, b_dir) = leecher(42, vec![a.local_addr()]).await;
    for (handle, dir) in [(&a_handle, &a_dir), (&b_handle, &b_dir)] {
        complete(handle).await;
        content.assert_downloaded(dir.path());
    }
    // B and the seeder met, though only A knew them both: A's ut_pex
    // named one to the other (whichever dialled first).
    let b = b_handle.stats();
    assert!(b.peers_ever >= 2, "{:?}", b.sources_ever);
    let pex = b.sources_ever.pex + seeding.stats().sources_ever.pex;
    assert!(pex > 0, "{:?}", b.sources_ever);
}

/// Adds `torrent` to `session` with `peer` to dial.
async fn join(
    session: &Session,
    torrent: &metainfo::Metainfo,
    peer: SocketAddr,
) -> (engine::TorrentHandle, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let mut options = TorrentOptions::new(dir.path());
    options.peers = vec![peer];
    let handle = session.add(torrent.clone(), options).await.unwrap();
    (handle, dir)
}

#[tokio::test]
async fn a_private_torrent_exchanges_no_peers() {
    // The same sessions share a public and a private torrent: once the
    // public one's peers were exchanged, the private one's would have been.
    let content = content(&SIZES, 32 * 1024, &[], 35);
    let public = content.torrent.clone();
    let private = metainfo::TorrentBuilder::new(content.dir.path().join("content"))
        .piece_length(32 * 1024)
        .private(true)
        .build(|_, _| {})
        .unwrap();
    let config = |i| SessionConfig {
        listen: SocketAddr::new(host(i), 0),
        pex_interval: Duration::from_millis(200),
        upload_limit: Some(64 * 1024),
        ..test_config()
    };
    let seeder = Session::start(config(50)).await.unwrap();
    for torrent in [&private, &public] {
        seeder
            .add(torrent.clone(), content.seed_options())
            .await
            .unwrap();
    }
    let a = Session::start(config(51)).await.unwrap();
    // The private torrent first, everywhere: its exchange rounds come
    // before the public one's.
    let _a_private = join(&a, &private, seeder.local_addr()).await;
    let _a_public = join(&a, &public, seeder.local_addr()).await;
    let b = Session::start(config(52)).await.unwrap();
    let (b_private, _dir) = join(&b, &private, a.local_addr()).await;
    wait_for(&b_private, "connected to A", |s| s.peers > 0).await;
    let (b_public, _dir) = join(&b, &public, a.local_addr()).await;
    // B meets the public torrent's seeder once A's ut_pex names one to
    // the other.
    wait_for(&b_public, "B and the public seeder meet", |s| {
        s.peers_ever >= 2
    })
    .await;
    let stats = b_private.stats();
    assert_eq!(stats.sources_ever.pex, 0, "{:?}", stats.sources_ever);
    assert_eq!(stats.peers_ever, 1, "the private torrent met only A");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_seeder_and_leechers_meet_in_a_dht_of_two_hundred_nodes() {
    let content = content(&SIZES, 32 * 1024, &[], 36);
    // Two hundred sessions, each its own 127.0.7.x; as in the real
    // network, everyone starts from a router (the first) and then knows
    // nodes of its own. Five of them have the torrent.
    let at = |i: u32| SocketAddr::new(IpAddr::V4(Ipv4Addr::from(0x7f00_0700 + i)), 0);
    let session = |i: u32, from: Option<SocketAddr>| {
        Session::start(SessionConfig {
            listen: at(i),
            dht: Some(DhtConfig {
                bootstrap: from.iter().map(ToString::to_string).collect(),
                reannounce_few: Duration::from_secs(1),
                ..DhtConfig::default()
            }),
            ..test_config()
        })
    };
    let router = session(1, None).await.unwrap();
    let from = Some(router.dht().unwrap().local_addr());
    let mut sessions = vec![router];
    for i in 2..=200 {
        sessions.push(session(i, from).await.unwrap());
    }
    let seeder = &sessions[17];
    seeder
        .add(content.torrent.clone(), content.seed_options())
        .await
        .unwrap();
    let mut leechers = Vec::new();
    for i in [42, 99, 150, 199] {
        let dir = tempfile::tempdir().unwrap();
        let handle = sessions[i]
            .add(content.torrent.clone(), TorrentOptions::new(dir.path()))
            .await
            .unwrap();
        leechers.push((i, handle, dir));
    }
    for (i, handle, dir) in &leechers {
        let done = tokio::time::timeout(Duration::from_secs(60), handle.wait_complete()).await;
        assert!(
            matches!(done, Ok(Ok(()))),
            "not complete: {:?}; its DHT node: {:?}",
            handle.stats(),
            sessions[*i].dht().unwrap().stats().await
        );
        content.assert_downloaded(dir.path());
    }
    // Who dialled whom depends on who looked first; someone found someone
    // in the DHT.
    let from_dht: usize = leechers
        .iter()
        .map(|(_, h, _)| h.stats().sources_ever.dht)
        .sum();
    assert!(from_dht > 0);
}

/// The addresses in a node's routing table.
async fn table(node: &dht::Dht) -> Vec<SocketAddr> {
    let saved = node.saved().await.unwrap();
    saved.nodes.iter().map(|n| n.addr).collect()
}

/// A read-only node (BEP 43) finds peers but stays out of every table: it
/// says `ro` in its queries and sends no `port` message. A normal
/// leecher beside it, doing the same, is in both tables, which shows the
/// read-only one had time to get in.
#[tokio::test]
async fn a_read_only_node_downloads_through_the_dht_and_stays_out_of_its_tables() {
    let content = content(&SIZES[..4], 32 * 1024, &[], 37);
    let (router, seeder) = network(&content, None).await;
    let read_only = Session::start(SessionConfig {
        listen: SocketAddr::new(host(60), 0),
        dht: Some(DhtConfig {
            bootstrap: vec![router.local_addr().to_string()],
            node: dht::Config {
                read_only: true,
                ..dht::Config::default()
            },
            ..DhtConfig::default()
        }),
        ..test_config()
    })
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let quiet = read_only
        .add(content.torrent.clone(), TorrentOptions::new(dir.path()))
        .await
        .unwrap();
    complete(&quiet).await;
    content.assert_downloaded(dir.path());
    assert!(quiet.stats().sources_ever.dht > 0);

    let normal = dht_session(61, router.local_addr()).await;
    let dir = tempfile::tempdir().unwrap();
    let loud = normal
        .add(content.torrent.clone(), TorrentOptions::new(dir.path()))
        .await
        .unwrap();
    complete(&loud).await;
    let loud_node = normal.dht().unwrap().local_addr();
    let quiet_node = read_only.dht().unwrap().local_addr();
    let seeder_node = seeder.dht().unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while !(table(&router).await.contains(&loud_node)
        && table(seeder_node).await.contains(&loud_node))
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the normal leecher's node never got into the router's and the seeder's tables"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(!table(&router).await.contains(&quiet_node));
    assert!(!table(seeder_node).await.contains(&quiet_node));
}
