//! Both roles against each other, with the bytes split every way, and
//! against peers that break the protocol.

use proptest::prelude::*;
use rand::SeedableRng as _;
use rand::rngs::SmallRng;

use super::*;

const SKEY: [u8; 20] = [0x5a; 20];

fn rng(seed: u64) -> SmallRng {
    SmallRng::seed_from_u64(seed)
}

/// Runs both sides to the end, handing each side's output to the other in
/// chunks of the given sizes (cycled); `b_payload` is what B sends right
/// after its last handshake message, in the same write.
fn run(
    provide: Methods,
    accept: Methods,
    prefer: Method,
    ia: &[u8],
    b_payload: &[u8],
    chunks: &[usize],
    seed: u64,
) -> Result<(Established, Established), Error> {
    let mut r = rng(seed);
    let mut a = Initiator::new(SKEY, provide, ia.to_vec(), &mut r)?;
    let mut b = Responder::new(accept, prefer, &mut r);
    let mut sizes = chunks.iter().copied().cycle();
    let mut a_est = None;
    let mut b_est = None;
    let mut b_sent_payload = false;
    for _ in 0..10_000 {
        let from_a = a.take_output();
        for piece in split(&from_a, &mut sizes) {
            b.handle(piece, &SKEY)?;
        }
        let mut from_b = b.take_output();
        if b_est.is_none() && b.is_done() {
            // Taken only once A has sent all it had: later bytes would be
            // the reader's.
            b_est = b.established();
        }
        if let Some(est) = &mut b_est
            && !b_sent_payload
        {
            let mut payload = b_payload.to_vec();
            if let Some(cipher) = &mut est.encrypt {
                cipher.apply(&mut payload);
            }
            from_b.extend(payload);
            b_sent_payload = true;
        }
        for piece in split(&from_b, &mut sizes) {
            a.handle(piece)?;
        }
        if a_est.is_none() && a.is_done() {
            a_est = a.established();
        }
        if let (Some(_), Some(_)) = (&a_est, &b_est) {
            return Ok((a_est.unwrap(), b_est.unwrap()));
        }
    }
    panic!("the handshake never ended: {a:?} {b:?}");
}

fn split<'a>(bytes: &'a [u8], sizes: &mut impl Iterator<Item = usize>) -> Vec<&'a [u8]> {
    let mut pieces = Vec::new();
    let mut at = 0;
    while at < bytes.len() {
        let n = sizes.next().unwrap_or(1).max(1).min(bytes.len() - at);
        pieces.push(&bytes[at..at + n]);
        at += n;
    }
    pieces
}

#[test]
fn both_sides_agree_on_rc4_and_carry_the_payload_both_ways() {
    let (mut a, mut b) = run(
        Methods::BOTH,
        Methods::BOTH,
        Method::Rc4,
        b"\x13BitTorrent protocol...",
        b"their handshake",
        &[usize::MAX],
        1,
    )
    .unwrap();
    assert_eq!((a.method, b.method), (Method::Rc4, Method::Rc4));
    assert_eq!(b.initial_payload, b"\x13BitTorrent protocol...");
    assert_eq!(a.rest, b"their handshake");
    assert_eq!((a.skey, b.skey), (SKEY, SKEY));
    // Later payload, both ways.
    for _ in 0..3 {
        let mut data = b"a block of data".to_vec();
        a.encrypt.as_mut().unwrap().apply(&mut data);
        assert_ne!(data, b"a block of data");
        b.decrypt.as_mut().unwrap().apply(&mut data);
        assert_eq!(data, b"a block of data");
        b.encrypt.as_mut().unwrap().apply(&mut data);
        a.decrypt.as_mut().unwrap().apply(&mut data);
        assert_eq!(data, b"a block of data");
    }
}

#[test]
fn plaintext_is_chosen_when_preferred_and_leaves_the_payload_plain() {
    let (a, b) = run(
        Methods::BOTH,
        Methods::BOTH,
        Method::Plaintext,
        b"ia",
        b"plain payload",
        &[7],
        2,
    )
    .unwrap();
    assert_eq!((a.method, b.method), (Method::Plaintext, Method::Plaintext));
    assert!(a.encrypt.is_none() && a.decrypt.is_none() && b.encrypt.is_none());
    // The initial payload is ciphered even so; what follows is not.
    assert_eq!(b.initial_payload, b"ia");
    assert_eq!(a.rest, b"plain payload");
}

