//! UDP tracker packets (BEP 15) on arbitrary bytes: decoding never panics, and what decodes
//! re-encodes to the bytes it was read from.
#![no_main]

use enjambre_core::tracker::udp::{compact_peers, scrape_stats, Request, Response};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(req) = Request::decode(data) {
        let mut out = vec![0u8; req.encoded_len()];
        let n = req.encode(&mut out).expect("sized by encoded_len");
        // Trailing BEP 41 options are dropped; the rest is byte for byte what was read.
        assert_eq!(&out[..n], &data[..n]);
        assert_eq!(Request::decode(&out[..n]), Ok(req));
    }

    if let Ok(resp) = Response::decode(data) {
        let mut out = vec![0u8; resp.encoded_len()];
        let n = resp.encode(&mut out).expect("sized by encoded_len");
        // A connect response may carry extra bytes (ignored); every other body is all read.
        assert_eq!(&out[..n], &data[..n]);
        if !matches!(resp, Response::Connect { .. }) {
            assert_eq!(n, data.len());
        }
        match resp {
            Response::Announce { peers, .. } => {
                assert_eq!(compact_peers(peers, false).count() * 6, peers.len());
                let _ = compact_peers(peers, true).count();
            }
            Response::Scrape { stats, .. } => {
                assert_eq!(scrape_stats(stats).count() * 12, stats.len());
            }
            _ => {}
        }
    }
});
