//! The async face of storage: one dedicated thread owns the [`Storage`] and
//! the [`Assembler`]; async tasks send it jobs over a bounded channel and get
//! answers on oneshots. Disk work never runs on the async runtime, and a
//! slow disk slows its callers (the channel fills) instead of growing memory.

use std::collections::HashMap;
use std::thread::JoinHandle;

use bytes::Bytes;
use metainfo::{BLOCK_SIZE, BlockRef};
use tokio::sync::{mpsc, oneshot};

use crate::assembler::{Added, Assembler, AssemblyError};
use crate::error::StorageError;
use crate::resume::ResumeData;
use crate::store::Storage;

/// What writing a block led to.
#[derive(Debug, PartialEq, Eq)]
pub enum BlockOutcome {
    /// Held; its piece still lacks blocks.
    Stored,
    /// Already held (an endgame duplicate).
    Duplicate,
    /// Its piece is already verified and on disk (said again, in case the
    /// caller missed the first answer).
    AlreadyVerified(u32),
    /// It completed its piece, which matched its hash and is on disk.
    PieceVerified {
        /// The piece.
        piece: u32,
        /// Senders of blocks of an earlier, failed copy of this piece whose
        /// data differs from the good block: the peers that lied. Known
        /// only now, from comparing each block's hash in both copies (what
        /// libtorrent calls a smart ban).
        liars: Vec<u64>,
    },
    /// It completed its piece, which did not match: nothing was written, and
    /// the piece must be downloaded again (from other peers).
    PieceFailed {
        /// The piece.
        piece: u32,
        /// Who sent each of its blocks (the `sender` of
        /// [`Disk::send_block`]): the blocks that were hashed, not copies
        /// that came later.
        senders: Vec<u64>,
    },
}

/// Why a disk job failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DiskError {
    /// The disk refused (see [`StorageError`]).
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// The block was refused (see [`AssemblyError`]).
    #[error(transparent)]
    Block(#[from] AssemblyError),
    /// The disk thread has stopped.
    #[error("the disk thread has stopped")]
    Stopped,
}

/// The longest read a peer may ask for: 128 KiB, eight blocks (BEP 3 lets
/// clients refuse more than 16 KiB; some ask for up to this).
const MAX_READ: u32 = 8 * BLOCK_SIZE;

/// The most bytes [`Disk::read_blocks`] reads with one system call.
const MAX_READ_RUN: u64 = 1 << 20;

enum Job {
    Write {
        block: BlockRef,
        data: Bytes,
        sender: u64,
        reply: oneshot::Sender<Result<BlockOutcome, DiskError>>,
    },
    WriteMany {
        blocks: Vec<(BlockRef, Bytes)>,
        sender: u64,
        reply: oneshot::Sender<Vec<Result<BlockOutcome, DiskError>>>,
    },
    Read {
        block: BlockRef,
        reply: oneshot::Sender<Result<Bytes, DiskError>>,
    },
    ReadMany {
        blocks: Vec<BlockRef>,
        reply: oneshot::Sender<Vec<Result<Bytes, DiskError>>>,
    },
    Check {
        resume: Option<ResumeData>,
        reply: oneshot::Sender<Result<Vec<bool>, DiskError>>,
    },
    Resume {
        have: Vec<bool>,
        reply: oneshot::Sender<Result<ResumeData, DiskError>>,
    },
    Forget {
        sender: u64,
        reply: oneshot::Sender<Vec<u32>>,
    },
    FilesMade {
        reply: oneshot::Sender<()>,
    },
}

/// A cheap, cloneable handle to the disk thread.
#[derive(Clone, Debug)]
pub struct Disk {
    jobs: mpsc::Sender<Job>,
}

/// The disk thread; joined by [`DiskThread::join`] once every [`Disk`]
/// handle is gone.
#[derive(Debug)]
pub struct DiskThread(JoinHandle<()>);

impl DiskThread {
    /// Waits for the thread to finish its queued jobs and stop.
    pub fn join(self) {
        let _ = self.0.join();
    }
}