#[test]
fn a_responder_takes_the_only_method_offered() {
    let (a, _) = run(
        Methods::RC4,
        Methods::BOTH,
        Method::Plaintext,
        b"",
        b"",
        &[3],
        3,
    )
    .unwrap();
    assert_eq!(a.method, Method::Rc4);
    let (a, _) = run(
        Methods::PLAINTEXT,
        Methods::BOTH,
        Method::Rc4,
        b"",
        b"",
        &[3],
        4,
    )
    .unwrap();
    assert_eq!(a.method, Method::Plaintext);
}

#[test]
fn nothing_in_common_fails_at_the_responder() {
    let err = run(
        Methods::PLAINTEXT,
        Methods::RC4,
        Method::Rc4,
        b"",
        b"",
        &[64],
        5,
    )
    .unwrap_err();
    assert!(
        matches!(
            err,
            Error::NoCommonMethod {
                offered: 1,
                accepted: 2
            }
        ),
        "{err}"
    );
}

#[test]
fn an_unknown_torrent_fails_at_the_responder() {
    let mut r = rng(6);
    let mut a = Initiator::new([1; 20], Methods::BOTH, Vec::new(), &mut r).unwrap();
    let mut b = Responder::new(Methods::BOTH, Method::Rc4, &mut r);
    b.handle(&a.take_output(), &SKEY).unwrap();
    a.handle(&b.take_output()).unwrap();
    assert_eq!(b.handle(&a.take_output(), &SKEY), Err(Error::UnknownSkey));
    // And nothing more is taken.
    assert_eq!(b.handle(b"more", &SKEY), Err(Error::Failed));
}

#[test]
fn a_responder_gives_up_on_garbage_after_the_padding_bound() {
    let mut r = rng(7);
    let mut b = Responder::new(Methods::BOTH, Method::Rc4, &mut r);
    let a_key = PrivateKey::random(&mut r);
    b.handle(&a_key.public(), &SKEY).unwrap();
    // 531 bytes without req1 could still be padding and the start of it.
    b.handle(&[0xab; MAX_PAD + 19], &SKEY).unwrap();
    assert!(!b.is_done());
    assert_eq!(
        b.handle(&[0xab], &SKEY),
        Err(Error::SyncNotFound("HASH('req1', S)"))
    );
}

#[test]
fn an_initiator_gives_up_on_garbage_after_the_padding_bound() {
    let mut r = rng(8);
    let mut a = Initiator::new(SKEY, Methods::BOTH, Vec::new(), &mut r).unwrap();
    let b_key = PrivateKey::random(&mut r);
    let mut garbage = b_key.public().to_vec();
    garbage.extend([0xcd; MAX_PAD + 8]);
    assert_eq!(a.handle(&garbage), Err(Error::SyncNotFound("ENCRYPT(VC)")));
}

#[test]
fn a_plaintext_handshake_is_told_from_an_mse_one() {
    assert!(crate::is_plaintext_handshake(
        b"\x13BitTorrent protocol\0\0"
    ));
    assert!(crate::is_plaintext_handshake(b"\x13Bit"));
    let ya = PrivateKey::random(&mut rng(9)).public();
    assert!(!crate::is_plaintext_handshake(&ya));
}

/// A hand-made initiator's third message, to break its fields one by one.
fn third_message(vc: [u8; 8], provide: u32, pad_c: usize, ia: &[u8]) -> (Responder, Vec<u8>) {
    let mut r = rng(10);
    let mut b = Responder::new(Methods::BOTH, Method::Rc4, &mut r);
    let a_key = PrivateKey::random(&mut r);
    b.handle(&a_key.public(), &SKEY).unwrap();
    let yb: [u8; KEY_LEN] = b.take_output()[..KEY_LEN].try_into().unwrap();
    let secret = a_key.shared(&yb).unwrap();
    let (mut ours, _) = streams(&secret, &SKEY);
    let mut out = sha1(&[b"req1", &secret]).to_vec();
    let req3 = sha1(&[b"req3", &secret]);
    out.extend(req2(&SKEY).iter().zip(req3).map(|(a, b)| a ^ b));
    let mut fields = vc.to_vec();
    fields.extend(provide.to_be_bytes());
    fields.extend(u16::try_from(pad_c).unwrap().to_be_bytes());
    fields.extend(vec![0u8; pad_c]);
    fields.extend(u16::try_from(ia.len()).unwrap().to_be_bytes());
    fields.extend(ia);
    ours.apply(&mut fields);
    out.extend(fields);
    (b, out)
}

