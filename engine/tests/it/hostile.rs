//! Peers that misbehave on purpose, scripted over real sockets on
//! 127.0.0.1 with peerwire's codec.

use std::collections::HashMap;

use engine::DropReason;
use futures::{SinkExt as _, StreamExt as _};
use metainfo::{BlockRef, PeerId};
use peerwire::{Bitfield, Handshake, Message, PeerCodec, Reserved};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::codec::Framed;

use super::*;

/// A leecher of `content` whose only peer is a listener the test plays:
/// the listener, the session, the download folder and the torrent.
async fn leecher_of_scripted_peer(
    content: &Content,
) -> (TcpListener, Session, tempfile::TempDir, TorrentHandle) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let leecher = session().await;
    let target = tempfile::tempdir().unwrap();
    let mut options = TorrentOptions::new(target.path());
    options.peers = vec![listener.local_addr().unwrap()];
    let handle = leecher.add(content.torrent.clone(), options).await.unwrap();
    (listener, leecher, target, handle)
}

/// The reason given for the first peer dropped.
async fn first_drop(events: &mut tokio::sync::broadcast::Receiver<TorrentEvent>) -> DropReason {
    let dropped = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match events.recv().await {
                Ok(TorrentEvent::PeerDropped { reason, .. }) => return reason,
                Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                Err(e) => panic!("events: {e}"),
            }
        }
    });
    dropped.await.expect("a PeerDropped event")
}

/// Accepts a btc peer's connection as a peer that speaks only plaintext:
/// an MSE handshake (btc tries it first) is closed, as such a peer closes
/// it, and btc dials again in plaintext. Returns the connection and btc's
/// handshake.
async fn accept_plaintext(listener: &TcpListener) -> (TcpStream, Handshake) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let accepted = tokio::time::timeout_at(deadline, listener.accept()).await;
        let (mut stream, _) = accepted.expect("btc dials in time").unwrap();
        let mut theirs = [0u8; peerwire::HANDSHAKE_LEN];
        if stream.read_exact(&mut theirs).await.is_err() {
            continue;
        }
        if let Ok(handshake) = Handshake::decode(&theirs) {
            return (stream, handshake);
        }
    }
}

