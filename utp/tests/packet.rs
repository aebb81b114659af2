//! uTP packets: laid out as BEP 29 says, round trips, and refusals.

#![allow(clippy::unwrap_used)] // test code: a panic is a failure report

use proptest::prelude::*;
use utp::{HEADER_LEN, Header, MAX_SACK_BYTES, Packet, PacketError, PacketType, SelectiveAck};

fn header(kind: PacketType) -> Header {
    Header {
        kind,
        connection_id: 0x1234,
        timestamp_us: 0x0102_0304,
        timestamp_difference_us: 0x0506_0708,
        window: 0x0009_0a0b,
        seq_nr: 0x0c0d,
        ack_nr: 0x0e0f,
    }
}

/// The bytes of BEP 29's header, field by field, written out by hand.
#[test]
fn the_header_is_laid_out_as_bep_29_says() {
    let packet = Packet {
        header: header(PacketType::Syn),
        selective_ack: None,
        largest_datagram: None,
        payload: b"xy".to_vec(),
    };
    let expected: Vec<u8> = [
        0x41, 0x00, 0x12, 0x34, // ST_SYN (4) and version 1; no extension; connection id
        0x01, 0x02, 0x03, 0x04, // timestamp
        0x05, 0x06, 0x07, 0x08, // timestamp difference
        0x00, 0x09, 0x0a, 0x0b, // window
        0x0c, 0x0d, 0x0e, 0x0f, // seq_nr, ack_nr
        b'x', b'y',
    ]
    .to_vec();
    assert_eq!(packet.encode(), expected);
    assert_eq!(Packet::decode(&expected).unwrap(), packet);
}

#[test]
fn a_selective_ack_is_an_extension_with_its_bits_low_first() {
    // ack_nr 100: bit 0 stands for 102, bit 9 for 111.
    let sack = SelectiveAck::new(100, [102, 111]);
    assert_eq!(sack.mask(), &[0b0000_0001, 0b0000_0010, 0, 0]);
    let packet = Packet {
        header: Header {
            ack_nr: 100,
            ..header(PacketType::State)
        },
        selective_ack: Some(sack),
        largest_datagram: None,
        payload: Vec::new(),
    };
    let bytes = packet.encode();
    assert_eq!(bytes[1], 1, "the first extension is a selective ACK");
    assert_eq!(
        &bytes[HEADER_LEN..],
        &[0, 4, 0b0000_0001, 0b0000_0010, 0, 0]
    );
    let back = Packet::decode(&bytes).unwrap();
    let acked: Vec<u16> = back.selective_ack.unwrap().acked(100).collect();
    assert_eq!(acked, [102, 111]);
}

#[test]
fn a_selective_ack_wraps_around_and_keeps_to_its_bound() {
    let sack = SelectiveAck::new(65534, [0, 1, 65535, 65534]);
    // 65535 is ack_nr + 1, the gap itself; 65534 is ack_nr: neither fits.
    assert_eq!(sack.acked(65534).collect::<Vec<_>>(), [0, 1]);
    // The last bit of the longest mask stands for 2 + 255; past it, left
    // out.
    let last = 2 + (MAX_SACK_BYTES * 8 - 1) as u16;
    let far = SelectiveAck::new(0, [2, last, last + 1]);
    assert_eq!(far.mask().len(), MAX_SACK_BYTES);
    assert_eq!(far.acked(0).collect::<Vec<_>>(), [2, last]);
}

#[test]
fn unknown_extensions_are_skipped() {
    let mut bytes = Packet {
        header: header(PacketType::Data),
        selective_ack: None,
        largest_datagram: None,
        payload: b"data".to_vec(),
    }
    .encode();
    // An extension of type 9, three bytes, then a selective ACK, then the
    // payload.
    bytes[1] = 9;
    let extensions = [1, 3, 0xaa, 0xbb, 0xcc, 0, 4, 0x01, 0, 0, 0];
    bytes.splice(HEADER_LEN..HEADER_LEN, extensions);
    let packet = Packet::decode(&bytes).unwrap();
    assert_eq!(packet.payload, b"data");
    assert_eq!(packet.selective_ack.unwrap().mask(), &[1, 0, 0, 0]);
}