impl Disk {
    /// Starts the disk thread for `storage`, holding at most `memory_limit`
    /// bytes of unfinished pieces and `queue` waiting jobs.
    pub fn start(
        storage: Storage,
        memory_limit: usize,
        queue: usize,
    ) -> std::io::Result<(Disk, DiskThread)> {
        let (jobs, mut inbox) = mpsc::channel::<Job>(queue.max(1));
        let thread = std::thread::Builder::new()
            .name("btc-disk".into())
            .spawn(move || {
                let mut state = State::new(storage, memory_limit);
                let mut last_step = std::time::Instant::now();
                loop {
                    // Background work (making empty files) goes a step at
                    // a time between jobs: whenever none waits, and at
                    // least every `STEP_EVERY` when they never stop coming
                    // (a busy seed on a slow disk).
                    let job = if state.empty_files_from.is_some() {
                        if last_step.elapsed() >= STEP_EVERY {
                            state.make_empty_files();
                            last_step = std::time::Instant::now();
                        }
                        match inbox.try_recv() {
                            Ok(job) => job,
                            Err(mpsc::error::TryRecvError::Empty) => {
                                state.make_empty_files();
                                last_step = std::time::Instant::now();
                                continue;
                            }
                            Err(mpsc::error::TryRecvError::Disconnected) => break,
                        }
                    } else {
                        match inbox.blocking_recv() {
                            Some(job) => job,
                            None => break,
                        }
                    };
                    state.run(job);
                }
            })?;
        Ok((Disk { jobs }, DiskThread(thread)))
    }

    async fn ask<T>(&self, job: impl FnOnce(oneshot::Sender<T>) -> Job) -> Result<T, DiskError> {
        let (reply, answer) = oneshot::channel();
        self.jobs
            .send(job(reply))
            .await
            .map_err(|_| DiskError::Stopped)?;
        answer.await.map_err(|_| DiskError::Stopped)
    }

    /// Hands over a block received from a peer. Waits while the disk is
    /// behind (back-pressure).
    pub async fn write_block(
        &self,
        block: BlockRef,
        data: Bytes,
    ) -> Result<BlockOutcome, DiskError> {
        self.ask(|reply| Job::Write {
            block,
            data,
            sender: 0,
            reply,
        })
        .await?
    }

    /// Hands over a block without waiting for what becomes of it: waits only
    /// for room in the queue (back-pressure), then returns the answer to
    /// come. A connection can so keep reading while the disk thread works,
    /// with as many blocks in flight as it lets pile up. `sender` tells
    /// peers apart in [`BlockOutcome::PieceFailed`].
    pub async fn send_block(
        &self,
        block: BlockRef,
        data: Bytes,
        sender: u64,
    ) -> Result<PendingBlock, DiskError> {
        let (reply, answer) = oneshot::channel();
        self.jobs
            .send(Job::Write {
                block,
                data,
                sender,
                reply,
            })
            .await
            .map_err(|_| DiskError::Stopped)?;
        Ok(PendingBlock(answer))
    }

    /// Hands over several blocks from one sender as one job, like
    /// [`Disk::send_block`] for each in order: one message to the disk
    /// thread and one answer back instead of one per block. A connection
    /// that read several blocks at once so wakes the disk thread once.
    pub async fn send_blocks(
        &self,
        blocks: Vec<(BlockRef, Bytes)>,
        sender: u64,
    ) -> Result<PendingBlocks, DiskError> {
        let count = blocks.len();
        let (reply, answer) = oneshot::channel();
        self.jobs
            .send(Job::WriteMany {
                blocks,
                sender,
                reply,
            })
            .await
            .map_err(|_| DiskError::Stopped)?;
        Ok(PendingBlocks { answer, count })
    }

    /// Reads a block to send to a peer.
    pub async fn read_block(&self, block: BlockRef) -> Result<Bytes, DiskError> {
        self.ask(|reply| Job::Read { block, reply }).await?
    }

    /// Reads several blocks as one job, one answer each in order. Blocks
    /// that follow each other in a piece are read with one system call
    /// and share its buffer.
    pub async fn read_blocks(
        &self,
        blocks: Vec<BlockRef>,
    ) -> Result<Vec<Result<Bytes, DiskError>>, DiskError> {
        self.ask(|reply| Job::ReadMany { blocks, reply }).await
    }

