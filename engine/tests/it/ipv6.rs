//! IPv6 (BEP 7) on ::1: a session that listens on every address takes
//! IPv6 peers too, and peers exchanged or found over IPv6 are dialled.

use std::net::{Ipv6Addr, SocketAddr};

use engine::{Session, SessionConfig, TorrentEvent, TorrentOptions};

use super::*;

#[tokio::test]
async fn a_session_on_every_address_serves_an_ipv6_leecher() {
    let content = content(&SIZES, 32 * 1024, &[], 71);
    // The default listen address: every IPv4 one, and every IPv6 one.
    let seeder = Session::start(SessionConfig {
        listen: SocketAddr::from(([0, 0, 0, 0], 0)),
        ..test_config()
    })
    .await
    .unwrap();
    let seeding = seeder
        .add(content.torrent.clone(), content.seed_options())
        .await
        .unwrap();
    let mut events = seeding.events();
    let leecher = Session::start(SessionConfig {
        listen: SocketAddr::new(Ipv6Addr::LOCALHOST.into(), 0),
        ..test_config()
    })
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut options = TorrentOptions::new(dir.path());
    options.peers = vec![SocketAddr::new(
        Ipv6Addr::LOCALHOST.into(),
        seeder.local_addr().port(),
    )];
    let handle = leecher.add(content.torrent.clone(), options).await.unwrap();
    complete(&handle).await;
    content.assert_downloaded(dir.path());
    let came_over_ipv6 = std::iter::from_fn(|| events.try_recv().ok()).any(
        |e| matches!(e, TorrentEvent::PeerConnected { addr } if addr.ip() == Ipv6Addr::LOCALHOST),
    );
    assert!(came_over_ipv6, "the seeder saw the leecher at ::1");
}

#[tokio::test]
async fn a_leecher_on_ipv6_finds_a_seeder_through_the_ipv6_dht() {
    let content = content(&SIZES, 32 * 1024, &[], 72);
    let router4 = dht::Dht::bind(
        SocketAddr::from(([127, 0, 5, 1], 0)),
        dht::Config::default(),
    )
    .await
    .unwrap();
    let router6 = dht::Dht::bind(
        SocketAddr::new(Ipv6Addr::LOCALHOST.into(), 0),
        dht::Config::default(),
    )
    .await
    .unwrap();
    let bootstrap = vec![
        router4.local_addr().to_string(),
        router6.local_addr().to_string(),
    ];
    let with_dht = |listen: SocketAddr| SessionConfig {
        listen,
        dht: Some(engine::DhtConfig {
            bootstrap: bootstrap.clone(),
            // Whoever looks first finds nobody: look again soon.
            reannounce_few: Duration::from_secs(1),
            ..engine::DhtConfig::default()
        }),
        ..test_config()
    };
    // The seeder listens on every address and runs a node per family.
    let seeder = Session::start(with_dht(SocketAddr::from(([0, 0, 0, 0], 0))))
        .await
        .unwrap();
    assert!(seeder.dht().is_some() && seeder.dht6().is_some());
    seeder
        .add(content.torrent.clone(), content.seed_options())
        .await
        .unwrap();
    // The leecher is on ::1 alone: it can only find the seeder through
    // the IPv6 DHT.
    let leecher = Session::start(with_dht(SocketAddr::new(Ipv6Addr::LOCALHOST.into(), 0)))
        .await
        .unwrap();
    assert!(leecher.dht().is_some_and(|d| d.local_addr().is_ipv6()));
    let dir = tempfile::tempdir().unwrap();
    let handle = leecher
        .add(content.torrent.clone(), TorrentOptions::new(dir.path()))
        .await
        .unwrap();
    complete(&handle).await;
    content.assert_downloaded(dir.path());
    assert!(handle.stats().sources_ever.dht > 0 || handle.stats().sources_ever.incoming > 0);
}

/// Peers on ::1 tell each other of peers on ::1: `added6` in ut_pex.
#[tokio::test]
async fn peers_on_ipv6_learn_of_each_other_through_peer_exchange() {
    super::trackerless::peer_exchange_brings_together(|_| Ipv6Addr::LOCALHOST.into(), 73).await;
}

/// A tracker on ::1 gives IPv6 peers in `peers6` (BEP 7), and they are
/// dialled.
#[tokio::test]
async fn a_tracker_on_ipv6_brings_ipv6_peers_together() {
    let tracker = tracker_at(SocketAddr::new(Ipv6Addr::LOCALHOST.into(), 0)).await;
    let content = content(&SIZES, 32 * 1024, &[tracker.announce_url()], 74);
    let on_ipv6 = || SessionConfig {
        listen: SocketAddr::new(Ipv6Addr::LOCALHOST.into(), 0),
        ..test_config()
    };
    let seeder = Session::start(on_ipv6()).await.unwrap();
    seeder
        .add(content.torrent.clone(), content.seed_options())
        .await
        .unwrap();
    let leecher = Session::start(on_ipv6()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let handle = leecher
        .add(content.torrent.clone(), TorrentOptions::new(dir.path()))
        .await
        .unwrap();
    complete(&handle).await;
    content.assert_downloaded(dir.path());
    let stats = handle.stats();
    // Whoever announced second found the other in `peers6`.
    assert!(
        stats.sources_ever.tracker + stats.sources_ever.incoming > 0,
        "{:?}",
        stats.sources_ever
    );
    let listed = tracker
        .state()
        .lock()
        .unwrap()
        .peers(&content.torrent.info_hash());
    assert!(listed.iter().all(|p| p.is_ipv6()), "{listed:?}");
    leecher.shutdown().await;
    seeder.shutdown().await;
    tracker.stop().await;
}
