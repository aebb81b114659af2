//! Extension messages: the handshake, ut_metadata and ut_pex.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use bytes::Bytes;
use peerwire::extension::{ExtensionHandshake, UtMetadata, UtPex};
use proptest::prelude::*;

#[test]
fn extension_handshake_round_trips_and_reads_real_ones() {
    let mut m = BTreeMap::new();
    m.insert("ut_metadata".to_string(), 3);
    m.insert("ut_pex".to_string(), 1);
    let ours = ExtensionHandshake {
        m,
        p: Some(6881),
        v: Some("btc 0.1.0".into()),
        reqq: Some(500),
        yourip: Some("127.0.0.1".parse().unwrap()),
        metadata_size: Some(31_235),
    };
    let payload = ours.encode();
    insta::assert_snapshot!(payload.escape_ascii().to_string());
    assert_eq!(ExtensionHandshake::decode(&payload).unwrap(), ours);
    // Written by hand in the shape qBittorrent sends, with keys out of
    // order, a disabled extension (id 0), extra keys and an IPv6 yourip.
    let real = b"d1:md11:lt_donthavei7e6:ut_pexi0e11:ut_metadatai2ee4:reqqi250e13:metadata_sizei123e1:v13:qBittorrent/46:yourip16:\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\x01e";
    let read = ExtensionHandshake::decode(real).unwrap();
    assert_eq!(read.id("ut_metadata"), Some(2));
    assert_eq!(read.id("ut_pex"), None, "disabled with id 0");
    assert_eq!(read.m.get("ut_pex"), Some(&0), "and known to be disabled");
    assert_eq!(read.yourip, Some("::1".parse().unwrap()));
    assert_eq!((read.reqq, read.metadata_size), (Some(250), Some(123)));
}

#[test]
fn ut_metadata_keeps_the_trailing_piece() {
    let data = Bytes::from(vec![7u8; 16384]);
    let message = UtMetadata::Data {
        piece: 2,
        total_size: 40_000,
        data: data.clone(),
    };
    let payload = message.encode();
    assert!(payload.starts_with(b"d8:msg_typei1e5:piecei2e10:total_sizei40000ee"));
    assert_eq!(UtMetadata::decode(&payload).unwrap(), message);
    for m in [
        UtMetadata::Request { piece: 5 },
        UtMetadata::Reject { piece: 0 },
    ] {
        assert_eq!(UtMetadata::decode(&m.encode()).unwrap(), m);
    }
}

#[test]
fn ut_pex_reads_both_families_and_flags() {
    let v4: SocketAddr = "10.0.0.1:51413".parse().unwrap();
    let v6: SocketAddr = "[2001:db8::1]:6881".parse().unwrap();
    let pex = UtPex {
        added: vec![(v4, 0x02), (v6, 0x10)],
        dropped: vec!["10.0.0.2:1".parse().unwrap()],
    };
    let payload = pex.encode();
    insta::assert_snapshot!(payload.escape_ascii().to_string());
    assert_eq!(UtPex::decode(&payload).unwrap(), pex);
}

#[test]
fn odd_values_that_real_clients_send_are_tolerated() {
    let read = ExtensionHandshake::decode(
        b"d1:md6:ut_pexi300e11:ut_metadatai1e3:foo3:bare13:metadata_sizei0e1:pi70000e4:reqqi-1ee",
    )
    .unwrap();
    assert_eq!(
        read.id("ut_metadata"),
        Some(1),
        "a bad id elsewhere in m does not lose this one"
    );
    assert_eq!(read.id("ut_pex"), None);
    assert_eq!((read.metadata_size, read.p, read.reqq), (None, None, None));
    let huge = ExtensionHandshake::decode(b"d13:metadata_sizei99999999999ee").unwrap();
    assert_eq!(huge.metadata_size, None);
    // BEP 9: unknown message types are ignored, not errors.
    let unknown = UtMetadata::decode(&Bytes::from_static(b"d8:msg_typei7e5:piecei0ee")).unwrap();
    assert_eq!(unknown, UtMetadata::Unknown { msg_type: 7 });
    // PEX with fewer flags than peers: the rest read as 0.
    let pex = UtPex::decode(
        b"d5:added12:\x7f\x00\x00\x01\x00\x01\x7f\x00\x00\x02\x00\x027:added.f1:\x02e",
    )
    .unwrap();
    assert_eq!(
        pex.added.iter().map(|(_, f)| *f).collect::<Vec<_>>(),
        [2, 0]
    );
}

