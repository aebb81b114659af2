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
