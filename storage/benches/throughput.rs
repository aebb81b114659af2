//! Storage throughput beside the machine's bounds, measured in one run:
//! raw SHA-1, raw file writes, and storage's path (16 KiB blocks assembled,
//! each piece hashed and written, then every piece read back and rechecked).
//!
//! `cargo bench -p storage --bench throughput` (1 GiB; set
//! `BTC_BENCH_MIB=256` for a quicker run).

use std::io::Write as _;
use std::time::Instant;

use metainfo::{Sha1, Sha1Backend, TorrentBuilder};
use storage::{Added, Assembler, Storage, StorageConfig};

const PIECE: usize = 256 * 1024;

fn rate(bytes: usize, started: Instant) -> String {
    let seconds = started.elapsed().as_secs_f64();
    format!(
        "{:>7.0} MB/s ({seconds:.2} s)",
        bytes as f64 / seconds / 1e6
    )
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // `cargo bench` passes `--bench`; nothing else is taken.
    let mib: usize = std::env::var("BTC_BENCH_MIB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1024);
    let total = mib << 20;
    let dir = tempfile::tempdir()?;
    let source = dir.path().join("source.bin");
    {
        let mut file = std::io::BufWriter::new(std::fs::File::create(&source)?);
        let mut chunk = vec![0u8; 1 << 20];
        for i in 0..mib {
            for (j, b) in chunk.iter_mut().enumerate() {
                *b = (i.wrapping_mul(31) ^ j.wrapping_mul(2_654_435_761) >> 7) as u8;
            }
            file.write_all(&chunk)?;
        }
    }
    let torrent = TorrentBuilder::new(&source)
        .piece_length(PIECE as u64)
        .build(|_, _| {})?;
    let layout = torrent.layout().clone();
    let content = std::fs::read(&source)?;
    println!(
        "storage throughput, {mib} MiB, {} KiB pieces, 16 KiB blocks",
        PIECE / 1024
    );

    let started = Instant::now();
    for piece in content.chunks(PIECE) {
        let mut h = Sha1::new(Sha1Backend::Fast);
        h.update(piece);
        std::hint::black_box(h.finish());
    }
    println!(
        "  raw SHA-1 (fast backend):        {}",
        rate(total, started)
    );

    let raw = dir.path().join("raw.bin");
    let started = Instant::now();
    {
        let mut file = std::fs::File::create(&raw)?;
        for chunk in content.chunks(1 << 20) {
            file.write_all(chunk)?;
        }
        file.sync_all()?;
    }
    println!(
        "  raw file write (1 MiB writes):   {}",
        rate(total, started)
    );
    std::fs::remove_file(&raw)?;

    let target = dir.path().join("download");
    let started = Instant::now();
    let mut storage = Storage::new(&torrent, &target, StorageConfig::default())?;
    let mut assembler = Assembler::new(layout.clone(), 64 << 20);
    for piece in 0..layout.num_pieces() {
        for block in layout.blocks(piece) {
            let start = piece as usize * PIECE + block.offset as usize;
            if let Added::Complete(data) =
                assembler.add(block, &content[start..start + block.length as usize])?
            {
                assert!(storage.write_verified(piece, &data)?);
                assembler.recycle(data);
            }
        }
    }
    drop(storage);
    std::fs::File::open(target.join("source.bin"))?.sync_all()?;
    println!(
        "  storage: assemble, hash, write:  {}",
        rate(total, started)
    );

    let mut storage = Storage::new(&torrent, &target, StorageConfig::default())?;
    let started = Instant::now();
    for piece in 0..layout.num_pieces() {
        assert!(storage.verify(piece)?);
    }
    println!(
        "  storage: recheck every piece:    {}",
        rate(total, started)
    );
    Ok(())
}
