//! The tracker's state, driven with fake time and no sockets.

use std::collections::HashSet;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use metainfo::{InfoHash, PeerId};
use tracker::{AnnounceRequest, Event, RequestError, ScrapeStats, Tracker, TrackerConfig};

const HASH: InfoHash = InfoHash([0xab; 20]);

fn peer(n: u8, left: u64) -> AnnounceRequest {
    let mut id = [b'x'; 20];
    id[19] = n;
    AnnounceRequest::new(HASH, PeerId(id), 6000 + u16::from(n), left)
}

fn lo() -> IpAddr {
    "127.0.0.1".parse().unwrap()
}

fn addrs(peers: &[tracker::Peer]) -> HashSet<SocketAddr> {
    peers.iter().map(|p| p.addr).collect()
}

#[test]
fn a_peer_is_never_given_itself() {
    let mut t = Tracker::new(TrackerConfig::default());
    let now = Instant::now();
    let alone = t.announce(&peer(1, 0), lo(), now).unwrap();
    assert!(alone.peers.is_empty());
    t.announce(&peer(2, 10), lo(), now).unwrap();
    let again = t.announce(&peer(1, 0), lo(), now).unwrap();
    assert_eq!(
        addrs(&again.peers),
        HashSet::from(["127.0.0.1:6002".parse().unwrap()])
    );
    // Nor another id at its own address and port (a restarted client).
    let mut restarted = peer(1, 0);
    restarted.peer_id = PeerId([b'z'; 20]);
    let r = t.announce(&restarted, lo(), now).unwrap();
    assert!(!addrs(&r.peers).contains(&"127.0.0.1:6001".parse().unwrap()));
}

#[test]
fn seeders_and_leechers_are_counted_and_completions_recorded() {
    let mut t = Tracker::new(TrackerConfig::default());
    let now = Instant::now();
    t.announce(&peer(1, 0), lo(), now).unwrap();
    t.announce(&peer(2, 100), lo(), now).unwrap();
    let r = t.announce(&peer(3, 100), lo(), now).unwrap();
    assert_eq!((r.complete, r.incomplete), (Some(1), Some(2)));
    let mut done = peer(2, 0);
    done.event = Some(Event::Completed);
    t.announce(&done, lo(), now).unwrap();
    assert_eq!(
        t.stats(&HASH),
        Some(ScrapeStats {
            complete: 2,
            downloaded: 1,
            incomplete: 1
        })
    );
    let mut gone = peer(3, 100);
    gone.event = Some(Event::Stopped);
    let r = t.announce(&gone, lo(), now).unwrap();
    assert!(r.peers.is_empty());
    assert_eq!(t.stats(&HASH).unwrap().incomplete, 0);
}

#[test]
fn numwant_is_honoured_and_capped() {
    let config = TrackerConfig {
        default_numwant: 5,
        max_numwant: 8,
        ..TrackerConfig::default()
    };
    let mut t = Tracker::new(config);
    let now = Instant::now();
    for n in 1..=20 {
        t.announce(&peer(n, 0), lo(), now).unwrap();
    }
    let mut asker = peer(100, 1);
    assert_eq!(t.announce(&asker, lo(), now).unwrap().peers.len(), 5);
    asker.numwant = Some(3);
    assert_eq!(t.announce(&asker, lo(), now).unwrap().peers.len(), 3);
    asker.numwant = Some(1000);
    let r = t.announce(&asker, lo(), now).unwrap();
    assert_eq!(r.peers.len(), 8);
    assert_eq!(addrs(&r.peers).len(), 8, "no duplicates");
}

#[test]
fn silent_peers_expire() {
    let config = TrackerConfig {
        peer_timeout: Duration::from_secs(100),
        ..TrackerConfig::default()
    };
    let mut t = Tracker::new(config);
    let start = Instant::now();
    t.announce(&peer(1, 0), lo(), start).unwrap();
    t.announce(&peer(2, 5), lo(), start + Duration::from_secs(60))
        .unwrap();
    // At 120 s peer 1 has been silent for 120 s, peer 2 for 60 s.
    let r = t
        .announce(&peer(3, 5), lo(), start + Duration::from_secs(120))
        .unwrap();
    assert_eq!(
        addrs(&r.peers),
        HashSet::from(["127.0.0.1:6002".parse().unwrap()])
    );
    t.expire(start + Duration::from_secs(1000));
    assert_eq!(t.stats(&HASH), None, "empty swarms are forgotten");
    assert!(
        t.scrape(&[], start + Duration::from_secs(1000))
            .files
            .is_empty()
    );
}

#[test]
fn the_allow_list_and_limits_refuse_with_reasons() {
    let config = TrackerConfig {
        allow_list: Some(HashSet::from([HASH])),
        max_peers_per_torrent: 2,
        ..TrackerConfig::default()
    };
    let mut t = Tracker::new(config);
    let now = Instant::now();
    let mut other = peer(1, 0);
    other.info_hash = InfoHash([1; 20]);
    assert_eq!(t.announce(&other, lo(), now), Err(RequestError::NotAllowed));
    t.announce(&peer(1, 0), lo(), now).unwrap();
    t.announce(&peer(2, 0), lo(), now).unwrap();
    let full = t.announce(&peer(3, 0), lo(), now).unwrap_err();
    assert!(full.to_string().contains("full"), "{full}");
    // Known peers still get through.
    assert!(t.announce(&peer(1, 0), lo(), now).is_ok());
    let mut zero = peer(4, 0);
    zero.port = 0;
    assert!(t.announce(&zero, lo(), now).is_err());
}