/// Accepts the leecher's connection and answers its handshake, offering
/// `reserved`, as a peer that has every piece of `torrent`.
async fn accept_as_seeder(
    listener: &TcpListener,
    torrent: &Metainfo,
    reserved: Reserved,
) -> Framed<TcpStream, PeerCodec> {
    let (mut stream, theirs) = accept_plaintext(listener).await;
    assert_eq!(theirs.info_hash, torrent.info_hash());
    let ours = Handshake::new(torrent.info_hash(), PeerId::generate(), reserved);
    stream.write_all(&ours.encode()).await.unwrap();
    let pieces = torrent.layout().num_pieces();
    let mut framed = Framed::new(stream, PeerCodec::new(Some(pieces)));
    framed
        .send(Message::Bitfield(Bitfield::full(pieces).to_bytes()))
        .await
        .unwrap();
    framed
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_that_floods_blocks_nobody_asked_for_is_dropped() {
    let content = content(&[256 * 1024], 32 * 1024, &[], 31);
    let (listener, leecher, _target, handle) = leecher_of_scripted_peer(&content).await;
    let mut events = handle.events();

    let framed = accept_as_seeder(&listener, &content.torrent, Reserved::default()).await;
    let (mut sink, mut stream) = framed.split();
    // Never unchoked, so never asked: every block it sends is unasked.
    let block = BlockRef {
        piece: 0,
        offset: 0,
        length: 16 * 1024,
    };
    let flood = async move {
        for _ in 0..2000 {
            let piece = Message::Piece {
                piece: block.piece,
                offset: block.offset,
                data: vec![7u8; block.length as usize].into(),
            };
            if sink.send(piece).await.is_err() {
                return;
            }
        }
    };
    let closed = async {
        // Reads what the leecher says until it hangs up.
        while let Some(Ok(_)) = stream.next().await {}
    };
    let ((), ()) = tokio::time::timeout(Duration::from_secs(30), async {
        tokio::join!(flood, closed)
    })
    .await
    .expect("the leecher hangs up on the flood");

    let dropped = first_drop(&mut events).await;
    assert_eq!(dropped, DropReason::Unrequested);
    assert_eq!(handle.stats().pieces_have, 0);
    leecher.shutdown().await;
}

/// Reads messages until a piece comes, skipping whatever else the seeder
/// says; `None` if the connection ends first.
async fn next_piece(framed: &mut Framed<TcpStream, PeerCodec>) -> Option<(u32, u32, usize)> {
    let read = tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(Ok(message)) = framed.next().await {
            if let Message::Piece {
                piece,
                offset,
                data,
            } = message
            {
                return Some((piece, offset, data.len()));
            }
        }
        None
    });
    read.await.expect("a piece or the end in time")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_that_connects_twice_keeps_the_connection_that_already_carries_blocks() {
    let content = content(&[256 * 1024], 32 * 1024, &[], 32);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let seeder = session().await;
    let mut options = content.seed_options();
    options.peers = vec![listener.local_addr().unwrap()];
    seeder.add(content.torrent.clone(), options).await.unwrap();

    // The seeder dials us. Our id is lower than any btc id, so the rule
    // for connections opened at the same moment (keep the one dialled by
    // the lower id) would pick our second connection over this one.
    let id = PeerId([0; 20]);
    let (stream, _) = accept_plaintext(&listener).await;
    // Asked before the unchoke comes, a request may be refused in silence:
    // `greet` waits for it.
    let mut first = greet(stream, &content.torrent, id, Reserved::default(), false).await;
    let block = |offset| BlockRef {
        piece: 0,
        offset,
        length: 16 * 1024,
    };
    first.send(Message::Request(block(0))).await.unwrap();
    assert_eq!(next_piece(&mut first).await, Some((0, 0, 16 * 1024)));

    // Then we dial the seeder as well, with the same id.
    let ours = Handshake::new(content.torrent.info_hash(), id, Reserved::default());
    let mut second = TcpStream::connect(seeder.local_addr()).await.unwrap();
    second.write_all(&ours.encode()).await.unwrap();
    let ended = tokio::time::timeout(Duration::from_secs(30), async {
        let mut sink = Vec::new();
        second.read_to_end(&mut sink).await
    });
    // The handshake may come back first; then the seeder hangs up.
    let _ = ended
        .await
        .expect("the second connection is closed in time");

    // The first connection still serves.
    first
        .send(Message::Request(block(16 * 1024)))
        .await
        .unwrap();
    assert_eq!(
        next_piece(&mut first).await,
        Some((0, 16 * 1024, 16 * 1024))
    );
    seeder.shutdown().await;
}

/// Sends our handshake with `id` on `stream` (and reads the seeder's,
/// if we dialled it), says we are interested and waits for the unchoke.
async fn greet(
    stream: TcpStream,
    torrent: &Metainfo,
    id: PeerId,
    reserved: Reserved,
    we_dialled: bool,
) -> Framed<TcpStream, PeerCodec> {
    let mut framed = shake_hands(stream, torrent, id, reserved, we_dialled).await;
    framed.send(Message::Interested).await.unwrap();
    assert_eq!(
        next_of(&mut framed, |m| *m == Message::Unchoke).await,
        Message::Unchoke
    );
    framed
}

/// Sends our handshake with `id` on `stream` (and reads the seeder's, if
/// we dialled it).
pub(super) async fn shake_hands(
    mut stream: TcpStream,
    torrent: &Metainfo,
    id: PeerId,
    reserved: Reserved,
    we_dialled: bool,
) -> Framed<TcpStream, PeerCodec> {
    let ours = Handshake::new(torrent.info_hash(), id, reserved);
    stream.write_all(&ours.encode()).await.unwrap();
    if we_dialled {
        assert_eq!(
            read_handshake(&mut stream).await.info_hash,
            torrent.info_hash()
        );
    }
    Framed::new(stream, PeerCodec::new(Some(torrent.layout().num_pieces())))
}