    /// Which pieces the disk holds (see [`Storage::check`]).
    pub async fn check(&self, resume: Option<ResumeData>) -> Result<Vec<bool>, DiskError> {
        self.ask(|reply| Job::Check { resume, reply }).await?
    }

    /// Resume data for the pieces in `have` that the disk thread itself
    /// verified, with the files flushed and stamped now.
    pub async fn resume_data(&self, have: Vec<bool>) -> Result<ResumeData, DiskError> {
        self.ask(|reply| Job::Resume { have, reply }).await?
    }

    /// Waits until the zero-length files of a complete download are made.
    /// The disk thread makes them a few at a time between other jobs once
    /// the last wanted piece is in (or the check finds every one), so a
    /// download of many such files can be stopped, or served, meanwhile.
    /// Asked when none are being made, the answer is at once: ask after
    /// the check or the write that completed the download. A file that
    /// cannot be made is logged, not waited for.
    ///
    /// Returns once the question is queued: the answer to come holds no
    /// handle, so a caller waiting for it does not keep the thread from
    /// ending when every [`Disk`] is dropped (the answer then never comes).
    pub async fn files_made(&self) -> Result<PendingFiles, DiskError> {
        let (reply, answer) = oneshot::channel();
        self.jobs
            .send(Job::FilesMade { reply })
            .await
            .map_err(|_| DiskError::Stopped)?;
        Ok(PendingFiles(answer))
    }

    /// Drops the unfinished pieces holding a block from `sender` (a peer
    /// banned for bad data) and says which they were: they must be asked
    /// for again, whole.
    pub async fn forget_sender(&self, sender: u64) -> Result<Vec<u32>, DiskError> {
        self.ask(|reply| Job::Forget { sender, reply }).await
    }
}

/// The answer to come for [`Disk::files_made`]: ready once the empty
/// files are made, or with [`DiskError::Stopped`] if the thread ended first.
#[derive(Debug)]
pub struct PendingFiles(oneshot::Receiver<()>);

impl std::future::Future for PendingFiles {
    type Output = Result<(), DiskError>;

    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        std::pin::Pin::new(&mut self.0)
            .poll(cx)
            .map(|answer| answer.map_err(|_| DiskError::Stopped))
    }
}

/// The answer to come for a block handed over with [`Disk::send_block`].
#[derive(Debug)]
pub struct PendingBlock(oneshot::Receiver<Result<BlockOutcome, DiskError>>);

impl std::future::Future for PendingBlock {
    type Output = Result<BlockOutcome, DiskError>;

    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        std::pin::Pin::new(&mut self.0)
            .poll(cx)
            .map(|answer| answer.unwrap_or(Err(DiskError::Stopped)))
    }
}

/// The answers to come for blocks handed over with [`Disk::send_blocks`],
/// one per block, in order.
#[derive(Debug)]
pub struct PendingBlocks {
    answer: oneshot::Receiver<Vec<Result<BlockOutcome, DiskError>>>,
    count: usize,
}

impl std::future::Future for PendingBlocks {
    type Output = Vec<Result<BlockOutcome, DiskError>>;

    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        let count = self.count;
        std::pin::Pin::new(&mut self.answer).poll(cx).map(|answer| {
            answer.unwrap_or_else(|_| (0..count).map(|_| Err(DiskError::Stopped)).collect())
        })
    }
}

/// What the disk thread owns.
struct State {
    storage: Storage,
    assembler: Assembler,
    /// Pieces known to be on disk: blocks for them are duplicates, so a late
    /// endgame copy never starts a piece over.
    verified: Vec<bool>,
    /// Pieces that hold a byte of a wanted file.
    wanted: Vec<bool>,
    /// How many of those are not verified: whether all are in is asked
    /// after every piece, and a scan each time would make a download
    /// quadratic in its piece count.
    wanted_left: usize,
    /// For pieces that failed their hash: for each failed copy (the last
    /// [`MAX_COPIES`]), each block's sender and hash, to find the liars once
    /// a good copy arrives. At most [`MAX_SUSPECT_PIECES`] pieces, the
    /// oldest forgotten first (`suspect_order`).
    suspects: HashMap<u32, Vec<CopyHashes>>,
    suspect_order: std::collections::VecDeque<u32>,
    /// The next file to look at while the empty files are being made,
    /// [`EMPTY_FILES_STEP`] at a time between jobs.
    empty_files_from: Option<usize>,
    /// Those waiting for the empty files to be made.
    files_waiters: Vec<oneshot::Sender<()>>,
}

