// Fuzz target `peerwire_extension` (included by `fuzz_targets/peerwire_extension.rs` and by the
// workspace's test of the corpora, `xtask/tests/fuzz_corpora.rs`):
// Any extension message payload (BEP 10 handshake, `ut_metadata`,
// `ut_pex`): no panic, bounded output, and what decodes encodes back to
// the same value.

use bytes::Bytes;
use peerwire::extension::{ExtensionHandshake, MAX_PEX_PEERS, PEX_PER_MESSAGE, UtMetadata, UtPex};

/// The checks on one input, for the fuzzer and for the regression test
/// that runs the corpus on stable.
pub fn check(data: &[u8]) {
    if let Ok(handshake) = ExtensionHandshake::decode(data) {
        assert!(handshake.m.len() <= 128);
        let again = ExtensionHandshake::decode(&handshake.encode()).expect("own encoding reads");
        assert_eq!(again, handshake);
    }
    if let Ok(message) = UtMetadata::decode(&Bytes::copy_from_slice(data)) {
        let again = UtMetadata::decode(&message.encode()).expect("own encoding reads");
        assert_eq!(again, message);
    }
    if let Ok(pex) = UtPex::decode(data) {
        assert!(pex.added.len() <= 2 * MAX_PEX_PEERS);
        assert!(pex.dropped.len() <= 2 * MAX_PEX_PEERS);
        let again = UtPex::decode(&pex.encode()).expect("own encoding reads");
        // One message carries at most PEX_PER_MESSAGE of each, IPv4 first.
        let first = |n: usize| n.min(PEX_PER_MESSAGE);
        assert_eq!(again.added, pex.added[..first(pex.added.len())]);
        assert_eq!(again.dropped, pex.dropped[..first(pex.dropped.len())]);
    }
}
