//! Swarms of several sessions: leechers trading among themselves, late
//! seeders, peers that leave mid-piece.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leechers_trade_among_themselves_when_the_seeder_is_slow() {
    let tracker = tracker().await;
    // 2 MiB in 64 pieces; the seeder gives 128 KiB/s per connection, so
    // four leechers finish in seconds only by trading with each other.
    let content = content(&[1 << 20, 1 << 20], 32 * 1024, &[tracker.announce_url()], 4);
    let seeder = session().await;
    let mut slow = content.seed_options();
    slow.faults.upload_rate = Some(128 * 1024);
    let seed = seeder.add(content.torrent.clone(), slow).await.unwrap();
    wait_for(&seed, "the seeder checks its data", |s| {
        s.state == TorrentState::Seeding
    })
    .await;
    let mut leechers = Vec::new();
    for _ in 0..4 {
        let session = session().await;
        let target = tempfile::tempdir().unwrap();
        let handle = session
            .add(content.torrent.clone(), TorrentOptions::new(target.path()))
            .await
            .unwrap();
        leechers.push((session, target, handle));
    }
    for (_, target, handle) in &leechers {
        complete(handle).await;
        content.assert_downloaded(target.path());
    }
    // After shutdown the statistics are final, not a second old.
    let mut among_leechers = 0;
    for (session, _, handle) in leechers {
        session.shutdown().await;
        among_leechers += handle.stats().uploaded;
    }
    seeder.shutdown().await;
    let total = content.torrent.layout().total_length();
    let from_seeder = seed.stats().uploaded;
    assert!(
        among_leechers > total,
        "leechers gave each other {among_leechers} bytes, the seeder {from_seeder}"
    );
    tracker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_seeder_that_joins_late_is_found_through_the_tracker() {
    let tracker = tracker().await;
    let content = content(&[300_000], 16 * 1024, &[tracker.announce_url()], 5);
    let leecher = session().await;
    let target = tempfile::tempdir().unwrap();
    let leech = leecher
        .add(content.torrent.clone(), TorrentOptions::new(target.path()))
        .await
        .unwrap();
    // The leecher has announced (the tracker lists it) and found nobody.
    let hash = content.torrent.info_hash();
    wait_listed(&tracker, &hash, "the leecher").await;
    assert_eq!(leech.stats().peers, 0);
    // Its first announce, `started`, says what it lacks: it is counted
    // as a leecher, not a seed.
    let stats = tracker.state().lock().unwrap().stats(&hash).unwrap();
    assert_eq!((stats.complete, stats.incomplete), (0, 1));
    let seeder = session().await;
    seeder
        .add(content.torrent.clone(), content.seed_options())
        .await
        .unwrap();
    complete(&leech).await;
    content.assert_downloaded(target.path());
    leecher.shutdown().await;
    seeder.shutdown().await;
    tracker.stop().await;
}