/// Files looked at in one step of making the empty files: a few
/// milliseconds, so that a peer's request or a stop never waits long
/// behind a torrent of a hundred thousand of them.
const EMPTY_FILES_STEP: usize = 64;
/// The longest the jobs may hold up the next step of background work.
const STEP_EVERY: std::time::Duration = std::time::Duration::from_millis(20);

/// A failed copy of a piece: each block's sender and SHA-1.
type CopyHashes = Vec<(u64, [u8; 20])>;

/// Failed pieces whose block hashes are kept for the smart ban.
const MAX_SUSPECT_PIECES: usize = 256;
/// Failed copies of one piece kept.
const MAX_COPIES: usize = 4;

impl State {
    fn new(storage: Storage, memory_limit: usize) -> State {
        let wanted = storage.wanted_pieces();
        State {
            assembler: Assembler::new(storage.layout().clone(), memory_limit),
            verified: vec![false; storage.layout().num_pieces() as usize],
            wanted_left: wanted.iter().filter(|w| **w).count(),
            wanted,
            suspects: HashMap::new(),
            suspect_order: std::collections::VecDeque::new(),
            empty_files_from: None,
            files_waiters: Vec::new(),
            storage,
        }
    }

    fn run(&mut self, job: Job) {
        match job {
            Job::Write {
                block,
                data,
                sender,
                reply,
            } => {
                let _ = reply.send(self.write(block, &data, sender));
            }
            Job::WriteMany {
                blocks,
                sender,
                reply,
            } => {
                let outcomes = blocks
                    .into_iter()
                    .map(|(block, data)| self.write(block, &data, sender))
                    .collect();
                let _ = reply.send(outcomes);
            }
            Job::Read { block, reply } => {
                let _ = reply.send(self.read(block));
            }
            Job::ReadMany { blocks, reply } => {
                let _ = reply.send(self.read_many(&blocks));
            }
            Job::Check { resume, reply } => {
                let result = self.storage.check(resume.as_ref(), |_| {});
                if let Ok(have) = &result {
                    self.verified.clone_from(have);
                    self.wanted_left = have
                        .iter()
                        .zip(&self.wanted)
                        .filter(|(have, wanted)| **wanted && !**have)
                        .count();
                    if self.wanted_left == 0 {
                        self.finish_files();
                    }
                    // Partial copies of pieces now known whole free their
                    // share of the memory bound.
                    for (piece, _) in have.iter().enumerate().filter(|(_, h)| **h) {
                        self.assembler.discard(piece as u32);
                    }
                }
                let _ = reply.send(result.map_err(DiskError::from));
            }
            Job::Forget { sender, reply } => {
                let _ = reply.send(self.assembler.discard_from(sender));
            }
            Job::FilesMade { reply } => {
                if self.empty_files_from.is_some() {
                    self.files_waiters.push(reply);
                } else {
                    let _ = reply.send(());
                }
            }
            Job::Resume { have, reply } => {
                // Never record more than this thread has seen verified.
                let have: Vec<bool> = have
                    .iter()
                    .zip(&self.verified)
                    .map(|(a, b)| *a && *b)
                    .collect();
                let _ = reply.send(self.storage.resume_data(&have).map_err(DiskError::from));
            }
        }
    }

    /// Keeps the block hashes of a failed copy of `piece`.
    fn suspect(&mut self, piece: u32, data: &[u8], senders: &[u64]) {
        let hashes = block_chunks(data)
            .zip(senders)
            .map(|(chunk, sender)| (*sender, metainfo::sha1(chunk)))
            .collect();
        if !self.suspects.contains_key(&piece) {
            if self.suspect_order.len() >= MAX_SUSPECT_PIECES
                && let Some(oldest) = self.suspect_order.pop_front()
            {
                self.suspects.remove(&oldest);
            }
            self.suspect_order.push_back(piece);
        }
        let copies = self.suspects.entry(piece).or_default();
        if copies.len() >= MAX_COPIES {
            copies.remove(0);
        }
        copies.push(hashes);
    }

