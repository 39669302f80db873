//! The HTTP announce query (BEP 3), both directions: our peer writes it, our tracker parses it.
//!
//! Parsing is one pass over the query with no allocation; each parameter is looked at once.
//! Rules (the lenient ones follow opentracker and aquatic):
//! - `info_hash`, `peer_id`, `port`, `uploaded`, `downloaded` and `left` are required;
//!   `info_hash` and `peer_id` must percent-decode to exactly 20 bytes (see
//!   [`super::urlencode`]: `+` is a literal byte, not a space).
//! - Numbers are plain decimal `u64` (no sign, no spaces); `port` must fit `u16`. `numwant`
//!   above `u32::MAX` is clamped to `u32::MAX` (the tracker caps it anyway).
//! - `event` is `started`, `completed`, `stopped`, `empty`, empty, or `paused` (BEP 21, a
//!   regular announce). `compact` is `0` or `1`; absent means `1` (BEP 23 suggests compact by
//!   default).
//! - `key` is 1 to 8 hexadecimal digits, as Transmission (`%08X`), libtorrent and µTorrent send
//!   it. Any other key (aria2 sends the last 8 raw bytes of its peer id, percent-encoded) is
//!   folded to 32 bits with FNV-1a over its decoded bytes, so one client's key still maps to one
//!   stable value. An empty key counts as absent.
//! - `trackerid`, `ip` and `bitfield` are returned as sent (still percent-encoded, still
//!   base64url); `ip` must be UTF-8.
//! - Parameter names are matched exactly as sent; unknown parameters, empty `&&` segments and
//!   names without `=` are ignored; a repeated parameter takes its last value.

use super::out::Out;
use super::urlencode::{self, hex_value, Decoded};
use super::{base64url, AnnounceEvent, TrackerError};
use crate::{BufferTooSmall, InfoHash, PeerId};

/// HTTP announce request, both directions (our peer writes it; our tracker parses it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AnnounceRequest<'a> {
    /// The torrent.
    pub info_hash: InfoHash,
    /// The announcing peer.
    pub peer_id: PeerId,
    /// The peer's listening port.
    pub port: u16,
    /// Bytes uploaded since `started`.
    pub uploaded: u64,
    /// Bytes downloaded since `started`.
    pub downloaded: u64,
    /// Bytes still missing.
    pub left: u64,
    /// Why this announce was sent.
    pub event: AnnounceEvent,
    /// Whether the peer prefers a compact peer list (BEP 23).
    pub compact: bool,
    /// How many peers the peer wants.
    pub numwant: Option<u32>,
    /// A value identifying the peer across address changes (see the module doc for parsing).
    pub key: Option<u32>,
    /// The `tracker id` of an earlier response: raw bytes when writing; still url-encoded when
    /// parsed (decode with [`urlencode::decode_into`]).
    pub trackerid: Option<&'a [u8]>,
    /// The address the peer claims: written percent-encoded; parsed as sent (IPv6 colons may
    /// still be `%3A`).
    pub ip: Option<&'a str>,
    /// Self-reported piece bitfield (our extension): raw bitfield bytes when writing, written
    /// as base64url; when parsed, the still-base64url text, to decode with
    /// [`base64url::decode`].
    pub bitfield: Option<&'a [u8]>,
}

impl<'a> AnnounceRequest<'a> {
    /// Write the query (`info_hash=..&peer_id=..&..`, no leading `?`) into `out`.
    ///
    /// Returns the length written; on `BufferTooSmall`, `required` is the exact length needed.
    pub fn write_query(&self, out: &mut [u8]) -> Result<usize, BufferTooSmall> {
        let mut w = Out::new(out);
        w.put(b"info_hash=");
        w.put_urlencoded(&self.info_hash.0);
        w.put(b"&peer_id=");
        w.put_urlencoded(&self.peer_id.0);
        w.put(b"&port=");
        w.put_decimal(u64::from(self.port));
        w.put(b"&uploaded=");
        w.put_decimal(self.uploaded);
        w.put(b"&downloaded=");
        w.put_decimal(self.downloaded);
        w.put(b"&left=");
        w.put_decimal(self.left);
        w.put(if self.compact {
            b"&compact=1"
        } else {
            b"&compact=0"
        });
        if let Some(event) = self.event.as_query_value() {
            w.put(b"&event=");
            w.put(event.as_bytes());
        }
        if let Some(n) = self.numwant {
            w.put(b"&numwant=");
            w.put_decimal(u64::from(n));
        }
        if let Some(key) = self.key {
            w.put(b"&key=");
            w.put_hex8(key);
        }
        if let Some(id) = self.trackerid {
            w.put(b"&trackerid=");
            w.put_urlencoded(id);
        }
        if let Some(ip) = self.ip {
            w.put(b"&ip=");
            w.put_urlencoded(ip.as_bytes());
        }
        if let Some(bits) = self.bitfield {
            w.put(b"&bitfield=");
            base64url::put(&mut w, bits);
        }
        w.finish()
    }

