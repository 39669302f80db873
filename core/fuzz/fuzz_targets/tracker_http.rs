//! HTTP tracker codecs on arbitrary bytes: the announce query, announce responses and scrape.
//! Nothing may panic, and whatever parses must survive a write/parse round trip.
#![no_main]

use enjambre_core::tracker::{
    parse_scrape_response, scrape_info_hashes, write_scrape_response, AnnounceRequest,
    AnnounceResponse, ScrapeEntry,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(req) = AnnounceRequest::parse_query(data) {
        // trackerid, ip and bitfield come back still encoded, so only the decoded fields
        // round-trip.
        let plain = AnnounceRequest {
            trackerid: None,
            ip: None,
            bitfield: None,
            ..req
        };
        let mut out = [0u8; 512];
        let n = plain
            .write_query(&mut out)
            .expect("a plain query fits 512 bytes");
        let again = AnnounceRequest::parse_query(&out[..n]).expect("our own query parses");
        assert_eq!(again, plain);
    }

    if let Ok(resp) = AnnounceResponse::parse(data) {
        let n = resp.peers().count();
        assert!(n <= data.len());
    }

    for hash in scrape_info_hashes(data) {
        let _ = hash;
    }

    if let Ok(entries) = parse_scrape_response(data) {
        let entries: Vec<ScrapeEntry> = entries.collect();
        let mut out = vec![0u8; 16 + entries.len() * 120];
        let n = write_scrape_response(&mut out, &entries).expect("sized for the entries");
        let again: Vec<ScrapeEntry> = parse_scrape_response(&out[..n])
            .expect("our own scrape response parses")
            .collect();
        assert_eq!(again, entries);
    }
});