    /// The senders of blocks of failed copies of `piece` that differ from
    /// the good copy `data`.
    fn liars(&mut self, piece: u32, data: &[u8]) -> Vec<u64> {
        let Some(copies) = self.suspects.remove(&piece) else {
            return Vec::new();
        };
        self.suspect_order.retain(|p| *p != piece);
        let good: Vec<[u8; 20]> = block_chunks(data).map(metainfo::sha1).collect();
        let mut liars: Vec<u64> = copies
            .iter()
            .flat_map(|copy| {
                copy.iter()
                    .zip(&good)
                    .filter(|((_, hash), good)| hash != *good)
                    .map(|((sender, _), _)| *sender)
            })
            .collect();
        liars.sort_unstable();
        liars.dedup();
        liars
    }

    /// Zero-length files hold no piece: the wanted ones are made once every
    /// wanted piece is in, a step at a time between jobs
    /// ([`State::make_empty_files`]).
    fn finish_files(&mut self) {
        self.empty_files_from = Some(0);
    }

    /// One step of making the empty files. After the last, a part file
    /// left by an earlier download of chosen files goes, if every file is
    /// now wanted. Failing to make a file loses no data and must not stop a
    /// complete download from seeding, so it is logged, not returned (and
    /// the files after it are made at the next start).
    fn make_empty_files(&mut self) {
        let Some(from) = self.empty_files_from else {
            return;
        };
        self.empty_files_from = match self.storage.create_empty_files_from(from, EMPTY_FILES_STEP) {
            Ok(next) => next,
            Err(e) => {
                tracing::warn!(error = %e, "cannot create an empty file of the torrent");
                None
            }
        };
        if self.empty_files_from.is_some() {
            return;
        }
        if let Err(e) = self.storage.remove_stale_parts() {
            tracing::warn!(error = %e, "cannot remove the part file");
        }
        for waiter in self.files_waiters.drain(..) {
            let _ = waiter.send(());
        }
    }

    /// Reads a block for a peer, after checking the range: a peer's request
    /// is bounded before anything is allocated for it.
    fn read(&mut self, block: BlockRef) -> Result<Bytes, DiskError> {
        if !self.valid_read(block) {
            return Err(StorageError::BadRequest {
                piece: block.piece,
                problem: "read outside the piece or too long",
            }
            .into());
        }
        let mut buf = vec![0u8; block.length as usize];
        self.storage.read(block.piece, block.offset, &mut buf)?;
        Ok(Bytes::from(buf))
    }

    /// Reads `blocks`, each run of blocks that follow each other in one
    /// piece (up to [`MAX_READ_RUN`] bytes) with one read.
    fn read_many(&mut self, blocks: &[BlockRef]) -> Vec<Result<Bytes, DiskError>> {
        let mut answers = Vec::with_capacity(blocks.len());
        let mut rest = blocks;
        while let Some(first) = rest.first() {
            // The run: valid blocks, each starting where the last ended.
            let mut end = u64::from(first.offset) + u64::from(first.length);
            let mut run = 1;
            while let Some(next) = rest.get(run) {
                let follows = next.piece == first.piece && u64::from(next.offset) == end;
                if !follows || end - u64::from(first.offset) + u64::from(next.length) > MAX_READ_RUN
                {
                    break;
                }
                end += u64::from(next.length);
                run += 1;
            }
            let (now, later) = rest.split_at(run);
            rest = later;
            let all_valid = now.iter().all(|b| self.valid_read(*b));
            if run == 1 || !all_valid {
                answers.extend(now.iter().map(|b| self.read(*b)));
                continue;
            }
            let mut buf = vec![0u8; (end - u64::from(first.offset)) as usize];
            match self.storage.read(first.piece, first.offset, &mut buf) {
                Ok(()) => {
                    let buf = Bytes::from(buf);
                    let mut at = 0;
                    for block in now {
                        let len = block.length as usize;
                        answers.push(Ok(buf.slice(at..at + len)));
                        at += len;
                    }
                }
                // One failure for the run: each block is tried alone, so
                // each gets its own answer.
                Err(_) => answers.extend(now.iter().map(|b| self.read(*b))),
            }
        }
        answers
    }

