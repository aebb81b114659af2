//! The codec: every message round-trips, however the stream is cut, and
//! every malformed frame gets its error.

use bytes::{Bytes, BytesMut};
use metainfo::{BlockRef, InfoHash, PeerId};
use peerwire::{Handshake, HandshakeError, Message, PeerCodec, Reserved};
use proptest::prelude::*;
use tokio_util::codec::{Decoder, Encoder};

const PIECES: u32 = 20;

fn arb_block() -> impl Strategy<Value = BlockRef> {
    any::<(u32, u32, u32)>().prop_map(|(piece, offset, length)| BlockRef {
        piece,
        offset,
        length,
    })
}

fn arb_message() -> impl Strategy<Value = Message> {
    prop_oneof![
        Just(Message::KeepAlive),
        Just(Message::Choke),
        Just(Message::Unchoke),
        Just(Message::Interested),
        Just(Message::NotInterested),
        Just(Message::HaveAll),
        Just(Message::HaveNone),
        any::<u32>().prop_map(Message::Have),
        any::<u32>().prop_map(Message::Suggest),
        any::<u32>().prop_map(Message::AllowedFast),
        prop::collection::vec(any::<bool>(), PIECES as usize).prop_map(|bits| {
            let mut field = peerwire::Bitfield::new(PIECES);
            bits.iter()
                .enumerate()
                .filter(|(_, b)| **b)
                .for_each(|(i, _)| {
                    field.set(i as u32);
                });
            Message::Bitfield(field.to_bytes())
        }),
        arb_block().prop_map(Message::Request),
        arb_block().prop_map(Message::Cancel),
        arb_block().prop_map(Message::Reject),
        (
            any::<(u32, u32)>(),
            prop::collection::vec(any::<u8>(), 1..=16384)
        )
            .prop_map(|((piece, offset), data)| Message::Piece {
                piece,
                offset,
                data: Bytes::from(data)
            }),
        any::<u16>().prop_map(Message::Port),
        (any::<u8>(), prop::collection::vec(any::<u8>(), 0..300)).prop_map(|(id, payload)| {
            Message::Extended {
                id,
                payload: Bytes::from(payload),
            }
        }),
    ]
}

fn encode_all(messages: &[Message]) -> BytesMut {
    let mut codec = PeerCodec::new(Some(PIECES));
    let mut buf = BytesMut::new();
    for m in messages {
        codec.encode(m, &mut buf).unwrap();
    }
    buf
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn every_message_round_trips(message in arb_message()) {
        let mut buf = encode_all(std::slice::from_ref(&message));
        prop_assert_eq!(buf.len(), 4 + message.encoded_len());
        let mut codec = PeerCodec::new(Some(PIECES));
        prop_assert_eq!(codec.decode(&mut buf).unwrap(), Some(message));
        prop_assert!(buf.is_empty());
    }

    /// The same messages come out whatever way the stream is cut into reads.
    #[test]
    fn any_read_split_gives_the_same_messages(
        messages in prop::collection::vec(arb_message(), 1..12),
        cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..20),
    ) {
        let stream = encode_all(&messages).freeze();
        let mut points: Vec<usize> = cuts.iter().map(|c| c.index(stream.len() + 1)).collect();
        points.push(0);
        points.push(stream.len());
        points.sort();
        let mut codec = PeerCodec::new(Some(PIECES));
        let mut buf = BytesMut::new();
        let mut out = Vec::new();
        for pair in points.windows(2) {
            buf.extend_from_slice(&stream[pair[0]..pair[1]]);
            while let Some(message) = codec.decode(&mut buf).unwrap() {
                out.push(message);
            }
        }
        prop_assert_eq!(out, messages);
        prop_assert!(buf.is_empty());
    }

    /// Frames of any id with any payload (plausible lengths, so they reach
    /// the parser): a message or an error, never a panic, and a message
    /// re-encodes to the frame it came from.
    #[test]
    fn arbitrary_frames_never_panic(frames in prop::collection::vec((any::<u8>(), prop::collection::vec(any::<u8>(), 0..40)), 1..20)) {
        let mut stream = BytesMut::new();
        for (id, payload) in &frames {
            stream.extend_from_slice(&((payload.len() + 1) as u32).to_be_bytes());
            stream.extend_from_slice(&[*id]);
            stream.extend_from_slice(payload);
        }
        let mut codec = PeerCodec::new(Some(PIECES));
        loop {
            let before = stream.len();
            match codec.decode(&mut stream) {
                Ok(Some(Message::Unknown { .. })) => {}
                Ok(Some(message)) => prop_assert_eq!(message.encoded_len() + 4, before - stream.len()),
                Ok(None) | Err(_) => break,
            }
        }
    }
}

