//! The machine's own bounds, measured in the same run as the clients:
//! SHA-1 with the hasher btc uses, a raw loopback TCP copy, and raw file
//! writes.

use std::io::{Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::time::Instant;

use anyhow::Result;
use serde::Serialize;

/// The machine's bounds, in MB/s.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct Bounds {
    pub(crate) sha1_mb_s: f64,
    pub(crate) loopback_mb_s: f64,
    pub(crate) file_write_mb_s: f64,
}

/// SHA-1, loopback TCP and file-write speeds, over `size` bytes each.
pub(crate) fn measure(size: u64) -> Result<Bounds> {
    let size = size.max(1 << 20) as usize;
    let chunk = vec![0x5au8; 1 << 20];
    // SHA-1 with the backend btc uses, in 256 KiB pieces.
    let data = vec![0xa5u8; 256 * 1024];
    let started = Instant::now();
    let mut n = 0;
    while n < size {
        std::hint::black_box(metainfo::sha1(&data));
        n += data.len();
    }
    let sha1 = size as f64 / started.elapsed().as_secs_f64() / 1e6;
    // Loopback TCP: one thread writes, this one reads.
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    let writer = {
        let chunk = chunk.clone();
        std::thread::spawn(move || -> std::io::Result<()> {
            let mut stream = TcpStream::connect(addr)?;
            let mut sent = 0;
            while sent < size {
                stream.write_all(&chunk)?;
                sent += chunk.len();
            }
            Ok(())
        })
    };
    let (mut stream, _) = listener.accept()?;
    let started = Instant::now();
    let mut buf = vec![0u8; 1 << 20];
    let mut got = 0;
    while got < size {
        let read = stream.read(&mut buf)?;
        if read == 0 {
            break;
        }
        got += read;
    }
    let loopback = got as f64 / started.elapsed().as_secs_f64() / 1e6;
    let _ = writer.join();
    // File writes of 1 MiB, then one sync.
    let dir = tempfile::tempdir()?;
    let started = Instant::now();
    let mut file = std::fs::File::create(dir.path().join("write.bin"))?;
    let mut written = 0;
    while written < size {
        file.write_all(&chunk)?;
        written += chunk.len();
    }
    file.sync_all()?;
    let write = written as f64 / started.elapsed().as_secs_f64() / 1e6;
    Ok(Bounds {
        sha1_mb_s: sha1,
        loopback_mb_s: loopback,
        file_write_mb_s: write,
    })
}
