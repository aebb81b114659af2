//! Who a seeder serves, seen from scripted peers over real sockets.

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
    let seeder = Session::start(SessionConfig {
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        upload_slots: 1,
        choke_interval: Duration::from_secs(3600),
        ..SessionConfig::default()
    })
    .await
    .unwrap();
    seeder
        .add(content.torrent.clone(), content.seed_options())
        .await
        .unwrap();
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
