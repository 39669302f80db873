//! HTTP scrape (BEP 48), both directions: the request's info hashes, and the bencoded `files`
//! dictionary our tracker writes and our peer reads.

use super::announce::{response_dict, text_field, u32_field};
use super::out::Out;
use super::query::pairs;
use super::{urlencode, TrackerError};
use crate::bencode::{Dict, Encoder, Value};
use crate::{BufferTooSmall, InfoHash};

/// The statistics of one torrent in a scrape response.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct ScrapeEntry {
    /// The torrent.
    pub info_hash: InfoHash,
    /// Seeders now.
    pub complete: u32,
    /// Downloads ever completed.
    pub downloaded: u32,
    /// Leechers now.
    pub incomplete: u32,
}

/// Iterate the `info_hash` parameters of a scrape query (the part after `?`), in order.
///
/// Each must percent-decode to 20 bytes; other parameters are ignored. An empty iterator means
/// the client asked for no torrent in particular (a "full scrape", which a tracker may refuse).
pub fn scrape_info_hashes(
    query: &[u8],
) -> impl Iterator<Item = Result<InfoHash, TrackerError>> + '_ {
    pairs(query)
        .filter(|(name, _)| *name == b"info_hash")
        .map(|(_, value)| urlencode::decode_20(value, "info_hash").map(InfoHash))
}

/// Write a scrape query, `info_hash=..&info_hash=..` (no leading `?`), into `out`.
///
/// On `BufferTooSmall`, `required` is the exact length needed.
pub fn write_scrape_query(
    info_hashes: &[InfoHash],
    out: &mut [u8],
) -> Result<usize, BufferTooSmall> {
    let mut w = Out::new(out);
    for (i, h) in info_hashes.iter().enumerate() {
        if i > 0 {
            w.put_u8(b'&');
        }
        w.put(b"info_hash=");
        w.put_urlencoded(&h.0);
    }
    w.finish()
}

/// Write `d5:filesd<hash>d8:complete..10:downloaded..10:incomplete..e..ee` into `out`.
///
/// `entries` must be sorted by info hash (and unique) for the output to be canonical bencode;
/// this function writes them in the order given. On `BufferTooSmall`, `required` is a lower
/// bound.
pub fn write_scrape_response(
    out: &mut [u8],
    entries: &[ScrapeEntry],
) -> Result<usize, BufferTooSmall> {
    let mut e = Encoder::new(out);
    e.dict()?.bytes(b"files")?.dict()?;
    for s in entries {
        e.bytes(&s.info_hash.0)?.dict()?;
        e.bytes(b"complete")?.int(i64::from(s.complete))?;
        e.bytes(b"downloaded")?.int(i64::from(s.downloaded))?;
        e.bytes(b"incomplete")?.int(i64::from(s.incomplete))?;
        e.end()?;
    }
    e.end()?.end()?;
    Ok(e.finish())
}

/// Parse a scrape response and iterate its entries in the order the tracker wrote them.
///
/// The whole body is checked first, so iterating cannot fail: `files` must be a dictionary of
/// 20-byte keys to dictionaries whose `complete`, `downloaded` and `incomplete` fit `u32`
/// (an absent one reads as 0). A body with `failure reason` (or BEP 48's spelling
/// `failure_reason`) is [`TrackerError::Failure`].
pub fn parse_scrape_response(
    body: &[u8],
) -> Result<impl Iterator<Item = ScrapeEntry> + '_, TrackerError> {
    let top = response_dict(body)?;
    if text_field(top, "failure reason")?.is_some() || top.get(b"failure_reason").is_some() {
        return Err(TrackerError::Failure);
    }
    let files = top
        .get(b"files")
        .ok_or(TrackerError::MissingField("files"))?
        .as_dict()
        .ok_or(TrackerError::BadField("files"))?;
    for (key, value) in files.iter() {
        entry(key, value)?;
    }
    Ok(files
        .iter()
        .filter_map(|(key, value)| entry(key, value).ok()))
}