#[test]
fn scrape_names_only_known_torrents() {
    let mut t = Tracker::new(TrackerConfig::default());
    let now = Instant::now();
    t.announce(&peer(1, 0), lo(), now).unwrap();
    let unknown = InfoHash([0; 20]);
    let s = t.scrape(&[HASH, unknown, HASH], now);
    assert_eq!(s.files.keys().collect::<Vec<_>>(), [&HASH]);
    assert_eq!(t.scrape(&[], now).files.len(), 1);
}

#[test]
fn ipv6_peers_are_kept_apart_from_ipv4_ones() {
    let mut t = Tracker::new(TrackerConfig::default());
    let now = Instant::now();
    t.announce(&peer(1, 0), "::1".parse().unwrap(), now)
        .unwrap();
    let r = t.announce(&peer(2, 5), lo(), now).unwrap();
    assert_eq!(
        addrs(&r.peers),
        HashSet::from(["[::1]:6001".parse().unwrap()])
    );
    let body = r.to_bytes(true, false);
    assert!(
        body.windows(8).any(|w| w == b"6:peers6"),
        "{}",
        body.escape_ascii()
    );
}

#[test]
fn idle_swarms_expire_when_any_request_comes() {
    let config = TrackerConfig {
        peer_timeout: Duration::from_secs(100),
        max_torrents: 3,
        ..TrackerConfig::default()
    };
    let mut t = Tracker::new(config);
    let start = Instant::now();
    for n in 0..3u8 {
        let mut r = peer(n, 0);
        r.info_hash = InfoHash([n; 20]);
        t.announce(&r, lo(), start).unwrap();
    }
    // Full: a fourth torrent is refused while the others are alive...
    let mut fourth = peer(9, 0);
    fourth.info_hash = InfoHash([9; 20]);
    assert!(
        t.announce(&fourth, lo(), start + Duration::from_secs(50))
            .is_err()
    );
    // ...and accepted once they have gone silent, with no timer running.
    assert!(
        t.announce(&fourth, lo(), start + Duration::from_secs(200))
            .is_ok()
    );
    assert_eq!(t.torrents(), 1);
}

#[test]
fn one_host_cannot_fill_the_tracker_for_everyone() {
    let config = TrackerConfig {
        peer_timeout: Duration::from_secs(100),
        max_peers_per_host: 5,
        ..TrackerConfig::default()
    };
    let mut t = Tracker::new(config);
    let start = Instant::now();
    let torrent = |n: u8, id: u8| {
        let mut r = peer(id, 0);
        r.info_hash = InfoHash([n; 20]);
        r
    };
    // One IPv6 host (one /64, many addresses) announces made-up torrents.
    let flooder = |n: u8| -> IpAddr { format!("2001:db8::{n}").parse().unwrap() };
    for n in 0..5u8 {
        t.announce(&torrent(n, n), flooder(n), start).unwrap();
    }
    let err = t
        .announce(&torrent(5, 5), flooder(99), start)
        .unwrap_err()
        .to_string();
    assert!(err.contains("your address has the most peers"), "{err}");
    // Another host is not affected.
    let other: IpAddr = "2001:db8:0:1::1".parse().unwrap();
    t.announce(&torrent(6, 6), other, start).unwrap();
    // A stop frees a place, and so do peers gone silent.
    let mut stop = torrent(0, 0);
    stop.event = Some(Event::Stopped);
    t.announce(&stop, flooder(0), start).unwrap();
    t.announce(&torrent(5, 5), flooder(99), start).unwrap();
    let later = start + Duration::from_secs(200);
    t.announce(&torrent(7, 7), flooder(7), later).unwrap();
}

#[test]
fn a_peer_cannot_be_moved_or_stopped_from_another_address() {
    let mut t = Tracker::new(TrackerConfig::default());
    let now = Instant::now();
    let mut victim = peer(1, 0);
    victim.key = Some(42);
    t.announce(&victim, lo(), now).unwrap();
    let elsewhere: IpAddr = "127.0.0.2".parse().unwrap();
    let mut forged = victim.clone();
    forged.key = None;
    forged.event = Some(Event::Stopped);
    assert!(t.announce(&forged, elsewhere, now).is_err());
    forged.event = None;
    assert!(t.announce(&forged, elsewhere, now).is_err());
    assert_eq!(t.peers(&HASH), ["127.0.0.1:6001".parse().unwrap()]);
    // The real peer, moved to a new address, proves itself with its key.
    let mut moved = victim.clone();
    moved.event = None;
    t.announce(&moved, elsewhere, now).unwrap();
    assert_eq!(t.peers(&HASH), ["127.0.0.2:6001".parse().unwrap()]);
}

#[test]
fn one_address_cannot_fill_a_swarm() {
    let config = TrackerConfig {
        max_peers_per_ip: 3,
        ..TrackerConfig::default()
    };
    let mut t = Tracker::new(config);
    let now = Instant::now();
    for n in 0..3 {
        t.announce(&peer(n, 0), lo(), now).unwrap();
    }
    let err = t.announce(&peer(3, 0), lo(), now).unwrap_err();
    assert!(err.to_string().contains("from your address"), "{err}");
    assert!(
        t.announce(&peer(3, 0), "127.0.0.9".parse().unwrap(), now)
            .is_ok()
    );
}

#[test]
fn a_completion_counts_once() {
    let mut t = Tracker::new(TrackerConfig::default());
    let now = Instant::now();
    t.announce(&peer(1, 10), lo(), now).unwrap();
    let mut done = peer(1, 0);
    done.event = Some(Event::Completed);
    for _ in 0..5 {
        t.announce(&done, lo(), now).unwrap();
    }
    assert_eq!(t.stats(&HASH).unwrap().downloaded, 1);
}
