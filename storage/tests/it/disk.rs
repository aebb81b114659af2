//! The disk thread, driven from async tasks.

use bytes::Bytes;
use futures::future::join_all;
use storage::{AssemblyError, BlockOutcome, Disk, DiskError, Storage, StorageConfig};

use super::{all_blocks, make, source_block};

#[tokio::test]
async fn concurrent_writers_through_a_small_queue_get_every_piece_verified_once() {
    let source = tempfile::tempdir().unwrap();
    let (torrent, files) = make(source.path(), &[150_000, 1, 70_000], 16 * 1024);
    let target = tempfile::tempdir().unwrap();
    let storage = Storage::new(&torrent, target.path(), StorageConfig::default()).unwrap();
    let (disk, thread) = Disk::start(storage, usize::MAX, 2).unwrap();
    // Four "peers", each sending every block (so every block arrives four
    // times), all at once through a queue of two.
    let blocks = all_blocks(&torrent);
    let peers = (0..4).map(|peer| {
        let disk = disk.clone();
        let mut order = blocks.clone();
        order.rotate_left(peer * 3 % blocks.len());
        let jobs: Vec<_> = order
            .into_iter()
            .map(|b| (b, Bytes::from(source_block(&torrent, &files, b))))
            .collect();
        tokio::spawn(async move {
            let mut outcomes = Vec::new();
            for (block, data) in jobs {
                outcomes.push(disk.write_block(block, data).await.unwrap());
            }
            outcomes
        })
    });
    let outcomes: Vec<BlockOutcome> = join_all(peers)
        .await
        .into_iter()
        .flat_map(|r| r.unwrap())
        .collect();
    let mut verified: Vec<u32> = outcomes
        .iter()
        .filter_map(|o| match o {
            BlockOutcome::PieceVerified { piece, .. } => Some(*piece),
            _ => None,
        })
        .collect();
    verified.sort();
    let num_pieces = torrent.layout().num_pieces();
    // A piece completed, written and released can be started again by a
    // late duplicate; what matters is each is verified and none fails.
    assert!(
        (0..num_pieces).all(|p| verified.contains(&p)),
        "{verified:?}"
    );
    assert!(
        !outcomes
            .iter()
            .any(|o| matches!(o, BlockOutcome::PieceFailed { .. }))
    );
    let have = disk.check(None).await.unwrap();
    assert!(have.iter().all(|&h| h));
    let block = all_blocks(&torrent)[3];
    assert_eq!(
        disk.read_block(block).await.unwrap(),
        source_block(&torrent, &files, block)
    );
    let resume = disk.resume_data(have).await.unwrap();
    assert!(resume.pieces.iter().all(|&p| p));
    drop(disk);
    thread.join();
}

#[tokio::test]
async fn a_lying_peer_fails_its_piece_and_an_honest_one_fixes_it() {
    let source = tempfile::tempdir().unwrap();
    let (torrent, files) = make(source.path(), &[40_000], 32 * 1024);
    let target = tempfile::tempdir().unwrap();
    let storage = Storage::new(&torrent, target.path(), StorageConfig::default()).unwrap();
    let (disk, thread) = Disk::start(storage, 1 << 20, 4).unwrap();
    let blocks: Vec<_> = torrent.layout().blocks(0).collect();
    let mut lie = source_block(&torrent, &files, blocks[1]);
    lie[0] ^= 0xff;
    let honest = source_block(&torrent, &files, blocks[0]).into();
    assert_eq!(
        disk.send_block(blocks[0], honest, 1)
            .await
            .unwrap()
            .await
            .unwrap(),
        BlockOutcome::Stored
    );
    // The failure names who sent each block that was hashed.
    assert_eq!(
        disk.send_block(blocks[1], lie.into(), 2)
            .await
            .unwrap()
            .await
            .unwrap(),
        BlockOutcome::PieceFailed {
            piece: 0,
            senders: vec![1, 2]
        }
    );
    assert!(!disk.check(None).await.unwrap()[0], "nothing written");
    // An honest peer sends the piece again: it is verified, and comparing
    // block by block with the failed copy names the liar (sender 2), not
    // the peer whose block was good (sender 1).
    let mut last = None;
    for block in &blocks {
        let data = source_block(&torrent, &files, *block).into();
        last = Some(
            disk.send_block(*block, data, 3)
                .await
                .unwrap()
                .await
                .unwrap(),
        );
    }
    assert_eq!(
        last,
        Some(BlockOutcome::PieceVerified {
            piece: 0,
            liars: vec![2]
        })
    );
    assert!(disk.check(None).await.unwrap()[0]);
    drop(disk);
    thread.join();
}