    /// Parse an announce query (the part after `?`), by the rules in the module doc.
    pub fn parse_query(query: &'a [u8]) -> Result<Self, TrackerError> {
        let mut info_hash = None;
        let mut peer_id = None;
        let mut port = None;
        let mut uploaded = None;
        let mut downloaded = None;
        let mut left = None;
        let mut req = AnnounceRequest {
            info_hash: InfoHash::default(),
            peer_id: PeerId::default(),
            port: 0,
            uploaded: 0,
            downloaded: 0,
            left: 0,
            event: AnnounceEvent::None,
            compact: true,
            numwant: None,
            key: None,
            trackerid: None,
            ip: None,
            bitfield: None,
        };
        for (name, value) in pairs(query) {
            match name {
                b"info_hash" => info_hash = Some(urlencode::decode_20(value, "info_hash")?),
                b"peer_id" => peer_id = Some(urlencode::decode_20(value, "peer_id")?),
                b"port" => {
                    let p = decimal(value).ok_or(TrackerError::BadField("port"))?;
                    port = Some(u16::try_from(p).map_err(|_| TrackerError::BadField("port"))?);
                }
                b"uploaded" => uploaded = Some(number(value, "uploaded")?),
                b"downloaded" => downloaded = Some(number(value, "downloaded")?),
                b"left" => left = Some(number(value, "left")?),
                b"event" => {
                    req.event = AnnounceEvent::from_query_value(value)
                        .ok_or(TrackerError::BadField("event"))?;
                }
                b"compact" => {
                    req.compact = match value {
                        b"1" => true,
                        b"0" => false,
                        _ => return Err(TrackerError::BadField("compact")),
                    };
                }
                b"numwant" => {
                    let n = number(value, "numwant")?;
                    req.numwant = Some(u32::try_from(n).unwrap_or(u32::MAX));
                }
                b"key" => req.key = key(value)?,
                b"trackerid" => req.trackerid = Some(value),
                b"ip" => {
                    let ip =
                        core::str::from_utf8(value).map_err(|_| TrackerError::BadField("ip"))?;
                    req.ip = Some(ip);
                }
                b"bitfield" => req.bitfield = Some(value),
                _ => {}
            }
        }
        req.info_hash = InfoHash(info_hash.ok_or(TrackerError::MissingField("info_hash"))?);
        req.peer_id = PeerId(peer_id.ok_or(TrackerError::MissingField("peer_id"))?);
        req.port = port.ok_or(TrackerError::MissingField("port"))?;
        req.uploaded = uploaded.ok_or(TrackerError::MissingField("uploaded"))?;
        req.downloaded = downloaded.ok_or(TrackerError::MissingField("downloaded"))?;
        req.left = left.ok_or(TrackerError::MissingField("left"))?;
        Ok(req)
    }
}

/// The `name=value` pairs of a query, in order; segments without `=` are skipped.
pub(crate) fn pairs(query: &[u8]) -> impl Iterator<Item = (&[u8], &[u8])> {
    query.split(|&b| b == b'&').filter_map(|segment| {
        let mut parts = segment.splitn(2, |&b| b == b'=');
        let name = parts.next()?;
        let value = parts.next()?;
        Some((name, value))
    })
}

/// A plain decimal `u64`: at least one digit, digits only, no overflow.
fn decimal(v: &[u8]) -> Option<u64> {
    if v.is_empty() {
        return None;
    }
    v.iter().try_fold(0u64, |acc, &c| {
        let d = c.checked_sub(b'0').filter(|d| *d <= 9)?;
        acc.checked_mul(10)?.checked_add(u64::from(d))
    })
}

