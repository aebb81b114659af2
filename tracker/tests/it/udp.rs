//! BEP 15: packets, the client against the server, and the client against
//! fake trackers that drop, confuse and refuse.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use metainfo::{InfoHash, PeerId};
use proptest::prelude::*;
use tokio::net::UdpSocket;
use tracker::{
    AnnounceRequest, Event, HttpTracker, Peer, ResponseError, ScrapeStats, Tracker, TrackerClient,
    TrackerConfig, TrackerError, TrackerTiers, UdpClient, UdpOptions, UdpRequest, UdpResponse,
    UdpTracker,
};

const HASH: InfoHash = InfoHash([0x77; 20]);

fn fast() -> UdpClient {
    UdpClient::new(UdpOptions {
        base_timeout: Duration::from_millis(100),
        max_retries: 3,
        ..UdpOptions::default()
    })
}

fn announce(port: u16, left: u64) -> AnnounceRequest {
    AnnounceRequest::new(HASH, PeerId::generate(), port, left)
}

#[tokio::test]
async fn client_and_server_over_ipv4_and_ipv6() {
    for bind in ["127.0.0.1:0", "[::1]:0"] {
        let server = UdpTracker::bind(bind.parse().unwrap(), TrackerConfig::default())
            .await
            .unwrap();
        let url = server.announce_url();
        let client = fast();
        client.announce(&url, &announce(7201, 0)).await.unwrap();
        let answer = client.announce(&url, &announce(7202, 9)).await.unwrap();
        let ip = server.local_addr().ip();
        assert_eq!(
            answer.peers,
            [Peer {
                addr: SocketAddr::new(ip, 7201),
                peer_id: None
            }],
            "{bind}"
        );
        assert_eq!((answer.complete, answer.incomplete), (Some(1), Some(1)));
        let scrape = client
            .scrape(&url, &[HASH, InfoHash([0; 20])])
            .await
            .unwrap();
        assert_eq!(
            scrape.files[&HASH],
            ScrapeStats {
                complete: 1,
                downloaded: 0,
                incomplete: 1
            }
        );
        assert_eq!(scrape.files[&InfoHash([0; 20])], ScrapeStats::default());
        server.stop().await;
    }
}

#[tokio::test]
async fn http_and_udp_servers_share_one_swarm() {
    let state = Arc::new(Mutex::new(Tracker::new(TrackerConfig::default())));
    let http = HttpTracker::bind_shared("127.0.0.1:0".parse().unwrap(), Arc::clone(&state))
        .await
        .unwrap();
    let udp = UdpTracker::bind_shared("127.0.0.1:0".parse().unwrap(), state)
        .await
        .unwrap();
    let client = TrackerClient::default();
    client
        .announce(&udp.announce_url(), &announce(7203, 0))
        .await
        .unwrap();
    let answer = client
        .announce(&http.announce_url(), &announce(7204, 5))
        .await
        .unwrap();
    assert_eq!(answer.peers.len(), 1);
    assert_eq!(answer.peers[0].addr.port(), 7203);
    http.stop().await;
    udp.stop().await;
}

/// A fake UDP tracker: `policy` sees each request (and how many came before)
/// and returns the packets to send back.
async fn fake(
    policy: impl Fn(usize, &UdpRequest) -> Vec<UdpResponse> + Send + 'static,
) -> (String, Arc<AtomicUsize>) {
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let url = format!("udp://{}", socket.local_addr().unwrap());
    let seen = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&seen);
    tokio::spawn(async move {
        let mut buf = [0u8; 2048];
        while let Ok((n, from)) = socket.recv_from(&mut buf).await {
            let Ok(request) = UdpRequest::decode(&buf[..n]) else {
                continue;
            };
            let count = counter.fetch_add(1, Ordering::SeqCst);
            for reply in policy(count, &request) {
                let _ = socket.send_to(&reply.encode(), from).await;
            }
        }
    });
    (url, seen)
}

/// The honest answer to a request.
fn honest(request: &UdpRequest) -> UdpResponse {
    let transaction_id = request.transaction_id();
    match request {
        UdpRequest::Connect { .. } => UdpResponse::Connect {
            transaction_id,
            connection_id: 0xfeed,
        },
        UdpRequest::Announce { .. } => UdpResponse::Announce {
            transaction_id,
            interval: 900,
            leechers: 2,
            seeders: 3,
            peers: vec![Peer {
                addr: "127.0.0.1:9999".parse().unwrap(),
                peer_id: None,
            }],
        },
        UdpRequest::Scrape { info_hashes, .. } => UdpResponse::Scrape {
            transaction_id,
            stats: vec![ScrapeStats::default(); info_hashes.len()],
        },
    }
}

