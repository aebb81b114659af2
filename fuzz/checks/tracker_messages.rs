// Fuzz target `tracker_messages` (included by `fuzz_targets/tracker_messages.rs` and by the
// workspace's test of the corpora, `xtask/tests/fuzz_corpora.rs`):
// Any bytes as a tracker answer, a UDP packet or an announce query: no
// panic, bounded output, and what decodes encodes back to the same value.

use tracker::{AnnounceRequest, AnnounceResponse, ScrapeResponse, UdpRequest, UdpResponse};

/// The checks on one input, for the fuzzer and for the regression test
/// that runs the corpus on stable.
pub fn check(data: &[u8]) {
    if let Ok(r) = AnnounceResponse::from_bytes(data) {
        assert!(r.peers.len() <= tracker::MAX_PEERS);
        let again =
            AnnounceResponse::from_bytes(&r.to_bytes(false, false)).expect("own encoding reads");
        assert_eq!(again.peers, r.peers);
    }
    let _ = ScrapeResponse::from_bytes(data);
    if let Ok(request) = UdpRequest::decode(data) {
        assert_eq!(UdpRequest::decode(&request.encode()), Ok(request));
    }
    for ipv6 in [false, true] {
        if let Ok(response) = UdpResponse::decode(data, ipv6) {
            assert_eq!(UdpResponse::decode(&response.encode(), ipv6), Ok(response));
        }
    }
    if let Ok(query) = std::str::from_utf8(data)
        && let Ok(request) = AnnounceRequest::from_query(query)
    {
        let url = request.url("http://t/announce");
        let reparsed = AnnounceRequest::from_query(url.split_once('?').map_or("", |(_, q)| q));
        assert_eq!(
            reparsed.as_ref().map(|r| r.info_hash),
            Ok(request.info_hash)
        );
    }
}
