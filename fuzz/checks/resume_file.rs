// Fuzz target `resume_file` (included by `fuzz_targets/resume_file.rs` and by the
// workspace's test of the corpora, `xtask/tests/fuzz_corpora.rs`):
// Any bytes as a resume file (the first three pick the torrent's piece
// and file counts): no panic, and whatever is accepted has the torrent's
// shape and is written back to the same bytes' meaning.

use metainfo::InfoHash;
use storage::ResumeData;

const HASH: InfoHash = InfoHash([0x11; 20]);

/// The checks on one input, for the fuzzer and for the regression test
/// that runs the corpus on stable.
pub fn check(data: &[u8]) {
    let Some((&[a, b, files], bytes)) = data.split_first_chunk::<3>() else {
        return;
    };
    let pieces = u32::from(u16::from_be_bytes([a, b]));
    let files = usize::from(files);
    let Some(resume) = ResumeData::decode(bytes, HASH, pieces, files) else {
        return;
    };
    assert_eq!(resume.info_hash, HASH);
    assert_eq!(resume.pieces.len(), pieces as usize);
    assert_eq!(resume.files.len(), files);
    assert_eq!(
        ResumeData::decode(&resume.encode(), HASH, pieces, files),
        Some(resume)
    );
}