/// Tiers announce at once: a first tier whose UDP tracker never answers
/// (found out only after BEP 15's retries, about two minutes) does not
/// hold up the second, and both hear `completed`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_first_tier_does_not_hold_up_the_next() {
    let silent = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let dead = format!("udp://{}/announce", silent.local_addr().unwrap());
    let tracker = tracker().await;
    let tiers = [vec![dead], vec![tracker.announce_url()]];
    let content = content_in_tiers(&[300_000], 16 * 1024, &tiers, 9);
    let seeder = seeder_of(&content, test_config()).await;
    let leecher = session().await;
    let target = tempfile::tempdir().unwrap();
    let leech = leecher
        .add(content.torrent.clone(), TorrentOptions::new(target.path()))
        .await
        .unwrap();
    complete(&leech).await;
    content.assert_downloaded(target.path());
    // The silent tracker was asked too, by both.
    let mut buf = [0u8; 128];
    let asked = tokio::time::timeout(Duration::from_secs(10), silent.recv_from(&mut buf)).await;
    assert!(asked.is_ok(), "the first tier was not asked");
    leecher.shutdown().await;
    seeder.shutdown().await;
    tracker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_that_leaves_mid_piece_does_not_stop_the_download() {
    let content = content(&[600_000], 64 * 1024, &[], 6);
    // Closes every connection after five blocks: mid-piece (four blocks of
    // 16 KiB per piece).
    let flaky = session().await;
    let mut options = content.seed_options();
    options.faults.close_after_uploads = Some(5);
    flaky.add(content.torrent.clone(), options).await.unwrap();
    let steady = session().await;
    let mut options = content.seed_options();
    options.faults.upload_rate = Some(1 << 20);
    steady.add(content.torrent.clone(), options).await.unwrap();

    let leecher = session().await;
    let target = tempfile::tempdir().unwrap();
    let mut options = TorrentOptions::new(target.path());
    options.peers = vec![flaky.local_addr(), steady.local_addr()];
    let leech = leecher.add(content.torrent.clone(), options).await.unwrap();
    let mut events = leech.events();
    complete(&leech).await;
    content.assert_downloaded(target.path());
    assert_eq!(leech.stats().hash_failures, 0);
    let mut dropped = false;
    while let Ok(event) = events.try_recv() {
        if let engine::TorrentEvent::PeerDropped { addr, .. } = event {
            dropped |= addr == flaky.local_addr();
        }
    }
    assert!(dropped, "the flaky peer's connection ended");
    leecher.shutdown().await;
    flaky.shutdown().await;
    steady.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_download_resumes_where_it_was() {
    let content = content(&[1 << 20], 16 * 1024, &[], 7);
    let seeder = session().await;
    let mut options = content.seed_options();
    options.faults.upload_rate = Some(256 * 1024);
    seeder.add(content.torrent.clone(), options).await.unwrap();

    let target = tempfile::tempdir().unwrap();
    let resume = target.path().join("resume");
    let mut options = TorrentOptions::new(target.path());
    options.peers = vec![seeder.local_addr()];
    options.resume_file = Some(resume.clone());
    let leecher = session().await;
    let leech = leecher
        .add(content.torrent.clone(), options.clone())
        .await
        .unwrap();
    wait_for(&leech, "some pieces", |s| s.pieces_have >= 8).await;
    leecher.shutdown().await;
    let had = leech.stats().pieces_have;
    assert!(had < leech.stats().pieces_total, "stopped before the end");
    assert!(resume.exists());

    // Started again: the pieces already had are known at once.
    let leecher = session().await;
    let leech = leecher.add(content.torrent.clone(), options).await.unwrap();
    wait_for(&leech, "checked", |s| s.state != TorrentState::Checking).await;
    assert!(leech.stats().pieces_have >= had, "{:?}", leech.stats());
    complete(&leech).await;
    content.assert_downloaded(target.path());
    assert!(
        leech.stats().downloaded < content.torrent.layout().total_length(),
        "only the rest was downloaded: {:?}",
        leech.stats()
    );
    leecher.shutdown().await;
    seeder.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pause_closes_every_connection_and_resume_finishes_the_download() {
    let content = content(&[1 << 20], 16 * 1024, &[], 8);
    let seeder = session().await;
    let mut options = content.seed_options();
    options.faults.upload_rate = Some(256 * 1024);
    seeder.add(content.torrent.clone(), options).await.unwrap();

    let leecher = session().await;
    let target = tempfile::tempdir().unwrap();
    let mut options = TorrentOptions::new(target.path());
    options.peers = vec![seeder.local_addr()];
    let leech = leecher.add(content.torrent.clone(), options).await.unwrap();
    wait_for(&leech, "some pieces", |s| s.pieces_have >= 4).await;
    leech.pause().await;
    wait_for(&leech, "paused", |s| {
        s.state == TorrentState::Paused && s.peers == 0
    })
    .await;
    let had = leech.stats().pieces_have;
    assert!(had < leech.stats().pieces_total);
    leech.resume().await;
    complete(&leech).await;
    content.assert_downloaded(target.path());
    leecher.shutdown().await;
    seeder.shutdown().await;
}

/// A paused torrent says `stopped` to its trackers (and stops its DHT
/// lookups, by the same road) and `started` again when resumed; with the
/// tracker asking for an announce every second, a torrent that kept
/// announcing while paused would stay listed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_torrent_leaves_its_tracker_and_comes_back_when_resumed() {
    let tracker = tracker().await;
    let content = content(&[100_000], 16 * 1024, &[tracker.announce_url()], 14);
    let hash = content.torrent.info_hash();
    let leecher = session().await;
    let target = tempfile::tempdir().unwrap();
    let leech = leecher
        .add(content.torrent.clone(), TorrentOptions::new(target.path()))
        .await
        .unwrap();
    wait_listed(&tracker, &hash, "the leecher").await;
    leech.pause().await;
    let unlisted = async {
        while !tracker.state().lock().unwrap().peers(&hash).is_empty() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(30), unlisted)
        .await
        .expect("a paused torrent says `stopped`");
    // Paused twice: still one announcer to start on resume.
    leech.pause().await;
    leech.resume().await;
    wait_listed(&tracker, &hash, "the resumed leecher").await;
    let seeder = seeder_of(&content, test_config()).await;
    complete(&leech).await;
    content.assert_downloaded(target.path());
    leecher.shutdown().await;
    seeder.shutdown().await;
    tracker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_per_torrent_peer_limit_holds() {
    let content = content(&[100_000], 16 * 1024, &[], 9);
    let seeder = Session::start(SessionConfig {
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        max_peers_per_torrent: 2,
        ..SessionConfig::default()
    })
    .await
    .unwrap();
    let seed = seeder
        .add(content.torrent.clone(), content.seed_options())
        .await
        .unwrap();
    // Four leechers dial the seeder at once; it takes two at a time, and
    // every leecher still finishes as connections free up.
    let mut leechers = Vec::new();
    for _ in 0..4 {
        let session = session().await;
        let target = tempfile::tempdir().unwrap();
        let mut options = TorrentOptions::new(target.path());
        options.peers = vec![seeder.local_addr()];
        let handle = session.add(content.torrent.clone(), options).await.unwrap();
        leechers.push((session, target, handle));
    }
    // Connections counted from the seeder's events, which miss none.
    let mut events = seed.events();
    let mut most = 0;
    {
        let all_done = async {
            for (_, _, handle) in &leechers {
                complete(handle).await;
            }
        };
        tokio::pin!(all_done);
        let mut now = 0i32;
        loop {
            tokio::select! {
                () = &mut all_done => break,
                event = events.recv() => match event.unwrap() {
                    engine::TorrentEvent::PeerConnected { .. } => {
                        now += 1;
                        most = most.max(now);
                    }
                    engine::TorrentEvent::PeerDropped { .. } => now -= 1,
                    _ => {}
                },
            }
        }
    }
    assert!(most <= 2, "the seeder had {most} peers at once");
    for (session, target, _) in leechers {
        content.assert_downloaded(target.path());
        session.shutdown().await;
    }
    seeder.shutdown().await;
}

/// The session's limits hold: a 1 MiB download at 256 KiB/s takes at least
/// the time the bytes need at that rate (less the first burst), whichever
/// side is limited. Only the lower bound is asserted: a slow machine can
/// only make it longer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn download_and_upload_limits_hold_over_the_bytes() {
    const RATE: u64 = 256 * 1024;
    let content = content(&[1 << 20], 16 * 1024, &[], 10);
    for limit_download in [true, false] {
        let limited = |on: bool| SessionConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            download_limit: (on && limit_download).then_some(RATE),
            upload_limit: (on && !limit_download).then_some(RATE),
            ..SessionConfig::default()
        };
        let seeder = Session::start(limited(!limit_download)).await.unwrap();
        let seed = seeder
            .add(content.torrent.clone(), content.seed_options())
            .await
            .unwrap();
        wait_for(&seed, "checked", |s| s.state == TorrentState::Seeding).await;
        let leecher = Session::start(limited(limit_download)).await.unwrap();
        let target = tempfile::tempdir().unwrap();
        let mut options = TorrentOptions::new(target.path());
        options.peers = vec![seeder.local_addr()];
        let started = std::time::Instant::now();
        let leech = leecher.add(content.torrent.clone(), options).await.unwrap();
        complete(&leech).await;
        let elapsed = started.elapsed().as_secs_f64();
        content.assert_downloaded(target.path());
        let floor = ((1 << 20) as f64 - 0.1 * RATE as f64 - 16_384.0) / RATE as f64;
        assert!(
            elapsed >= floor,
            "download limited: {limit_download}: {elapsed:.2} s for 1 MiB at 256 KiB/s (floor {floor:.2} s)"
        );
        leecher.shutdown().await;
        seeder.shutdown().await;
    }
}