/// The next message for which `wanted` holds, within 30 seconds; others
/// are skipped.
pub(super) async fn next_of(
    framed: &mut Framed<TcpStream, PeerCodec>,
    wanted: impl Fn(&Message) -> bool,
) -> Message {
    let found = tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(message) = framed.next().await {
            let message = message.unwrap();
            if wanted(&message) {
                return Some(message);
            }
        }
        None
    });
    found
        .await
        .expect("the message in time")
        .expect("the peer hung up first")
}

/// Reads the seeder's handshake from a connection we dialled.
async fn read_handshake(stream: &mut TcpStream) -> Handshake {
    let mut theirs = [0u8; peerwire::HANDSHAKE_LEN];
    tokio::time::timeout(Duration::from_secs(30), stream.read_exact(&mut theirs))
        .await
        .expect("a handshake in time")
        .unwrap();
    Handshake::decode(&theirs).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_cancelled_request_gets_exactly_one_piece_or_one_reject() {
    // 4 MiB of 16 KiB blocks: more than one batch of uploads is read ahead
    // of the socket, so cancels meet blocks queued, read and being sent.
    let content = content(&[4 << 20], 256 * 1024, &[], 33);
    let seeder = session().await;
    seeder
        .add(content.torrent.clone(), content.seed_options())
        .await
        .unwrap();
    let stream = TcpStream::connect(seeder.local_addr()).await.unwrap();
    let fast = Reserved::default().with_fast(true);
    let mut framed = greet(stream, &content.torrent, PeerId::generate(), fast, true).await;

    let blocks: Vec<BlockRef> = (0..255u32)
        .map(|i| BlockRef {
            piece: i / 16,
            offset: (i % 16) * 16 * 1024,
            length: 16 * 1024,
        })
        .collect();
    let marker = BlockRef {
        piece: 15,
        offset: 15 * 16 * 1024,
        length: 16 * 1024,
    };
    for &block in &blocks {
        framed.feed(Message::Request(block)).await.unwrap();
    }
    futures::SinkExt::<Message>::flush(&mut framed)
        .await
        .unwrap();
    // Once the first piece is here the writer is busy; then everything is
    // cancelled, and a last request marks the end: the seeder serves in
    // order, so when it comes every earlier request has had its answer.
    let mut answers: HashMap<BlockRef, (usize, usize)> = HashMap::new();
    let first = next_piece(&mut framed).await.expect("a first piece");
    let first = BlockRef {
        piece: first.0,
        offset: first.1,
        length: u32::try_from(first.2).unwrap(),
    };
    answers.entry(first).or_default().0 += 1;
    for &block in &blocks {
        framed.feed(Message::Cancel(block)).await.unwrap();
    }
    framed.send(Message::Request(marker)).await.unwrap();
    let collected = tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(message) = framed.next().await {
            match message.unwrap() {
                Message::Piece {
                    piece,
                    offset,
                    data,
                } => {
                    let block = BlockRef {
                        piece,
                        offset,
                        length: u32::try_from(data.len()).unwrap(),
                    };
                    if block == marker {
                        return true;
                    }
                    let start = piece as usize * 256 * 1024 + offset as usize;
                    assert!(
                        data[..] == content.files[0].1[start..start + data.len()],
                        "block {block:?} holds the wrong data"
                    );
                    answers.entry(block).or_default().0 += 1;
                }
                Message::Reject(block) => answers.entry(block).or_default().1 += 1,
                _ => {}
            }
        }
        false
    });
    assert!(
        collected.await.expect("the marker in time"),
        "the seeder hung up"
    );
    for block in &blocks {
        let (pieces, rejects) = answers.remove(block).unwrap_or_default();
        assert_eq!(
            (pieces + rejects, pieces.min(1) + rejects.min(1)),
            (1, 1),
            "{block:?}: {pieces} pieces, {rejects} rejects"
        );
    }
    assert!(
        answers.is_empty(),
        "answers to blocks never asked: {answers:?}"
    );
    seeder.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_id_claimed_from_another_host_does_not_keep_the_real_peer_out() {
    let content = content(&[256 * 1024], 32 * 1024, &[], 34);
    // The real peer listens on ::1; the seeder dials it at once.
    let real = TcpListener::bind("[::1]:0").await.unwrap();
    let seeder = session().await;
    let mut options = content.seed_options();
    options.peers = vec![real.local_addr().unwrap()];
    seeder.add(content.torrent.clone(), options).await.unwrap();
    let (real_stream, _) = accept_plaintext(&real).await;

    // Before the real peer answers, an impostor on 127.0.0.1 connects
    // under its id and gets a block, so its connection carries data.
    let id = PeerId([0; 20]);
    let impostor = TcpStream::connect(seeder.local_addr()).await.unwrap();
    let mut impostor = greet(impostor, &content.torrent, id, Reserved::default(), true).await;
    let block = |offset| BlockRef {
        piece: 0,
        offset,
        length: 16 * 1024,
    };
    impostor.send(Message::Request(block(0))).await.unwrap();
    assert_eq!(next_piece(&mut impostor).await, Some((0, 0, 16 * 1024)));

    // The real peer, on another host, is a peer of its own.
    let mut real = greet(
        real_stream,
        &content.torrent,
        id,
        Reserved::default(),
        false,
    )
    .await;
    real.send(Message::Request(block(16 * 1024))).await.unwrap();
    assert_eq!(next_piece(&mut real).await, Some((0, 16 * 1024, 16 * 1024)));
    seeder.shutdown().await;
}