fn number(v: &[u8], field: &'static str) -> Result<u64, TrackerError> {
    decimal(v).ok_or(TrackerError::BadField(field))
}

/// The `key` parameter: 1..=8 hex digits as a number, anything else folded with FNV-1a.
fn key(v: &[u8]) -> Result<Option<u32>, TrackerError> {
    if v.is_empty() {
        return Ok(None);
    }
    if v.len() <= 8 {
        let hex = v
            .iter()
            .try_fold(0u32, |acc, &c| Some(acc << 4 | u32::from(hex_value(c)?)));
        if let Some(k) = hex {
            return Ok(Some(k));
        }
    }
    let mut h: u32 = 0x811c_9dc5;
    for b in Decoded::new(v) {
        h = (h ^ u32::from(b?)).wrapping_mul(0x0100_0193);
    }
    Ok(Some(h))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::vec;
    use std::vec::Vec;

    const INFO_HASH: [u8; 20] = [
        0x04, 0x0b, b'k', b'V', 0x3f, 0x5c, b'r', 0x14, 0xa6, 0xb7, 0x98, 0xad, b'C', 0xc3, 0xc9,
        b'.', 0x40, 0x24, 0x00, 0xb9,
    ];

    /// The query Transmission 4 sends (announcer-http.cc: `key={key:08X}`, peer id unescaped).
    const TRANSMISSION: &[u8] = b"info_hash=%04%0BkV%3F%5Cr%14%A6%B7%98%ADC%C3%C9.%40%24%00%B9\
        &peer_id=-TR4050-x1y2z3a4b5c6&port=51413&uploaded=0&downloaded=0&left=1048576\
        &numwant=80&key=3A0F19C2&compact=1&supportcrypto=1&event=started";

    #[test]
    fn transmission_query() {
        let r = AnnounceRequest::parse_query(TRANSMISSION).unwrap();
        assert_eq!(r.info_hash, InfoHash(INFO_HASH));
        assert_eq!(&r.peer_id.0, b"-TR4050-x1y2z3a4b5c6");
        assert_eq!(r.port, 51413);
        assert_eq!((r.uploaded, r.downloaded, r.left), (0, 0, 1_048_576));
        assert_eq!(r.numwant, Some(80));
        assert_eq!(r.key, Some(0x3A0F_19C2));
        assert!(r.compact);
        assert_eq!(r.event, AnnounceEvent::Started);
        assert_eq!((r.trackerid, r.ip, r.bitfield), (None, None, None));
    }

    /// The query aria2 sends (DefaultBtAnnounce.cc): lower-case escapes, the key is the last 8
    /// bytes of its peer id percent-encoded, `no_peer_id=1`, port after the other numbers.
    const ARIA2: &[u8] = b"info_hash=%04%0bkV%3f%5cr%14%a6%b7%98%adC%c3%c9.%40%24%00%b9\
        &peer_id=A2-1-37-0-%01%02%03%04%05%06%07%08%09%ff&uploaded=7&downloaded=9&left=0\
        &compact=1&key=%03%04%05%06%07%08%09%ff&numwant=50&no_peer_id=1&port=6881\
        &event=completed&supportcrypto=1";

    #[test]
    fn aria2_query() {
        let r = AnnounceRequest::parse_query(ARIA2).unwrap();
        assert_eq!(r.info_hash, InfoHash(INFO_HASH));
        assert_eq!(&r.peer_id.0[..10], b"A2-1-37-0-");
        assert_eq!(r.peer_id.0[19], 0xff);
        assert_eq!((r.port, r.uploaded, r.downloaded, r.left), (6881, 7, 9, 0));
        assert_eq!(r.event, AnnounceEvent::Completed);
        // The key is not hex: FNV-1a of its 8 decoded bytes, the same on every announce.
        let mut h: u32 = 0x811c_9dc5;
        for b in [3u8, 4, 5, 6, 7, 8, 9, 0xff] {
            h = (h ^ u32::from(b)).wrapping_mul(0x0100_0193);
        }
        assert_eq!(r.key, Some(h));
    }

    /// BEP 23's example, and BEP 7's IPv6 `ip`-less request with an `ipv6=` parameter.
    #[test]
    fn bep_examples() {
        let r = AnnounceRequest::parse_query(
            b"peer_id=aaaaaaaaaaaaaaaaaaaa&info_hash=aaaaaaaaaaaaaaaaaaaa\
              &port=6881&left=0&downloaded=100&uploaded=0&compact=1",
        )
        .unwrap();
        assert_eq!(r.info_hash, InfoHash([b'a'; 20]));
        assert_eq!(
            (r.port, r.left, r.downloaded, r.uploaded),
            (6881, 0, 100, 0)
        );
        let r = AnnounceRequest::parse_query(
            b"peer_id=aaaaaaaaaaaaaaaaaaaa&info_hash=aaaaaaaaaaaaaaaaaaaa\
              &port=6881&left=0&downloaded=100&uploaded=0&compact=1\
              &ipv6=2001%3A%3A53Aa%3A64c%3A0%3A7f83%3Abc43%3Adec9",
        )
        .unwrap();
        assert_eq!(r.ip, None);
    }

    fn sample() -> AnnounceRequest<'static> {
        AnnounceRequest {
            info_hash: InfoHash(INFO_HASH),
            peer_id: PeerId(*b"-EJ0001-+ /?&=%~._zz"),
            port: 6881,
            uploaded: 1,
            downloaded: 2,
            left: u64::MAX,
            event: AnnounceEvent::Stopped,
            compact: false,
            numwant: Some(0),
            key: Some(0xDEAD_BEEF),
            trackerid: Some(b"id&=1"),
            ip: Some("::1"),
            bitfield: Some(&[0xff, 0x80]),
        }
    }

    fn write(r: &AnnounceRequest<'_>) -> Vec<u8> {
        let mut out = vec![0u8; 1024];
        let n = r.write_query(&mut out).unwrap();
        out.truncate(n);
        out
    }

    #[test]
    fn written_query_text() {
        let q = write(&sample());
        assert_eq!(
            core::str::from_utf8(&q).unwrap(),
            "info_hash=%04%0BkV%3F%5Cr%14%A6%B7%98%ADC%C3%C9.%40%24%00%B9\
             &peer_id=-EJ0001-%2B%20%2F%3F%26%3D%25~._zz&port=6881&uploaded=1&downloaded=2\
             &left=18446744073709551615&compact=0&event=stopped&numwant=0&key=DEADBEEF\
             &trackerid=id%26%3D1&ip=%3A%3A1&bitfield=_4A"
        );
        let back = AnnounceRequest::parse_query(&q).unwrap();
        assert_eq!(back.trackerid, Some(&b"id%26%3D1"[..]));
        assert_eq!(back.ip, Some("%3A%3A1"));
        assert_eq!(back.bitfield, Some(&b"_4A"[..]));
    }

    #[test]
    fn buffer_too_small_reports_exact_size() {
        let full = write(&sample());
        for len in 0..full.len() {
            let mut out = vec![0u8; len];
            assert_eq!(
                sample().write_query(&mut out),
                Err(BufferTooSmall {
                    required: full.len()
                })
            );
        }
    }

    #[test]
    fn missing_required_fields() {
        let full = b"info_hash=aaaaaaaaaaaaaaaaaaaa&peer_id=bbbbbbbbbbbbbbbbbbbb&port=1\
                     &uploaded=0&downloaded=0&left=0";
        assert!(AnnounceRequest::parse_query(full).is_ok());
        let text = core::str::from_utf8(full).unwrap();
        for name in [
            "info_hash",
            "peer_id",
            "port",
            "uploaded",
            "downloaded",
            "left",
        ] {
            let without: Vec<&str> = text
                .split('&')
                .filter(|p| !p.starts_with(&std::format!("{name}=")))
                .collect();
            assert_eq!(
                AnnounceRequest::parse_query(without.join("&").as_bytes()),
                Err(TrackerError::MissingField(name))
            );
        }
    }

    fn with(extra: &str) -> Result<AnnounceRequest<'static>, TrackerError> {
        let q = std::format!(
            "info_hash=aaaaaaaaaaaaaaaaaaaa&peer_id=bbbbbbbbbbbbbbbbbbbb&port=1\
             &uploaded=0&downloaded=0&left=0&{extra}"
        );
        AnnounceRequest::parse_query(std::boxed::Box::leak(q.into_boxed_str()).as_bytes())
    }

    #[test]
    fn hostile_values() {
        use TrackerError::*;
        let cases: [(&str, TrackerError); 21] = [
            ("info_hash=aaaaaaaaaaaaaaaaaaa", BadField("info_hash")),
            ("info_hash=aaaaaaaaaaaaaaaaaaaaa", BadField("info_hash")),
            ("info_hash=", BadField("info_hash")),
            ("info_hash=%zzaaaaaaaaaaaaaaaaaaa", BadUrlEncoding),
            ("info_hash=aaaaaaaaaaaaaaaaaaa%", BadUrlEncoding),
            ("peer_id=%41%4", BadField("peer_id")),
            ("peer_id=%41%4gaaaaaaaaaaaaaaaaaa", BadUrlEncoding),
            ("port=65536", BadField("port")),
            ("port=-1", BadField("port")),
            ("port=", BadField("port")),
            ("port=80 ", BadField("port")),
            ("uploaded=18446744073709551616", BadField("uploaded")),
            ("downloaded=+5", BadField("downloaded")),
            ("left=1e9", BadField("left")),
            (
                "left=99999999999999999999999999999999999999",
                BadField("left"),
            ),
            ("numwant=-1", BadField("numwant")),
            ("numwant=0x10", BadField("numwant")),
            ("event=start", BadField("event")),
            ("compact=2", BadField("compact")),
            ("compact=", BadField("compact")),
            ("key=%g1", BadUrlEncoding),
        ];
        for (extra, err) in cases {
            assert_eq!(with(extra), Err(err), "{extra}");
        }
        let mut q = b"info_hash=aaaaaaaaaaaaaaaaaaaa&peer_id=bbbbbbbbbbbbbbbbbbbb&port=1\
                      &uploaded=0&downloaded=0&left=0&ip="
            .to_vec();
        q.extend_from_slice(&[0xff, 0xfe]);
        assert_eq!(AnnounceRequest::parse_query(&q), Err(BadField("ip")));
    }

    #[test]
    fn lenient_values() {
        // Leading zeros, u64::MAX, port 0 (some clients send it with `stopped`).
        let r = with("uploaded=007&left=18446744073709551615&port=0").unwrap();
        assert_eq!((r.uploaded, r.left, r.port), (7, u64::MAX, 0));
        // Huge numwant is clamped, not refused.
        assert_eq!(with("numwant=99999999999").unwrap().numwant, Some(u32::MAX));
        assert_eq!(with("numwant=4294967295").unwrap().numwant, Some(u32::MAX));
        // Events: empty, "empty" and BEP 21 "paused" are regular announces.
        for e in ["event=", "event=empty", "event=paused"] {
            assert_eq!(with(e).unwrap().event, AnnounceEvent::None, "{e}");
        }
        assert!(!with("compact=0").unwrap().compact);
        // Unknown, valueless and empty segments are ignored; a repeated parameter's last wins.
        let r = with("supportcrypto=1&no_peer_id&&corrupt=5&port=2&port=3&x=%zz").unwrap();
        assert_eq!(r.port, 3);
        // '+' is a literal byte in binary values.
        let r = with("peer_id=-XX0001-++++++++++++").unwrap();
        assert_eq!(&r.peer_id.0, b"-XX0001-++++++++++++");
    }

    #[test]
    fn keys() {
        assert_eq!(with("key=3A0F19C2").unwrap().key, Some(0x3A0F_19C2));
        assert_eq!(with("key=3a0f19c2").unwrap().key, Some(0x3A0F_19C2));
        assert_eq!(with("key=1").unwrap().key, Some(1));
        assert_eq!(with("key=").unwrap().key, None);
        // Nine hex digits, or non-hex text: folded, deterministic, and distinct here.
        let nine = with("key=123456789").unwrap().key.unwrap();
        assert_eq!(with("key=123456789").unwrap().key, Some(nine));
        let text = with("key=%78yz").unwrap().key.unwrap();
        // The fold is over decoded bytes, so escaping does not change it.
        assert_eq!(with("key=xyz").unwrap().key, Some(text));
        assert_ne!(nine, text);
    }

    #[test]
    fn every_prefix_parses_without_panic() {
        let text = core::str::from_utf8(TRANSMISSION).unwrap();
        let left_at = text.find("&left=").unwrap() + "&left=".len();
        for cut in 0..=TRANSMISSION.len() {
            let prefix = &TRANSMISSION[..cut];
            // Only prefixes that still hold every required parameter can succeed, and then
            // with the full query's values, `left` possibly cut short.
            if let Ok(r) = AnnounceRequest::parse_query(prefix) {
                assert!(cut > left_at, "cut {cut}");
                assert_eq!(r.info_hash, InfoHash(INFO_HASH));
                assert!("1048576".starts_with(&std::format!("{}", r.left)));
            }
        }
        for cut in 0..ARIA2.len() {
            let _ = AnnounceRequest::parse_query(&ARIA2[..cut]);
        }
    }

    fn arb_request() -> impl Strategy<Value = (AnnounceRequest<'static>, Vec<u8>)> {
        let event = prop_oneof![
            Just(AnnounceEvent::None),
            Just(AnnounceEvent::Started),
            Just(AnnounceEvent::Completed),
            Just(AnnounceEvent::Stopped),
        ];
        let bytes = proptest::collection::vec(any::<u8>(), 0..24);
        (
            (any::<[u8; 20]>(), any::<[u8; 20]>(), any::<u16>()),
            (
                any::<u64>(),
                any::<u64>(),
                any::<u64>(),
                event,
                any::<bool>(),
            ),
            (any::<Option<u32>>(), any::<Option<u32>>()),
            (
                proptest::option::of(bytes.clone()),
                proptest::option::of("[0-9a-f:.]{0,40}"),
                proptest::option::of(bytes),
            ),
        )
            .prop_map(
                |(
                    (ih, pid, port),
                    (up, down, left, event, compact),
                    (numwant, key),
                    (tid, ip, bf),
                )| {
                    let leak = |v: Vec<u8>| -> &'static [u8] {
                        std::boxed::Box::leak(v.into_boxed_slice())
                    };
                    let req = AnnounceRequest {
                        info_hash: InfoHash(ih),
                        peer_id: PeerId(pid),
                        port,
                        uploaded: up,
                        downloaded: down,
                        left,
                        event,
                        compact,
                        numwant,
                        key,
                        trackerid: tid.map(leak),
                        ip: ip.map(|s| &*std::boxed::Box::leak(s.into_boxed_str())),
                        bitfield: bf.map(leak),
                    };
                    let text = write(&req);
                    (req, text)
                },
            )
    }

    proptest! {
        #[test]
        fn round_trip((req, text) in arb_request()) {
            let back = AnnounceRequest::parse_query(&text).unwrap();
            let decode_url = |t: &[u8]| {
                let mut out = vec![0u8; t.len()];
                let n = urlencode::decode_into(t, &mut out).unwrap();
                out.truncate(n);
                out
            };
            let decode_b64 = |t: &[u8]| {
                let mut out = vec![0u8; t.len()];
                let n = base64url::decode(t, &mut out).unwrap();
                out.truncate(n);
                out
            };
            prop_assert_eq!(back.trackerid.map(decode_url), req.trackerid.map(<[u8]>::to_vec));
            prop_assert_eq!(back.ip.map(|s| decode_url(s.as_bytes())), req.ip.map(|s| s.as_bytes().to_vec()));
            prop_assert_eq!(back.bitfield.map(decode_b64), req.bitfield.map(<[u8]>::to_vec));
            let strip = |r: AnnounceRequest<'_>| AnnounceRequest { trackerid: None, ip: None, bitfield: None, ..r };
            prop_assert_eq!(strip(back), strip(req));
        }

        #[test]
        fn any_bytes_never_panic(q in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = AnnounceRequest::parse_query(&q);
        }

        #[test]
        fn mutated_queries_never_panic((_, text) in arb_request(), at in any::<usize>(), b in any::<u8>()) {
            let mut q = text;
            let i = at % q.len();
            q[i] = b;
            let _ = AnnounceRequest::parse_query(&q);
        }
    }

    /// Throughput of `parse_query` on Transmission's query; the tracker needs > 30k/s per core.
    /// Run with `cargo test --release -p enjambre-core --lib tracker::query -- --ignored`.
    #[test]
    #[ignore]
    fn parse_throughput() {
        let n = 1_000_000u32;
        let start = std::time::Instant::now();
        let mut ports = 0u64;
        for _ in 0..n {
            let r = AnnounceRequest::parse_query(core::hint::black_box(TRANSMISSION)).unwrap();
            ports += u64::from(r.port);
        }
        let per_s = f64::from(n) / start.elapsed().as_secs_f64();
        std::println!("parse_query: {per_s:.0}/s ({ports})");
        assert!(per_s > 30_000.0);
    }
}
