//! BEP 9: the `ut_metadata` decoder and a metadata fetch machine on arbitrary bytes.
//!
//! Input: a flags byte (bit 0: prefix a valid greeting; bits 1-7: clock step), a chunk-size
//! byte, then the stream. Checks: no panic; a decoded message re-encodes to one that reads
//! back the same; the fetch machine always settles, stays failed once failed, and never
//! reports more pieces than there are.
#![no_main]

use core::num::NonZeroU8;

use enjambre_core::metadata::{
    FetchConfig, FetchOutput, MetadataAssembler, MetadataFetch, FETCH_RX_LEN, MIN_FETCH_OUTPUT,
};
use enjambre_core::sha1::Sha1Smol;
use enjambre_core::wire::{ExtendedHandshake, Extensions, Handshake, MetadataMessage};
use enjambre_core::{Duration, InfoHash, Instant, PeerId};
use libfuzzer_sys::fuzz_target;

const INFO_HASH: InfoHash = InfoHash([0x11; 20]);
const OUR_UT: u8 = 2;

fuzz_target!(|data: &[u8]| {
    decode(data);
    let [flags, chunk, stream @ ..] = data else {
        return;
    };
    let mut input = Vec::new();
    if flags & 1 == 1 {
        input.extend(greeting(stream.len() as u32 % 70000));
    }
    input.extend_from_slice(stream);
    fetch(&input, usize::from(*chunk) + 1, u64::from(flags >> 1) * 500);
});

fn decode(payload: &[u8]) {
    let Ok(m) = MetadataMessage::decode(payload) else {
        return;
    };
    if let MetadataMessage::Data { data, .. } = m {
        assert!(payload.ends_with(data));
    }
    let mut out = vec![0u8; m.encoded_len()];
    assert_eq!(m.encode(9, &mut out), Ok(out.len()));
    assert_eq!(MetadataMessage::decode(&out[6..]), Ok(m));
}

/// A peer's handshake and extended handshake offering `ut_metadata` and `metadata_size`.
fn greeting(metadata_size: u32) -> Vec<u8> {
    let ext = Extensions {
        extended: true,
        ..Extensions::default()
    };
    let mut v = Handshake::new(INFO_HASH, PeerId([7; 20]), ext)
        .encode()
        .to_vec();
    let h = ExtendedHandshake {
        ut_metadata: Some(OUR_UT),
        metadata_size: Some(metadata_size),
        ..ExtendedHandshake::default()
    };
    let mut buf = [0u8; 128];
    let n = h.encode_message(&mut buf).expect("fits");
    v.extend_from_slice(&buf[..n]);
    v
}

fn fetch(input: &[u8], chunk: usize, tick: u64) {
    let mut buf = vec![0u8; 40000];
    let timeout = Duration::from_secs(5);
    let mut asm = MetadataAssembler::<Sha1Smol, u8, 3>::new(&mut buf, INFO_HASH, timeout);
    let config = FetchConfig {
        ut_metadata: NonZeroU8::new(OUR_UT).expect("non-zero"),
        ..FetchConfig::new(PeerId([1; 20]))
    };
    let mut fetch = Box::new(MetadataFetch::<u8, FETCH_RX_LEN>::new(1, INFO_HASH, config));
    let mut out = [0u8; MIN_FETCH_OUTPUT];
    let mut now = Instant::ZERO;
    let mut failed = None;
    let mut done = false;
    for piece in input.chunks(chunk) {
        let mut rest = piece;
        loop {
            let taken = fetch.handle_input(rest);
            // Whatever is buffered can always be read, so there is always room after a drain.
            assert!(taken > 0 || rest.is_empty() || done);
            rest = &rest[taken..];
            // Each poll either settles or sends something (at most one reject per message read).
            let mut settled = false;
            for _ in 0..FETCH_RX_LEN + 16 {
                match fetch.poll_output(now, &mut asm, &mut out) {
                    FetchOutput::Transmit(bytes) => assert!(!bytes.is_empty()),
                    FetchOutput::Mismatch(_) => {}
                    FetchOutput::Failed(e) => {
                        assert!(failed.is_none_or(|f| f == e));
                        failed = Some(e);
                        settled = true;
                        break;
                    }
                    FetchOutput::Done | FetchOutput::Timeout(_) => {
                        assert!(failed.is_none());
                        done |= asm.info().is_some();
                        settled = true;
                        break;
                    }
                }
            }
            assert!(settled, "poll_output never settles");
            let (got, count) = asm.progress();
            assert!(got <= count && count <= 3);
            if rest.is_empty() || done {
                break;
            }
        }
        now = now + Duration::from_millis(tick);
    }
}
