//! The HTTP client against the HTTP server, and against broken servers,
//! over real sockets on loopback.

use std::net::SocketAddr;
use std::time::Duration;

use metainfo::{InfoHash, PeerId};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tracker::{
    AnnounceRequest, Event, HttpClient, HttpOptions, HttpTracker, ResponseError, TrackerConfig,
    TrackerError,
};

const HASH: InfoHash = InfoHash([0x42; 20]);

fn announce(port: u16, left: u64) -> AnnounceRequest {
    AnnounceRequest::new(HASH, PeerId::generate(), port, left)
}

async fn server(bind: &str) -> HttpTracker {
    HttpTracker::bind(bind.parse().unwrap(), TrackerConfig::default())
        .await
        .unwrap()
}

fn quick() -> HttpClient {
    HttpClient::new(HttpOptions {
        timeout: Duration::from_secs(3),
        max_redirects: 2,
        max_body: 64 * 1024,
        ..HttpOptions::default()
    })
}

#[tokio::test]
async fn client_and_server_agree_compact_and_not_over_ipv4_and_ipv6() {
    for bind in ["127.0.0.1:0", "[::1]:0"] {
        let server = server(bind).await;
        let url = server.announce_url();
        let client = quick();
        let seeder = announce(7001, 0);
        let first = client.announce(&url, &seeder).await.unwrap();
        assert!(first.peers.is_empty());
        assert_eq!((first.complete, first.incomplete), (Some(1), Some(0)));
        for compact in [true, false] {
            let mut leecher = announce(7002, 500);
            leecher.compact = compact;
            let answer = client.announce(&url, &leecher).await.unwrap();
            let ip = server.local_addr().ip();
            assert_eq!(answer.peers.len(), 1, "{bind} compact={compact}");
            assert_eq!(answer.peers[0].addr, SocketAddr::new(ip, 7001));
            // Only a dictionary list carries the peer id.
            let expected_id = (!compact).then_some(seeder.peer_id);
            assert_eq!(answer.peers[0].peer_id, expected_id);
        }
        let scrape = client.scrape(&url, &[HASH]).await.unwrap();
        assert_eq!(scrape.files[&HASH].complete, 1);
        assert_eq!(scrape.files[&HASH].incomplete, 2);
        let mut stopped = seeder.clone();
        stopped.event = Some(Event::Stopped);
        client.announce(&url, &stopped).await.unwrap();
        assert_eq!(
            server
                .state()
                .lock()
                .unwrap()
                .stats(&HASH)
                .unwrap()
                .complete,
            0
        );
        server.stop().await;
    }
}

#[tokio::test]
async fn refusals_reach_the_client_and_the_server_keeps_serving() {
    let config = TrackerConfig {
        allow_list: Some([HASH].into()),
        ..TrackerConfig::default()
    };
    let server = HttpTracker::bind("127.0.0.1:0".parse().unwrap(), config)
        .await
        .unwrap();
    let client = quick();
    let mut stranger = announce(7003, 1);
    stranger.info_hash = InfoHash([1; 20]);
    let err = client
        .announce(&server.announce_url(), &stranger)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, TrackerError::Response(ResponseError::Failure(r)) if r.contains("not allowed")),
        "{err}"
    );
    // Hostile requests, raw over TCP: each gets a bencoded failure.
    let addr = server.local_addr();
    for path in [
        "/announce",
        "/announce?info_hash=%00&peer_id=x&port=1&left=0",
        "/announce?info_hash=aaaaaaaaaaaaaaaaaaaa&peer_id=bbbbbbbbbbbbbbbbbbbb&port=99999&left=0",
        "/favicon.ico",
        "/scrape?info_hash=short",
    ] {
        let reply = raw_get(addr, path).await;
        assert!(reply.starts_with("HTTP/1.1 200"), "{path}: {reply}");
        assert!(reply.contains("d14:failure reason"), "{path}: {reply}");
    }
    let garbage = raw_exchange(addr, b"\x00\x01\x02 not http at all\r\n\r\n").await;
    assert!(!garbage.contains("failure"), "{garbage}");
    // And the good client is still served.
    assert!(
        client
            .announce(&server.announce_url(), &announce(7004, 0))
            .await
            .is_ok()
    );
    server.stop().await;
}

async fn raw_get(addr: SocketAddr, path: &str) -> String {
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    raw_exchange(addr, request.as_bytes()).await
}

async fn raw_exchange(addr: SocketAddr, bytes: &[u8]) -> String {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream.write_all(bytes).await.unwrap();
    let mut reply = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut reply)).await;
    assert!(read.is_ok(), "server did not close");
    String::from_utf8_lossy(&reply).into_owned()
}

/// A one-shot HTTP server that answers every connection with `reply`, for
/// broken-tracker cases. Returns its URL.
async fn fake_tracker(reply: Vec<u8>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let reply = reply.clone();
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let _ = stream.read(&mut buf).await;
                let _ = stream.write_all(&reply).await;
                let _ = stream.shutdown().await;
            });
        }
    });
    format!("http://{addr}/announce")
}

