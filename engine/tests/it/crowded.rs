//! Full peer tables: silent connections give way to peers that trade,
//! peers that trade are kept, one host holds only so many places, and a
//! burst of handshakes loses none while there is room. Each silent peer
//! dials from a loopback address of its own, as strangers on the internet
//! would.

use std::net::{IpAddr, Ipv4Addr};

use metainfo::PeerId;
use peerwire::{Handshake, Reserved};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpSocket, TcpStream};
use tokio::task::JoinSet;

use super::*;

/// The address of the `i`th stranger: 127.1.y.z, each its own host.
fn stranger(i: usize) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(
        127,
        1,
        (i / 250 + 1) as u8,
        (i % 250 + 1) as u8,
    ))
}

/// Dials `to` from `from` and sends a handshake for `content`; whether
/// the handshake was answered (rather than the connection closed).
async fn knock(from: IpAddr, to: SocketAddr, content: &Content) -> (TcpStream, bool) {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind(SocketAddr::new(from, 0)).unwrap();
    let mut stream = socket.connect(to).await.unwrap();
    let hash = content.torrent.info_hash();
    let ours = Handshake::new(hash, PeerId::generate(), Reserved::default());
    stream.write_all(&ours.encode()).await.unwrap();
    let mut theirs = [0u8; peerwire::HANDSHAKE_LEN];
    let read = tokio::time::timeout(Duration::from_secs(30), stream.read_exact(&mut theirs)).await;
    let answered =
        matches!(read, Ok(Ok(_))) && Handshake::decode(&theirs).unwrap().info_hash == hash;
    (stream, answered)
}

/// Strangers `range` dial `to` one by one and, once answered, send
/// nothing but a keep-alive every 100 ms (and read whatever comes) until
/// the set is dropped; returns how many were answered.
async fn silent_crowd(
    to: SocketAddr,
    content: &Content,
    range: std::ops::Range<usize>,
    crowd: &mut JoinSet<()>,
) -> usize {
    let mut answered = 0;
    for i in range {
        let (stream, ok) = knock(stranger(i), to, content).await;
        if !ok {
            continue;
        }
        answered += 1;
        crowd.spawn(async move {
            let (mut read, mut write) = stream.into_split();
            let mut tick = tokio::time::interval(Duration::from_millis(100));
            let mut sink = [0u8; 4096];
            loop {
                tokio::select! {
                    _ = tick.tick() => if write.write_all(&[0; 4]).await.is_err() { break },
                    n = read.read(&mut sink) => if !matches!(n, Ok(n) if n > 0) { break },
                }
            }
        });
    }
    answered
}

/// Settings with a small table whose mute peers give way at once (and
/// no other peer soon).
fn crowded_config(max_peers: usize) -> SessionConfig {
    SessionConfig {
        max_peers_per_torrent: max_peers,
        turnover: engine::turnover::Grace {
            mute: Duration::ZERO,
            idle: Duration::from_secs(60),
            stalled: Duration::from_secs(5),
        },
        ..test_config()
    }
}

