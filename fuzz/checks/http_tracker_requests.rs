// Fuzz target `http_tracker_requests` (included by `fuzz_targets/http_tracker_requests.rs` and by the
// workspace's test of the corpora, `xtask/tests/fuzz_corpora.rs`):
// Any run of requests to `btc tracker`'s HTTP side, one per line
// (`PATH?QUERY`; the line's first byte picks the client's address), sent
// in order to one small tracker: no panic, every answer bencode, and no
// answer or swarm past its bounds.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use tracker::{Tracker, TrackerConfig, answer_http};

/// The checks on one input, for the fuzzer and for the regression test
/// that runs the corpus on stable.
pub fn check(data: &[u8]) {
    let config = TrackerConfig {
        max_torrents: 4,
        max_peers_per_torrent: 8,
        max_peers_per_ip: 3,
        max_peers_per_host: 5,
        max_peers: 16,
        max_numwant: 6,
        max_full_scrape: 3,
        ..TrackerConfig::default()
    };
    let state = Mutex::new(Tracker::new(config));
    let start = Instant::now();
    for (i, line) in data.split(|&b| b == b'\n').take(64).enumerate() {
        let Some((&who, target)) = line.split_first() else {
            continue;
        };
        let ip = match who % 4 {
            0 => IpAddr::V4(Ipv4Addr::new(127, 0, 0, who)),
            1 => IpAddr::V4(Ipv4Addr::new(10, who, 0, 1)),
            2 => IpAddr::V6(Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, u16::from(who))),
            _ => IpAddr::V6(Ipv6Addr::new(0xfd00, 0, 0, u16::from(who), 0, 0, 0, 1)),
        };
        let target = String::from_utf8_lossy(target);
        let (path, query) = target.split_once('?').unwrap_or((&target, ""));
        // Time goes on, so peers time out and torrents empty.
        let now = start + Duration::from_secs(60 * i as u64);
        let answer = answer_http(&state, path, query, ip, now);
        let value = bencode::decode(&answer).expect("every answer is bencode");
        let dict = value.as_dict().expect("a dictionary");
        if let Some(peers) = dict.get(b"peers") {
            let count = match (peers.as_bytes(), peers.as_list()) {
                (Some(compact), _) => compact.len() / 6,
                (_, Some(list)) => list.len(),
                _ => panic!("peers neither a string nor a list"),
            };
            assert!(count <= 6, "numwant is bounded");
        }
        if let Some(files) = dict.get(b"files").and_then(|f| f.as_dict()) {
            assert!(files.len() <= 4);
        }
    }
}
