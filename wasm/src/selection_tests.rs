//! The page's file selection: the pieces it wants, and the choice kept across a reload.

use crate::file::MemFile;
use crate::selection::Selection;
use crate::torrent::{Torrent, TorrentFile};
use enjambre_core::{Geometry, InfoHash};

/// Files of 10,000, 30,000, a 9,152-byte pad, and 10,848 bytes: 60,000 bytes in pieces of
/// 16 KiB, so pieces 0 and 2 straddle two files and the last file starts piece 3 (thanks to the
/// pad).
fn album() -> Torrent {
    let files = [
        ("a", 10_000, false),
        ("b", 30_000, false),
        (".pad/9152", 9152, true),
        ("c", 10_848, false),
    ]
    .map(|(path, length, pad)| TorrentFile {
        path: path.into(),
        length,
        pad,
    });
    Torrent {
        name: "album".into(),
        info_hash: InfoHash([1; 20]),
        geometry: Geometry::new(16384, 60_000).unwrap(),
        info: Vec::new(),
        hashes_at: 0,
        files: files.to_vec(),
        trackers: Vec::new(),
        private: false,
    }
}

fn wanted(flags: &[u8]) -> Vec<u32> {
    let t = album();
    let s = Selection::from_flags(flags, &t).unwrap();
    s.wanted(&t).iter_ones().collect()
}

#[test]
fn a_piece_holding_a_byte_of_a_selected_file_is_wanted_whole() {
    // a is bytes 0..10,000: piece 0, which it shares with b.
    assert_eq!(wanted(&[1, 0, 0]), [0]);
    // b is 10,000..40,000: pieces 0 to 2, sharing 0 with a and 2 with the pad.
    assert_eq!(wanted(&[0, 1, 0]), [0, 1, 2]);
    // c is 49,152..60,000: piece 2 holds only b's bytes and the pad's, so it is not wanted.
    assert_eq!(wanted(&[0, 0, 1]), [3]);
    assert_eq!(wanted(&[1, 1, 1]), [0, 1, 2, 3]);
    assert_eq!(Selection::all(&album()).wanted(&album()).count_ones(), 4);
}

#[test]
fn a_selection_that_does_not_fit_or_selects_nothing_is_refused_with_a_sentence() {
    let t = album();
    let e = Selection::from_flags(&[1, 1], &t).unwrap_err();
    assert_eq!(e, "a selection of 2 files for a torrent of 3");
    let e = Selection::from_flags(&[0, 0, 0], &t).unwrap_err();
    assert_eq!(e, "select at least one file to download");
}

#[test]
fn the_choice_survives_a_reload_and_a_file_that_does_not_fit_selects_everything() {
    let t = album();
    let mut file = MemFile::default();
    // Nothing stored yet: everything.
    assert!(Selection::load(&mut file, &t).unwrap().is_all());
    let chosen = Selection::from_flags(&[0, 1, 0], &t).unwrap();
    chosen.save(&mut file).unwrap();
    assert_eq!(file.bytes, b"010");
    assert_eq!(file.flushes, 1);
    let again = Selection::load(&mut file, &t).unwrap();
    assert_eq!(again, chosen);
    assert!(!again.is_selected(0) && again.is_selected(1) && !again.is_selected(2));
    // A longer choice replaced by a shorter one leaves nothing of the old behind.
    file.bytes = b"0101".to_vec();
    chosen.save(&mut file).unwrap();
    assert_eq!(file.bytes, b"010");
    // Torn or foreign contents: everything, never less than asked.
    for junk in [&b"01"[..], b"0120", b"abc", b"0x1"] {
        file.bytes = junk.to_vec();
        assert!(Selection::load(&mut file, &t).unwrap().is_all(), "{junk:?}");
    }
}