#[test]
fn a_responder_checks_every_field_of_the_third_message() {
    let (mut b, msg) = third_message([0; 8], 2, MAX_PAD, b"ia");
    b.handle(&msg, &SKEY).unwrap();
    assert_eq!(b.established().unwrap().initial_payload, b"ia");

    let (mut b, msg) = third_message([0, 0, 0, 1, 0, 0, 0, 0], 2, 0, b"");
    assert_eq!(b.handle(&msg, &SKEY), Err(Error::BadVc));
    let (mut b, msg) = third_message([0; 8], 2, MAX_PAD + 1, b"");
    assert_eq!(b.handle(&msg, &SKEY), Err(Error::PadTooLong(MAX_PAD + 1)));
    let (mut b, msg) = third_message([0; 8], 0x80, 0, b"");
    assert!(matches!(
        b.handle(&msg, &SKEY),
        Err(Error::NoCommonMethod { .. })
    ));
}

#[test]
fn an_initiator_checks_the_responders_choice() {
    // A responder that selects what was not offered: a plaintext-only
    // initiator against a responder that insists on RC4, whose answer is
    // forged from its own streams.
    let mut r = rng(11);
    let mut a = Initiator::new(SKEY, Methods::PLAINTEXT, Vec::new(), &mut r).unwrap();
    let b_key = PrivateKey::random(&mut r);
    let ya: [u8; KEY_LEN] = a.take_output()[..KEY_LEN].try_into().unwrap();
    let secret = b_key.shared(&ya).unwrap();
    let (_, mut theirs) = streams(&secret, &SKEY);
    let mut answer = b_key.public().to_vec();
    let mut fourth = VC.to_vec();
    fourth.extend(2u32.to_be_bytes());
    fourth.extend(0u16.to_be_bytes());
    theirs.apply(&mut fourth);
    answer.extend(fourth);
    assert_eq!(a.handle(&answer), Err(Error::BadSelect(2)));
}

#[test]
fn an_oversized_initial_payload_is_refused_up_front() {
    let err = Initiator::new(
        SKEY,
        Methods::BOTH,
        vec![0; MAX_INITIAL_PAYLOAD + 1],
        &mut rng(12),
    )
    .unwrap_err();
    assert_eq!(err, Error::InitialPayloadTooLong(MAX_INITIAL_PAYLOAD + 1));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Whatever the padding (random, from the seed) and however the bytes
    /// are cut, both sides end with the same method and the payload
    /// intact.
    #[test]
    fn any_split_of_the_byte_stream_gives_the_same_result(
        seed in any::<u64>(),
        chunks in prop::collection::vec(1usize..700, 1..8),
        ia in prop::collection::vec(any::<u8>(), 0..200),
        payload in prop::collection::vec(any::<u8>(), 0..200),
        plaintext in any::<bool>(),
    ) {
        let prefer = if plaintext { Method::Plaintext } else { Method::Rc4 };
        let (a, b) = run(Methods::BOTH, Methods::BOTH, prefer, &ia, &payload, &chunks, seed).unwrap();
        prop_assert_eq!(a.method, prefer);
        prop_assert_eq!(b.method, prefer);
        prop_assert_eq!(b.initial_payload, ia);
        prop_assert_eq!(a.rest, payload);
    }

    /// A responder fed arbitrary bytes after a valid key fails or waits;
    /// it never holds more than its bounds allow before failing.
    #[test]
    fn a_responder_fed_garbage_never_panics(
        garbage in prop::collection::vec(any::<u8>(), 0..2000),
    ) {
        let mut r = rng(13);
        let mut b = Responder::new(Methods::BOTH, Method::Rc4, &mut r);
        let _ = b.handle(&garbage, &SKEY);
        prop_assert!(!b.is_done());
    }
}
