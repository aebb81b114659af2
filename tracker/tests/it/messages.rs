//! Announce and scrape requests and responses: built, read, and refused.

use std::net::SocketAddr;

use metainfo::{InfoHash, PeerId};
use proptest::prelude::*;
use tracker::{
    AnnounceRequest, AnnounceResponse, Event, Peer, ScrapeResponse, ScrapeStats, failure_bytes,
    scrape_info_hashes, scrape_request_url, scrape_url,
};

fn request() -> AnnounceRequest {
    let mut id = *b"-BQ0100-\x00\x01\x02 ~.-_%&=+";
    id[19] = 0xff;
    let mut r = AnnounceRequest::new(
        InfoHash(*b"\x12\x34\x56\x78\x9a\xbc\xde\xf0 abcXYZ-._~!"),
        PeerId(id),
        6881,
        1_000_000,
    );
    r.uploaded = 12;
    r.downloaded = 34;
    r
}

#[test]
fn announce_urls() {
    let mut r = request();
    let mut urls = vec![r.url("http://127.0.0.1:6969/announce")];
    r.compact = false;
    r.no_peer_id = true;
    r.event = None;
    r.numwant = Some(80);
    r.key = Some(0xdead_beef);
    r.tracker_id = Some("abc 1".into());
    urls.push(r.url("https://tracker.example/announce.php?passkey=s3cret"));
    r.event = Some(Event::Stopped);
    r.ip = Some("::1".parse().unwrap());
    urls.push(r.url("http://[::1]:6969/announce"));
    insta::assert_snapshot!(urls.join("\n"));
}

#[test]
fn scrape_urls_follow_the_convention() {
    let cases = [
        ("http://t.example/announce", Some("http://t.example/scrape")),
        (
            "http://t.example/x/announce",
            Some("http://t.example/x/scrape"),
        ),
        (
            "http://t.example/announce.php",
            Some("http://t.example/scrape.php"),
        ),
        (
            "http://t.example/announce?x2%0644",
            Some("http://t.example/scrape?x2%0644"),
        ),
        ("http://t.example/x%064announce", None),
        ("http://t.example/a", None),
        ("http://t.example/announce/x", None),
        ("http://t.example/", None),
    ];
    for (announce, scrape) in cases {
        assert_eq!(scrape_url(announce).as_deref(), scrape, "{announce}");
    }
}

#[test]
fn scrape_request_round_trips() {
    let hashes = [InfoHash([1; 20]), InfoHash([0xfe; 20])];
    let url = scrape_request_url("http://t/scrape?k=v", &hashes);
    let query = url.split_once('?').unwrap().1;
    assert_eq!(scrape_info_hashes(query).unwrap(), hashes);
}

