//! Peer wire decoders on arbitrary bytes, split into ring halves at a fuzzer-chosen position.
//!
//! Input: 2 bytes of split position, 1 byte choosing the length limit, then the stream.
//! Checks: no panic; the split and contiguous decodes agree; every decoded message re-encodes to
//! exactly the bytes it was decoded from; extended handshakes re-encode to an equal value.
#![no_main]

use enjambre_core::wire::{ExtendedHandshake, Handshake, Message, Split, Status, HANDSHAKE_LEN};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let [c0, c1, limit, stream @ ..] = data else {
        return;
    };
    let cut = usize::from(u16::from_le_bytes([*c0, *c1])) % (stream.len() + 1);
    let max_len = match limit % 4 {
        0 => 0,
        1 => u32::from(*limit) * 4,
        2 => 1 << 17,
        _ => u32::MAX,
    };
    let (a, b) = stream.split_at(cut);

    // The handshake, then messages after it (or from the start when it is not one).
    let handshake = Handshake::decode(a, b);
    assert_eq!(handshake, Handshake::decode(stream, &[]));
    let start = match handshake {
        Ok(Status::Complete(h)) => {
            assert_eq!(h.encode()[..], stream[..HANDSHAKE_LEN]);
            HANDSHAKE_LEN
        }
        _ => 0,
    };

    let all = Split::new(a, b);
    let mut at = start;
    while let Some(rest) = all.slice(at, stream.len() - at) {
        let split = Message::decode(rest.a, rest.b, max_len);
        let contiguous = Message::decode(&stream[at..], &[], max_len);
        assert_eq!(split, contiguous);
        let Ok(Status::Complete((message, consumed))) = split else {
            break;
        };
        assert!(consumed >= 4 && consumed <= rest.len());
        assert_eq!(message.encoded_len(), consumed);
        let mut out = vec![0u8; consumed];
        assert_eq!(message.encode(&mut out), Ok(consumed));
        assert_eq!(out[..], stream[at..at + consumed]);
        if let Message::Extended { id: 0, payload } = message {
            let mut flat = vec![0u8; payload.len()];
            payload.copy_to(&mut flat);
            extended(&flat);
        }
        at += consumed;
    }

    // The extended handshake parser on the raw bytes too.
    extended(stream);
});

fn extended(payload: &[u8]) {
    if let Ok(h) = ExtendedHandshake::decode(payload) {
        let mut out = vec![0u8; payload.len() + 64];
        let n = h.encode(&mut out).expect("re-encoding fits");
        assert_eq!(ExtendedHandshake::decode(&out[..n]), Ok(h));
    }
}