#[test]
fn encodings() {
    let block = BlockRef {
        piece: 1,
        offset: 16384,
        length: 16384,
    };
    let mut field = peerwire::Bitfield::new(PIECES);
    field.set(0);
    field.set(19);
    let messages = [
        Message::KeepAlive,
        Message::Choke,
        Message::Unchoke,
        Message::Interested,
        Message::NotInterested,
        Message::Have(258),
        Message::Bitfield(field.to_bytes()),
        Message::Request(block),
        Message::Piece {
            piece: 1,
            offset: 16384,
            data: Bytes::from_static(b"data"),
        },
        Message::Cancel(block),
        Message::Port(6881),
        Message::Suggest(7),
        Message::HaveAll,
        Message::HaveNone,
        Message::Reject(block),
        Message::AllowedFast(9),
        Message::Extended {
            id: 0,
            payload: Bytes::from_static(b"d1:md11:ut_metadatai3eee"),
        },
    ];
    let mut report = String::new();
    for m in &messages {
        report += &format!(
            "{:?}\n  {}\n",
            m,
            encode_all(std::slice::from_ref(m)).escape_ascii()
        );
    }
    let hello = Handshake::new(
        InfoHash([0xab; 20]),
        PeerId(*b"-BQ0100-abcdefghijkl"),
        Reserved::default()
            .with_extension_protocol(true)
            .with_fast(true),
    );
    report += &format!("{hello:?}\n  {}\n", hello.encode().escape_ascii());
    insta::assert_snapshot!(report);
}

/// Malformed frames, each refused with its own error.
#[test]
fn malformed_frames_are_refused() {
    let frame = |id: u8, payload: &[u8]| {
        let mut f = ((payload.len() + 1) as u32).to_be_bytes().to_vec();
        f.push(id);
        f.extend_from_slice(payload);
        f
    };
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("length past the limit", u32::MAX.to_be_bytes().to_vec()),
        (
            "length past every limit",
            (2 + 16384 + 8192 + 1u32).to_be_bytes().to_vec(),
        ),
        (
            "piece frame one past a block",
            [&(9 + 16384 + 1u32).to_be_bytes()[..], &[7]].concat(),
        ),
        (
            "have frame announced long",
            [&100u32.to_be_bytes()[..], &[4]].concat(),
        ),
        (
            "unknown id past the extended limit",
            [&(2 + 16384 + 8192 + 1u32).to_be_bytes()[..], &[99]].concat(),
        ),
        ("choke with a payload", frame(0, b"x")),
        ("have too short", frame(4, &[0, 0, 1])),
        ("have too long", frame(4, &[0, 0, 0, 1, 2])),
        ("request too short", frame(6, &[0; 11])),
        ("cancel too long", frame(8, &[0; 13])),
        ("piece without data", frame(7, &[0; 8])),
        ("piece header cut", frame(7, &[0; 5])),
        ("piece longer than a block", frame(7, &[0; 8 + 16385])),
        ("bitfield of the wrong size", frame(5, &[0xff; 4])),
        ("bitfield with spare bits", frame(5, &[0xff, 0xff, 0xff])),
        ("port too short", frame(9, &[1])),
        ("port too long", frame(9, &[1, 2, 3])),
        ("suggest too short", frame(13, &[1])),
        ("allowed fast too long", frame(17, &[0; 5])),
        ("reject too short", frame(16, &[0; 12 - 1])),
        ("have all with a payload", frame(14, &[0])),
        ("extended without an id", frame(20, &[])),
    ];
    let mut report = String::new();
    for (name, bytes) in cases {
        let mut codec = PeerCodec::new(Some(PIECES));
        let mut buf = BytesMut::from(&bytes[..]);
        let err = codec.decode(&mut buf).expect_err(name);
        report += &format!("{name}: {err}\n");
    }
    insta::assert_snapshot!(report);
}