fn http(status: &str, headers: &str, body: &[u8]) -> Vec<u8> {
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n{headers}\r\n",
        body.len()
    );
    [head.as_bytes(), body].concat()
}

#[tokio::test]
async fn broken_trackers_give_clear_errors() {
    let client = quick();
    let request = announce(7005, 1);
    let big = vec![b'x'; 100 * 1024];
    let cases: Vec<(&str, Vec<u8>)> = vec![
        (
            "html page",
            http("200 OK", "", b"<html><h1>It works!</h1></html>"),
        ),
        ("not found", http("404 Not Found", "", b"nope")),
        ("server error", http("500 Internal Server Error", "", b"")),
        ("too large", http("200 OK", "", &big)),
        (
            "truncated compact",
            http(
                "200 OK",
                "",
                b"d8:intervali60e5:peers7:\x7f\x00\x00\x01\x1a\xe1\x00e",
            ),
        ),
        ("redirect without location", http("302 Found", "", b"")),
    ];
    let mut report = String::new();
    for (name, reply) in cases {
        let url = fake_tracker(reply).await;
        let err = client.announce(&url, &request).await.unwrap_err();
        report += &format!("{name}: {err}\n");
    }
    insta::assert_snapshot!(report);
}

#[tokio::test]
async fn redirects_are_followed_but_not_forever() {
    let server = server("127.0.0.1:0").await;
    let target = server.announce_url();
    // A tracker that moved: it redirects to the new place, query and all.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let moved = format!("http://{}/announce", listener.local_addr().unwrap());
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let mut buf = [0u8; 4096];
            let n = stream.read(&mut buf).await.unwrap_or(0);
            let head = String::from_utf8_lossy(&buf[..n]).into_owned();
            let query = head
                .split_whitespace()
                .nth(1)
                .and_then(|p| p.split_once('?'))
                .map_or("", |(_, q)| q)
                .to_string();
            let reply = http(
                "301 Moved Permanently",
                &format!("Location: {target}?{query}\r\n"),
                b"",
            );
            let _ = stream.write_all(&reply).await;
        }
    });
    let client = quick();
    let answer = client.announce(&moved, &announce(7006, 0)).await.unwrap();
    assert_eq!(answer.complete, Some(1));
    // A redirect to itself loops until the limit.
    let looping = fake_tracker(http("302 Found", "Location: /announce\r\n", b"")).await;
    let err = client
        .announce(&looping, &announce(7007, 0))
        .await
        .unwrap_err();
    assert!(matches!(err, TrackerError::TooManyRedirects(2)), "{err}");
    server.stop().await;
}

#[tokio::test]
async fn dead_and_silent_trackers_fail_in_bounded_time() {
    // Nothing listens on a port just freed.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let dead = format!("http://{}/announce", listener.local_addr().unwrap());
    drop(listener);
    let client = quick();
    let err = client
        .announce(&dead, &announce(7008, 0))
        .await
        .unwrap_err();
    assert!(matches!(err, TrackerError::Unreachable(_)), "{err}");
    // One that accepts and never answers.
    let silent = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/announce", silent.local_addr().unwrap());
    let client = HttpClient::new(HttpOptions {
        timeout: Duration::from_millis(300),
        ..HttpOptions::default()
    });
    let err = client.announce(&url, &announce(7009, 0)).await.unwrap_err();
    assert!(matches!(err, TrackerError::Timeout(_)), "{err}");
    drop(silent);
    let err = client
        .announce("udp://127.0.0.1:1/announce", &announce(1, 0))
        .await
        .unwrap_err();
    assert!(matches!(err, TrackerError::BadUrl { .. }), "{err}");
    let err = client
        .scrape("http://127.0.0.1:1/a", &[HASH])
        .await
        .unwrap_err();
    assert!(matches!(err, TrackerError::NoScrape), "{err}");
}

#[tokio::test]
async fn https_trackers_are_reached_over_tls_and_verified() {
    use std::sync::Arc;
    use tokio_rustls::rustls;

    let certified = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string()]).unwrap();
    let cert_der = certified.cert.der().to_vec();
    let key_der = certified.signing_key.serialize_der();
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(
        vec![cert_der.clone().into()],
        rustls::pki_types::PrivateKeyDer::Pkcs8(key_der.into()),
    )
    .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("https://{}/announce", listener.local_addr().unwrap());
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(stream).await else {
                    return;
                };
                let mut buf = [0u8; 4096];
                let _ = tls.read(&mut buf).await;
                let body = b"d8:intervali900e5:peers6:\x7f\x00\x00\x01\x1a\xe1e";
                let _ = tls.write_all(&http("200 OK", "", body)).await;
                let _ = tls.shutdown().await;
            });
        }
    });
    let trusting = HttpClient::new(HttpOptions {
        extra_roots: vec![cert_der],
        ..HttpOptions::default()
    });
    let answer = trusting.announce(&url, &announce(7010, 1)).await.unwrap();
    assert_eq!((answer.interval, answer.peers.len()), (900, 1));
    // A certificate nobody vouches for is refused.
    let err = quick()
        .announce(&url, &announce(7010, 1))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("certificate"), "{err}");
}