    fn valid_read(&self, block: BlockRef) -> bool {
        block.length <= MAX_READ
            && self
                .storage
                .layout()
                .check_range(block.piece, block.offset, block.length)
                .is_some()
    }

    fn write(
        &mut self,
        block: BlockRef,
        data: &[u8],
        sender: u64,
    ) -> Result<BlockOutcome, DiskError> {
        if self.verified.get(block.piece as usize) == Some(&true) {
            return Ok(BlockOutcome::AlreadyVerified(block.piece));
        }
        Ok(match self.assembler.add_from(block, data, sender)? {
            Added::Partial => BlockOutcome::Stored,
            Added::Duplicate => BlockOutcome::Duplicate,
            Added::Complete(data) => {
                let piece = block.piece;
                let senders = self.assembler.last_senders().to_vec();
                let outcome = if self.storage.write_verified(piece, &data)? {
                    if let Some(verified) = self.verified.get_mut(piece as usize)
                        && !std::mem::replace(verified, true)
                        && self.wanted.get(piece as usize) == Some(&true)
                    {
                        self.wanted_left = self.wanted_left.saturating_sub(1);
                        if self.wanted_left == 0 {
                            self.finish_files();
                        }
                    }
                    let liars = self.liars(piece, &data);
                    BlockOutcome::PieceVerified { piece, liars }
                } else {
                    self.suspect(piece, &data, &senders);
                    BlockOutcome::PieceFailed { piece, senders }
                };
                self.assembler.recycle(data);
                outcome
            }
        })
    }
}

/// A piece's bytes, block by block.
fn block_chunks(data: &[u8]) -> std::slice::Chunks<'_, u8> {
    data.chunks(BLOCK_SIZE as usize)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_files_are_made_a_step_at_a_time_and_waiters_hear_when_all_are() {
        const EMPTY: usize = 3 * EMPTY_FILES_STEP + 5;
        let source = tempfile::tempdir().unwrap();
        let root = source.path().join("t");
        std::fs::create_dir(&root).unwrap();
        std::fs::write(root.join("data"), vec![7u8; 1000]).unwrap();
        for i in 0..EMPTY {
            std::fs::write(root.join(format!("e{i:04}")), b"").unwrap();
        }
        let torrent = metainfo::TorrentBuilder::new(&root)
            .piece_length(16 * 1024)
            .build(|_, _| {})
            .unwrap();
        // The data is all there; the empty files are not.
        for i in 0..EMPTY {
            std::fs::remove_file(root.join(format!("e{i:04}"))).unwrap();
        }
        let made = || {
            (0..EMPTY)
                .filter(|i| root.join(format!("e{i:04}")).exists())
                .count()
        };
        let storage = Storage::new(&torrent, source.path(), Default::default()).unwrap();
        let mut state = State::new(storage, 1 << 20);
        let (reply, mut checked) = oneshot::channel();
        state.run(Job::Check {
            resume: None,
            reply,
        });
        assert_eq!(checked.try_recv().unwrap().unwrap(), vec![true]);
        // The check found every piece; nothing is made until a step runs.
        assert_eq!(made(), 0);
        let (reply, mut waiting) = oneshot::channel();
        state.run(Job::FilesMade { reply });
        state.make_empty_files();
        assert!((1..=EMPTY_FILES_STEP).contains(&made()), "{}", made());
        assert!(waiting.try_recv().is_err(), "not yet");
        let mut steps = 1;
        while state.empty_files_from.is_some() {
            state.make_empty_files();
            steps += 1;
        }
        // Every file of the torrent is looked at, the data file too.
        assert_eq!(steps, (EMPTY + 1).div_ceil(EMPTY_FILES_STEP));
        assert_eq!(made(), EMPTY);
        assert!(waiting.try_recv().is_ok());
        // Asked again, the answer is at once.
        let (reply, mut again) = oneshot::channel();
        state.run(Job::FilesMade { reply });
        assert!(again.try_recv().is_ok());
    }
}
