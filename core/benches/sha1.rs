//! SHA-1 throughput through the core's `Sha1` trait with the portable `Sha1Smol`.

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use enjambre_core::sha1::{digest, Sha1, Sha1Smol};

const PIECE: usize = 256 * 1024;
const BLOCK: usize = 16 * 1024;

fn bench(c: &mut Criterion) {
    let piece: Vec<u8> = (0..PIECE).map(|i| (i * 31 + 7) as u8).collect();
    let mut group = c.benchmark_group("sha1/piece-256KiB");
    group.throughput(Throughput::Bytes(PIECE as u64));

    group.bench_function("Sha1Smol/one-update", |bench| {
        bench.iter(|| digest::<Sha1Smol>(black_box(&piece)))
    });

    // As verification streams a piece back from storage: one update per 16 KiB block.
    group.bench_function("Sha1Smol/16KiB-updates", |bench| {
        bench.iter(|| {
            let mut h = Sha1Smol::default();
            for block in black_box(&piece).chunks(BLOCK) {
                h.update(block);
            }
            h.finish()
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
