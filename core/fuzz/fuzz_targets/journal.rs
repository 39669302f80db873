//! Read arbitrary bytes as a write journal, raw and behind a valid header; every record that
//! reads must re-encode to the same bytes, and a replay into a resume state never panics.
#![no_main]

use enjambre_core::journal::{self, BootId, Entry, Header, Mark, BOOT_ID_LEN};
use enjambre_core::resume::ResumeState;
use enjambre_core::{Geometry, InfoHash};
use libfuzzer_sys::fuzz_target;

const BOOT: BootId = [b'b'; BOOT_ID_LEN];

fn check(bytes: &[u8]) {
    let Some((header, mut records)) = journal::read(bytes) else {
        return;
    };
    let mut at = Header::LEN;
    for record in records.by_ref() {
        let mut entries = [Entry::Verified(0); 64];
        let mut n = 0;
        for e in record.entries() {
            if n == entries.len() {
                return;
            }
            entries[n] = e;
            n += 1;
        }
        let mut again = [0u8; 8 + 8 + 64 * 29];
        let len = journal::encode_record(record.seq, &entries[..n], &mut again).unwrap();
        assert_eq!(&bytes[at..at + len], &again[..len], "a record re-encodes to its bytes");
        at += len;
    }
    assert_eq!(records.rest(), &bytes[at..]);
    let geometry = Geometry::new(1000, 20_500).unwrap();
    let mut state = ResumeState::<4, 4, 8>::new(InfoHash([1; 20]), 21).unwrap();
    let mark = Mark { id: header.id, seq: 0 };
    journal::apply(&mut state, &geometry, mark, Some(&header.boot), bytes, |_, _| {});
}

fuzz_target!(|data: &[u8]| {
    check(data);
    let mut file = [0u8; Header::LEN + 4096];
    let n = data.len().min(4096);
    journal::encode_header(&Header { boot: BOOT, id: 5 }, &mut file).unwrap();
    file[Header::LEN..Header::LEN + n].copy_from_slice(&data[..n]);
    check(&file[..Header::LEN + n]);
});
