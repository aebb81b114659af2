//! Resume: an unchanged download restarts without hashing; anything changed
//! is hashed again.

use std::time::{Duration, SystemTime};

use metainfo::InfoHash;
use storage::{ResumeData, Storage, StorageConfig};

use super::{all_blocks, download, file_path, make};

#[test]
fn resume_data_round_trips_and_is_trusted_for_unchanged_files() {
    let source = tempfile::tempdir().unwrap();
    let (torrent, files) = make(source.path(), &[50_000, 30_000], 16 * 1024);
    let target = tempfile::tempdir().unwrap();
    let mut storage = download(
        &torrent,
        &files,
        target.path(),
        &all_blocks(&torrent),
        StorageConfig::default(),
    );
    let have = storage.check(None, |_| {}).unwrap();
    assert!(have.iter().all(|&h| h));
    let resume_path = target.path().join("content.resume");
    storage
        .resume_data(&have)
        .unwrap()
        .save(&resume_path)
        .unwrap();
    let n = torrent.layout().num_pieces();
    let loaded = ResumeData::load(&resume_path, torrent.info_hash(), n, 2).unwrap();
    assert_eq!(loaded, storage.resume_data(&have).unwrap());

    // Corrupt a byte but put the modification time back: the resume data
    // is trusted (no hashing), which a full check would not do. This is the
    // documented trade-off: size and time stand for the content.
    let path = file_path(&torrent, target.path(), 0);
    let stamp = std::fs::metadata(&path).unwrap().modified().unwrap();
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[100] ^= 1;
    std::fs::write(&path, &bytes).unwrap();
    std::fs::File::options()
        .write(true)
        .open(&path)
        .unwrap()
        .set_modified(stamp)
        .unwrap();
    let mut fresh = Storage::new(&torrent, target.path(), StorageConfig::default()).unwrap();
    assert!(
        fresh.check(Some(&loaded), |_| {}).unwrap()[0],
        "trusted without hashing"
    );
    assert!(
        !fresh.check(None, |_| {}).unwrap()[0],
        "a full check finds it"
    );

    // Resume data of another torrent is not trusted, whatever it says.
    let foreign = ResumeData {
        info_hash: InfoHash([9; 20]),
        ..loaded.clone()
    };
    assert!(!fresh.check(Some(&foreign), |_| {}).unwrap()[0]);

    // A changed modification time sends the file's pieces to the hasher.
    let later = SystemTime::now() + Duration::from_secs(5);
    std::fs::File::options()
        .write(true)
        .open(&path)
        .unwrap()
        .set_modified(later)
        .unwrap();
    let have = fresh.check(Some(&loaded), |_| {}).unwrap();
    assert!(!have[0], "rehashed and found bad");
    assert!(
        have[n as usize - 1],
        "pieces of the other file stay trusted"
    );
}

#[test]
fn a_kill_between_writing_and_saving_loses_no_piece() {
    let source = tempfile::tempdir().unwrap();
    let (torrent, files) = make(source.path(), &[100_000], 16 * 1024);
    let target = tempfile::tempdir().unwrap();
    let blocks = all_blocks(&torrent);
    let (first, rest) = blocks.split_at(blocks.len() / 2);
    let mut storage = download(
        &torrent,
        &files,
        target.path(),
        first,
        StorageConfig::default(),
    );
    let n = torrent.layout().num_pieces() as usize;
    let have_then: Vec<bool> = (0..n)
        .map(|p| {
            first.iter().filter(|b| b.piece == p as u32).count()
                == torrent.layout().num_blocks(p as u32).unwrap() as usize
        })
        .collect();
    let resume_path = target.path().join("r.resume");
    storage
        .resume_data(&have_then)
        .unwrap()
        .save(&resume_path)
        .unwrap();
    // More pieces are written, then the process dies before saving again.
    drop(download(
        &torrent,
        &files,
        target.path(),
        rest,
        StorageConfig::default(),
    ));
    let loaded = ResumeData::load(&resume_path, torrent.info_hash(), n as u32, 1).unwrap();
    let mut restarted = Storage::new(&torrent, target.path(), StorageConfig::default()).unwrap();
    let have = restarted.check(Some(&loaded), |_| {}).unwrap();
    assert!(have.iter().all(|&h| h), "{have:?}");
}

#[test]
fn unusable_resume_files_are_ignored() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("x.resume");
    let hash = InfoHash([1; 20]);
    assert!(ResumeData::load(&path, hash, 4, 1).is_none(), "missing");
    std::fs::write(&path, b"garbage").unwrap();
    assert!(ResumeData::load(&path, hash, 4, 1).is_none(), "not bencode");
    let data = ResumeData {
        info_hash: hash,
        pieces: vec![true, false, true, true],
        files: vec![None],
    };
    data.save(&path).unwrap();
    assert_eq!(ResumeData::load(&path, hash, 4, 1), Some(data.clone()));
    assert!(
        ResumeData::load(&path, InfoHash([2; 20]), 4, 1).is_none(),
        "another torrent"
    );
    assert!(
        ResumeData::load(&path, hash, 5, 1).is_none(),
        "another piece count"
    );
    assert!(
        ResumeData::load(&path, hash, 4, 2).is_none(),
        "another file count"
    );
    // Saving again replaces it whole, and leaves no temporary file behind.
    let newer = ResumeData {
        pieces: vec![true; 4],
        ..data
    };
    newer.save(&path).unwrap();
    assert_eq!(ResumeData::load(&path, hash, 4, 1), Some(newer));
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
}

#[test]
fn a_check_skips_missing_files_only_and_reads_files_it_cannot_stamp() {
    let source = tempfile::tempdir().unwrap();
    let (torrent, files) = make(source.path(), &[50_000, 30_000], 16 * 1024);
    let target = tempfile::tempdir().unwrap();
    let storage = download(
        &torrent,
        &files,
        target.path(),
        &all_blocks(&torrent),
        StorageConfig::default(),
    );
    drop(storage);
    // The first file dated before 1970: it has no stamp, but it is there,
    // so its pieces are read and found good.
    let first = file_path(&torrent, target.path(), 0);
    let before_1970 = SystemTime::UNIX_EPOCH - Duration::from_secs(86_400);
    std::fs::File::options()
        .write(true)
        .open(&first)
        .unwrap()
        .set_modified(before_1970)
        .unwrap();
    // The second file gone: the pieces only it holds are missing.
    std::fs::remove_file(file_path(&torrent, target.path(), 1)).unwrap();
    let mut fresh = Storage::new(&torrent, target.path(), StorageConfig::default()).unwrap();
    let have = fresh.check(None, |_| {}).unwrap();
    let n = have.len();
    // 80,000 bytes in 16 KiB pieces: pieces 0..=2 lie in the first file
    // alone, piece 3 spans both, the last in the second alone.
    assert_eq!(have, [true, true, true, false, false], "{n} pieces");
}