#[tokio::test]
async fn lost_packets_are_retransmitted() {
    // Drops the first connect and the first announce it sees, whenever they
    // come; answers everything after.
    let dropped = Arc::new(Mutex::new((false, false)));
    let (url, seen) = fake(move |_, r| {
        let mut dropped = dropped.lock().unwrap();
        let first = match r {
            UdpRequest::Connect { .. } => !std::mem::replace(&mut dropped.0, true),
            _ => !std::mem::replace(&mut dropped.1, true),
        };
        if first { vec![] } else { vec![honest(r)] }
    })
    .await;
    let client = UdpClient::new(UdpOptions {
        base_timeout: Duration::from_millis(200),
        max_retries: 4,
        ..UdpOptions::default()
    });
    let answer = client.announce(&url, &announce(7205, 1)).await.unwrap();
    assert_eq!((answer.interval, answer.complete), (900, Some(3)));
    assert!(
        seen.load(Ordering::SeqCst) >= 4,
        "both requests were sent again"
    );
}

#[tokio::test]
async fn answers_to_other_transactions_are_ignored() {
    let (url, _) = fake(|_, r| {
        let mut wrong = honest(r);
        match &mut wrong {
            UdpResponse::Connect { transaction_id, .. }
            | UdpResponse::Announce { transaction_id, .. } => {
                *transaction_id = transaction_id.wrapping_add(1)
            }
            _ => {}
        }
        vec![
            wrong,
            UdpResponse::Error {
                transaction_id: r.transaction_id().wrapping_add(2),
                message: "noise".into(),
            },
            honest(r),
        ]
    })
    .await;
    let answer = fast().announce(&url, &announce(7206, 1)).await.unwrap();
    assert_eq!((answer.interval, answer.peers.len()), (900, 1));
}

