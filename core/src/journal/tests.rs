//! Scenarios of the journal's bytes and rules.

use proptest::prelude::*;

use super::*;
use crate::{BufferTooSmall, InfoHash};

const BOOT: BootId = [b'b'; BOOT_ID_LEN];
const OTHER_BOOT: BootId = [b'c'; BOOT_ID_LEN];

type State = ResumeState<4, 4, 8>;

fn stamp(n: u64) -> Stamp {
    Stamp {
        length: n,
        mtime_ns: -(n as i128) * 1_000_000_007,
    }
}

fn batches() -> [&'static [Entry]; 3] {
    const A: &[Entry] = &[
        Entry::Write {
            piece: 0,
            start: 0,
            end: 1000,
        },
        Entry::Stamp(
            0,
            Stamp {
                length: 5,
                mtime_ns: -7,
            },
        ),
    ];
    const B: &[Entry] = &[
        Entry::Verified(0),
        Entry::Write {
            piece: 2,
            start: 100,
            end: 400,
        },
    ];
    const C: &[Entry] = &[
        Entry::Discard(2),
        Entry::Write {
            piece: 3,
            start: 0,
            end: 24,
        },
    ];
    [A, B, C]
}

/// A journal file holding `records`, numbered from 1, as a shell would append them.
fn journal(id: u64, records: &[&[Entry]]) -> ([u8; 1024], usize) {
    let mut buf = [0u8; 1024];
    let mut at = encode_header(&Header { boot: BOOT, id }, &mut buf).unwrap();
    for (i, entries) in records.iter().enumerate() {
        at += encode_record(i as u64 + 1, entries, &mut buf[at..]).unwrap();
    }
    (buf, at)
}

fn geometry() -> Geometry {
    Geometry::new(1000, 3024).unwrap()
}

fn state() -> State {
    State::new(InfoHash([7; 20]), 4).unwrap()
}

#[test]
fn records_read_back_in_order_with_their_entries() {
    let (buf, len) = journal(42, &batches());
    let (header, records) = read(&buf[..len]).unwrap();
    assert_eq!(header, Header { boot: BOOT, id: 42 });
    let mut seen = 0;
    for (record, expected) in records.zip(batches()) {
        seen += 1;
        assert_eq!(record.seq, seen);
        assert!(record.entries().eq(expected.iter().copied()));
    }
    assert_eq!(seen, 3);
    assert_eq!(
        record_len(batches()[0]),
        8 + 8 + 13 + 29,
        "length and CRC, seq, a write, a stamp"
    );
}

#[test]
fn a_torn_tail_keeps_every_whole_record_before_it() {
    let (buf, len) = journal(42, &batches());
    let ends: [usize; 3] = {
        let mut at = Header::LEN;
        batches().map(|b| {
            at += record_len(b);
            at
        })
    };
    for cut in 0..=len {
        let whole = ends.iter().filter(|&&e| e <= cut).count();
        match read(&buf[..cut]) {
            None => assert!(cut < Header::LEN, "a whole header reads at cut {cut}"),
            Some((_, records)) => assert_eq!(records.count(), whole, "cut at {cut}"),
        }
    }
}

#[test]
fn a_flipped_bit_ends_the_records_at_the_damaged_one() {
    let (clean, len) = journal(42, &batches());
    let second = Header::LEN + record_len(batches()[0]);
    for byte in second..len {
        for bit in 0..8 {
            let mut buf = clean;
            buf[byte] ^= 1 << bit;
            let (_, records) = read(&buf[..len]).unwrap();
            let n = records.count();
            // A flip in the second record keeps only the first; a flip in the third, two.
            assert!(n < 3, "flip at {byte}.{bit} went unnoticed");
            assert!(n >= 1, "flip at {byte}.{bit} lost the first record");
        }
    }
}

#[test]
fn a_sequence_number_that_goes_back_ends_the_records() {
    let mut buf = [0u8; 512];
    let mut at = encode_header(&Header { boot: BOOT, id: 1 }, &mut buf).unwrap();
    for seq in [1, 2, 2, 3] {
        at += encode_record(seq, &[Entry::Verified(0)], &mut buf[at..]).unwrap();
    }
    let (_, records) = read(&buf[..at]).unwrap();
    assert_eq!(
        records.map(|r| r.seq).collect::<heapless::Vec<u64, 4>>(),
        [1, 2]
    );
}

#[test]
fn a_short_buffer_is_an_error_with_the_length_needed() {
    let mut small = [0u8; 20];
    let need = record_len(batches()[0]);
    assert_eq!(
        encode_record(1, batches()[0], &mut small),
        Err(BufferTooSmall { required: need })
    );
    assert_eq!(
        encode_header(&Header { boot: BOOT, id: 1 }, &mut small),
        Err(BufferTooSmall {
            required: Header::LEN
        })
    );
}