#[test]
fn pex_messages_keep_to_fifty_peers_a_list() {
    let many: Vec<(SocketAddr, u8)> = (0..80u16)
        .map(|i| (SocketAddr::from(([10, 0, 0, 1], i + 1)), 0))
        .collect();
    let pex = UtPex {
        added: many.clone(),
        dropped: many.iter().map(|(a, _)| *a).collect(),
    };
    let read = UtPex::decode(&pex.encode()).unwrap();
    assert_eq!((read.added.len(), read.dropped.len()), (50, 50));
    assert_eq!(read.added[..], many[..50]);
}

#[test]
fn malformed_extension_messages_are_refused() {
    let mut report = String::new();
    let handshakes: &[(&str, &[u8])] = &[
        ("not bencode", b"hello"),
        ("a list", b"le"),
        ("m a string", b"d1:m3:abce"),
    ];
    for (name, payload) in handshakes {
        report += &format!(
            "handshake, {name}: {}\n",
            ExtensionHandshake::decode(payload).unwrap_err()
        );
    }
    let metadata: &[(&str, &[u8])] = &[
        ("no piece", b"d8:msg_typei0ee"),
        (
            "data without data",
            b"d8:msg_typei1e5:piecei0e10:total_sizei5ee",
        ),
        ("data without size", b"d8:msg_typei1e5:piecei0eexyz"),
        ("request with data", b"d8:msg_typei0e5:piecei0eexyz"),
        (
            "absurd size",
            b"d8:msg_typei1e5:piecei0e10:total_sizei4000000000eexyz",
        ),
    ];
    for (name, payload) in metadata {
        let payload = Bytes::copy_from_slice(payload);
        report += &format!(
            "ut_metadata, {name}: {}\n",
            UtMetadata::decode(&payload).unwrap_err()
        );
    }
    let pex: &[(&str, &[u8])] = &[("added6 a number", b"d6:added6i1ee")];
    for (name, payload) in pex {
        report += &format!("ut_pex, {name}: {}\n", UtPex::decode(payload).unwrap_err());
    }
    insta::assert_snapshot!(report);
}

#[test]
fn a_truncated_pex_entry_costs_only_itself() {
    let pex = UtPex::decode(b"d5:added8:\x7f\x00\x00\x02\x1a\xe1\x7f\x00e").unwrap();
    assert_eq!(
        pex.added,
        vec![(SocketAddr::from(([127, 0, 0, 2], 6881)), 0)]
    );
}

proptest! {
    #[test]
    fn pex_round_trips(
        added in prop::collection::vec((any::<([u8; 4], u16)>(), any::<u8>()), 0..20),
        added6 in prop::collection::vec((any::<([u8; 16], u16)>(), any::<u8>()), 0..20),
        dropped in prop::collection::vec(any::<([u8; 4], u16)>(), 0..20),
    ) {
        let pex = UtPex {
            // Encoding groups by family, IPv4 first.
            added: added.iter().map(|((ip, port), f)| (SocketAddr::from((*ip, *port)), *f))
                .chain(added6.iter().map(|((ip, port), f)| (SocketAddr::from((*ip, *port)), *f)))
                .collect(),
            dropped: dropped.iter().map(|(ip, port)| SocketAddr::from((*ip, *port))).collect(),
        };
        prop_assert_eq!(UtPex::decode(&pex.encode()).unwrap(), pex);
    }

    #[test]
    fn arbitrary_payloads_never_panic(payload in prop::collection::vec(any::<u8>(), 0..200)) {
        let _ = ExtensionHandshake::decode(&payload);
        let _ = UtMetadata::decode(&Bytes::from(payload.clone()));
        let _ = UtPex::decode(&payload);
    }
}
