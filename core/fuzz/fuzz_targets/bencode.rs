//! Any bytes: the decoder never panics, and whatever it accepts is canonical (re-encodes to itself).
#![no_main]

use enjambre_core::bencode::{decode_prefix, decode_with, DecodeOptions, Encoder, Value};
use libfuzzer_sys::fuzz_target;

fn encode(v: Value<'_>, e: &mut Encoder<'_>) {
    match v {
        Value::Int(i) => {
            e.int(i).unwrap();
        }
        Value::Bytes(b) => {
            e.bytes(b).unwrap();
        }
        Value::List(l) => {
            e.list().unwrap();
            for item in l.iter() {
                encode(item, e);
            }
            e.end().unwrap();
        }
        Value::Dict(d) => {
            e.dict().unwrap();
            for (k, v) in d.iter() {
                e.bytes(k).unwrap();
                encode(v, e);
            }
            e.end().unwrap();
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let strict = DecodeOptions {
        require_sorted_keys: true,
    };
    let lenient = decode_prefix(data, DecodeOptions::LENIENT);
    if let Ok((v, used)) = decode_prefix(data, strict) {
        assert!(used <= data.len());
        assert_eq!(
            lenient.map(|(_, n)| n),
            Ok(used),
            "lenient accepts what strict accepts"
        );
        if let Some(span) = v.span() {
            assert_eq!(span, &data[..used]);
        }
        let mut out = vec![0u8; used];
        let mut e = Encoder::new(&mut out);
        encode(v, &mut e);
        let n = e.finish();
        assert_eq!(&out[..n], &data[..used], "accepted input is canonical");
        // Every strict prefix needs more bytes.
        for cut in [0, used / 2, used.saturating_sub(1)] {
            if cut < used {
                assert!(decode_prefix(&data[..cut], strict).is_err());
            }
        }
    }
    if let Ok(v) = decode_with(data, DecodeOptions::LENIENT) {
        // Views over lenient input iterate without failing.
        if let Some(d) = v.as_dict() {
            for (k, _) in d.iter() {
                assert!(d.get(k).is_some());
            }
        }
    }
});
