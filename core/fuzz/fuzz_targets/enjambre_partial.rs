//! Our `enjambre_partial` extension: the decoder on arbitrary bytes.
//!
//! Checks: no panic; the bounds hold; every piece's ranges are sorted, non-empty, apart and sum
//! to its `h`; what was read re-encodes into a message that reads back the same.
#![no_main]

use enjambre_core::wire::{PartialMessage, PartialUpdate, MAX_PARTIAL_PIECES, MAX_PARTIAL_RANGES};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(m) = PartialMessage::decode(data) else {
        return;
    };
    let pieces: Vec<(u32, Vec<_>)> = m
        .pieces()
        .map(|p| (p.index, p.ranges().collect()))
        .collect();
    assert_eq!(pieces.len(), m.pieces_len());
    assert!(pieces.len() <= MAX_PARTIAL_PIECES);
    for (p, (_, ranges)) in m.pieces().zip(&pieces) {
        assert!(ranges.len() <= MAX_PARTIAL_RANGES);
        assert!(ranges.iter().all(|r| r.start < r.end));
        assert!(ranges.windows(2).all(|w| w[0].end < w[1].start));
        assert_eq!(
            ranges
                .iter()
                .map(|r| u64::from(r.end - r.start))
                .sum::<u64>(),
            u64::from(p.held)
        );
    }
    let u = PartialUpdate {
        downloaded: m.downloaded,
        uploaded: m.uploaded,
        pieces: pieces.iter().map(|(i, r)| (*i, r.iter().cloned())),
    };
    let mut out = vec![0u8; data.len() + 64 + 40 * pieces.len()];
    let n = u.encode(3, &mut out).expect("fits");
    assert_eq!(&out[4..6], &[20, 3]);
    let back = PartialMessage::decode(&out[6..n]).expect("our own encoding decodes");
    assert_eq!((back.downloaded, back.uploaded), (m.downloaded, m.uploaded));
    assert!(back.pieces().eq(m.pieces()));
});
