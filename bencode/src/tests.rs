use crate::{Decoder, ErrorKind, OwnedValue, decode, to_vec};

/// One malformed input per rule, with the offset and kind it must report.
#[test]
fn malformed_inputs_name_offset_and_problem() {
    use ErrorKind::*;
    let cases: &[(&[u8], usize, ErrorKind)] = &[
        (
            b"",
            0,
            UnexpectedEnd {
                expected: "a value",
            },
        ),
        (
            b"x",
            0,
            UnexpectedByte {
                found: b'x',
                expected: "a value ('i', 'l', 'd' or a digit)",
            },
        ),
        (
            b"i",
            1,
            UnexpectedEnd {
                expected: "an integer",
            },
        ),
        (
            b"i12",
            3,
            UnexpectedEnd {
                expected: "a digit or 'e'",
            },
        ),
        (
            b"ie",
            1,
            UnexpectedByte {
                found: b'e',
                expected: "a digit",
            },
        ),
        (
            b"i-e",
            2,
            UnexpectedByte {
                found: b'e',
                expected: "a digit",
            },
        ),
        (b"i03e", 1, LeadingZero),
        (b"i-03e", 2, LeadingZero),
        (b"i00e", 1, LeadingZero),
        (b"i-0e", 1, NegativeZero),
        (
            b"i1.5e",
            2,
            UnexpectedByte {
                found: b'.',
                expected: "a digit or 'e'",
            },
        ),
        (
            b"i+1e",
            1,
            UnexpectedByte {
                found: b'+',
                expected: "a digit or 'e'",
            },
        ),
        (b"i9223372036854775808e", 1, IntegerOverflow),
        (b"i-9223372036854775809e", 2, IntegerOverflow),
        (b"i99999999999999999999999e", 1, IntegerOverflow),
        (b"01:a", 0, LeadingZero),
        (
            b"5:abc",
            0,
            LengthPastEnd {
                length: 5,
                remaining: 3,
            },
        ),
        (
            b"99999999999999999999999:x",
            0,
            LengthPastEnd {
                length: u64::MAX,
                remaining: 1,
            },
        ),
        (
            b"3abc",
            1,
            UnexpectedByte {
                found: b'a',
                expected: "a digit or ':'",
            },
        ),
        (
            b"l",
            1,
            UnexpectedEnd {
                expected: "a list item or 'e'",
            },
        ),
        (
            b"li1e",
            4,
            UnexpectedEnd {
                expected: "a list item or 'e'",
            },
        ),
        (
            b"d",
            1,
            UnexpectedEnd {
                expected: "a dictionary key or 'e'",
            },
        ),
        (
            b"di1ei2ee",
            1,
            UnexpectedByte {
                found: b'i',
                expected: "a dictionary key (a byte string) or 'e'",
            },
        ),
        (
            b"d1:a",
            4,
            UnexpectedEnd {
                expected: "a value",
            },
        ),
        (b"d1:bi1e1:ai2ee", 7, UnsortedKey),
        (b"d1:ai1e1:ai2ee", 7, DuplicateKey),
        (b"i1ei2e", 3, TrailingData),
        (b"0:x", 2, TrailingData),
        (b"le ", 2, TrailingData),
    ];
    for (input, offset, kind) in cases {
        let err = decode(input).expect_err(&String::from_utf8_lossy(input));
        assert_eq!(
            (err.offset(), err.kind()),
            (*offset, kind),
            "input {:?}",
            String::from_utf8_lossy(input)
        );
    }
}

#[test]
fn integer_extremes_decode() {
    assert_eq!(
        decode(b"i9223372036854775807e").unwrap().as_int(),
        Some(i64::MAX)
    );
    assert_eq!(
        decode(b"i-9223372036854775808e").unwrap().as_int(),
        Some(i64::MIN)
    );
    assert_eq!(decode(b"i0e").unwrap().as_int(), Some(0));
    assert_eq!(decode(b"i-7e").unwrap().as_int(), Some(-7));
}