#[tokio::test]
async fn the_memory_bound_is_reported_not_exceeded() {
    let source = tempfile::tempdir().unwrap();
    let (torrent, files) = make(source.path(), &[200_000], 32 * 1024);
    let target = tempfile::tempdir().unwrap();
    let storage = Storage::new(&torrent, target.path(), StorageConfig::default()).unwrap();
    // Room for one unfinished 32 KiB piece.
    let (disk, thread) = Disk::start(storage, 40 * 1024, 4).unwrap();
    let first = torrent.layout().block(0, 0).unwrap();
    let second = torrent.layout().block(1, 0).unwrap();
    disk.write_block(first, source_block(&torrent, &files, first).into())
        .await
        .unwrap();
    let err = disk
        .write_block(second, source_block(&torrent, &files, second).into())
        .await
        .unwrap_err();
    assert!(
        matches!(err, DiskError::Block(AssemblyError::Full { .. })),
        "{err}"
    );
    drop(disk);
    thread.join();
}

/// Writes every block of `piece` from the source, in order.
async fn write_piece(disk: &Disk, torrent: &metainfo::Metainfo, files: &[Vec<u8>], piece: u32) {
    for block in torrent.layout().blocks(piece) {
        let data = Bytes::from(source_block(torrent, files, block));
        disk.write_block(block, data).await.unwrap();
    }
}

#[tokio::test]
async fn hostile_reads_are_refused_before_allocating_and_late_blocks_are_answered() {
    let source = tempfile::tempdir().unwrap();
    let (torrent, files) = make(source.path(), &[40_000], 16 * 1024);
    let target = tempfile::tempdir().unwrap();
    let storage = Storage::new(&torrent, target.path(), StorageConfig::default()).unwrap();
    let (disk, thread) = Disk::start(storage, 1 << 20, 4).unwrap();
    write_piece(&disk, &torrent, &files, 0).await;
    // A request for 4 GiB, or past the piece, allocates nothing and fails.
    for length in [u32::MAX, 16 * 1024 + 1] {
        let block = metainfo::BlockRef {
            piece: 0,
            offset: 0,
            length,
        };
        assert!(
            matches!(disk.read_block(block).await, Err(DiskError::Storage(_))),
            "{length}"
        );
    }
    // A block for a piece already on disk is answered as such, so a caller
    // that missed the first answer still learns it.
    let late = torrent.layout().block(0, 0).unwrap();
    let outcome = disk
        .write_block(late, source_block(&torrent, &files, late).into())
        .await
        .unwrap();
    assert_eq!(outcome, BlockOutcome::AlreadyVerified(0));
    drop(disk);
    thread.join();
}

/// Seeding from data already complete touches no file for writing: an
/// empty file that is hard-linked (as cross-seeding tools do) is left
/// alone, and the check reports every piece.
#[tokio::test]
async fn a_complete_copy_with_a_hard_linked_empty_file_checks_whole() {
    let source = tempfile::tempdir().unwrap();
    let (torrent, _) = make(source.path(), &[0, 40_000], 16 * 1024);
    let empty = super::file_path(&torrent, source.path(), 0);
    assert_eq!(std::fs::metadata(&empty).unwrap().len(), 0);
    std::fs::hard_link(&empty, source.path().join("elsewhere")).unwrap();
    let storage = Storage::new(&torrent, source.path(), StorageConfig::default()).unwrap();
    let (disk, thread) = Disk::start(storage, 1 << 20, 4).unwrap();
    let have = disk.check(None).await.unwrap();
    assert!(have.iter().all(|h| *h), "{have:?}");
    drop(disk);
    thread.join();
}