/// Counts the peers dropped to make room, by `events`, so far.
fn gave_way(events: &mut tokio::sync::broadcast::Receiver<TorrentEvent>) -> usize {
    let mut count = 0;
    while let Ok(event) = events.try_recv() {
        if let TorrentEvent::PeerDropped {
            reason: engine::DropReason::GaveWay | engine::DropReason::DialGaveWay,
            ..
        } = event
        {
            count += 1;
        }
    }
    count
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_seeder_full_of_silent_peers_still_serves_a_leecher() {
    let content = content(&[600_000], 16 * 1024, &[], 61);
    let seeder = seeder_of(&content, crowded_config(10)).await;
    let mut crowd = JoinSet::new();
    let held = silent_crowd(seeder.local_addr(), &content, 0..10, &mut crowd).await;
    assert_eq!(held, 10, "the table takes ten");
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
async fn a_leecher_full_of_silent_peers_still_dials_a_seeder_its_tracker_lists() {
    let tracker = tracker().await;
    let content = content(&[600_000], 16 * 1024, &[tracker.announce_url()], 62);
    let leecher = Session::start(crowded_config(10)).await.unwrap();
    let target = tempfile::tempdir().unwrap();
    let leech = leecher
        .add(content.torrent.clone(), TorrentOptions::new(target.path()))
        .await
        .unwrap();
    let mut events = leech.events();
    let mut crowd = JoinSet::new();
    let held = silent_crowd(leecher.local_addr(), &content, 0..10, &mut crowd).await;
    assert_eq!(held, 10);
    // The seeder comes later and the tracker lists it, but it knows no
    // tracker (the same info, no announce URL), so it never dials the
    // leecher: the leecher must make room to dial it.
    let raw = content.torrent.raw_info();
    let bare = Metainfo::from_bytes(&[&b"d4:info"[..], raw, b"e"].concat()).unwrap();
    let seeder = Session::start(test_config()).await.unwrap();
    seeder.add(bare, content.seed_options()).await.unwrap();
    let request = tracker::AnnounceRequest::new(
        content.torrent.info_hash(),
        seeder.peer_id(),
        seeder.local_addr().port(),
        0,
    );
    tracker
        .state()
        .lock()
        .unwrap()
        .announce_from(
            &request,
            seeder.local_addr().ip(),
            std::time::Instant::now(),
            true,
        )
        .unwrap();
    complete(&leech).await;
    content.assert_downloaded(target.path());
    assert!(gave_way(&mut events) >= 1, "a silent peer made room");
    leecher.shutdown().await;
    seeder.shutdown().await;
    tracker.stop().await;
}

/// Peers that trade keep their places, even slowly, even when strangers
/// knock: a leecher being served, and one that waits its turn for the
/// seed's only upload slot longer than a stalled peer may stay.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leechers_keep_their_places_while_strangers_knock() {
    let content = content(&[320 * 1024], 16 * 1024, &[], 63);
    let mut config = crowded_config(2);
    config.upload_slots = 1;
    let seeder = Session::start(config).await.unwrap();
    let mut slow = content.seed_options();
    slow.faults.upload_rate = Some(48 * 1024);
    let seed = seeder.add(content.torrent.clone(), slow).await.unwrap();
    let mut events = seed.events();
    let mut leechers = Vec::new();
    for _ in 0..2 {
        let leecher = session().await;
        let target = tempfile::tempdir().unwrap();
        let mut options = TorrentOptions::new(target.path());
        options.peers = vec![seeder.local_addr()];
        let handle = leecher.add(content.torrent.clone(), options).await.unwrap();
        leechers.push((leecher, target, handle));
    }
    wait_for(&seed, "both leechers connect", |s| s.peers == 2).await;
    let one_done = || {
        leechers
            .iter()
            .any(|(_, _, h)| h.stats().state == TorrentState::Seeding)
    };
    // Strangers knock until a leecher has every piece (and leaves, as
    // seeds do); none gets in while both are there.
    let started = std::time::Instant::now();
    let mut knocks = 0;
    let mut crowd = JoinSet::new();
    while !one_done() {
        assert!(knocks < 2000, "the leechers do not finish");
        let range = knocks..knocks + 1;
        let let_in = silent_crowd(seeder.local_addr(), &content, range, &mut crowd).await;
        if let_in > 0 {
            // A leecher may have finished, and left, since the last look.
            assert!(one_done(), "stranger {knocks} took a leecher's place");
            break;
        }
        knocks += 1;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The waiting leecher waited past the stalled grace (5 s) while they
    // knocked.
    assert!(
        started.elapsed() > Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(gave_way(&mut events), 0);
    for (leecher, target, handle) in leechers {
        complete(&handle).await;
        content.assert_downloaded(target.path());
        leecher.shutdown().await;
    }
    seeder.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_host_holds_at_most_its_share_of_the_table() {
    let content = content(&[64 * 1024], 16 * 1024, &[], 64);
    let seeder = seeder_of(
        &content,
        SessionConfig {
            max_peers_per_ip: 3,
            ..test_config()
        },
    )
    .await;
    let to = seeder.local_addr();
    let one_host = stranger(0);
    let mut open = Vec::new();
    for _ in 0..3 {
        let (stream, ok) = knock(one_host, to, &content).await;
        assert!(ok);
        open.push(stream);
    }
    let (_, fourth) = knock(one_host, to, &content).await;
    assert!(!fourth, "a fourth connection from one host is refused");
    // Every address of 127.0.0.0/8 is a host of its own.
    let (_, other) = knock(stranger(1), to, &content).await;
    assert!(other, "another host is taken");
    seeder.shutdown().await;
}

/// Hundreds of peers that dial at once all get an answer while the table
/// has room.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_handshakes_is_answered_whole() {
    const BURST: usize = 300;
    let content = content(&[64 * 1024], 16 * 1024, &[], 65);
    let seeder = seeder_of(
        &content,
        SessionConfig {
            max_peers: BURST + 10,
            max_peers_per_torrent: BURST + 10,
            ..test_config()
        },
    )
    .await;
    let to = seeder.local_addr();
    let knocks = (0..BURST).map(|i| {
        let content = &content;
        async move { knock(stranger(i), to, content).await }
    });
    let results = futures::future::join_all(knocks).await;
    let answered = results.iter().filter(|(_, ok)| *ok).count();
    assert_eq!(answered, BURST);
    seeder.shutdown().await;
}
