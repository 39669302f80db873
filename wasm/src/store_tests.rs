//! Scenarios of the store across "crashes": a run ends without a goodbye, the next run opens
//! the same files.

use enjambre_core::journal::{Entry, Header};
use enjambre_core::{Geometry, InfoHash, PieceIndex};

use crate::file::{File, MemFile};
use crate::store::{BrowserResume, Files, Store};

const IH: InfoHash = InfoHash([9; 20]);

fn geometry() -> Geometry {
    // Three pieces of 16 KiB, the last one 7,232 bytes.
    Geometry::new(16384, 40_000).unwrap()
}

fn fresh() -> Files<MemFile> {
    Files {
        data: MemFile::default(),
        state: MemFile::default(),
        journal: MemFile::default(),
    }
}

fn piece(i: u32) -> PieceIndex {
    geometry().piece(i).unwrap()
}

fn encode(state: &BrowserResume) -> Vec<u8> {
    let mut buf = vec![0u8; BrowserResume::max_encoded_len()];
    state.encode(&mut buf).unwrap().to_vec()
}

#[test]
fn a_first_open_starts_from_nothing_with_an_empty_journal() {
    let (store, opened) = Store::open(fresh(), IH, geometry(), 1).unwrap();
    assert!(opened.resume.is_none());
    let mut files = store.into_files();
    assert_eq!(files.data.size().unwrap(), 40_000);
    assert_eq!(files.journal.size().unwrap(), Header::LEN as u64);
}

#[test]
fn a_crash_after_journaled_writes_resumes_from_the_exact_byte() {
    let (mut store, _) = Store::open(fresh(), IH, geometry(), 1).unwrap();
    store.write(piece(0), 0, &[1; 16384]).unwrap();
    store.note(Entry::Verified(0));
    store.write(piece(1), 0, &[2; 3000]).unwrap();
    store.write(piece(1), 3000, &[3; 2000]).unwrap();
    store.journal().unwrap();
    // The tab dies here: no state save since the start.
    let files = store.into_files();
    assert!(files.data.flushes >= 1, "data flushed before its record");

    let (mut store, opened) = Store::open(files, IH, geometry(), 2).unwrap();
    let resume = opened.resume.unwrap();
    assert!(resume.have.get(0));
    assert_eq!(resume.partial.len(), 1);
    assert_eq!(resume.partial[0].piece(), 1);
    assert_eq!(resume.partial[0].as_slice(), &[(0, 5000)]);
    assert_eq!(opened.replayed.records, 1);
    let mut back = [0u8; 5001];
    store.read(piece(1), 0, &mut back).unwrap();
    assert_eq!(&back[..3000], &[2; 3000][..]);
    assert_eq!(&back[3000..5000], &[3; 2000][..]);
    assert_eq!(
        back[5000], 0,
        "nothing claimed beyond the last byte written"
    );
}

#[test]
fn a_save_includes_the_records_and_trims_them() {
    let (mut store, _) = Store::open(fresh(), IH, geometry(), 1).unwrap();
    store.write(piece(2), 0, &[5; 1000]).unwrap();
    let mut state = BrowserResume::new(IH, 3).unwrap();
    state.record_write(&geometry(), 2, 0, 1000).unwrap();
    store.save(&encode(&state)).unwrap();
    // Later bytes go to the journal only.
    store.write(piece(2), 1000, &[6; 24]).unwrap();
    store.journal().unwrap();
    let mut files = store.into_files();
    let journal_len = files.journal.size().unwrap() as usize;
    assert!(journal_len > Header::LEN && journal_len < Header::LEN + 64);

    let (_, opened) = Store::open(files, IH, geometry(), 2).unwrap();
    let resume = opened.resume.unwrap();
    assert_eq!(resume.partial[0].as_slice(), &[(0, 1024)]);
    assert_eq!(opened.replayed.records, 1, "only the record after the save");
}

#[test]
fn a_torn_record_ends_the_replay_and_the_records_before_it_count() {
    let (mut store, _) = Store::open(fresh(), IH, geometry(), 1).unwrap();
    store.write(piece(1), 0, &[1; 100]).unwrap();
    store.journal().unwrap();
    store.write(piece(1), 100, &[1; 100]).unwrap();
    store.journal().unwrap();
    let mut files = store.into_files();
    let len = files.journal.bytes.len();
    files.journal.bytes.truncate(len - 3);

    let (_, opened) = Store::open(files, IH, geometry(), 2).unwrap();
    assert_eq!(opened.resume.unwrap().partial[0].as_slice(), &[(0, 100)]);
}

#[test]
fn a_journal_of_an_older_run_that_no_state_names_is_ignored() {
    let (mut store, _) = Store::open(fresh(), IH, geometry(), 1).unwrap();
    store.write(piece(1), 0, &[1; 100]).unwrap();
    store.journal().unwrap();
    let mut files = store.into_files();
    // A second run saved its starting state, then died before its journal was put in place.
    let old_journal = files.journal.clone();
    let (store, _) = Store::open(files, IH, geometry(), 2).unwrap();
    files = store.into_files();
    files.journal = old_journal;
    let (_, opened) = Store::open(files, IH, geometry(), 3).unwrap();
    let resume = opened.resume.unwrap();
    // The state saved by run 2 already held the 100 bytes; the stale journal adds nothing.
    assert_eq!(resume.partial[0].as_slice(), &[(0, 100)]);
    assert_eq!(opened.replayed.records, 0);
}