/// Two failed copies with a different liar in each: the good copy names
/// both liars, and none of the peers whose blocks were good.
#[tokio::test]
async fn liars_of_several_failed_copies_are_all_named() {
    let source = tempfile::tempdir().unwrap();
    let (torrent, files) = make(source.path(), &[40_000], 32 * 1024);
    let target = tempfile::tempdir().unwrap();
    let storage = Storage::new(&torrent, target.path(), StorageConfig::default()).unwrap();
    let (disk, thread) = Disk::start(storage, 1 << 20, 4).unwrap();
    let blocks: Vec<_> = torrent.layout().blocks(0).collect();
    let good = |i: usize| Bytes::from(source_block(&torrent, &files, blocks[i]));
    let bad = |i: usize| {
        let mut data = source_block(&torrent, &files, blocks[i]);
        data[7] ^= 0x55;
        Bytes::from(data)
    };
    let send = |i: usize, data: Bytes, sender: u64| {
        let disk = disk.clone();
        let block = blocks[i];
        async move {
            disk.send_block(block, data, sender)
                .await
                .unwrap()
                .await
                .unwrap()
        }
    };
    // Copy 1: 1 honest, 2 lies. Copy 2: 5 lies, 6 honest.
    send(0, good(0), 1).await;
    assert!(matches!(
        send(1, bad(1), 2).await,
        BlockOutcome::PieceFailed { .. }
    ));
    send(0, bad(0), 5).await;
    assert!(matches!(
        send(1, good(1), 6).await,
        BlockOutcome::PieceFailed { .. }
    ));
    send(0, good(0), 7).await;
    assert_eq!(
        send(1, good(1), 7).await,
        BlockOutcome::PieceVerified {
            piece: 0,
            liars: vec![2, 5]
        }
    );
    drop(disk);
    thread.join();
}

#[tokio::test]
async fn a_batch_of_blocks_gets_one_outcome_each_in_order() {
    let source = tempfile::tempdir().unwrap();
    // Pieces of two blocks, and a short last piece.
    let (torrent, files) = make(source.path(), &[100_000], 32 * 1024);
    let target = tempfile::tempdir().unwrap();
    let storage = Storage::new(&torrent, target.path(), StorageConfig::default()).unwrap();
    // Room for one unfinished piece only.
    let (disk, thread) = Disk::start(storage, 40 * 1024, 1).unwrap();
    let blocks = all_blocks(&torrent);
    let data = |b| Bytes::from(source_block(&torrent, &files, b));
    // Piece 0 whole, a duplicate of its first block, the first block of
    // piece 1, then the first block of piece 2 (over the memory bound) and
    // a block that does not exist.
    let bogus = metainfo::BlockRef {
        piece: 3,
        offset: 5,
        length: 16 * 1024,
    };
    let batch = vec![
        (blocks[0], data(blocks[0])),
        (blocks[1], data(blocks[1])),
        (blocks[0], data(blocks[0])),
        (blocks[2], data(blocks[2])),
        (blocks[4], data(blocks[4])),
        (bogus, Bytes::from(vec![0; 16 * 1024])),
    ];
    let outcomes = disk.send_blocks(batch, 7).await.unwrap().await;
    assert_eq!(outcomes.len(), 6);
    assert_eq!(outcomes[0].as_ref().unwrap(), &BlockOutcome::Stored);
    assert_eq!(
        outcomes[1].as_ref().unwrap(),
        &BlockOutcome::PieceVerified {
            piece: 0,
            liars: vec![]
        }
    );
    assert_eq!(
        outcomes[2].as_ref().unwrap(),
        &BlockOutcome::AlreadyVerified(0)
    );
    assert_eq!(outcomes[3].as_ref().unwrap(), &BlockOutcome::Stored);
    assert!(
        matches!(
            outcomes[4],
            Err(DiskError::Block(AssemblyError::Full { .. }))
        ),
        "{:?}",
        outcomes[4]
    );
    assert!(
        matches!(
            outcomes[5],
            Err(DiskError::Block(AssemblyError::NotABlock(_)))
        ),
        "{:?}",
        outcomes[5]
    );
    assert!(disk.check(None).await.unwrap()[0]);
    drop(disk);
    thread.join();
}