fn v4(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn response() -> AnnounceResponse {
    AnnounceResponse {
        interval: 1800,
        min_interval: Some(60),
        tracker_id: Some("t1".into()),
        complete: Some(3),
        incomplete: Some(4),
        warning: Some("be nice".into()),
        peers: vec![
            Peer {
                addr: v4("127.0.0.1:6881"),
                peer_id: Some(PeerId(*b"-BQ0100-aaaaaaaaaaaa")),
            },
            Peer {
                addr: v4("10.0.0.2:51413"),
                peer_id: Some(PeerId(*b"-TR3000-bbbbbbbbbbbb")),
            },
            Peer {
                addr: "[::1]:6882".parse().unwrap(),
                peer_id: Some(PeerId(*b"-qB4520-cccccccccccc")),
            },
        ],
    }
}

#[test]
fn response_encodings() {
    let r = response();
    let encodings = [
        ("compact", r.to_bytes(true, false)),
        ("dictionaries", r.to_bytes(false, false)),
        ("dictionaries, no peer id", r.to_bytes(false, true)),
        (
            "failure",
            failure_bytes("torrent not allowed on this tracker"),
        ),
    ];
    let text: Vec<String> = encodings
        .iter()
        .map(|(name, b)| format!("{name}: {}", b.escape_ascii()))
        .collect();
    insta::assert_snapshot!(text.join("\n"));
}

#[test]
fn responses_read_back_in_every_form() {
    let r = response();
    let compact = AnnounceResponse::from_bytes(&r.to_bytes(true, false)).unwrap();
    let without_ids: Vec<Peer> = r
        .peers
        .iter()
        .map(|p| Peer {
            peer_id: None,
            ..*p
        })
        .collect();
    assert_eq!(
        compact.peers, without_ids,
        "compact lists carry no ids, v6 in peers6"
    );
    let full = AnnounceResponse::from_bytes(&r.to_bytes(false, false)).unwrap();
    assert_eq!(full, r);
    let anonymous = AnnounceResponse::from_bytes(&r.to_bytes(false, true)).unwrap();
    assert_eq!(anonymous.peers, without_ids);
}

#[test]
fn scrape_responses_round_trip() {
    let mut s = ScrapeResponse::default();
    s.files.insert(
        InfoHash([9; 20]),
        ScrapeStats {
            complete: 1,
            downloaded: 2,
            incomplete: 3,
        },
    );
    s.files.insert(InfoHash([3; 20]), ScrapeStats::default());
    assert_eq!(ScrapeResponse::from_bytes(&s.to_bytes()).unwrap(), s);
}

/// Broken and hostile tracker answers: each gets its own clear error.
#[test]
fn hostile_responses_are_refused_clearly() {
    let cases: &[(&str, &[u8])] = &[
        (
            "html error page",
            b"<html><body><h1>502 Bad Gateway</h1></body></html>",
        ),
        ("empty body", b""),
        ("failure", b"d14:failure reason20:unregistered torrente"),
        ("not a dictionary", b"li1ee"),
        ("no interval", b"d5:peers0:e"),
        ("negative interval", b"d8:intervali-5e5:peers0:e"),
        (
            "interval of a century",
            b"d8:intervali3153600000e5:peers0:e",
        ),
        (
            "negative complete",
            b"d8:completei-1e8:intervali60e5:peers0:e",
        ),
        (
            "truncated compact peers",
            b"d8:intervali60e5:peers5:\x7f\x00\x00\x01\x1ae",
        ),
        (
            "truncated peers6",
            b"d8:intervali60e5:peers0:6:peers67:\x00\x00\x00\x00\x00\x00\x00e",
        ),
        ("peers as a number", b"d8:intervali60e5:peersi3ee"),
        ("truncated bencode", b"d8:intervali60e5:peers12:\x7f\x00"),
    ];
    let mut report = String::new();
    for (name, body) in cases {
        let err = AnnounceResponse::from_bytes(body).expect_err(name);
        report += &format!("{name}: {err}\n");
    }
    insta::assert_snapshot!(report);
}

#[test]
fn odd_but_usable_responses_are_read() {
    // Unsorted keys, dictionary peers with a host name or a bad port among
    // good ones, and unknown keys.
    let body = b"d5:peersld2:ip9:127.0.0.14:porti6881eed2:ip11:example.org4:porti1eed2:ip9:127.0.0.24:porti70000eee8:intervali30e3:fooi1ee";
    let r = AnnounceResponse::from_bytes(body).unwrap();
    assert_eq!(r.interval, 30);
    assert_eq!(
        r.peers,
        [Peer {
            addr: v4("127.0.0.1:6881"),
            peer_id: None
        }]
    );
}

#[test]
fn hostile_requests_are_refused_clearly() {
    let good = request().url("http://t/announce");
    let query = good.split_once('?').unwrap().1.to_string();
    let without = |name: &str| {
        query
            .split('&')
            .filter(|p| !p.starts_with(&format!("{name}=")))
            .collect::<Vec<_>>()
            .join("&")
    };
    let cases = [
        ("empty", String::new()),
        ("no info_hash", without("info_hash")),
        ("no peer_id", without("peer_id")),
        ("no port", without("port")),
        ("no left", without("left")),
        (
            "short info_hash",
            format!("{}&info_hash=abc", without("info_hash")),
        ),
        (
            "port out of range",
            format!("{}&port=70000", without("port")),
        ),
        ("negative left", format!("{}&left=-1", without("left"))),
        ("unknown event", format!("{query}&event=exploded")),
    ];
    let mut report = String::new();
    for (name, query) in cases {
        let err = AnnounceRequest::from_query(&query).expect_err(name);
        report += &format!("{name}: {err}\n");
    }
    insta::assert_snapshot!(report);
}

/// A negative `numwant` (some clients send `-1`) asks for the default.
#[test]
fn a_negative_numwant_asks_for_the_default() {
    let mut request = AnnounceRequest::new(InfoHash([1; 20]), PeerId([2; 20]), 6881, 0);
    request.numwant = Some(5);
    let url = request.url("http://127.0.0.1/announce");
    let query = url
        .split_once('?')
        .unwrap()
        .1
        .replace("numwant=5", "numwant=-1");
    assert_eq!(AnnounceRequest::from_query(&query).unwrap().numwant, None);
}

fn arb_request() -> impl Strategy<Value = AnnounceRequest> {
    (
        any::<[u8; 20]>(),
        any::<[u8; 20]>(),
        1..=u16::MAX,
        any::<(u64, u64, u64)>(),
        prop::option::of(prop_oneof![
            Just(Event::Started),
            Just(Event::Completed),
            Just(Event::Stopped)
        ]),
        any::<(bool, bool)>(),
        prop::option::of(any::<u32>()),
        prop::option::of(any::<u32>()),
        prop::option::of("[a-zA-Z0-9 &=%+]{0,12}"),
    )
        .prop_map(
            |(
                hash,
                id,
                port,
                (up, down, left),
                event,
                (compact, no_peer_id),
                numwant,
                key,
                tracker_id,
            )| {
                AnnounceRequest {
                    info_hash: InfoHash(hash),
                    peer_id: PeerId(id),
                    port,
                    uploaded: up,
                    downloaded: down,
                    left,
                    event,
                    compact,
                    no_peer_id,
                    numwant,
                    key,
                    tracker_id,
                    ip: None,
                }
            },
        )
}

proptest! {
    /// What the client sends is exactly what the server reads.
    #[test]
    fn announce_url_then_query_round_trips(request in arb_request(), existing in prop::option::of("x[a-z]{0,4}=[a-z0-9]{0,5}")) {
        let base = match &existing {
            Some(q) => format!("http://127.0.0.1:1/announce?{q}"),
            None => "http://127.0.0.1:1/announce".to_string(),
        };
        let url = request.url(&base);
        let query = url.split_once('?').unwrap().1;
        prop_assert_eq!(AnnounceRequest::from_query(query).unwrap(), request);
    }

    /// Any bytes as a response: an answer or an error, never a panic, and
    /// never more peers than the cap.
    #[test]
    fn arbitrary_responses_never_panic(body in prop::collection::vec(any::<u8>(), 0..200)) {
        if let Ok(r) = AnnounceResponse::from_bytes(&body) {
            prop_assert!(r.peers.len() <= tracker::MAX_PEERS);
        }
        let _ = ScrapeResponse::from_bytes(&body);
    }

    #[test]
    fn arbitrary_queries_never_panic(query in "[a-z_=&%0-9A-F]{0,120}") {
        let _ = AnnounceRequest::from_query(&query);
        let _ = scrape_info_hashes(&query);
    }
}

#[test]
fn a_trackers_message_cannot_forge_log_lines_or_flood_them() {
    let body = b"d14:failure reason26:no\r\n\x1b[2JINJECTED LINE\x07 ok.e";
    let err = AnnounceResponse::from_bytes(body).unwrap_err();
    let said = err.to_string();
    assert_eq!(
        said,
        r"the tracker refused: no\u{d}\u{a}\u{1b}[2JINJECTED LINE\u{7} ok."
    );
    let long = "x".repeat(100_000);
    let shown = tracker::shown(&long);
    assert_eq!(shown.chars().count(), 301);
    assert!(shown.ends_with('…'));
}

#[test]
fn repeated_peers_are_kept_once_and_do_not_hide_the_others() {
    // 20,000 copies of one address, then the real peer.
    let mut compact = [127, 0, 0, 1, 0, 9].repeat(20_000);
    compact.extend_from_slice(&[127, 0, 0, 1, 0x1a, 0xe1]);
    let mut body = format!("d8:intervali60e5:peers{}:", compact.len()).into_bytes();
    body.extend_from_slice(&compact);
    body.push(b'e');
    let answer = AnnounceResponse::from_bytes(&body).unwrap();
    let addrs: Vec<SocketAddr> = answer.peers.iter().map(|p| p.addr).collect();
    assert_eq!(addrs, vec![v4("127.0.0.1:9"), v4("127.0.0.1:6881")]);
}
