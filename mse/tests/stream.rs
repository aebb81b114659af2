//! The handshakes and the ciphering halves over real sockets on
//! 127.0.0.1.

#![allow(clippy::unwrap_used)] // test code: a panic is a failure report

use mse::{Method, Methods, Reader, Writer, initiate, respond};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};

const SKEY: [u8; 20] = [9; 20];

async fn connected(prefer: Method) -> (mse::Established, TcpStream, mse::Established, TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let responder = tokio::spawn(async move {
        let (mut stream, _) = listener.accept().await.unwrap();
        let mut first = [0u8; 20];
        stream.read_exact(&mut first).await.unwrap();
        assert!(!mse::is_plaintext_handshake(&first));
        let est = respond(&mut stream, &first, Methods::BOTH, prefer, &SKEY)
            .await
            .unwrap();
        (est, stream)
    });
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let a = initiate(&mut stream, SKEY, Methods::BOTH, b"hello".to_vec())
        .await
        .unwrap();
    let (b, b_stream) = responder.await.unwrap();
    (a, stream, b, b_stream)
}

async fn exchange(prefer: Method) {
    let (a, a_stream, b, b_stream) = connected(prefer).await;
    assert_eq!(b.initial_payload, b"hello");
    assert_eq!((a.method, b.method), (prefer, prefer));
    let data: Vec<u8> = (0..1_000_000u32).map(|i| (i * 7 + i / 256) as u8).collect();
    let (a_read, a_write) = a_stream.into_split();
    let (b_read, b_write) = b_stream.into_split();
    let mut a_writer = Writer::new(a_write, a.encrypt);
    let mut a_reader = Reader::new(a_read, a.decrypt, a.rest);
    let mut b_writer = Writer::new(b_write, b.encrypt);
    let mut b_reader = Reader::new(b_read, b.decrypt, b.rest);
    assert_eq!(a_writer.is_encrypted(), prefer == Method::Rc4);
    let sent = data.clone();
    let a_sends = tokio::spawn(async move {
        // Uneven writes, as frames are.
        for chunk in sent.chunks(12_345) {
            a_writer.write_all(chunk).await.unwrap();
        }
        a_writer.shutdown().await.unwrap();
    });
    let sent = data.clone();
    let b_sends = tokio::spawn(async move {
        b_writer.write_all(&sent).await.unwrap();
        b_writer.shutdown().await.unwrap();
    });
    let mut at_b = Vec::new();
    b_reader.read_to_end(&mut at_b).await.unwrap();
    let mut at_a = Vec::new();
    a_reader.read_to_end(&mut at_a).await.unwrap();
    a_sends.await.unwrap();
    b_sends.await.unwrap();
    assert!(at_b == data, "A to B");
    assert!(at_a == data, "B to A");
}

#[tokio::test]
async fn a_megabyte_each_way_arrives_intact_over_rc4() {
    exchange(Method::Rc4).await;
}

#[tokio::test]
async fn a_megabyte_each_way_arrives_intact_in_plaintext_after_the_handshake() {
    exchange(Method::Plaintext).await;
}

#[tokio::test]
async fn a_peer_that_closes_mid_handshake_is_an_error_not_a_hang() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let closer = tokio::spawn(async move {
        let (mut stream, _) = listener.accept().await.unwrap();
        let mut some = [0u8; 50];
        stream.read_exact(&mut some).await.unwrap();
    });
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let result = initiate(&mut stream, SKEY, Methods::BOTH, Vec::new()).await;
    closer.await.unwrap();
    assert!(
        matches!(result, Err(mse::HandshakeError::Io(_))),
        "{result:?}"
    );
}