#[test]
fn a_restart_replays_only_what_its_state_does_not_include() {
    let g = geometry();
    let (buf, len) = journal(42, &batches());
    let mut stamps = [Stamp::default(); 2];
    // Saved after record 1: records 2 and 3 are replayed.
    let mut s = state();
    let done = apply(
        &mut s,
        &g,
        Mark { id: 42, seq: 1 },
        Some(&BOOT),
        &buf[..len],
        |f, st| stamps[f as usize] = st,
    );
    assert_eq!(done.records, 2);
    assert_eq!(
        done.bytes,
        300 + 24,
        "piece 2's write counts until it is discarded"
    );
    assert!(s.have.get(0), "verified in the journal: not hashed again");
    assert!(!s.have.get(2));
    assert_eq!(
        s.partial
            .iter()
            .map(|p| p.piece())
            .collect::<heapless::Vec<u32, 4>>(),
        [3]
    );
    assert_eq!(
        stamps,
        [Stamp::default(); 2],
        "record 1's stamp is in the state already"
    );
    // Saved before any record: the stamp of record 1 reaches the shell.
    let mut s = state();
    apply(
        &mut s,
        &g,
        Mark { id: 42, seq: 0 },
        Some(&BOOT),
        &buf[..len],
        |f, st| stamps[f as usize] = st,
    );
    assert_eq!(
        stamps[0],
        Stamp {
            length: 5,
            mtime_ns: -7
        }
    );
    let _ = stamp(0);
}

#[test]
fn another_journal_another_boot_or_no_boot_replays_nothing() {
    let g = geometry();
    let (buf, len) = journal(42, &batches());
    for (mark, boot) in [
        (Mark { id: 43, seq: 0 }, Some(&BOOT)),
        (Mark { id: 42, seq: 0 }, Some(&OTHER_BOOT)),
        (Mark { id: 42, seq: 0 }, None),
        (Mark { id: 0, seq: 0 }, Some(&BOOT)),
    ] {
        let mut s = state();
        let done = apply(&mut s, &g, mark, boot, &buf[..len], |_, _| {});
        assert_eq!(done, Replayed::default(), "{mark:?}");
        assert_eq!(s, state());
    }
}

#[test]
fn an_entry_the_state_refuses_ends_the_replay() {
    let g = geometry();
    let bad: &[Entry] = &[Entry::Verified(9)];
    let (buf, len) = journal(42, &[batches()[0], bad, batches()[1]]);
    let mut s = state();
    let done = apply(
        &mut s,
        &g,
        Mark { id: 42, seq: 0 },
        Some(&BOOT),
        &buf[..len],
        |_, _| {},
    );
    assert_eq!(done.records, 1);
    assert_eq!(done.refused, Some(Entry::Verified(9)));
    assert!(!s.have.get(0), "nothing after the refused entry is applied");
}

#[test]
fn the_ledger_numbers_records_and_trims_only_what_a_saved_state_covers() {
    let mut l = Ledger::new(42);
    assert_eq!(l.start(), Mark { id: 42, seq: 0 });
    assert_eq!(l.append(0, 100), Some(1));
    assert_eq!(l.append(100, 100), Some(2));
    assert_eq!(
        l.trim(Mark { id: 41, seq: 2 }),
        None,
        "another journal's state"
    );
    assert_eq!(
        l.trim(Mark { id: 42, seq: 3 }),
        None,
        "a record not appended yet"
    );
    assert_eq!(l.trim(Mark { id: 42, seq: 1 }), Some(1));
    assert_eq!(l.trim(Mark { id: 42, seq: 1 }), None, "already trimmed");
    assert_eq!(l.trim(Mark { id: 42, seq: 2 }), Some(2));
    // Records no save ever covers stop the journal at the bound, and it stays stopped.
    assert_eq!(l.append(MAX_KEPT - 10, 11), None);
    assert!(l.is_stopped());
    assert_eq!(l.append(0, 1), None);
    let mut l = Ledger::new(7);
    l.append_failed();
    assert_eq!(
        l.append(0, 1),
        None,
        "a failed append may have torn the file"
    );
    assert!(Ledger::new(0).is_stopped(), "id 0 means no journal");
}

fn entry() -> impl Strategy<Value = Entry> {
    prop_oneof![
        (any::<u32>(), any::<u32>(), any::<u32>()).prop_map(|(piece, start, end)| Entry::Write {
            piece,
            start,
            end
        }),
        any::<u32>().prop_map(Entry::Verified),
        any::<u32>().prop_map(Entry::Discard),
        (any::<u32>(), any::<u64>(), any::<i128>())
            .prop_map(|(f, length, mtime_ns)| Entry::Stamp(f, Stamp { length, mtime_ns })),
    ]
}

proptest! {
    #[test]
    fn any_record_round_trips(seq in 1u64.., entries in proptest::collection::vec(entry(), 0..20)) {
        let mut buf = [0u8; Header::LEN + 8 + 8 + 20 * 29];
        let mut at = encode_header(&Header { boot: BOOT, id: 9 }, &mut buf).unwrap();
        at += encode_record(seq, &entries, &mut buf[at..]).unwrap();
        let (_, mut records) = read(&buf[..at]).unwrap();
        let record = records.next().unwrap();
        prop_assert_eq!(record.seq, seq);
        prop_assert!(record.entries().eq(entries.iter().copied()));
        prop_assert!(records.next().is_none());
        prop_assert!(records.rest().is_empty());
    }

    #[test]
    fn any_bytes_read_without_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        let mut file = [0u8; Header::LEN + 300];
        encode_header(&Header { boot: BOOT, id: 9 }, &mut file).unwrap();
        file[Header::LEN..Header::LEN + bytes.len()].copy_from_slice(&bytes);
        if let Some((_, records)) = read(&file[..Header::LEN + bytes.len()]) {
            for r in records {
                prop_assert!(r.entries().count() <= bytes.len());
            }
        }
        let _ = read(&bytes);
    }
}