/// Only the wanted file is downloaded; nothing is written into the others
/// (they are never created), and the pieces on its borders are kept whole
/// through the part file, so the torrent can be rechecked and seeded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_chosen_files_are_downloaded_and_nothing_else_is_written() {
    // Sizes that are not multiples of the piece length: the middle file
    // shares its first and last pieces with its neighbours.
    let content = content(&[100_000, 150_000, 90_000], 32 * 1024, &[], 13);
    let seeder = session().await;
    seeder
        .add(content.torrent.clone(), content.seed_options())
        .await
        .unwrap();
    let target = tempfile::tempdir().unwrap();
    let mut options = TorrentOptions::new(target.path());
    options.peers = vec![seeder.local_addr()];
    // Files are in torrent order: d0/f00, d0/f02, d1/f01.
    let names: Vec<String> = content
        .torrent
        .info()
        .files()
        .iter()
        .map(|f| content.torrent.info().display_path(f))
        .collect();
    let wanted_name = "content/d1/f01.bin";
    let wanted: Vec<bool> = names.iter().map(|n| n == wanted_name).collect();
    assert_eq!(wanted.iter().filter(|w| **w).count(), 1, "{names:?}");
    options.wanted_files = Some(wanted.clone());
    let leecher = session().await;
    let leech = leecher
        .add(content.torrent.clone(), options.clone())
        .await
        .unwrap();
    complete(&leech).await;
    let stats = leech.stats();
    assert!(stats.pieces_have < stats.pieces_total, "{stats:?}");
    assert_eq!(stats.bytes_left, 0);
    leecher.shutdown().await;
    for (relative, data) in &content.files {
        let path = target.path().join(relative);
        if relative.to_string_lossy() == wanted_name {
            assert_eq!(&std::fs::read(&path).unwrap(), data);
        } else {
            assert!(!path.exists(), "{} was written", relative.display());
        }
    }
    // Started again, the check finds the same pieces (the border pieces
    // too, through the part file).
    let leecher = session().await;
    let again = leecher.add(content.torrent.clone(), options).await.unwrap();
    wait_for(&again, "checked", |s| s.state != TorrentState::Checking).await;
    assert_eq!(again.stats().pieces_have, stats.pieces_have);
    assert_eq!(again.stats().state, TorrentState::Seeding);
    leecher.shutdown().await;
    seeder.shutdown().await;
}