#[test]
fn the_limits_are_exact() {
    let mut codec = PeerCodec::new(Some(PIECES));
    // A full block is accepted; its frame is the largest for piece messages.
    let block = Message::Piece {
        piece: 0,
        offset: 0,
        data: Bytes::from(vec![1; 16384]),
    };
    let mut buf = encode_all(std::slice::from_ref(&block));
    assert_eq!(codec.decode(&mut buf).unwrap(), Some(block));
    // An extended message at exactly the limit is accepted; one byte more is not.
    let at_limit = Message::Extended {
        id: 1,
        payload: Bytes::from(vec![0; peerwire::MAX_EXTENDED_LEN - 2]),
    };
    let mut buf = encode_all(std::slice::from_ref(&at_limit));
    assert_eq!(codec.decode(&mut buf).unwrap(), Some(at_limit));
    let over = Message::Extended {
        id: 1,
        payload: Bytes::from(vec![0; peerwire::MAX_EXTENDED_LEN - 1]),
    };
    let mut buf = encode_all(std::slice::from_ref(&over));
    assert!(codec.decode(&mut buf).is_err());
    // Before the piece count is known, a bitfield may reach 1 MiB, not more.
    let mut unknown = PeerCodec::new(None);
    let mut buf = BytesMut::new();
    peerwire::encode(
        &Message::Bitfield(Bytes::from(vec![0; peerwire::MAX_UNKNOWN_BITFIELD + 1])),
        &mut buf,
    );
    assert!(unknown.decode(&mut buf).is_err());
    // Nor may any other message be that long then.
    let mut buf = BytesMut::from(&[&(100_000u32).to_be_bytes()[..], &[20, 0]].concat()[..]);
    assert!(unknown.decode(&mut buf).is_err());
}

#[test]
fn unknown_ids_are_passed_over_and_the_stream_goes_on() {
    let mut buf = BytesMut::from(&[0, 0, 0, 3, 99, 1, 2][..]);
    buf.extend_from_slice(&encode_all(&[Message::Unchoke]));
    let mut codec = PeerCodec::new(Some(PIECES));
    assert_eq!(
        codec.decode(&mut buf).unwrap(),
        Some(Message::Unknown { id: 99 })
    );
    assert_eq!(codec.decode(&mut buf).unwrap(), Some(Message::Unchoke));
}

#[test]
fn limits_follow_the_torrent() {
    // Before the piece count is known, a large bitfield is accepted...
    let mut codec = PeerCodec::new(None);
    let mut buf = BytesMut::new();
    let big = Message::Bitfield(Bytes::from(vec![0xff; 100_000]));
    peerwire::encode(&big, &mut buf);
    assert_eq!(codec.decode(&mut buf).unwrap(), Some(big.clone()));
    // ...and refused once it is, by size before anything is read.
    codec.set_num_pieces(80);
    peerwire::encode(&big, &mut buf);
    assert!(matches!(
        codec.decode(&mut buf),
        Err(peerwire::WireError::FrameTooLong { .. })
    ));
}

#[test]
fn a_partial_frame_waits_without_buffering_more_than_it_announced() {
    let mut codec = PeerCodec::new(Some(PIECES));
    let mut buf = BytesMut::from(&(16393u32).to_be_bytes()[..]);
    buf.extend_from_slice(&[7, 0, 0]);
    assert_eq!(codec.decode(&mut buf).unwrap(), None);
    assert!(buf.capacity() >= 4 + 16393);
    assert!(
        buf.capacity() < 4 * 16393,
        "reserved for this frame, not more"
    );
}

#[test]
fn handshakes_say_what_is_wrong() {
    let hash = InfoHash([1; 20]);
    let hello = Handshake::new(hash, PeerId([2; 20]), Reserved::default().with_dht(true));
    let bytes = hello.encode();
    let back = Handshake::decode_for(&bytes, hash).unwrap();
    assert_eq!(back, hello);
    assert!(back.reserved.dht() && !back.reserved.fast() && !back.reserved.extension_protocol());
    let other = InfoHash([9; 20]);
    assert_eq!(
        Handshake::decode_for(&bytes, other),
        Err(HandshakeError::WrongInfoHash {
            expected: other,
            found: hash
        })
    );
    assert_eq!(
        Handshake::decode(&bytes[..67]),
        Err(HandshakeError::TooShort(67))
    );
    let mut mse = bytes;
    mse[..20].copy_from_slice(&[0x8a; 20]);
    let err = Handshake::decode(&mse).unwrap_err();
    assert!(
        err.to_string().starts_with("not a BitTorrent handshake"),
        "{err}"
    );
    // Bits are independent.
    let all = Reserved::default()
        .with_extension_protocol(true)
        .with_fast(true)
        .with_dht(true);
    assert_eq!(all.0, [0, 0, 0, 0, 0, 0x10, 0, 0x05]);
    assert_eq!(all.with_fast(false).0, [0, 0, 0, 0, 0, 0x10, 0, 0x01]);
}