#[test]
fn lenient_accepts_unsorted_keys_and_keeps_raw_bytes() {
    let input = b"d1:bi1e1:ai2ee";
    let value = Decoder::lenient().decode(input).unwrap();
    assert_eq!(value.raw(), input);
    let dict = value.as_dict().unwrap();
    let keys: Vec<_> = dict.iter().map(|(k, _)| k).collect();
    assert_eq!(keys, [b"b", b"a"], "input order is kept");
    assert_eq!(dict.get(b"a").unwrap().as_int(), Some(2));
    // Re-encoding is canonical, so it differs from the raw bytes.
    assert_eq!(to_vec(&value), b"d1:ai2e1:bi1ee");
}

#[test]
fn lenient_still_refuses_duplicate_keys_pointing_at_the_second() {
    let err = Decoder::lenient()
        .decode(b"d1:bi1e1:ai2e1:bi3ee")
        .unwrap_err();
    assert_eq!((err.offset(), err.kind()), (13, &ErrorKind::DuplicateKey));
}

#[test]
fn lenient_refuses_everything_else_strict_refuses() {
    for input in [&b"i03e"[..], b"i-0e", b"i1ei2e", b"01:a"] {
        assert!(Decoder::lenient().decode(input).is_err());
    }
}

#[test]
fn depth_limit_is_enforced_exactly() {
    let nest = |n: usize| [vec![b'l'; n], vec![b'e'; n]].concat();
    let decoder = Decoder::strict().max_depth(3);
    assert!(decoder.decode(&nest(3)).is_ok());
    let err = decoder.decode(&nest(4)).unwrap_err();
    assert_eq!(
        (err.offset(), err.kind()),
        (3, &ErrorKind::TooDeep { max_depth: 3 })
    );
    // No setting lifts the limit past MAX_DEPTH_LIMIT.
    let err = Decoder::strict()
        .max_depth(usize::MAX)
        .decode(&nest(100_000))
        .unwrap_err();
    assert_eq!(
        err.kind(),
        &ErrorKind::TooDeep {
            max_depth: crate::MAX_DEPTH_LIMIT
        }
    );
    // The default limit stops a hostile nesting long before the stack would.
    let err = decode(&nest(100_000)).unwrap_err();
    assert_eq!(err.kind(), &ErrorKind::TooDeep { max_depth: 64 });
}

#[test]
fn every_value_knows_its_raw_bytes_and_offset() {
    let input = b"d3:keyli1e4:spamee";
    let value = decode(input).unwrap();
    let list = value.as_dict().unwrap().get(b"key").unwrap();
    assert_eq!((list.raw(), list.offset()), (&b"li1e4:spame"[..], 6));
    let items: Vec<_> = list.as_list().unwrap().iter().collect();
    assert_eq!((items[0].raw(), items[0].offset()), (&b"i1e"[..], 7));
    assert_eq!(
        (items[1].raw(), items[1].as_str()),
        (&b"4:spam"[..], Some("spam"))
    );
}

#[test]
fn decode_prefix_leaves_the_payload() {
    let input = b"d8:msg_typei1e5:piecei0ee\x00\x01\x02";
    let (value, used) = Decoder::strict().decode_prefix(input).unwrap();
    assert_eq!(used, input.len() - 3);
    assert_eq!(value.as_dict().unwrap().len(), 2);
}

#[test]
fn incomplete_input_is_told_apart_from_invalid() {
    assert!(decode(b"d3:foo").unwrap_err().is_incomplete());
    assert!(decode(b"10:abc").unwrap_err().is_incomplete());
    assert!(!decode(b"d3:fooxe").unwrap_err().is_incomplete());
}

#[test]
fn error_messages_read_well() {
    let err = decode(b"d1:bi1e1:ai2ee").unwrap_err();
    assert_eq!(
        err.to_string(),
        "dictionary key is out of order (keys must be sorted) at byte 7"
    );
    let err = decode(b"i1x").unwrap_err();
    assert_eq!(
        err.to_string(),
        "unexpected byte 'x', expected a digit or 'e' at byte 2"
    );
}

#[test]
fn owned_values_encode_canonically() {
    let mut dict = std::collections::BTreeMap::new();
    dict.insert(b"z".to_vec(), OwnedValue::Int(-1));
    dict.insert(
        b"a".to_vec(),
        OwnedValue::List(vec![OwnedValue::Bytes(b"x".to_vec())]),
    );
    assert_eq!(to_vec(&OwnedValue::Dict(dict)), b"d1:al1:xe1:zi-1ee");
}
