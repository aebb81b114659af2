//! Storage on a real file system (tempfile): layouts, verification, bounds,
//! and hostile paths.

#![allow(clippy::unwrap_used)] // test code: a panic is a failure report

use std::path::Path;

use metainfo::{BlockRef, Metainfo, TorrentBuilder};
use proptest::prelude::*;
use storage::{Added, Allocation, Assembler, AssemblyError, Storage, StorageConfig, StorageError};

mod disk;
mod resume;

/// Writes files of these lengths under `dir/content` and makes a torrent.
fn make(dir: &Path, lengths: &[usize], piece_length: u64) -> (Metainfo, Vec<Vec<u8>>) {
    let content = dir.join("content");
    std::fs::create_dir_all(&content).unwrap();
    let mut datas = Vec::new();
    for (i, len) in lengths.iter().enumerate() {
        // Sub-folders too, so that files land in several directories.
        let path = content.join(format!("d{}", i % 3)).join(format!("f{i:03}"));
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        let data: Vec<u8> = (0..*len).map(|j| (j * 7 + i * 13) as u8).collect();
        std::fs::write(&path, &data).unwrap();
        datas.push(data);
    }
    let torrent = TorrentBuilder::new(&content)
        .piece_length(piece_length)
        .build(|_, _| {})
        .unwrap();
    // Return the contents in torrent order (sorted paths).
    let ordered = torrent
        .info()
        .files()
        .iter()
        .map(|f| {
            std::fs::read(
                torrent
                    .info()
                    .file_path(f)
                    .fold(dir.to_path_buf(), |p, c| p.join(c)),
            )
            .unwrap()
        })
        .collect();
    (torrent, ordered)
}

/// The source bytes of a block.
fn source_block(torrent: &Metainfo, files: &[Vec<u8>], block: BlockRef) -> Vec<u8> {
    torrent
        .layout()
        .block_slices(block)
        .flat_map(|s| files[s.file][s.offset as usize..(s.offset + s.length) as usize].to_vec())
        .collect()
}

/// The source bytes of a whole piece.
fn source_piece(torrent: &Metainfo, files: &[Vec<u8>], piece: u32) -> Vec<u8> {
    torrent
        .layout()
        .blocks(piece)
        .flat_map(|b| source_block(torrent, files, b))
        .collect()
}

/// Downloads every block, in the given order (with repeats), through an
/// assembler into storage under `into`.
fn download(
    torrent: &Metainfo,
    files: &[Vec<u8>],
    into: &Path,
    order: &[BlockRef],
    config: StorageConfig,
) -> Storage {
    let mut storage = Storage::new(torrent, into, config).unwrap();
    let mut assembler = Assembler::new(torrent.layout().clone(), usize::MAX);
    for &block in order {
        match assembler
            .add(block, &source_block(torrent, files, block))
            .unwrap()
        {
            Added::Complete(piece) => {
                assert!(storage.write_verified(block.piece, &piece).unwrap());
                // Later pieces start in this one's buffer, as on the disk
                // thread: none may show a byte of it.
                assembler.recycle(piece);
            }
            Added::Partial | Added::Duplicate => {}
        }
    }
    assert_eq!(assembler.held(), 0);
    storage.create_empty_files().unwrap();
    storage
}

fn all_blocks(torrent: &Metainfo) -> Vec<BlockRef> {
    (0..torrent.layout().num_pieces())
        .flat_map(|p| torrent.layout().blocks(p).collect::<Vec<_>>())
        .collect()
}

/// Where file `index` of the torrent lives under `root`.
fn file_path(torrent: &Metainfo, root: &Path, index: usize) -> std::path::PathBuf {
    let file = &torrent.info().files()[index];
    torrent
        .info()
        .file_path(file)
        .fold(root.to_path_buf(), |p, c| p.join(c))
}