/// A full disk stops the torrent with a message that says what to do, and
/// `wait_complete` reports it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_stops_the_download_with_a_clear_error() {
    let content = content(&[500_000], 16 * 1024, &[], 14);
    let seeder = session().await;
    seeder
        .add(content.torrent.clone(), content.seed_options())
        .await
        .unwrap();
    let target = tempfile::tempdir().unwrap();
    let mut options = TorrentOptions::new(target.path());
    options.peers = vec![seeder.local_addr()];
    options.storage.disk_space = Some(100_000);
    let leecher = session().await;
    let leech = leecher.add(content.torrent.clone(), options).await.unwrap();
    let result = tokio::time::timeout(Duration::from_secs(60), leech.wait_complete())
        .await
        .unwrap();
    let err = result.unwrap_err().to_string();
    assert!(
        err.contains("is full: free some space, then resume"),
        "{err}"
    );
    assert!(matches!(leech.stats().state, TorrentState::Error(_)));
    leecher.shutdown().await;
    seeder.shutdown().await;
}

/// A download of chosen files, complete, is still a leecher to the tracker:
/// its `left` counts the pieces it lacks, and it never says `completed`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chosen_files_complete_are_not_announced_as_a_seed() {
    let tracker = tracker().await;
    let content = content(
        &[100_000, 150_000],
        32 * 1024,
        &[tracker.announce_url()],
        17,
    );
    let seeder = session().await;
    seeder
        .add(content.torrent.clone(), content.seed_options())
        .await
        .unwrap();
    let target = tempfile::tempdir().unwrap();
    let mut options = TorrentOptions::new(target.path());
    options.wanted_files = Some(vec![true, false]);
    let leecher = session().await;
    let leech = leecher.add(content.torrent.clone(), options).await.unwrap();
    complete(&leech).await;
    assert!(leech.stats().pieces_have < leech.stats().pieces_total);
    // The `stopped` announce is sent (or timed out) before shutdown ends.
    leecher.shutdown().await;
    let hash = content.torrent.info_hash();
    let stats = tracker.state().lock().unwrap().stats(&hash).unwrap();
    assert_eq!(stats.downloaded, 0, "a `completed` was announced");
    seeder.shutdown().await;
    tracker.stop().await;
}
