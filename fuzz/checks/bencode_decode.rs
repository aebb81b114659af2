// Fuzz target `bencode_decode` (included by `fuzz_targets/bencode_decode.rs` and by the
// workspace's test of the corpora, `xtask/tests/fuzz_corpora.rs`):
// Any input: no panic, and whatever strict decoding accepts is canonical.

/// The checks on one input, for the fuzzer and for the regression test
/// that runs the corpus on stable.
pub fn check(data: &[u8]) {
    let strict = bencode::decode(data);
    let lenient = bencode::Decoder::lenient().decode(data);
    if let Ok(value) = &strict {
        assert_eq!(value.raw(), data);
        assert_eq!(bencode::to_vec(value), data, "strict input is canonical");
        assert!(lenient.is_ok());
    }
    if let Ok(value) = &lenient {
        assert_eq!(value.raw(), data);
        // Re-encoding sorts keys; the result must then pass the strict rules.
        let canonical = bencode::to_vec(value);
        let again = bencode::decode(&canonical).expect("canonical output decodes strictly");
        assert_eq!(again.to_owned_value(), value.to_owned_value());
    }
    if let Ok((value, used)) = bencode::Decoder::strict().decode_prefix(data) {
        assert_eq!(value.raw(), &data[..used]);
    }
}
