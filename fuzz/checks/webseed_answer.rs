// Fuzz target `webseed_answer` (included by `fuzz_targets/webseed_answer.rs` and by the
// workspace's test of the corpora, `xtask/tests/fuzz_corpora.rs`):
// Any status and headers as a web seed's answer to a range request (the
// first two bytes the status, the next eight the range's start, then
// `name: value` lines): no panic, and every verdict is one btc can act
// on.

/// The checks on one input, for the fuzzer and for the regression test
/// that runs the corpus on stable.
pub fn check(data: &[u8]) {
    let Some((&[s0, s1, r0, r1, r2, r3, r4, r5, r6, r7], rest)) = data.split_first_chunk::<10>()
    else {
        return;
    };
    let status = u16::from_be_bytes([s0, s1]) % 1000;
    let start = u64::from_be_bytes([r0, r1, r2, r3, r4, r5, r6, r7]) % (1 << 40);
    let headers: Vec<(&[u8], &[u8])> = rest
        .split(|&b| b == b'\n')
        .filter_map(|line| {
            let colon = line.iter().position(|&b| b == b':')?;
            Some((&line[..colon], line[colon + 1..].trim_ascii()))
        })
        .collect();
    let Some(verdict) = engine::fuzzing::web_seed_answer(
        status,
        &headers,
        "http://seed.example/dir/file%20name?key=1",
        start..start + 16384,
    ) else {
        return;
    };
    assert!(
        verdict == "body"
            || verdict.starts_with("redirect http://")
            || verdict.starts_with("redirect https://")
            || verdict.starts_with("failed: "),
        "{verdict}"
    );
}