/// One validated `files` entry.
fn entry(key: &[u8], value: Value<'_>) -> Result<ScrapeEntry, TrackerError> {
    let info_hash = InfoHash(
        key.try_into()
            .map_err(|_| TrackerError::BadField("files"))?,
    );
    let stats: Dict<'_> = value.as_dict().ok_or(TrackerError::BadField("files"))?;
    Ok(ScrapeEntry {
        info_hash,
        complete: u32_field(stats, "complete")?.unwrap_or(0),
        downloaded: u32_field(stats, "downloaded")?.unwrap_or(0),
        incomplete: u32_field(stats, "incomplete")?.unwrap_or(0),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::vec;
    use std::vec::Vec;

    /// BEP 48's example, on one line.
    const BEP48: &[u8] = b"d5:filesd\
        20:xxxxxxxxxxxxxxxxxxxxd8:completei11e10:downloadedi13772e10:incompletei19e\
        e20:yyyyyyyyyyyyyyyyyyyyd8:completei21e10:downloadedi206e10:incompletei20e\
        e20:zzzzzzzzzzzzzzzzzzzzd8:completei14e10:downloadedi12191e10:incompletei9eeee";

    fn bep48_entries() -> [ScrapeEntry; 3] {
        [
            ScrapeEntry {
                info_hash: InfoHash([b'x'; 20]),
                complete: 11,
                downloaded: 13772,
                incomplete: 19,
            },
            ScrapeEntry {
                info_hash: InfoHash([b'y'; 20]),
                complete: 21,
                downloaded: 206,
                incomplete: 20,
            },
            ScrapeEntry {
                info_hash: InfoHash([b'z'; 20]),
                complete: 14,
                downloaded: 12191,
                incomplete: 9,
            },
        ]
    }

    #[test]
    fn bep48_request() {
        let q = b"info_hash=xxxxxxxxxxxxxxxxxxxx&info_hash=yyyyyyyyyyyyyyyyyyyy\
                  &info_hash=zzzzzzzzzzzzzzzzzzzz";
        let hashes: Vec<_> = scrape_info_hashes(q).collect();
        assert_eq!(
            hashes,
            [
                Ok(InfoHash([b'x'; 20])),
                Ok(InfoHash([b'y'; 20])),
                Ok(InfoHash([b'z'; 20]))
            ]
        );
    }

    #[test]
    fn request_with_escapes_and_bad_hashes() {
        let q = b"info_hash=%124Vx%9A%BC%DE%F1%23Eg%89%AB%CD%EF%124Vx%9A&x=1\
                  &info_hash=short&info_hash=%zz";
        let hashes: Vec<_> = scrape_info_hashes(q).collect();
        assert_eq!(hashes.len(), 3);
        assert_eq!(hashes[0].unwrap().0[..4], [0x12, 0x34, 0x56, 0x78]);
        assert_eq!(hashes[1], Err(TrackerError::BadField("info_hash")));
        assert_eq!(hashes[2], Err(TrackerError::BadField("info_hash")));
        assert_eq!(scrape_info_hashes(b"").count(), 0);
    }

    #[test]
    fn bep48_response_both_ways() {
        let mut out = vec![0u8; 512];
        let n = write_scrape_response(&mut out, &bep48_entries()).unwrap();
        assert_eq!(&out[..n], BEP48);
        let parsed: Vec<_> = parse_scrape_response(BEP48).unwrap().collect();
        assert_eq!(parsed, bep48_entries());
    }

    #[test]
    fn empty_and_failure_responses() {
        let mut out = [0u8; 16];
        let n = write_scrape_response(&mut out, &[]).unwrap();
        assert_eq!(&out[..n], b"d5:filesdee");
        assert_eq!(parse_scrape_response(&out[..n]).unwrap().count(), 0);
        assert!(matches!(
            parse_scrape_response(b"d14:failure reason4:nopee"),
            Err(TrackerError::Failure)
        ));
        assert!(matches!(
            parse_scrape_response(b"d14:failure_reason4:nopee"),
            Err(TrackerError::Failure)
        ));
    }

    #[test]
    fn lenient_where_trackers_differ() {
        // Unsorted hashes, a missing `downloaded`, extra keys.
        let body = b"d5:filesd20:zzzzzzzzzzzzzzzzzzzzd8:completei1e10:incompletei2e4:namei0ee\
                     20:aaaaaaaaaaaaaaaaaaaad8:completei3eee5:flagsdee";
        let parsed: Vec<_> = parse_scrape_response(body).unwrap().collect();
        assert_eq!(
            parsed,
            [
                ScrapeEntry {
                    info_hash: InfoHash([b'z'; 20]),
                    complete: 1,
                    downloaded: 0,
                    incomplete: 2
                },
                ScrapeEntry {
                    info_hash: InfoHash([b'a'; 20]),
                    complete: 3,
                    downloaded: 0,
                    incomplete: 0
                },
            ]
        );
    }

    #[test]
    fn hostile_responses() {
        use TrackerError::*;
        let cases: [(&[u8], TrackerError); 6] = [
            (b"de", MissingField("files")),
            (b"d5:filesi1ee", BadField("files")),
            (b"d5:filesd19:xxxxxxxxxxxxxxxxxxxdeee", BadField("files")),
            (b"d5:filesd20:xxxxxxxxxxxxxxxxxxxxi1eee", BadField("files")),
            (
                b"d5:filesd20:xxxxxxxxxxxxxxxxxxxxd8:completei-1eeee",
                BadField("complete"),
            ),
            (
                b"d5:filesd20:xxxxxxxxxxxxxxxxxxxxd10:incompletei99999999999eeee",
                BadField("incomplete"),
            ),
        ];
        for (body, err) in cases {
            assert_eq!(parse_scrape_response(body).err(), Some(err), "{body:?}");
        }
        for cut in 0..BEP48.len() {
            assert!(parse_scrape_response(&BEP48[..cut]).is_err(), "cut {cut}");
        }
    }

    #[test]
    fn buffer_too_small_is_reported() {
        for len in 0..BEP48.len() {
            let mut out = vec![0u8; len];
            let err = write_scrape_response(&mut out, &bep48_entries()).unwrap_err();
            assert!(err.required > len && err.required <= BEP48.len());
        }
    }

    proptest! {
        #[test]
        fn round_trip(mut entries in proptest::collection::vec(
            (any::<[u8; 20]>(), any::<u32>(), any::<u32>(), any::<u32>()).prop_map(|(h, c, d, i)| ScrapeEntry {
                info_hash: InfoHash(h), complete: c, downloaded: d, incomplete: i,
            }),
            0..10,
        )) {
            entries.sort_by_key(|e| e.info_hash);
            entries.dedup_by_key(|e| e.info_hash);
            let mut out = vec![0u8; 64 + entries.len() * 100];
            let n = write_scrape_response(&mut out, &entries).unwrap();
            // Sorted input gives canonical bencode.
            prop_assert!(crate::bencode::decode(&out[..n]).is_ok());
            let back: Vec<_> = parse_scrape_response(&out[..n]).unwrap().collect();
            prop_assert_eq!(back, entries);
        }

        #[test]
        fn query_round_trip(hashes in proptest::collection::vec(any::<[u8; 20]>(), 0..10)) {
            let hashes: Vec<InfoHash> = hashes.into_iter().map(InfoHash).collect();
            let mut out = vec![0u8; hashes.len() * 71];
            let n = write_scrape_query(&hashes, &mut out).unwrap();
            let back: Vec<InfoHash> = scrape_info_hashes(&out[..n]).map(Result::unwrap).collect();
            prop_assert_eq!(back, hashes);
        }

        #[test]
        fn any_bytes_never_panic(body in proptest::collection::vec(any::<u8>(), 0..200)) {
            if let Ok(it) = parse_scrape_response(&body) {
                let _ = it.count();
            }
            let _ = scrape_info_hashes(&body).count();
        }
    }
}