#[tokio::test]
async fn connection_ids_are_reused_within_their_minute() {
    let connects = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&connects);
    let (url, _) = fake(move |_, r| {
        if matches!(r, UdpRequest::Connect { .. }) {
            counted.fetch_add(1, Ordering::SeqCst);
        }
        vec![honest(r)]
    })
    .await;
    let client = fast();
    for _ in 0..3 {
        client.announce(&url, &announce(7207, 1)).await.unwrap();
    }
    client.scrape(&url, &[HASH]).await.unwrap();
    assert_eq!(connects.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_kept_id_the_tracker_ignores_is_given_up_for_a_new_connect() {
    // A tracker that restarted: it knows only the id it issued last and
    // ignores any other, as btc's does.
    let issued = Arc::new(AtomicUsize::new(0));
    let current = Arc::clone(&issued);
    let (url, _) = fake(move |_, r| match r {
        UdpRequest::Connect { transaction_id } => {
            let id = current.fetch_add(1, Ordering::SeqCst) as u64 + 1;
            vec![UdpResponse::Connect {
                transaction_id: *transaction_id,
                connection_id: id,
            }]
        }
        UdpRequest::Announce { connection_id, .. }
            if *connection_id == current.load(Ordering::SeqCst) as u64 =>
        {
            vec![honest(r)]
        }
        _ => vec![],
    })
    .await;
    let client = fast();
    client.announce(&url, &announce(7230, 1)).await.unwrap();
    // The tracker forgets: the next connect gets a new id, the old one
    // silence.
    issued.fetch_add(1, Ordering::SeqCst);
    let answer = client.announce(&url, &announce(7230, 1)).await.unwrap();
    assert_eq!(answer.peers.len(), 1);
    assert_eq!(issued.load(Ordering::SeqCst), 3, "connected again once");
}

#[test]
fn an_announce_answer_keeps_its_whole_peers_and_leaves_a_partial_one_out() {
    let header = [&1u32.to_be_bytes()[..], &7u32.to_be_bytes(), &[0u8; 12]].concat();
    let v4 = [
        &header[..],
        &[127, 0, 0, 1, 0x1a, 0xe1],
        &[127, 0, 0, 2, 0x1a, 0xe2],
        &[127, 0, 0],
    ]
    .concat();
    let UdpResponse::Announce {
        transaction_id,
        peers,
        ..
    } = UdpResponse::decode(&v4, false).unwrap()
    else {
        panic!("not an announce answer");
    };
    let addrs: Vec<SocketAddr> = peers.iter().map(|p| p.addr).collect();
    assert_eq!(transaction_id, 7);
    assert_eq!(
        addrs,
        [
            "127.0.0.1:6881".parse().unwrap(),
            "127.0.0.2:6882".parse().unwrap()
        ]
    );
    assert_eq!(tracker::stray_peer_bytes(&v4, false), 3);
    let v6 = [&header[..], &[0u8; 15], &[1], &[0x1a, 0xe1], &[0u8; 17]].concat();
    let UdpResponse::Announce { peers, .. } = UdpResponse::decode(&v6, true).unwrap() else {
        panic!("not an announce answer");
    };
    assert_eq!(peers.len(), 1);
    assert_eq!(peers[0].addr, "[::1]:6881".parse::<SocketAddr>().unwrap());
    assert_eq!(tracker::stray_peer_bytes(&v6, true), 17);
    assert_eq!(tracker::stray_peer_bytes(&header, false), 0);
    let connect = UdpResponse::Connect {
        transaction_id: 1,
        connection_id: 2,
    }
    .encode();
    assert_eq!(tracker::stray_peer_bytes(&connect[..15], false), 0);
}

#[tokio::test]
async fn refusals_come_through_as_failures() {
    let (url, _) = fake(|_, r| match r {
        UdpRequest::Connect { .. } => vec![honest(r)],
        _ => vec![UdpResponse::Error {
            transaction_id: r.transaction_id(),
            message: "torrent not registered".into(),
        }],
    })
    .await;
    let err = fast().announce(&url, &announce(7208, 1)).await.unwrap_err();
    assert!(
        matches!(&err, TrackerError::Response(ResponseError::Failure(m)) if m == "torrent not registered"),
        "{err}"
    );
}

#[tokio::test]
async fn dead_and_silent_udp_trackers_fail_in_bounded_time() {
    let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let dead = format!("udp://{}/announce", socket.local_addr().unwrap());
    drop(socket);
    let err = fast()
        .announce(&dead, &announce(7209, 1))
        .await
        .unwrap_err();
    assert!(matches!(err, TrackerError::Unreachable(_)), "{err}");
    let (silent, seen) = fake(|_, _| vec![]).await;
    let client = UdpClient::new(UdpOptions {
        base_timeout: Duration::from_millis(20),
        max_retries: 2,
        ..UdpOptions::default()
    });
    let err = client
        .announce(&silent, &announce(7210, 1))
        .await
        .unwrap_err();
    assert!(
        matches!(err, TrackerError::Timeout(d) if d == Duration::from_millis(140)),
        "{err}"
    );
    assert_eq!(
        seen.load(Ordering::SeqCst),
        3,
        "one try and two retransmissions"
    );
    let err = fast()
        .announce("udp://no-port-here", &announce(1, 1))
        .await
        .unwrap_err();
    assert!(matches!(err, TrackerError::Unreachable(_)), "{err}");
}

#[tokio::test]
async fn the_server_says_nothing_to_garbage_or_forged_ids_then_serves_on() {
    let server = UdpTracker::bind("127.0.0.1:0".parse().unwrap(), TrackerConfig::default())
        .await
        .unwrap();
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    socket.connect(server.local_addr()).await.unwrap();
    for garbage in [
        &b""[..],
        b"\x00",
        &[0xff; 200],
        &UdpRequest::Connect { transaction_id: 1 }.encode()[..15],
    ] {
        socket.send(garbage).await.unwrap();
    }
    // Announces and scrapes with made-up connection ids get no answer at
    // all. The server answers in order, so anything it said to them would
    // come before the answer to the connect sent last.
    for forged in 0..100u32 {
        let forged = if forged % 2 == 0 {
            UdpRequest::Scrape {
                connection_id: 12345 + u64::from(forged),
                transaction_id: forged,
                info_hashes: vec![HASH],
            }
        } else {
            UdpRequest::Announce {
                connection_id: 12345 + u64::from(forged),
                transaction_id: forged,
                info_hash: HASH,
                peer_id: PeerId([1; 20]),
                downloaded: 0,
                left: 0,
                uploaded: 0,
                event: None,
                key: 0,
                numwant: None,
                port: 7000,
            }
        };
        socket.send(&forged.encode()).await.unwrap();
    }
    socket
        .send(
            &UdpRequest::Connect {
                transaction_id: 1000,
            }
            .encode(),
        )
        .await
        .unwrap();
    let mut buf = [0u8; 1024];
    let n = tokio::time::timeout(Duration::from_secs(5), socket.recv(&mut buf))
        .await
        .unwrap()
        .unwrap();
    let reply = UdpResponse::decode(&buf[..n], false).unwrap();
    assert!(
        matches!(
            reply,
            UdpResponse::Connect {
                transaction_id: 1000,
                ..
            }
        ),
        "the first reply is to the connect: {reply:?}"
    );
    assert!(
        fast()
            .announce(&server.announce_url(), &announce(7211, 0))
            .await
            .is_ok()
    );
    server.stop().await;
}

#[tokio::test]
async fn tiers_fall_through_to_a_live_tracker_and_promote_it() {
    let live = HttpTracker::bind("127.0.0.1:0".parse().unwrap(), TrackerConfig::default())
        .await
        .unwrap();
    let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let dead = format!("udp://{}/announce", socket.local_addr().unwrap());
    drop(socket);
    let mut tiers = TrackerTiers::new(vec![
        vec![dead.clone()],
        vec![dead.clone(), live.announce_url()],
    ]);
    let client = TrackerClient::new(
        Default::default(),
        UdpOptions {
            base_timeout: Duration::from_millis(50),
            max_retries: 1,
            ..UdpOptions::default()
        },
    );
    let (url, _) = tiers.announce(&client, &announce(7212, 0)).await.unwrap();
    assert_eq!(url, live.announce_url());
    assert_eq!(
        tiers.tiers()[1][0],
        live.announce_url(),
        "moved to the front of its tier"
    );
    assert_eq!(tiers.tiers()[0], [dead]);
    live.stop().await;
    // With every tracker dead, every error is reported.
    let errors = tiers
        .announce(&client, &announce(7212, 0))
        .await
        .unwrap_err();
    assert_eq!(errors.len(), 3);
}

fn arb_request() -> impl Strategy<Value = UdpRequest> {
    prop_oneof![
        any::<u32>().prop_map(|transaction_id| UdpRequest::Connect { transaction_id }),
        (
            any::<(u64, u32, [u8; 20], [u8; 20], u64, u64, u64, u32, u16)>(),
            0..4u8,
            prop::option::of(0..=i32::MAX as u32)
        )
            .prop_map(
                |(
                    (
                        connection_id,
                        transaction_id,
                        hash,
                        id,
                        downloaded,
                        left,
                        uploaded,
                        key,
                        port,
                    ),
                    event,
                    numwant,
                )| {
                    UdpRequest::Announce {
                        connection_id,
                        transaction_id,
                        info_hash: InfoHash(hash),
                        peer_id: PeerId(id),
                        downloaded,
                        left,
                        uploaded,
                        event: [
                            None,
                            Some(Event::Completed),
                            Some(Event::Started),
                            Some(Event::Stopped),
                        ][event as usize],
                        key,
                        numwant,
                        port,
                    }
                }
            ),
        (
            any::<(u64, u32)>(),
            prop::collection::vec(any::<[u8; 20]>(), 1..=74)
        )
            .prop_map(|((connection_id, transaction_id), hashes)| {
                UdpRequest::Scrape {
                    connection_id,
                    transaction_id,
                    info_hashes: hashes.into_iter().map(InfoHash).collect(),
                }
            }),
    ]
}

proptest! {
    #[test]
    fn requests_round_trip(request in arb_request()) {
        prop_assert_eq!(UdpRequest::decode(&request.encode()), Ok(request));
    }

    #[test]
    fn announce_responses_round_trip(
        (transaction_id, interval, leechers, seeders) in any::<(u32, u32, u32, u32)>(),
        v4 in prop::collection::vec(any::<([u8; 4], u16)>(), 0..20),
        v6 in prop::collection::vec(any::<([u8; 16], u16)>(), 0..20),
    ) {
        for (peers, ipv6) in [
            (v4.iter().map(|(ip, port)| SocketAddr::from((*ip, *port))).collect::<Vec<_>>(), false),
            (v6.iter().map(|(ip, port)| SocketAddr::from((*ip, *port))).collect(), true),
        ] {
            let peers = peers.into_iter().map(|addr| Peer { addr, peer_id: None }).collect();
            let response = UdpResponse::Announce { transaction_id, interval, leechers, seeders, peers };
            prop_assert_eq!(UdpResponse::decode(&response.encode(), ipv6), Ok(response));
        }
    }

    #[test]
    fn arbitrary_packets_never_panic(packet in prop::collection::vec(any::<u8>(), 0..200), ipv6 in any::<bool>()) {
        let _ = UdpRequest::decode(&packet);
        let _ = UdpResponse::decode(&packet, ipv6);
    }
}

#[test]
fn malformed_packets_are_refused_with_reasons() {
    let connect = UdpRequest::Connect { transaction_id: 1 }.encode();
    let mut no_magic = connect.clone();
    no_magic[0] = 9;
    let scrape = |n: usize| {
        let mut p = UdpRequest::Scrape {
            connection_id: 1,
            transaction_id: 1,
            info_hashes: vec![],
        }
        .encode();
        p.extend(vec![0u8; 20 * n]);
        p
    };
    let requests: Vec<(&str, Vec<u8>)> = vec![
        ("empty", vec![]),
        ("short connect", connect[..12].to_vec()),
        ("connect without protocol id", no_magic),
        (
            "unknown action",
            [
                &1u64.to_be_bytes()[..],
                &9u32.to_be_bytes(),
                &1u32.to_be_bytes(),
            ]
            .concat(),
        ),
        ("scrape of nothing", scrape(0)),
        ("scrape of 75", scrape(75)),
        (
            "announce cut short",
            [
                &1u64.to_be_bytes()[..],
                &1u32.to_be_bytes(),
                &1u32.to_be_bytes(),
                &[0u8; 30],
            ]
            .concat(),
        ),
    ];
    let responses: Vec<(&str, Vec<u8>)> = vec![
        (
            "scrape with a partial entry",
            [&2u32.to_be_bytes()[..], &[0u8; 4], &[0u8; 5]].concat(),
        ),
        (
            "connect cut short",
            [&0u32.to_be_bytes()[..], &[0u8; 4], &[0u8; 3]].concat(),
        ),
    ];
    let mut report = String::new();
    for (name, packet) in requests {
        report += &format!(
            "request {name}: {}\n",
            UdpRequest::decode(&packet).unwrap_err()
        );
    }
    for (name, packet) in responses {
        report += &format!(
            "response {name}: {}\n",
            UdpResponse::decode(&packet, false).unwrap_err()
        );
    }
    insta::assert_snapshot!(report);
}

#[tokio::test]
async fn our_server_honours_connection_ids_across_client_sockets() {
    // With no retransmission allowed, a refused kept id would fail the
    // second announce: the client uses a new socket (port) for each.
    let server = UdpTracker::bind("127.0.0.1:0".parse().unwrap(), TrackerConfig::default())
        .await
        .unwrap();
    let client = UdpClient::new(UdpOptions {
        base_timeout: Duration::from_secs(2),
        max_retries: 0,
        ..UdpOptions::default()
    });
    for port in [7213, 7214, 7215] {
        client
            .announce(&server.announce_url(), &announce(port, 1))
            .await
            .unwrap();
    }
    server.stop().await;
}

#[tokio::test]
async fn large_ipv6_answers_fit_one_datagram() {
    let config = TrackerConfig {
        max_numwant: 500,
        max_peers_per_ip: 500,
        ..TrackerConfig::default()
    };
    let server = UdpTracker::bind("[::1]:0".parse().unwrap(), config)
        .await
        .unwrap();
    let client = fast();
    for port in 1..=150 {
        client
            .announce(&server.announce_url(), &announce(10_000 + port, 0))
            .await
            .unwrap();
    }
    let mut greedy = announce(9999, 5);
    greedy.numwant = Some(500);
    let answer = client
        .announce(&server.announce_url(), &greedy)
        .await
        .unwrap();
    assert_eq!(answer.peers.len(), 1380 / 18);
    assert!(answer.peers.iter().all(|p| p.addr.is_ipv6()));
    // Saying no number (-1) gets the default, not as many as fit.
    let mut modest = announce(9998, 5);
    modest.numwant = None;
    let answer = client
        .announce(&server.announce_url(), &modest)
        .await
        .unwrap();
    assert_eq!(answer.peers.len(), TrackerConfig::default().default_numwant);
    server.stop().await;
}
