use std::vec::Vec;

use super::*;
use crate::metainfo::Metainfo;

/// The pieces set, as a list.
fn ones(b: &Bitfield<8>) -> Vec<u32> {
    b.iter_ones().collect()
}

/// A multi-file torrent of `files` (name, length, pad) in pieces of `piece_length`, bencoded.
fn torrent(piece_length: u32, files: &[(&str, u64, bool)]) -> Vec<u8> {
    let total: u64 = files.iter().map(|f| f.1).sum();
    let count = total.div_ceil(u64::from(piece_length)) as usize;
    let mut out = b"d4:infod5:filesl".to_vec();
    for &(name, length, pad) in files {
        out.extend_from_slice(b"d");
        if pad {
            out.extend_from_slice(b"4:attr1:p");
        }
        let entry = std::format!("6:lengthi{length}e4:pathl{}:{name}ee", name.len());
        out.extend_from_slice(entry.as_bytes());
    }
    let head = std::format!(
        "e4:name1:t12:piece lengthi{piece_length}e6:pieces{}:",
        20 * count
    );
    out.extend_from_slice(head.as_bytes());
    out.resize(out.len() + 20 * count, 0);
    out.extend_from_slice(b"ee");
    out
}

#[test]
fn a_span_marks_every_piece_it_touches() {
    let g = Geometry::new(10, 95).unwrap(); // 10 pieces, the last of 5 bytes
    let mut w = Bitfield::<8>::new(10).unwrap();
    mark_span(&g, 9, 2, &mut w); // bytes 9 and 10: pieces 0 and 1
    assert_eq!(ones(&w), [0, 1]);
    mark_span(&g, 30, 10, &mut w); // exactly piece 3
    assert_eq!(ones(&w), [0, 1, 3]);
    mark_span(&g, 50, 0, &mut w); // zero-length: nothing
    mark_span(&g, 94, 100, &mut w); // past the end: clipped to the last piece
    mark_span(&g, 200, 5, &mut w); // wholly past the end: nothing
    assert_eq!(ones(&w), [0, 1, 3, 9]);
}

#[test]
fn straddling_pieces_are_wanted_and_empty_and_pad_files_never_are() {
    // Pieces of 16: a = 0..20, empty = 20..20, b = 20..40, pad = 40..48, c = 48..70.
    let files = [
        ("a", 20, false),
        ("empty", 0, false),
        ("b", 20, false),
        ("pad", 8, true),
        ("c", 22, false),
    ];
    let bytes = torrent(16, &files);
    let meta = Metainfo::parse(&bytes).unwrap();
    let g = meta.geometry();
    assert_eq!(g.piece_count(), 5);
    let mut w = Bitfield::<8>::empty();
    let pick = |names: &'static [&'static str]| {
        move |f: &FileEntry<'_>| names.iter().any(|n| f.path.components().eq([*n]))
    };
    // a: pieces 0 and 1 (1 straddles a and b).
    wanted_pieces(&g, meta.files(), pick(&["a"]), &mut w).unwrap();
    assert_eq!(ones(&w), [0, 1]);
    // b: 20..40 is pieces 1 and 2 (both straddle).
    wanted_pieces(&g, meta.files(), pick(&["b"]), &mut w).unwrap();
    assert_eq!(ones(&w), [1, 2]);
    assert_eq!(wanted_bytes(&g, &w), 32);
    // c: 48..70 is pieces 3 and 4; piece 2 holds b and the pad, not c.
    wanted_pieces(&g, meta.files(), pick(&["c"]), &mut w).unwrap();
    assert_eq!(ones(&w), [3, 4]);
    assert_eq!(wanted_bytes(&g, &w), 16 + 6);
    // The empty file and the pad alone want nothing.
    wanted_pieces(&g, meta.files(), pick(&["empty", "pad"]), &mut w).unwrap();
    assert_eq!(ones(&w), [] as [u32; 0]);
    // Everything: every piece.
    wanted_pieces(&g, meta.files(), |_| true, &mut w).unwrap();
    assert!(w.is_full());
    assert_eq!(wanted_bytes(&g, &w), 70);
}

#[test]
fn a_torrent_too_large_for_the_bitfield_is_refused() {
    let g = Geometry::new(1, 65).unwrap();
    let mut w = Bitfield::<8>::empty();
    assert_eq!(
        wanted_pieces(&g, core::iter::empty(), |_| true, &mut w),
        Err(CapacityError)
    );
}
