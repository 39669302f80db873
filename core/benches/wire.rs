//! Decode throughput of back-to-back 16 KiB Piece messages, as a downloading session sees them.

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use enjambre_core::wire::{piece_header, Message, Status};

const BLOCK: usize = 16 * 1024;
const BLOCKS: usize = 64;
const MAX_LEN: u32 = 1 << 17;

/// `BLOCKS` Piece messages of `BLOCK` bytes each, back to back (about 1 MiB).
fn stream() -> Vec<u8> {
    let mut out = Vec::with_capacity(BLOCKS * (BLOCK + 13));
    for i in 0..BLOCKS {
        let (index, begin) = ((i / 16) as u32, ((i % 16) * BLOCK) as u32);
        out.extend_from_slice(&piece_header(index, begin, BLOCK as u32));
        out.extend((0..BLOCK).map(|j| (i + j) as u8));
    }
    out
}

/// Decode every message from `a` then `b` (a ring's two halves); `each` sees every data block.
fn decode_all(a: &[u8], b: &[u8], mut each: impl FnMut(u32, u32, enjambre_core::wire::Split<'_>)) {
    let (mut a, mut b) = (a, b);
    loop {
        match Message::decode(a, b, MAX_LEN) {
            Ok(Status::Complete((Message::Piece { index, begin, data }, consumed))) => {
                each(index, begin, data);
                // Advance past the message across the two halves.
                if consumed <= a.len() {
                    a = &a[consumed..];
                } else {
                    b = &b[consumed - a.len()..];
                    a = &[];
                }
                if a.is_empty() {
                    (a, b) = (b, &[]);
                }
            }
            Ok(Status::Partial) => break,
            other => panic!("{other:?}"),
        }
    }
}

fn bench(c: &mut Criterion) {
    let bytes = stream();
    let mut group = c.benchmark_group("wire/piece-16KiB");
    group.throughput(Throughput::Bytes(bytes.len() as u64));

    group.bench_function("decode", |bench| {
        bench.iter(|| {
            let mut n = 0u64;
            decode_all(black_box(&bytes), &[], |index, _, data| {
                n += u64::from(index) + data.len() as u64;
            });
            black_box(n)
        })
    });

    // The ring's end falls inside a block's header of the 33rd message.
    let cut = 32 * (BLOCK + 13) + 7;
    let (a, b) = bytes.split_at(cut);
    group.bench_function("decode-split-halves", |bench| {
        bench.iter(|| {
            let mut n = 0u64;
            decode_all(black_box(a), black_box(b), |index, _, data| {
                n += u64::from(index) + data.len() as u64;
            });
            black_box(n)
        })
    });

    // Decoding plus copying each block out (what a shell does before writing it to storage).
    let mut block = vec![0u8; BLOCK];
    group.bench_function("decode-and-copy", |bench| {
        bench.iter(|| {
            decode_all(black_box(a), black_box(b), |_, _, data| {
                data.copy_to(&mut block);
                black_box(&block);
            });
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
