//! BEP 11: the `ut_pex` decoder on arbitrary bytes.
//!
//! Checks: no panic; the counts match what the iterators yield; what was read re-encodes into
//! a message of exactly its announced length that reads back the same.
#![no_main]

use enjambre_core::wire::{PexMessage, PexUpdate};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(m) = PexMessage::decode(data) else {
        return;
    };
    let added: Vec<_> = m.added().collect();
    let dropped: Vec<_> = m.dropped().collect();
    assert_eq!(added.len(), m.added_len());
    assert_eq!(dropped.len(), m.dropped_len());
    let u = PexUpdate {
        added: added.iter().copied(),
        dropped: dropped.iter().copied(),
    };
    let mut out = vec![0u8; u.encoded_len()];
    assert_eq!(u.encode(7, &mut out), Ok(out.len()));
    assert_eq!(&out[4..6], &[20, 7]);
    let back = PexMessage::decode(&out[6..]).expect("our own encoding decodes");
    assert!(back.added().eq(added.iter().copied()));
    assert!(back.dropped().eq(dropped.iter().copied()));
});