/// A peer that unchokes us and then rejects (BEP 6) every request is not
/// asked again in a loop, and is dropped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_that_rejects_every_request_is_dropped_without_a_request_storm() {
    let content = content(&[512 * 1024], 32 * 1024, &[], 35);
    let (listener, leecher, _target, handle) = leecher_of_scripted_peer(&content).await;
    let mut events = handle.events();

    let fast = Reserved::default().with_fast(true);
    let mut framed = accept_as_seeder(&listener, &content.torrent, fast).await;
    framed.send(Message::Unchoke).await.unwrap();
    let rejected = tokio::time::timeout(Duration::from_secs(60), async {
        let mut rejected = 0u32;
        while let Some(Ok(message)) = framed.next().await {
            if let Message::Request(block) = message {
                rejected += 1;
                if framed.send(Message::Reject(block)).await.is_err() {
                    break;
                }
            }
        }
        rejected
    })
    .await
    .expect("the leecher hangs up");
    let dropped = first_drop(&mut events).await;
    assert!(
        matches!(dropped, DropReason::RefusesWork { .. }),
        "{dropped}"
    );
    // Asked about once per tick, not in a loop: a little over the bound.
    assert!(rejected <= 256, "{rejected} requests");
    assert_eq!(handle.stats().pieces_have, 0);
    leecher.shutdown().await;
}

/// A block cut short (or too long) for a request is a protocol error: the
/// peer is dropped and its requests go elsewhere, rather than the request
/// waiting out the snub timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_that_answers_a_request_with_half_a_block_is_dropped() {
    let content = content(&[256 * 1024], 32 * 1024, &[], 35);
    let (listener, leecher, _target, handle) = leecher_of_scripted_peer(&content).await;
    let mut events = handle.events();
    let mut framed = accept_as_seeder(&listener, &content.torrent, Reserved::default()).await;
    framed.send(Message::Unchoke).await.unwrap();
    let asked = next_of(&mut framed, |m| matches!(m, Message::Request(_))).await;
    let Message::Request(block) = asked else {
        unreachable!()
    };
    framed
        .send(Message::Piece {
            piece: block.piece,
            offset: block.offset,
            data: vec![7u8; block.length as usize / 2].into(),
        })
        .await
        .unwrap();
    let dropped = first_drop(&mut events).await;
    assert_eq!(
        dropped,
        DropReason::Protocol("a block of 8192 bytes for a request of 16384".into())
    );
    leecher.shutdown().await;
}

