//! uTP streams over real UDP sockets on loopback.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use rand::{RngCore, SeedableRng, rngs::SmallRng};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use utp::{Header, Packet, PacketType, Socket, SocketConfig};

const LOOPBACK: &str = "127.0.0.1:0";

async fn socket() -> Socket {
    let addr: SocketAddr = LOOPBACK.parse().expect("an address");
    Socket::bind(addr, SocketConfig::default())
        .await
        .expect("bind on loopback")
}

fn random(len: usize, seed: u64) -> Vec<u8> {
    let mut bytes = vec![0; len];
    SmallRng::seed_from_u64(seed).fill_bytes(&mut bytes);
    bytes
}

/// Accepts connections and sends back what each one sends, until it
/// closes.
fn echo(server: Socket) {
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = server.accept().await {
            tokio::spawn(async move {
                let mut buf = vec![0; 100_000];
                loop {
                    match stream.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => {
                            if stream.write_all(&buf[..n]).await.is_err() {
                                break;
                            }
                        }
                    }
                }
                let _ = stream.shutdown().await;
            });
        }
    });
}

/// Sends `data` through an echo and reads it back.
async fn round_trip(client: &Socket, server: SocketAddr, data: Vec<u8>) -> Vec<u8> {
    let stream = client.connect(server).await.expect("connects");
    let (mut read, mut write) = tokio::io::split(stream);
    let writer = tokio::spawn(async move {
        write.write_all(&data).await.expect("writes");
        write.shutdown().await.expect("closes");
        write
    });
    let mut back = Vec::new();
    read.read_to_end(&mut back).await.expect("reads to the end");
    let _write = writer.await.expect("the writer ends");
    back
}

fn timeout<F: std::future::Future>(f: F) -> tokio::time::Timeout<F> {
    tokio::time::timeout(Duration::from_secs(60), f)
}

#[tokio::test]
async fn a_stream_carries_bytes_both_ways_intact() {
    let (client, server) = (socket().await, socket().await);
    echo(server.clone());
    let data = random(8 << 20, 1);
    let started = Instant::now();
    let back = timeout(round_trip(&client, server.local_addr(), data.clone()))
        .await
        .expect("in time");
    eprintln!("8 MiB each way through an echo in {:?}", started.elapsed());
    assert!(back == data, "{} bytes back of {}", back.len(), data.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_streams_share_one_socket() {
    let (client, server) = (socket().await, socket().await);
    echo(server.clone());
    let mut tasks = Vec::new();
    for i in 0..20 {
        let client = client.clone();
        let to = server.local_addr();
        tasks.push(tokio::spawn(async move {
            let data = random(200_000 + i * 1000, i as u64);
            let back = round_trip(&client, to, data.clone()).await;
            assert!(back == data, "stream {i}");
        }));
    }
    for t in tasks {
        timeout(t)
            .await
            .expect("in time")
            .expect("the stream's task");
    }
    // Every connection closes and goes (within the linger).
    let deadline = Instant::now() + Duration::from_secs(30);
    while (client.connections() > 0 || server.connections() > 0) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!((client.connections(), server.connections()), (0, 0));
}

#[tokio::test]
async fn a_socket_that_does_not_accept_refuses() {
    let (client, server) = (socket().await, socket().await);
    let err = timeout(client.connect(server.local_addr()))
        .await
        .expect("in time")
        .expect_err("refused");
    assert_eq!(err.kind(), std::io::ErrorKind::ConnectionRefused);
}

#[tokio::test]
async fn a_dropped_stream_ends_the_peers_reads() {
    let (client, server) = (socket().await, socket().await);
    let accepted = tokio::spawn({
        let server = server.clone();
        async move {
            let (mut stream, _) = server.accept().await.expect("accepts");
            let mut got = Vec::new();
            stream.read_to_end(&mut got).await.expect("reads");
            got
        }
    });
    let mut stream = client.connect(server.local_addr()).await.expect("connects");
    stream.write_all(b"last words").await.expect("writes");
    drop(stream);
    let got = timeout(accepted).await.expect("in time").expect("the task");
    assert_eq!(got, b"last words");
}

#[tokio::test]
async fn a_reset_reaches_the_peer() {
    let (client, server) = (socket().await, socket().await);
    let accepted = tokio::spawn({
        let server = server.clone();
        async move {
            let (mut stream, _) = server.accept().await.expect("accepts");
            let mut buf = [0; 16];
            let _ = stream.read(&mut buf).await;
            stream.read(&mut buf).await
        }
    });
    let mut stream = client.connect(server.local_addr()).await.expect("connects");
    stream.write_all(b"x").await.expect("writes");
    // Give the byte time to be read before the reset.
    tokio::time::sleep(Duration::from_millis(50)).await;
    stream.reset();
    let read = timeout(accepted).await.expect("in time").expect("the task");
    assert_eq!(
        read.expect_err("reset").kind(),
        std::io::ErrorKind::ConnectionReset
    );
}

#[tokio::test]
async fn datagrams_that_are_not_utp_go_to_whoever_shares_the_socket() {
    let udp = std::sync::Arc::new(UdpSocket::bind(LOOPBACK).await.expect("bind"));
    let (tx, mut rx) = mpsc::channel(8);
    let socket = Socket::with_udp(udp, SocketConfig::default(), Some(tx)).expect("a socket");
    let other = UdpSocket::bind(LOOPBACK).await.expect("bind");
    let ping = b"d1:ad2:id20:abcdefghij0123456789e1:q4:ping1:t2:aa1:y1:qe";
    other
        .send_to(ping, socket.local_addr())
        .await
        .expect("sends");
    let (from, got) = timeout(rx.recv())
        .await
        .expect("in time")
        .expect("the DHT's datagram");
    assert_eq!(from, other.local_addr().expect("an address"));
    assert_eq!(got, ping);
    // And uTP still works on it.
    let client = self::socket().await;
    echo(socket.clone());
    let back = timeout(round_trip(&client, socket.local_addr(), b"hi".to_vec()))
        .await
        .expect("in time");
    assert_eq!(back, b"hi");
}

#[tokio::test]
async fn a_syn_flood_costs_bounded_state_and_real_peers_still_connect() {
    let config = SocketConfig {
        max_half_open: 64,
        max_per_ip: 100_000,
        ..SocketConfig::default()
    };
    let server = Socket::bind(LOOPBACK.parse().expect("an address"), config)
        .await
        .expect("bind");
    echo(server.clone());
    let flood = UdpSocket::bind(LOOPBACK).await.expect("bind");
    for id in 0..5000u16 {
        let syn = Packet {
            header: Header {
                kind: PacketType::Syn,
                connection_id: id.wrapping_mul(7),
                timestamp_us: 0,
                timestamp_difference_us: 0,
                window: 1 << 20,
                seq_nr: 1,
                ack_nr: 0,
            },
            selective_ack: None,
            largest_datagram: None,
            payload: Vec::new(),
        };
        let _ = flood.send_to(&syn.encode(), server.local_addr()).await;
        assert!(server.connections() <= 64);
    }
    let client = socket().await;
    let back = timeout(round_trip(
        &client,
        server.local_addr(),
        b"still here".to_vec(),
    ))
    .await
    .expect("in time");
    assert_eq!(back, b"still here");
}
