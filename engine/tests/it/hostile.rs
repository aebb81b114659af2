//! Peers that misbehave on purpose, scripted over real sockets on
//! 127.0.0.1 with peerwire's codec.

use futures::{SinkExt as _, StreamExt as _};
use metainfo::{BlockRef, PeerId};
use peerwire::{Bitfield, Handshake, Message, PeerCodec, Reserved};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::codec::Framed;

use super::*;

/// Accepts the leecher's connection and answers its handshake as a peer
/// that has every piece of `torrent`.
async fn accept_as_seeder(
    listener: &TcpListener,
    torrent: &Metainfo,
) -> Framed<TcpStream, PeerCodec> {
    let accepted = tokio::time::timeout(Duration::from_secs(30), listener.accept()).await;
    let (mut stream, _) = accepted.expect("the leecher dials in time").unwrap();
    let mut theirs = [0u8; peerwire::HANDSHAKE_LEN];
    stream.read_exact(&mut theirs).await.unwrap();
    let theirs = Handshake::decode(&theirs).unwrap();
    assert_eq!(theirs.info_hash, torrent.info_hash());
    let ours = Handshake::new(torrent.info_hash(), PeerId::generate(), Reserved::default());
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
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let leecher = session().await;
    let target = tempfile::tempdir().unwrap();
    let mut options = TorrentOptions::new(target.path());
    options.peers = vec![listener.local_addr().unwrap()];
    let handle = leecher.add(content.torrent.clone(), options).await.unwrap();
    let mut events = handle.events();

    let framed = accept_as_seeder(&listener, &content.torrent).await;
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

    let dropped = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match events.recv().await {
                Ok(TorrentEvent::PeerDropped { reason, .. }) => return reason,
                Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                Err(e) => panic!("events: {e}"),
            }
        }
    })
    .await
    .expect("a PeerDropped event");
    assert!(dropped.contains("did not ask"), "{dropped}");
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
    let accepted = tokio::time::timeout(Duration::from_secs(30), listener.accept()).await;
    let (mut stream, _) = accepted.expect("the seeder dials in time").unwrap();
    let mut theirs = [0u8; peerwire::HANDSHAKE_LEN];
    stream.read_exact(&mut theirs).await.unwrap();
    let ours = Handshake::new(content.torrent.info_hash(), id, Reserved::default());
    stream.write_all(&ours.encode()).await.unwrap();
    let pieces = content.torrent.layout().num_pieces();
    let mut first = Framed::new(stream, PeerCodec::new(Some(pieces)));
    first.send(Message::Interested).await.unwrap();
    let block = |offset| BlockRef {
        piece: 0,
        offset,
        length: 16 * 1024,
    };
    // Asked before the unchoke comes, a request may be refused in silence;
    // wait for it.
    let unchoked = tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(Ok(message)) = first.next().await {
            if message == Message::Unchoke {
                return true;
            }
        }
        false
    });
    assert!(unchoked.await.expect("unchoked in time"));
    first.send(Message::Request(block(0))).await.unwrap();
    assert_eq!(next_piece(&mut first).await, Some((0, 0, 16 * 1024)));

    // Then we dial the seeder as well, with the same id.
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
