//! Background flushes. Data written to a file starts on its way to the
//! disk on a thread of its own while the download goes on, so the flush
//! that must come before resume stamps (and before `btc` exits) finds
//! little left to do, instead of waiting for the whole torrent at once.

use std::fs::File;
use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SendError, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};

/// Flushes waiting for the thread; more are skipped, which loses nothing:
/// the flush before the next stamps covers every byte anyway.
const QUEUE: usize = 4;

enum Job {
    /// `fdatasync` this handle of file `index`, then close it.
    Flush(usize, File),
    /// Answer once every flush before it is done.
    Barrier(std::sync::mpsc::Sender<()>),
}

/// The flushing thread, and what it found.
#[derive(Debug)]
pub(crate) struct Flusher {
    jobs: SyncSender<Job>,
    /// The first flush that failed: the file's index, and the error's
    /// kind and text. A handle shares its error state with the handle it
    /// was cloned from, and a closed handle has no later flush at all, so
    /// an error the thread sees would be missed by any later flush: it is
    /// kept here, for good (what the failed flush lost is unknown).
    error: Arc<Mutex<Option<(usize, io::ErrorKind, String)>>>,
    /// Flushes done, for tests.
    #[cfg_attr(not(test), allow(dead_code))]
    done: Arc<AtomicU64>,
}

impl Flusher {
    /// Starts the thread (`btc-flush`), which ends when the `Flusher` is
    /// dropped and its queue is done.
    pub(crate) fn start() -> io::Result<Flusher> {
        let (jobs, queue) = std::sync::mpsc::sync_channel(QUEUE);
        let error = Arc::new(Mutex::new(None));
        let done = Arc::new(AtomicU64::new(0));
        let (thread_error, thread_done) = (Arc::clone(&error), Arc::clone(&done));
        std::thread::Builder::new()
            .name("btc-flush".into())
            .spawn(move || run(&queue, &thread_error, &thread_done))?;
        Ok(Flusher { jobs, error, done })
    }

    /// Queues a flush of `file`, a clone of file `index`'s handle, unless
    /// the queue is full.
    pub(crate) fn flush(&self, index: usize, file: File) {
        match self.jobs.try_send(Job::Flush(index, file)) {
            Ok(()) | Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {}
        }
    }

    /// Hands over a handle of file `index` that is being closed, to be
    /// flushed before it is: this waits while the queue is full, so at most
    /// [`QUEUE`] handles wait. Gives the handle back if the thread is gone.
    pub(crate) fn close(&self, index: usize, file: File) -> Result<(), File> {
        match self.jobs.send(Job::Flush(index, file)) {
            Err(SendError(Job::Flush(_, file))) => Err(file),
            _ => Ok(()),
        }
    }

    /// Waits for every flush queued so far, and reports the first that
    /// ever failed.
    pub(crate) fn wait(&self) -> Result<(), (usize, io::Error)> {
        let (ack, acked) = std::sync::mpsc::channel();
        if self.jobs.send(Job::Barrier(ack)).is_ok() {
            // An error here means the thread is gone: nothing is left to
            // wait for.
            let _ = acked.recv();
        }
        self.failed()
    }

    /// The first flush that ever failed, without waiting for the others.
    pub(crate) fn failed(&self) -> Result<(), (usize, io::Error)> {
        match &*self.error.lock().unwrap_or_else(|e| e.into_inner()) {
            Some((index, kind, text)) => Err((*index, io::Error::new(*kind, text.clone()))),
            None => Ok(()),
        }
    }

    /// How many flushes the thread has done.
    #[cfg(test)]
    pub(crate) fn done(&self) -> u64 {
        self.done.load(Ordering::Relaxed)
    }
}

fn run(
    queue: &Receiver<Job>,
    error: &Mutex<Option<(usize, io::ErrorKind, String)>>,
    done: &AtomicU64,
) {
    while let Ok(job) = queue.recv() {
        match job {
            Job::Flush(index, file) => {
                if let Err(e) = file.sync_data() {
                    error
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .get_or_insert((index, e.kind(), e.to_string()));
                }
                done.fetch_add(1, Ordering::Relaxed);
            }
            Job::Barrier(ack) => {
                let _ = ack.send(());
            }
        }
    }
}
