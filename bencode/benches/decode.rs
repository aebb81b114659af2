//! Decoding speed of this crate against bendy on the same torrent-shaped input:
//! the measurement behind decoding bencode here rather than with bendy.

use std::hint::black_box;

use bencode::{Bytes, Encoder, to_vec};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

#[path = "../tests/it/oracle.rs"]
mod oracle;

/// A multi-file torrent: 2,000 files with two-component paths, 4,000 pieces.
fn torrent() -> Vec<u8> {
    let pieces = vec![0xa5u8; 20 * 4000];
    let mut e = Encoder::default();
    e.dict(|d| {
        d.entry(b"announce", "http://127.0.0.1:6969/announce");
        d.entry_with(b"info", |e| {
            e.dict(|d| {
                d.entry_with(b"files", |e| {
                    e.list(|e| {
                        for i in 0..2000 {
                            e.dict(|d| {
                                d.entry(b"length", &(i64::from(i) * 1000 + 17));
                                d.entry(
                                    b"path",
                                    &vec![format!("dir{}", i % 13), format!("file-{i}.bin")],
                                );
                            });
                        }
                    })
                });
                d.entry(b"name", "bench");
                d.entry(b"piece length", &262_144i64);
                d.entry(b"pieces", &Bytes(&pieces));
            })
        });
    });
    e.into_bytes()
}

fn decode(c: &mut Criterion) {
    let input = torrent();
    assert_eq!(to_vec(&bencode::decode(&input).expect("valid")), input);
    let mut group = c.benchmark_group("decode torrent");
    group.throughput(Throughput::Bytes(input.len() as u64));
    group.bench_function("bencode (this crate)", |b| {
        b.iter(|| bencode::decode(black_box(&input)).map(|v| v.raw().len()))
    });
    // The same owned tree bendy's side builds, for a like-for-like comparison.
    group.bench_function("bencode, then copied to an OwnedValue", |b| {
        b.iter(|| bencode::decode(black_box(&input)).map(|v| v.to_owned_value()))
    });
    group.bench_function("bendy 0.6.1, to an OwnedValue", |b| {
        b.iter(|| oracle::bendy_decode(black_box(&input)).is_some())
    });
    group.finish();
}

criterion_group!(benches, decode);
criterion_main!(benches);
