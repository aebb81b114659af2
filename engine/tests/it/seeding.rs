//! A seeder seen from scripted peers: whom it serves, and what it does
//! when its files change underneath it.

use futures::SinkExt as _;
use metainfo::{BlockRef, PeerId};
use peerwire::{Message, Reserved};
use tokio::net::TcpStream;

use super::hostile::{next_of, shake_hands};
use super::*;

/// A slot freed between choking rounds (its peer lost interest, or left)
/// goes to a peer that waits at once, not at the next round.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slot_freed_between_rounds_goes_to_a_waiting_peer_at_once() {
    let content = content(&[1 << 20], 256 * 1024, &[], 41);
    // One slot, and no round within the test: every unchoke after the
    // first comes from a slot freed.
    let config = SessionConfig {
        upload_slots: 1,
        choke_interval: Duration::from_secs(3600),
        ..SessionConfig::default()
    };
    let seeder = seeder_of(&content, config).await;
    let fast = Reserved::default().with_fast(true);
    let join = async || {
        let stream = TcpStream::connect(seeder.local_addr()).await.unwrap();
        let mut framed =
            shake_hands(stream, &content.torrent, PeerId::generate(), fast, true).await;
        framed.send(Message::Interested).await.unwrap();
        framed
    };
    let block = BlockRef {
        piece: 0,
        offset: 0,
        length: 16 * 1024,
    };
    let choking = |m: &Message| {
        matches!(
            m,
            Message::Choke | Message::Unchoke | Message::Reject(_) | Message::Piece { .. }
        )
    };
    let mut a = join().await;
    assert_eq!(next_of(&mut a, choking).await, Message::Unchoke);
    // B waits: a request while choked is rejected (BEP 6).
    let mut b = join().await;
    b.send(Message::Request(block)).await.unwrap();
    assert_eq!(next_of(&mut b, choking).await, Message::Reject(block));

    // A loses interest: its slot goes to B.
    a.send(Message::NotInterested).await.unwrap();
    assert_eq!(next_of(&mut a, choking).await, Message::Choke);
    assert_eq!(next_of(&mut b, choking).await, Message::Unchoke);
    // A wants more again and waits in turn.
    a.send(Message::Interested).await.unwrap();
    a.send(Message::Request(block)).await.unwrap();
    assert_eq!(next_of(&mut a, choking).await, Message::Reject(block));

    // B leaves: its slot goes to A.
    drop(b);
    assert_eq!(next_of(&mut a, choking).await, Message::Unchoke);
    a.send(Message::Request(block)).await.unwrap();
    assert!(matches!(
        next_of(&mut a, choking).await,
        Message::Piece {
            piece: 0,
            offset: 0,
            ..
        }
    ));
    seeder.shutdown().await;
}

/// A seeder whose file is truncated underneath it stops with an error
/// that names the file, instead of dropping every peer that asks.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_truncated_under_a_seeder_stops_it_with_a_clear_error() {
    let content = content(&[1 << 20], 256 * 1024, &[], 42);
    let seeder = session().await;
    let handle = seeder
        .add(content.torrent.clone(), content.seed_options())
        .await
        .unwrap();
    let stream = TcpStream::connect(seeder.local_addr()).await.unwrap();
    let mut peer = shake_hands(
        stream,
        &content.torrent,
        PeerId::generate(),
        Reserved::default(),
        true,
    )
    .await;
    peer.send(Message::Interested).await.unwrap();
    assert_eq!(
        next_of(&mut peer, |m| *m == Message::Unchoke).await,
        Message::Unchoke
    );
    let path = content.dir.path().join(&content.files[0].0);
    std::fs::File::options()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(1000)
        .unwrap();
    peer.send(Message::Request(BlockRef {
        piece: 3,
        offset: 0,
        length: 16 * 1024,
    }))
    .await
    .unwrap();
    wait_for(&handle, "the error", |s| {
        matches!(&s.state, TorrentState::Error(e) if e.contains(&*path.to_string_lossy()) && e.contains("truncated"))
    })
    .await;
    seeder.shutdown().await;
}

/// Idle connections that never send a handshake are bounded: past the
/// bound, new ones are closed at once, while those within it can still
/// complete their handshake.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_waiting_for_a_handshake_are_bounded() {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    let content = content(&[64 * 1024], 16 * 1024, &[], 43);
    let config = SessionConfig {
        max_peers: 4,
        handshake_timeout: Duration::from_secs(120),
        ..SessionConfig::default()
    };
    let seeder = seeder_of(&content, config).await;
    // 16 may wait (the floor of the bound); the next 4 are closed.
    let mut idle = Vec::new();
    for _ in 0..20 {
        idle.push(TcpStream::connect(seeder.local_addr()).await.unwrap());
    }
    for stream in &mut idle[16..] {
        let mut byte = [0u8; 1];
        let read = tokio::time::timeout(Duration::from_secs(30), stream.read(&mut byte)).await;
        assert!(
            matches!(read, Ok(Ok(0) | Err(_))),
            "closed at once: {read:?}"
        );
    }
    let first = &mut idle[0];
    let ours = peerwire::Handshake::new(
        content.torrent.info_hash(),
        PeerId::generate(),
        Reserved::default(),
    );
    first.write_all(&ours.encode()).await.unwrap();
    let mut theirs = [0u8; peerwire::HANDSHAKE_LEN];
    tokio::time::timeout(Duration::from_secs(30), first.read_exact(&mut theirs))
        .await
        .expect("an answer in time")
        .unwrap();
    seeder.shutdown().await;
}