#[tokio::test]
async fn blocks_read_together_match_blocks_read_alone() {
    let source = tempfile::tempdir().unwrap();
    // Two files, so a run of blocks crosses from one to the other.
    let (torrent, files) = make(source.path(), &[40_000, 60_000], 64 * 1024);
    let storage = Storage::new(&torrent, source.path(), StorageConfig::default()).unwrap();
    let (disk, thread) = Disk::start(storage, 1 << 20, 4).unwrap();
    assert!(disk.check(None).await.unwrap().iter().all(|h| *h));
    let blocks = all_blocks(&torrent);
    // Past the end of its piece.
    let bogus = metainfo::BlockRef {
        piece: 0,
        offset: 64 * 1024 - 100,
        length: 16 * 1024,
    };
    // A run in piece 0, a gap, a block out of order, a bad block between
    // two that follow each other, and the short last block.
    let asked = vec![
        blocks[0],
        blocks[1],
        blocks[2],
        blocks[5],
        blocks[4],
        blocks[5],
        bogus,
        blocks[6],
        *blocks.last().unwrap(),
    ];
    let answers = disk.read_blocks(asked.clone()).await.unwrap();
    assert_eq!(answers.len(), asked.len());
    for (block, answer) in asked.iter().zip(&answers) {
        if *block == bogus {
            assert!(answer.is_err(), "{:?}", answer.as_ref().map(|b| b.len()));
        } else {
            assert!(
                answer.as_ref().unwrap()[..] == source_block(&torrent, &files, *block)[..],
                "{block:?}"
            );
        }
    }
    drop(disk);
    thread.join();
}

/// A download of chosen files makes the empty files among them once every
/// piece of the chosen files is in (and none of the others), or right
/// after the check when the chosen files hold no piece at all;
/// `Disk::files_made` says when they are there.
#[tokio::test]
async fn chosen_empty_files_are_made_once_the_chosen_pieces_are_in() {
    let source = tempfile::tempdir().unwrap();
    let (torrent, files) = make(source.path(), &[40_000, 0, 40_000, 0], 16 * 1024);
    let path = |dir: &std::path::Path, i| super::file_path(&torrent, dir, i);
    let lengths: Vec<u64> = torrent.info().files().iter().map(|f| f.length).collect();
    let (empty, full): (Vec<usize>, Vec<usize>) =
        (0..lengths.len()).partition(|i| lengths[*i] == 0);
    let only = |chosen: &[usize]| StorageConfig {
        wanted: Some((0..lengths.len()).map(|i| chosen.contains(&i)).collect()),
        ..StorageConfig::default()
    };

    // A full file and an empty one.
    let target = tempfile::tempdir().unwrap();
    let storage = Storage::new(&torrent, target.path(), only(&[full[0], empty[0]])).unwrap();
    let (disk, thread) = Disk::start(storage, 1 << 20, 4).unwrap();
    disk.check(None).await.unwrap();
    for piece in torrent.layout().file_pieces(full[0]) {
        assert!(
            !path(target.path(), empty[0]).exists(),
            "before piece {piece}"
        );
        write_piece(&disk, &torrent, &files, piece).await;
    }
    disk.files_made().await.unwrap().await.unwrap();
    assert_eq!(
        std::fs::metadata(path(target.path(), empty[0]))
            .unwrap()
            .len(),
        0
    );
    assert!(!path(target.path(), empty[1]).exists());
    assert!(!path(target.path(), full[1]).exists());
    drop(disk);
    thread.join();

    // Only an empty file: nothing to download, so at once.
    let target = tempfile::tempdir().unwrap();
    let storage = Storage::new(&torrent, target.path(), only(&[empty[1]])).unwrap();
    let (disk, thread) = Disk::start(storage, 1 << 20, 4).unwrap();
    disk.check(None).await.unwrap();
    disk.files_made().await.unwrap().await.unwrap();
    assert_eq!(
        std::fs::metadata(path(target.path(), empty[1]))
            .unwrap()
            .len(),
        0
    );
    assert!(!path(target.path(), empty[0]).exists());
    drop(disk);
    thread.join();
}

