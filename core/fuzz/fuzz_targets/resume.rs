//! Decode arbitrary bytes as a resume state, raw and behind a valid CRC; whatever decodes must
//! re-encode and decode to the same state.
#![no_main]

use crc::{Crc, CRC_32_ISCSI};
use enjambre_core::resume::ResumeState;
use enjambre_core::{Geometry, InfoHash};
use libfuzzer_sys::fuzz_target;

type State = ResumeState<4, 4, 8>;
static CRC: Crc<u32> = Crc::<u32>::new(&CRC_32_ISCSI);

fn check(bytes: &[u8], hash: InfoHash, geometry: Geometry) {
    if let Ok(state) = State::decode(bytes, hash, geometry) {
        let mut buf = [0u8; State::max_encoded_len()];
        let again = state.encode(&mut buf).expect("a decoded state encodes");
        assert_eq!(State::decode(again, hash, geometry), Ok(state));
    }
}

fuzz_target!(|data: &[u8]| {
    // 21 pieces of 1000 bytes, the last one 500.
    let geometry = Geometry::new(1000, 20_500).unwrap();
    // Expect the hash the input claims, so the fuzzer reaches the fields behind it.
    let mut hash = [0u8; 20];
    if let Some(claimed) = data.get(1..21) {
        hash.copy_from_slice(claimed);
    }
    let hash = InfoHash(hash);
    check(data, hash, geometry);
    let mut framed = [0u8; 4096];
    if let Some(body) = framed.get_mut(..data.len()) {
        body.copy_from_slice(data);
        let crc = CRC.checksum(data).to_le_bytes();
        if let Some(tail) = framed.get_mut(data.len()..data.len() + 4) {
            tail.copy_from_slice(&crc);
            check(&framed[..data.len() + 4], hash, geometry);
        }
    }
});