fn assert_same_files(torrent: &Metainfo, files: &[Vec<u8>], root: &Path) {
    for (index, expected) in files.iter().enumerate() {
        let path = file_path(torrent, root, index);
        assert_eq!(
            &std::fs::read(&path).unwrap(),
            expected,
            "{}",
            path.display()
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    /// Any layout (empty files, one-byte files, files shorter than a piece,
    /// pieces over three or more files), blocks in any order with
    /// duplicates: the files come out byte for byte, every piece verifies,
    /// and every block reads back.
    #[test]
    fn any_layout_any_order(
        lengths in prop::collection::vec(prop_oneof![Just(0usize), Just(1), 1usize..40_000, 1usize..200_000], 1..7),
        seed in any::<u64>(),
    ) {
        prop_assume!(lengths.iter().sum::<usize>() > 0);
        let source = tempfile::tempdir().unwrap();
        let (torrent, files) = make(source.path(), &lengths, 16 * 1024);
        let mut order = all_blocks(&torrent);
        // Shuffle and repeat a few, deterministically from the seed.
        let n = order.len();
        for i in 0..n {
            order.swap(i, (seed as usize).wrapping_mul(i + 1) % n);
        }
        let repeats: Vec<BlockRef> = order.iter().step_by(5).copied().collect();
        order.extend(repeats);
        let target = tempfile::tempdir().unwrap();
        let mut storage = download(&torrent, &files, target.path(), &order, StorageConfig::default());
        assert_same_files(&torrent, &files, target.path());
        for piece in 0..torrent.layout().num_pieces() {
            prop_assert!(storage.verify(piece).unwrap());
            for block in torrent.layout().blocks(piece) {
                let mut buf = vec![0u8; block.length as usize];
                storage.read(piece, block.offset, &mut buf).unwrap();
                prop_assert_eq!(buf, source_block(&torrent, &files, block));
            }
        }
    }
}

#[test]
fn a_corrupted_byte_is_caught_on_recheck() {
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
    // Flip one byte of the second file, at its offset 1000.
    let path = file_path(&torrent, target.path(), 1);
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[1000] ^= 0xff;
    std::fs::write(&path, bytes).unwrap();
    let bad_piece = ((50_000 + 1000) / (16 * 1024)) as u32;
    for piece in 0..torrent.layout().num_pieces() {
        assert_eq!(
            storage.verify(piece).unwrap(),
            piece != bad_piece,
            "piece {piece}"
        );
    }
}

#[test]
fn a_longer_file_in_the_way_is_cut_to_the_torrents_length_once_written() {
    let source = tempfile::tempdir().unwrap();
    let (torrent, files) = make(source.path(), &[50_000, 30_000], 16 * 1024);
    let target = tempfile::tempdir().unwrap();
    // The first file is there already, right but for a tail of junk.
    let path = file_path(&torrent, target.path(), 0);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let mut longer = files[0].clone();
    longer.extend_from_slice(&[7u8; 10_000]);
    std::fs::write(&path, &longer).unwrap();
    download(
        &torrent,
        &files,
        target.path(),
        &all_blocks(&torrent),
        StorageConfig::default(),
    );
    assert_same_files(&torrent, &files, target.path());
}

#[test]
fn a_piece_that_does_not_match_is_not_written() {
    let source = tempfile::tempdir().unwrap();
    let (torrent, _) = make(source.path(), &[20_000], 16 * 1024);
    let target = tempfile::tempdir().unwrap();
    let mut storage = Storage::new(&torrent, target.path(), StorageConfig::default()).unwrap();
    assert!(!storage.write_verified(0, &vec![0u8; 16 * 1024]).unwrap());
    assert!(!target.path().join("content").exists(), "nothing created");
    assert!(!storage.verify(0).unwrap(), "missing files hold nothing");
    let err = storage.write_piece(0, &[1, 2, 3]).unwrap_err();
    assert!(
        matches!(err, StorageError::BadRequest { piece: 0, .. }),
        "{err}"
    );
}

#[test]
fn open_files_stay_within_the_bound() {
    let source = tempfile::tempdir().unwrap();
    let lengths: Vec<usize> = (0..60).map(|i| 1000 + i * 37).collect();
    let (torrent, files) = make(source.path(), &lengths, 16 * 1024);
    let target = tempfile::tempdir().unwrap();
    let config = StorageConfig {
        max_open_files: 4,
        ..StorageConfig::default()
    };
    let mut storage = download(
        &torrent,
        &files,
        target.path(),
        &all_blocks(&torrent),
        config,
    );
    assert!(storage.open_files() <= 4);
    for piece in 0..torrent.layout().num_pieces() {
        assert!(storage.verify(piece).unwrap());
        assert!(storage.open_files() <= 4);
    }
    assert_same_files(&torrent, &files, target.path());
}

#[test]
fn symbolic_links_out_of_the_folder_are_refused() {
    let source = tempfile::tempdir().unwrap();
    let (torrent, files) = make(source.path(), &[20_000, 20_000], 16 * 1024);
    let outside = tempfile::tempdir().unwrap();
    let target = tempfile::tempdir().unwrap();
    // The torrent's folder is a link to somewhere else.
    std::os::unix::fs::symlink(outside.path(), target.path().join("content")).unwrap();
    let mut storage = Storage::new(&torrent, target.path(), StorageConfig::default()).unwrap();
    let err = storage
        .write_verified(0, &source_piece(&torrent, &files, 0))
        .unwrap_err();
    assert!(matches!(err, StorageError::OutsideFolder { .. }), "{err}");
    assert_eq!(
        std::fs::read_dir(outside.path()).unwrap().count(),
        0,
        "nothing written outside"
    );

    // A file that is itself a link is not opened either.
    let target = tempfile::tempdir().unwrap();
    let path = file_path(&torrent, target.path(), 0);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::os::unix::fs::symlink(outside.path().join("victim"), &path).unwrap();
    let mut storage = Storage::new(&torrent, target.path(), StorageConfig::default()).unwrap();
    let err = storage
        .write_verified(0, &source_piece(&torrent, &files, 0))
        .unwrap_err();
    assert!(matches!(err, StorageError::OutsideFolder { .. }), "{err}");
    assert!(!outside.path().join("victim").exists());
}

#[test]
fn a_truncated_file_reads_as_missing_and_fails_its_recheck() {
    let source = tempfile::tempdir().unwrap();
    let (torrent, files) = make(source.path(), &[40_000], 16 * 1024);
    let target = tempfile::tempdir().unwrap();
    let mut storage = download(
        &torrent,
        &files,
        target.path(),
        &all_blocks(&torrent),
        StorageConfig::default(),
    );
    let path = file_path(&torrent, target.path(), 0);
    std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(10_000)
        .unwrap();
    let mut buf = vec![0u8; 16 * 1024];
    let err = storage.read(1, 0, &mut buf).unwrap_err();
    assert!(matches!(err, StorageError::Missing { .. }), "{err}");
    assert!(err.to_string().contains("truncated"), "{err}");
    assert!(
        !storage.verify(0).unwrap(),
        "piece 0 lies partly past the new end"
    );
    assert!(!storage.verify(1).unwrap());
}

#[test]
fn the_assembler_holds_to_its_bound_and_refuses_non_blocks() {
    let source = tempfile::tempdir().unwrap();
    let (torrent, files) = make(source.path(), &[100_000], 32 * 1024);
    let layout = torrent.layout().clone();
    // Room for one 32 KiB piece, not two.
    let mut assembler = Assembler::new(layout.clone(), 40 * 1024);
    let b = |piece, index| layout.block(piece, index).unwrap();
    assert_eq!(
        assembler
            .add(b(0, 0), &source_block(&torrent, &files, b(0, 0)))
            .unwrap(),
        Added::Partial
    );
    assert_eq!(
        assembler
            .add(b(0, 0), &source_block(&torrent, &files, b(0, 0)))
            .unwrap(),
        Added::Duplicate
    );
    assert!(assembler.has(b(0, 0)) && !assembler.has(b(0, 1)));
    let full = assembler
        .add(b(1, 0), &source_block(&torrent, &files, b(1, 0)))
        .unwrap_err();
    assert_eq!(
        full,
        AssemblyError::Full {
            held: 32 * 1024,
            limit: 40 * 1024
        }
    );
    assembler.discard(0);
    assert_eq!(assembler.held(), 0);
    assert_eq!(
        assembler
            .add(b(1, 0), &source_block(&torrent, &files, b(1, 0)))
            .unwrap(),
        Added::Partial
    );
    let bad = [
        BlockRef {
            piece: 0,
            offset: 100,
            length: 16384,
        },
        BlockRef {
            piece: 0,
            offset: 0,
            length: 100,
        },
        BlockRef {
            piece: 99,
            offset: 0,
            length: 16384,
        },
    ];
    for block in bad {
        assert_eq!(
            assembler.add(block, &vec![0; block.length as usize]),
            Err(AssemblyError::NotABlock(block))
        );
    }
    // Data of the wrong length for a good block.
    assert_eq!(
        assembler.add(b(2, 0), &[0; 10]),
        Err(AssemblyError::NotABlock(b(2, 0)))
    );
}

/// A piece started in a recycled buffer (of a completed or a discarded
/// piece) comes out as its own bytes, whatever the buffer held.
#[test]
fn a_piece_in_a_recycled_buffer_is_only_its_own_bytes() {
    let source = tempfile::tempdir().unwrap();
    let (torrent, files) = make(source.path(), &[100_000], 32 * 1024);
    let layout = torrent.layout().clone();
    let mut assembler = Assembler::new(layout.clone(), usize::MAX);
    let block = |piece, index| layout.block(piece, index).unwrap();
    let add = |assembler: &mut Assembler, piece, index| {
        let b = block(piece, index);
        assembler
            .add(b, &source_block(&torrent, &files, b))
            .unwrap()
    };
    // A buffer full of a byte no piece holds, then a discarded piece's.
    assembler.recycle(vec![0xa5; 32 * 1024]);
    assert_eq!(add(&mut assembler, 0, 0), Added::Partial);
    assembler.discard(0);
    for piece in 0..layout.num_pieces() {
        for index in (0..layout.num_blocks(piece).unwrap()).rev() {
            if let Added::Complete(data) = add(&mut assembler, piece, index) {
                assert_eq!(data, source_piece(&torrent, &files, piece), "piece {piece}");
                assembler.recycle(data);
            }
        }
    }
    // A spare buffer of another length is not taken for a piece.
    assembler.recycle(vec![0xa5; 7]);
    assert_eq!(add(&mut assembler, 1, 1), Added::Partial);
    let Added::Complete(data) = add(&mut assembler, 1, 0) else {
        panic!("piece 1 is whole");
    };
    assert_eq!(data, source_piece(&torrent, &files, 1));
}

/// A full disk stops the download with a clear error; the pieces verified
/// before it stay verified, the one being written is not counted, and once
/// there is room again the download completes.
#[test]
fn a_full_disk_loses_no_verified_piece() {
    let source = tempfile::tempdir().unwrap();
    let (torrent, files) = make(source.path(), &[40_000, 60_000], 16 * 1024);
    let target = tempfile::tempdir().unwrap();
    let config = StorageConfig {
        disk_space: Some(50_000),
        ..StorageConfig::default()
    };
    let mut storage = Storage::new(&torrent, target.path(), config).unwrap();
    let mut assembler = Assembler::new(torrent.layout().clone(), usize::MAX);
    let mut verified = Vec::new();
    let mut failure = None;
    for block in all_blocks(&torrent) {
        if let Added::Complete(piece) = assembler
            .add(block, &source_block(&torrent, &files, block))
            .unwrap()
        {
            match storage.write_verified(block.piece, &piece) {
                Ok(true) => verified.push(block.piece),
                Ok(false) => panic!("piece {} failed its hash", block.piece),
                Err(err) => {
                    failure = Some(err);
                    break;
                }
            }
        }
    }
    let err = failure.expect("the disk filled up");
    assert!(matches!(err, StorageError::DiskFull { .. }), "{err}");
    assert!(
        err.to_string().contains("is full: free some space"),
        "{err}"
    );
    assert_eq!(
        verified,
        [0, 1, 2],
        "three 16 KiB pieces fit in 50,000 bytes"
    );
    // A fresh check agrees: exactly the verified pieces are on disk.
    let mut after = Storage::new(&torrent, target.path(), StorageConfig::default()).unwrap();
    let have = after.check(None, |_| {}).unwrap();
    let had: Vec<u32> = (0..have.len() as u32)
        .filter(|&p| have[p as usize])
        .collect();
    assert_eq!(had, verified);
    // With room again, the rest is written and everything checks.
    for piece in 0..torrent.layout().num_pieces() {
        if !have[piece as usize] {
            assert!(
                after
                    .write_verified(piece, &source_piece(&torrent, &files, piece))
                    .unwrap()
            );
        }
    }
    assert!(after.check(None, |_| {}).unwrap().iter().all(|&h| h));
    assert_same_files(&torrent, &files, target.path());
}

/// Reads follow the same rule as writes: a folder swapped for a link out of
/// the download folder is not read through (a seeder must not send files
/// from elsewhere), and a FIFO where a file should be does not block.
#[test]
fn reads_refuse_links_out_and_odd_files() {
    let source = tempfile::tempdir().unwrap();
    let (torrent, files) = make(source.path(), &[20_000, 20_000], 16 * 1024);
    let target = tempfile::tempdir().unwrap();
    download(
        &torrent,
        &files,
        target.path(),
        &all_blocks(&torrent),
        StorageConfig::default(),
    );
    // Move the data out, and leave a link to it where it was.
    let outside = tempfile::tempdir().unwrap();
    std::fs::rename(target.path().join("content"), outside.path().join("moved")).unwrap();
    std::os::unix::fs::symlink(outside.path().join("moved"), target.path().join("content"))
        .unwrap();
    let mut storage = Storage::new(&torrent, target.path(), StorageConfig::default()).unwrap();
    let mut buf = vec![0u8; 100];
    let err = storage.read(0, 0, &mut buf).unwrap_err();
    assert!(matches!(err, StorageError::OutsideFolder { .. }), "{err}");

    // A FIFO at a file's path: not read (it would block), not counted.
    let target = tempfile::tempdir().unwrap();
    let path = file_path(&torrent, target.path(), 0);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let fifo = std::ffi::CString::new(path.to_str().unwrap()).unwrap();
    // SAFETY: a valid NUL-terminated path; mkfifo only creates a node.
    #[allow(unsafe_code)]
    let made = unsafe { libc::mkfifo(fifo.as_ptr(), 0o600) };
    assert_eq!(made, 0);
    let mut storage = Storage::new(&torrent, target.path(), StorageConfig::default()).unwrap();
    assert!(!storage.verify(0).unwrap());
}

#[test]
fn writing_to_a_file_deleted_or_truncated_underneath_is_an_error() {
    let source = tempfile::tempdir().unwrap();
    let (torrent, files) = make(source.path(), &[64 * 1024], 16 * 1024);
    for truncate in [false, true] {
        let target = tempfile::tempdir().unwrap();
        let mut storage = Storage::new(&torrent, target.path(), StorageConfig::default()).unwrap();
        storage
            .write_verified(0, &source_piece(&torrent, &files, 0))
            .unwrap();
        let path = file_path(&torrent, target.path(), 0);
        if truncate {
            std::fs::OpenOptions::new()
                .write(true)
                .open(&path)
                .unwrap()
                .set_len(1000)
                .unwrap();
        } else {
            std::fs::remove_file(&path).unwrap();
        }
        // The handle is still open and cached: the write must not vanish
        // into a deleted file or leave piece 0 as a hole.
        let err = storage
            .write_verified(1, &source_piece(&torrent, &files, 1))
            .unwrap_err();
        assert!(
            matches!(err, StorageError::Missing { .. }),
            "truncate {truncate}: {err}"
        );
    }
}

#[test]
fn full_allocation_reserves_every_block_and_sparse_does_not() {
    use std::os::unix::fs::MetadataExt as _;
    let source = tempfile::tempdir().unwrap();
    let length = 4 * 1024 * 1024;
    let (torrent, files) = make(source.path(), &[length], 256 * 1024);
    let mut allocated = Vec::new();
    for allocation in [Allocation::Sparse, Allocation::Full] {
        let target = tempfile::tempdir().unwrap();
        let config = StorageConfig {
            allocation,
            ..StorageConfig::default()
        };
        let mut storage = Storage::new(&torrent, target.path(), config).unwrap();
        storage
            .write_verified(0, &source_piece(&torrent, &files, 0))
            .unwrap();
        let meta = std::fs::metadata(file_path(&torrent, target.path(), 0)).unwrap();
        assert_eq!(meta.len(), length as u64);
        allocated.push(meta.blocks() * 512);
    }
    // Sparse: about one piece on disk. Full: the whole file (tmpfs, ext4,
    // xfs and btrfs all preallocate).
    assert!(allocated[0] < length as u64 / 2, "{allocated:?}");
    assert!(allocated[1] >= length as u64, "{allocated:?}");
}