/// The part file a download of chosen files keeps goes once a later
/// download of every file completes: nothing reads it any more.
#[tokio::test]
async fn a_full_download_removes_the_part_file_a_partial_one_left() {
    let source = tempfile::tempdir().unwrap();
    let (torrent, files) = make(source.path(), &[40_000, 40_000], 16 * 1024);
    let target = tempfile::tempdir().unwrap();
    let parts = target
        .path()
        .join(format!(".{}.parts", torrent.info_hash().to_hex()));
    let download = |wanted: Option<Vec<bool>>| {
        let storage = Storage::new(
            &torrent,
            target.path(),
            StorageConfig {
                wanted: wanted.clone(),
                ..StorageConfig::default()
            },
        )
        .unwrap();
        let pieces: Vec<u32> = match &wanted {
            Some(_) => torrent.layout().file_pieces(0).collect(),
            None => (0..torrent.layout().num_pieces()).collect(),
        };
        let (torrent, files) = (&torrent, &files);
        async move {
            let (disk, thread) = Disk::start(storage, 1 << 20, 4).unwrap();
            disk.check(None).await.unwrap();
            for piece in pieces {
                write_piece(&disk, torrent, files, piece).await;
            }
            drop(disk);
            thread.join();
        }
    };
    // The first file's last piece reaches into the second file.
    download(Some(vec![true, false])).await;
    assert!(parts.exists());
    download(None).await;
    assert!(!parts.exists());
}

/// A banned peer's blocks in unfinished pieces go, with the pieces that
/// hold them; pieces it had no part in are kept.
#[tokio::test]
async fn forgetting_a_sender_drops_the_unfinished_pieces_it_had_a_part_in() {
    let source = tempfile::tempdir().unwrap();
    let (torrent, files) = make(source.path(), &[3 * 64 * 1024], 64 * 1024);
    let target = tempfile::tempdir().unwrap();
    let storage = Storage::new(&torrent, target.path(), StorageConfig::default()).unwrap();
    let (disk, thread) = Disk::start(storage, 1 << 20, 4).unwrap();
    disk.check(None).await.unwrap();
    let at = |piece: u32, index: u32| {
        let block = torrent.layout().block(piece, index).unwrap();
        (block, Bytes::from(source_block(&torrent, &files, block)))
    };
    // Liar 7 sent a block of pieces 0 and 2, honest 1 one of pieces 0 and 1.
    for (piece, index, sender) in [(0, 0, 7), (2, 0, 7), (0, 1, 1), (1, 0, 1)] {
        let (block, data) = at(piece, index);
        let outcome = disk
            .send_block(block, data, sender)
            .await
            .unwrap()
            .await
            .unwrap();
        assert_eq!(outcome, BlockOutcome::Stored);
    }
    assert_eq!(disk.forget_sender(7).await.unwrap(), vec![0, 2]);
    assert_eq!(disk.forget_sender(7).await.unwrap(), Vec::<u32>::new());
    // Piece 1 kept its block: three more finish it. Piece 0 starts over.
    let send = |piece, index| {
        let (block, data) = at(piece, index);
        let disk = disk.clone();
        async move {
            disk.send_block(block, data, 1)
                .await
                .unwrap()
                .await
                .unwrap()
        }
    };
    assert_eq!(send(1, 1).await, BlockOutcome::Stored);
    assert_eq!(send(1, 2).await, BlockOutcome::Stored);
    let outcome = send(1, 3).await;
    assert!(
        matches!(outcome, BlockOutcome::PieceVerified { piece: 1, .. }),
        "{outcome:?}"
    );
    assert_eq!(send(0, 0).await, BlockOutcome::Stored);
    drop(disk);
    thread.join();
}
