// Fuzz target `udp_tracker_answer` (included by `fuzz_targets/udp_tracker_answer.rs` and by the
// workspace's test of the corpora, `xtask/tests/fuzz_corpora.rs`):
// Any datagram as a UDP tracker's answer (BEP 15), read as btc's client
// reads it: no panic, whole peers only, and an announce answer kept
// within the bounds of an HTTP one.

use std::collections::HashSet;

use tracker::{AnnounceResponse, UdpResponse};

/// The checks on one input, for the fuzzer and for the regression test
/// that runs the corpus on stable.
pub fn check(data: &[u8]) {
    for ipv6 in [false, true] {
        let size = if ipv6 { 18 } else { 6 };
        let stray = tracker::stray_peer_bytes(data, ipv6);
        assert!(stray < size);
        let Ok(response) = UdpResponse::decode(data, ipv6) else {
            continue;
        };
        assert_eq!(
            UdpResponse::decode(&response.encode(), ipv6).as_ref(),
            Ok(&response)
        );
        if let UdpResponse::Announce { peers, .. } = &response {
            assert_eq!(peers.len(), (data.len() - 20 - stray) / size);
        }
        if let Ok(answer) = AnnounceResponse::from_udp(response) {
            assert!(answer.peers.len() <= tracker::MAX_PEERS);
            let distinct: HashSet<_> = answer.peers.iter().map(|p| p.addr).collect();
            assert_eq!(distinct.len(), answer.peers.len());
        }
    }
}
