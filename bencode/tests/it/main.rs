//! Property tests, snapshots and the comparison with bendy.

#![allow(clippy::unwrap_used)] // test code: a panic is a failure report

mod alloc;
mod oracle;

use std::collections::BTreeMap;

use bencode::{Bytes, Decoder, Encode, Encoder, OwnedValue, Raw, decode, to_vec};
use proptest::prelude::*;

fn arb_value() -> impl Strategy<Value = OwnedValue> {
    let leaf = prop_oneof![
        any::<i64>().prop_map(OwnedValue::Int),
        prop::collection::vec(any::<u8>(), 0..24).prop_map(OwnedValue::Bytes),
    ];
    leaf.prop_recursive(6, 64, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..8).prop_map(OwnedValue::List),
            prop::collection::btree_map(prop::collection::vec(any::<u8>(), 0..6), inner, 0..8)
                .prop_map(OwnedValue::Dict),
        ]
    })
}

/// Byte-level damage to a valid encoding, to reach the decoder's error paths
/// with inputs that are nearly right.
fn damage(mut bytes: Vec<u8>, edits: Vec<(usize, u8, u8)>) -> Vec<u8> {
    for (at, kind, byte) in edits {
        if bytes.is_empty() {
            break;
        }
        let at = at % bytes.len();
        match kind % 3 {
            0 => bytes[at] = byte,
            1 => {
                bytes.remove(at);
            }
            _ => bytes.insert(at, byte),
        }
    }
    bytes
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn encode_then_decode_round_trips(value in arb_value()) {
        let bytes = to_vec(&value);
        let decoded = decode(&bytes).expect("our own encoding decodes strictly");
        prop_assert_eq!(decoded.raw(), &bytes[..]);
        prop_assert_eq!(decoded.to_owned_value(), value.clone());
        prop_assert_eq!(to_vec(&decoded), bytes);
    }

    #[test]
    fn bendy_agrees_on_valid_input(value in arb_value()) {
        let bytes = to_vec(&value);
        prop_assert_eq!(oracle::bendy_decode(&bytes), Some(value));
    }

    #[test]
    fn damaged_input_never_panics_and_agrees_with_bendy(
        value in arb_value(),
        edits in prop::collection::vec((any::<usize>(), any::<u8>(), prop::sample::select(b"ield0123456789:-x".to_vec())), 1..4),
    ) {
        let bytes = damage(to_vec(&value), edits);
        let ours = decode(&bytes).ok().map(|v| v.to_owned_value());
        let theirs = oracle::bendy_decode(&bytes);
        prop_assert_eq!(ours, theirs, "input {:?}", String::from_utf8_lossy(&bytes));
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        let strict = decode(&bytes);
        let lenient = Decoder::lenient().decode(&bytes);
        if let Ok(value) = &strict {
            prop_assert_eq!(value.raw(), &bytes[..]);
            prop_assert!(lenient.is_ok(), "lenient accepts what strict accepts");
        }
        if let Err(err) = &strict {
            prop_assert!(err.offset() <= bytes.len());
        }
    }

    #[test]
    fn lenient_reads_any_key_order_of_the_same_dict(
        map in prop::collection::btree_map(prop::collection::vec(any::<u8>(), 0..6), any::<i64>(), 2..8),
        seed in any::<u64>(),
    ) {
        // Write the entries in a shuffled order, by hand.
        let mut entries: Vec<_> = map.iter().collect();
        let n = entries.len();
        for i in 0..n {
            let j = (seed as usize).wrapping_mul(i + 7) % n;
            entries.swap(i, j);
        }
        let mut bytes = b"d".to_vec();
        for (k, v) in &entries {
            bytes.extend(to_vec(&Bytes(k)));
            bytes.extend(to_vec(*v));
        }
        bytes.push(b'e');
        let value = Decoder::lenient().decode(&bytes).expect("lenient takes any order");
        let expected = OwnedValue::Dict(map.into_iter().map(|(k, v)| (k, OwnedValue::Int(v))).collect());
        prop_assert_eq!(value.to_owned_value(), expected);
        prop_assert_eq!(value.raw(), &bytes[..]);
    }
}

#[test]
fn encodings_snapshot() {
    struct File<'a> {
        length: u64,
        path: Vec<&'a str>,
    }
    impl Encode for File<'_> {
        fn encode(&self, e: &mut Encoder) {
            e.dict(|d| {
                d.entry(b"path", &self.path);
                d.entry(b"length", &self.length);
            });
        }
    }
    let mut map = BTreeMap::new();
    map.insert("b", vec![1i64, -2, 0]);
    map.insert("a", vec![]);
    let info = to_vec(&File {
        length: 5,
        path: vec!["dir", "a b.txt"],
    });
    let mut e = Encoder::default();
    e.list(|e| {
        e.int(i64::MIN);
        e.uint(u64::MAX);
        e.bytes(b"");
        e.bytes(b"\x00\xff:e");
        "snowman \u{2603}".encode(e);
        map.encode(e);
        Raw(&info).encode(e);
    });
    let out = e.into_bytes().escape_ascii().to_string();
    insta::assert_snapshot!(out);
}

#[test]
fn decoded_tree_snapshot() {
    let input = b"d8:announce30:http://127.0.0.1:6969/announce4:infod5:filesld6:lengthi3e4:pathl1:a5:b.txteee4:name4:demo12:piece lengthi16384e6:pieces20:\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b\x0c\x0d\x0e\x0f\x10\x11\x12\x13\x14ee";
    insta::assert_debug_snapshot!(decode(input).expect("valid"));
}
