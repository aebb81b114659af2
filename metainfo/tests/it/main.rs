//! metainfo against real torrents, real tools and hostile input.

#![allow(clippy::unwrap_used)] // test code: a panic is a failure report

mod hostile;
mod mktorrent;

use metainfo::Metainfo;

/// The fixtures: small torrents made by mktorrent 1.1 and transmission-create
/// 3.00 over generated content (see `fixtures/README.md`).
const FIXTURES: &[&str] = &[
    "mktorrent-single",
    "mktorrent-multi",
    "transmission-single",
    "transmission-multi",
];

fn fixture(name: &str) -> Vec<u8> {
    let path = format!(
        "{}/tests/it/fixtures/{name}.torrent",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// What btc reads from a torrent, in a form a reviewer can check by eye.
fn summary(t: &Metainfo) -> String {
    let mut out = String::new();
    let info = t.info();
    out += &format!("name: {}\ninfo-hash: {}\n", info.name(), t.info_hash());
    out += &format!(
        "total: {} bytes in {} pieces of {} (multi-file: {}, private: {})\n",
        info.total_length(),
        t.layout().num_pieces(),
        info.piece_length(),
        info.is_multi_file(),
        info.is_private()
    );
    out += &format!(
        "trackers: {:?}\nweb seeds: {:?}\n",
        t.trackers(),
        t.url_list
    );
    out += &format!(
        "comment: {:?}\ncreated by: {:?}\ncreation date: {:?}\n",
        t.comment, t.created_by, t.creation_date
    );
    let extra: Vec<_> = t
        .extra
        .keys()
        .chain(info.extra().keys())
        .map(|k| String::from_utf8_lossy(k))
        .collect();
    out += &format!("other keys: {extra:?}\nfiles:\n");
    for (i, f) in info.files().iter().enumerate() {
        let pieces = t.layout().file_pieces(i);
        out += &format!(
            "  {:>6}  {}  (pieces {:?})\n",
            f.length,
            info.display_path(f),
            pieces
        );
    }
    out
}

#[test]
fn fixtures_read_as_expected() {
    for name in FIXTURES {
        let torrent = Metainfo::from_bytes(&fixture(name)).expect(name);
        insta::assert_snapshot!(*name, summary(&torrent));
    }
}

#[test]
fn fixtures_write_back_byte_for_byte() {
    for name in FIXTURES {
        let bytes = fixture(name);
        let torrent = Metainfo::from_bytes(&bytes).expect(name);
        assert_eq!(torrent.to_bytes(), bytes, "{name}");
    }
}

#[test]
fn info_hash_is_sha1_of_the_raw_info_bytes() {
    let bytes = fixture("transmission-multi");
    let torrent = Metainfo::from_bytes(&bytes).unwrap();
    let start = bytes.windows(6).position(|w| w == b"4:info").unwrap() + 6;
    let raw = &bytes[start..bytes.len() - 1];
    assert_eq!(torrent.raw_info(), raw);
    assert_eq!(torrent.info_hash().0, sha1_of(raw));
}

fn sha1_of(bytes: &[u8]) -> [u8; 20] {
    sha1_smol::Sha1::from(bytes).digest().bytes()
}

#[test]
fn unsorted_keys_keep_their_hash() {
    // The same info dictionary with two keys swapped hashes differently: the
    // hash must follow the bytes, not a canonical re-encoding.
    let sorted =
        b"d4:infod6:lengthi5e4:name1:a12:piece lengthi16384e6:pieces20:aaaaaaaaaaaaaaaaaaaaee";
    let unsorted =
        b"d4:infod4:name1:a6:lengthi5e12:piece lengthi16384e6:pieces20:aaaaaaaaaaaaaaaaaaaaee";
    let a = Metainfo::from_bytes(sorted).unwrap();
    let b = Metainfo::from_bytes(unsorted).unwrap();
    assert_eq!(a.info_hash().0, sha1_of(&sorted[7..sorted.len() - 1]));
    assert_eq!(b.info_hash().0, sha1_of(&unsorted[7..unsorted.len() - 1]));
    assert_ne!(a.info_hash(), b.info_hash());
}
