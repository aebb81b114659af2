//! SHA-1 throughput of the two backends on a 256 KiB piece: the measurement
//! behind hashing with RustCrypto's `sha1` rather than the baseline
//! `sha1_smol`.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use metainfo::{Sha1, Sha1Backend};

fn hash(c: &mut Criterion) {
    let piece: Vec<u8> = (0..256 * 1024u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 11) as u8)
        .collect();
    let mut group = c.benchmark_group("sha1 of a 256 KiB piece");
    group.throughput(Throughput::Bytes(piece.len() as u64));
    for (name, backend) in [
        ("sha1 (RustCrypto, SHA-NI)", Sha1Backend::Fast),
        ("sha1_smol", Sha1Backend::Portable),
    ] {
        group.bench_function(name, |b| {
            b.iter(|| {
                let mut h = Sha1::new(backend);
                h.update(black_box(&piece));
                h.finish()
            })
        });
    }
    group.finish();
}

criterion_group!(benches, hash);
criterion_main!(benches);
