// Fuzz target `metainfo_parse` (included by `fuzz_targets/metainfo_parse.rs` and by the
// workspace's test of the corpora, `xtask/tests/fuzz_corpora.rs`):
// Any bytes as a torrent, any text as a magnet link: no panic, and whatever
// is accepted keeps metainfo's promises.

use metainfo::{InfoHash, MagnetLink, Metainfo};

/// The checks on one input, for the fuzzer and for the regression test
/// that runs the corpus on stable.
pub fn check(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data)
        && let Ok(link) = text.parse::<MagnetLink>()
    {
        assert_eq!(link.to_string().parse::<MagnetLink>().as_ref(), Ok(&link));
    }
    let Ok(torrent) = Metainfo::from_bytes(data) else {
        return;
    };
    assert_eq!(
        torrent.info_hash(),
        InfoHash::of_info_bytes(torrent.raw_info())
    );
    let again = Metainfo::from_bytes(&torrent.to_bytes()).expect("written torrent parses");
    assert_eq!(again.info_hash(), torrent.info_hash());
    let info = torrent.info();
    for file in info.files() {
        for component in info.file_path(file) {
            assert!(!component.is_empty() && component != "." && component != "..");
            assert!(!component.contains(['/', '\\', '\0']));
        }
    }
    let layout = torrent.layout();
    assert_eq!(layout.num_pieces() as usize, info.pieces().len());
    let last = layout.num_pieces() - 1;
    let covered: u64 = layout.piece_slices(last).map(|s| s.length).sum();
    assert_eq!(
        covered,
        u64::from(layout.piece_len(last).expect("last piece"))
    );
}
