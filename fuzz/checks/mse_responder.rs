// Fuzz target `mse_responder` (included by `fuzz_targets/mse_responder.rs` and by the
// workspace's test of the corpora, `xtask/tests/fuzz_corpora.rs`):
// An MSE responder fed what an initiator sends, with the fuzzer's bytes
// either as the whole stream (byte 0 even) or laid by XOR over a genuine
// initiator's third message (byte 0 odd), so that they reach every field
// the cipher hides: no panic, and a handshake that ends has kept its
// bounds.

use mse::{Initiator, MAX_INITIAL_PAYLOAD, Method, Methods, Responder};
use rand::SeedableRng as _;
use rand::rngs::SmallRng;

const SKEY: [u8; 20] = [0x42; 20];

/// The checks on one input, for the fuzzer and for the regression test
/// that runs the corpus on stable.
pub fn check(data: &[u8]) {
    let Some((&mode, data)) = data.split_first() else {
        return;
    };
    let mut rng = SmallRng::seed_from_u64(u64::from(mode));
    let mut responder = Responder::new(Methods::BOTH, Method::Rc4, &mut rng);
    if mode % 2 == 0 {
        // Cut where the input says, to reach every state's "not yet".
        for chunk in data.chunks(usize::from(mode).max(1)) {
            if responder.handle(chunk, &SKEY).is_err() {
                return;
            }
        }
    } else {
        let Ok(mut initiator) = Initiator::new(SKEY, Methods::BOTH, b"ia".to_vec(), &mut rng)
        else {
            return;
        };
        if responder.handle(&initiator.take_output(), &SKEY).is_err() {
            return;
        }
        if initiator.handle(&responder.take_output()).is_err() {
            return;
        }
        let mut third = initiator.take_output();
        // After req1 and req2 xor req3: the ciphered fields and the IA.
        for (byte, noise) in third.iter_mut().skip(40).zip(data) {
            *byte ^= noise;
        }
        third.extend(data.iter().skip(third.len().saturating_sub(40)));
        if responder.handle(&third, &SKEY).is_err() {
            return;
        }
    }
    if let Some(done) = responder.established() {
        assert!(done.initial_payload.len() <= MAX_INITIAL_PAYLOAD);
        assert_eq!(done.skey, SKEY);
        assert!(responder.take_output().len() <= mse::KEY_LEN + mse::MAX_PAD + 14);
    }
}
