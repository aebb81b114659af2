// Fuzz target `utp_packet` (included by `fuzz_targets/utp_packet.rs` and by the
// workspace's test of the corpora, `xtask/tests/fuzz_corpora.rs`):
// Any datagram as a uTP packet: no panic; whatever decodes encodes to
// bytes that decode to the same packet, and is recognised as uTP.

use utp::Packet;

/// The checks on one input, for the fuzzer and for the regression test
/// that runs the corpus on stable.
pub fn check(data: &[u8]) {
    if let Ok(packet) = Packet::decode(data) {
        assert!(utp::is_utp(data));
        let bytes = packet.encode();
        assert!(utp::is_utp(&bytes));
        assert_eq!(Packet::decode(&bytes).as_ref(), Ok(&packet));
    }
}