/// A leecher that a seed unchokes and that then asks for nothing is
/// dropped once a stalled peer's time is up, so that it does not hold an
/// upload slot and a place for ever; one that asks is kept.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_seed_drops_a_leecher_it_unchokes_that_asks_for_nothing() {
    let content = content(&[256 * 1024], 16 * 1024, &[], 35);
    let config = SessionConfig {
        turnover: engine::turnover::Grace {
            stalled: Duration::from_secs(3),
            ..engine::turnover::Grace::default()
        },
        ..test_config()
    };
    let seeder = Session::start(config).await.unwrap();
    let seed = seeder
        .add(content.torrent.clone(), content.seed_options())
        .await
        .unwrap();
    let mut events = seed.events();
    let connect = || TcpStream::connect(seeder.local_addr());
    let torrent = &content.torrent;
    let mut mute = greet(
        connect().await.unwrap(),
        torrent,
        PeerId::generate(),
        Reserved::default(),
        true,
    )
    .await;
    let mut asker = greet(
        connect().await.unwrap(),
        torrent,
        PeerId::generate(),
        Reserved::default(),
        true,
    )
    .await;
    // The asker asks for a block every 300 ms, each after the last
    // arrived; the mute one is closed meanwhile.
    let closed = async {
        while let Some(message) = mute.next().await {
            if message.is_err() {
                break;
            }
        }
    };
    tokio::pin!(closed);
    let mut asked = 0;
    loop {
        let block = BlockRef {
            piece: asked % 16,
            offset: 0,
            length: 16 * 1024,
        };
        asker.send(Message::Request(block)).await.unwrap();
        assert!(
            next_piece(&mut asker).await.is_some(),
            "the asker is served"
        );
        asked += 1;
        assert!(asked < 100, "the mute leecher is still there after 30 s");
        tokio::select! {
            () = &mut closed => break,
            () = tokio::time::sleep(Duration::from_millis(300)) => {}
        }
    }
    assert_eq!(first_drop(&mut events).await, DropReason::AskedForNothing);
    // The asker is still served.
    let block = BlockRef {
        piece: 15,
        offset: 0,
        length: 16 * 1024,
    };
    asker.send(Message::Request(block)).await.unwrap();
    assert_eq!(next_piece(&mut asker).await, Some((15, 0, 16 * 1024)));
    seeder.shutdown().await;
}

#[tokio::test]
async fn a_peer_exchange_flood_gives_at_most_fifty_candidates() {
    let content = content(&SIZES, 32 * 1024, &[], 61);
    let (listener, _leecher, _target, handle) = leecher_of_scripted_peer(&content).await;
    let reserved = Reserved::default().with_extension_protocol(true);
    let mut peer = accept_as_seeder(&listener, &content.torrent, reserved).await;
    let mut ours = peerwire::extension::ExtensionHandshake::default();
    ours.m.insert("ut_pex".into(), 7);
    peer.send(Message::Extended {
        id: 0,
        payload: ours.encode(),
    })
    .await
    .unwrap();
    let theirs = next_of(&mut peer, |m| matches!(m, Message::Extended { id: 0, .. })).await;
    let Message::Extended { payload, .. } = theirs else {
        unreachable!()
    };
    let their_pex = peerwire::extension::ExtensionHandshake::decode(&payload)
        .unwrap()
        .id("ut_pex")
        .expect("the leecher speaks ut_pex");
    // 100 entries of port 0, then 3,500 addresses on 127.201.x.y that
    // refuse at once, and a truncated entry.
    let mut added = Vec::new();
    for i in 0..100u8 {
        added.extend_from_slice(&[127, 202, 0, i, 0, 0]);
    }
    for i in 0..3500u32 {
        let [_, _, a, b] = i.to_be_bytes();
        added.extend_from_slice(&[127, 201, a, b, 0, 1]);
    }
    added.extend_from_slice(&[127, 0, 0]);
    let mut e = bencode::Encoder::default();
    e.dict(|d| d.entry_with(b"added", |e| e.bytes(&added)));
    peer.send(Message::Extended {
        id: their_pex,
        payload: e.into_bytes().into(),
    })
    .await
    .unwrap();
    wait_for(&handle, "the named addresses dialled", |s| {
        s.dial_failures >= 50
    })
    .await;
    let stats = handle.stats();
    assert_eq!(stats.dial_failures, 50, "{stats:?}");
    assert_eq!(stats.candidates, 0, "{stats:?}");
    assert_eq!(stats.sources.given, 1, "the exchanging peer stays");
}
