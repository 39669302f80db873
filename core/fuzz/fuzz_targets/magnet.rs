//! Any text: parsing a magnet link never panics, and every value of one that parses decodes
//! into a bounded buffer without panicking (a bad escape or a short buffer is an error).
#![no_main]

use enjambre_core::magnet::{decode, Magnet};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = core::str::from_utf8(data) else {
        return;
    };
    let Ok(m) = Magnet::parse(text) else {
        return;
    };
    let mut buf = [0u8; 64];
    if let Some(Ok(name)) = m.name(&mut buf) {
        assert!(name.len() <= 64);
    }
    for value in m.trackers().chain(m.peers()) {
        if let Ok(bytes) = decode(value, &mut buf) {
            // Decoding never grows a value.
            assert!(bytes.len() <= value.len());
        }
    }
});