#[test]
fn malformed_packets_are_refused() {
    let good = Packet {
        header: header(PacketType::Data),
        selective_ack: None,
        largest_datagram: None,
        payload: Vec::new(),
    }
    .encode();
    assert_eq!(Packet::decode(&good[..19]), Err(PacketError::TooShort(19)));
    let mut v2 = good.clone();
    v2[0] = 0x02;
    assert_eq!(Packet::decode(&v2), Err(PacketError::Version(2)));
    let mut t5 = good.clone();
    t5[0] = 0x51;
    assert_eq!(Packet::decode(&t5), Err(PacketError::Type(5)));
    let mut cut = good.clone();
    cut[1] = 1;
    cut.extend([0, 8, 0xff]);
    assert_eq!(Packet::decode(&cut), Err(PacketError::Truncated));
    // A selective ACK of any length is read (libtorrent's are as long as
    // their bits need, not a multiple of four as BEP 29 asks).
    let mut odd = good.clone();
    odd[1] = 1;
    odd.extend([0, 3, 1, 2, 3]);
    let sack = Packet::decode(&odd).unwrap().selective_ack.unwrap();
    assert_eq!(sack.mask(), &[1, 2, 3]);
    let mut endless = good;
    endless[1] = 7;
    endless.push(7);
    assert_eq!(Packet::decode(&endless), Err(PacketError::Truncated));
}

#[test]
fn a_dht_datagram_is_not_utp() {
    assert!(!utp::is_utp(
        b"d1:ad2:id20:aaaaaaaaaaaaaaaaaaaae1:q4:ping1:t2:aa1:y1:qe"
    ));
    let syn = Packet {
        header: header(PacketType::Syn),
        selective_ack: None,
        largest_datagram: None,
        payload: Vec::new(),
    };
    assert!(utp::is_utp(&syn.encode()));
}

#[test]
fn the_largest_datagram_is_an_extension_after_the_selective_ack() {
    let header = Header {
        kind: PacketType::State,
        connection_id: 1,
        timestamp_us: 0,
        timestamp_difference_us: 0,
        window: 0,
        seq_nr: 5,
        ack_nr: 100,
    };
    let alone = Packet {
        header,
        selective_ack: None,
        largest_datagram: Some(65_487),
        payload: Vec::new(),
    };
    let bytes = alone.encode();
    // Empty extension bits lead (libutp reads a first extension past 2 as
    // another version of the protocol).
    assert_eq!(bytes[1], 2);
    assert_eq!(
        &bytes[20..],
        &[0x42, 8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 0xff, 0xcf]
    );
    let both = Packet {
        selective_ack: Some(SelectiveAck::new(100, [102])),
        ..alone.clone()
    };
    let bytes = both.encode();
    assert_eq!(bytes[1], 1);
    assert_eq!(&bytes[20..], &[0x42, 4, 1, 0, 0, 0, 0, 2, 0xff, 0xcf]);
    assert_eq!(Packet::decode(&bytes), Ok(both));
    // One of another length is skipped as unknown.
    let mut odd = alone.encode();
    odd[31] = 3;
    odd.push(0);
    assert_eq!(Packet::decode(&odd).unwrap().largest_datagram, None);
}

fn kind() -> impl Strategy<Value = PacketType> {
    prop_oneof![
        Just(PacketType::Data),
        Just(PacketType::Fin),
        Just(PacketType::State),
        Just(PacketType::Reset),
        Just(PacketType::Syn),
    ]
}

proptest! {
    #[test]
    fn every_packet_round_trips(
        kind in kind(),
        fields in any::<(u16, u32, u32, u32, u16, u16)>(),
        received in prop::option::of(prop::collection::vec(any::<u16>(), 0..40)),
        largest in prop::option::of(any::<u16>()),
        payload in prop::collection::vec(any::<u8>(), 0..300),
    ) {
        let (connection_id, timestamp_us, timestamp_difference_us, window, seq_nr, ack_nr) = fields;
        let packet = Packet {
            header: Header { kind, connection_id, timestamp_us, timestamp_difference_us, window, seq_nr, ack_nr },
            selective_ack: received.map(|r| SelectiveAck::new(ack_nr, r)),
            largest_datagram: largest,
            payload,
        };
        prop_assert_eq!(Packet::decode(&packet.encode()), Ok(packet));
    }

    #[test]
    fn any_bytes_decode_or_are_refused_without_panic(bytes in prop::collection::vec(any::<u8>(), 0..100)) {
        if let Ok(packet) = Packet::decode(&bytes) {
            // What decodes encodes to a packet that decodes the same
            // (unknown extensions are dropped on the way).
            prop_assert_eq!(Packet::decode(&packet.encode()), Ok(packet));
        }
    }
}
