//! Magnet links (BEP 9): the info-hash a link names, and its display name (`dn`), trackers
//! (`tr`), peers (`x.pe`) and web seeds (`ws`), each percent-decoded into a buffer the caller
//! gives.
//!
//! Parsing borrows the link and copies nothing; it never allocates. It checks the info-hash
//! (`xt=urn:btih:` with 40 hex digits or 32 base32 letters) and nothing else: a parameter it
//! does not know is skipped, and a value is only decoded, and so only checked, when asked for.
//! A link that names only a v2 hash (`urn:btmh:`) is refused as such.

use core::fmt;

use crate::ids::{parse_hex20, InfoHash};

/// Why a string is not a magnet link we can use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum MagnetError {
    /// It does not start with `magnet:?`.
    NotMagnet,
    /// No `xt=urn:btih:` parameter.
    NoInfoHash,
    /// An `xt=urn:btih:` whose value is neither 40 hex digits nor 32 base32 letters.
    BadInfoHash,
    /// Two `xt=urn:btih:` parameters naming different torrents.
    TwoInfoHashes,
    /// Only a v2 hash (`urn:btmh:`): pure v2 torrents are not supported.
    V2Only,
    /// A `%` not followed by two hex digits, or a decoded value longer than the buffer.
    BadValue,
}

impl fmt::Display for MagnetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            MagnetError::NotMagnet => "not a magnet link (it must start with `magnet:?`)",
            MagnetError::NoInfoHash => {
                "the magnet link names no BitTorrent info-hash (xt=urn:btih:)"
            }
            MagnetError::BadInfoHash => {
                "the magnet link's info-hash is neither 40 hex digits nor 32 base32 letters"
            }
            MagnetError::TwoInfoHashes => "the magnet link names two different info-hashes",
            MagnetError::V2Only => {
                "the magnet link names only a v2 (BEP 52) hash: pure v2 torrents are not supported"
            }
            MagnetError::BadValue => "a magnet link parameter is badly percent-encoded or too long",
        })
    }
}

/// A parsed magnet link, borrowing the text it came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Magnet<'a> {
    /// The torrent's v1 info-hash.
    pub info_hash: InfoHash,
    /// Everything after `magnet:?`.
    query: &'a str,
}

impl<'a> Magnet<'a> {
    /// Parse `link` (`magnet:?xt=urn:btih:…&dn=…&tr=…&x.pe=…`; the scheme in any case).
    pub fn parse(link: &'a str) -> Result<Self, MagnetError> {
        let query = link
            .get(..8)
            .filter(|s| s.eq_ignore_ascii_case("magnet:?"))
            .and(link.get(8..))
            .ok_or(MagnetError::NotMagnet)?;
        let mut found: Option<InfoHash> = None;
        let mut v2 = false;
        for (key, value) in params(query) {
            if key != "xt" {
                continue;
            }
            if let Some(hash) = strip_prefix_ignore_case(value, "urn:btih:") {
                let hash = parse_btih(hash).ok_or(MagnetError::BadInfoHash)?;
                if found.is_some_and(|f| f != hash) {
                    return Err(MagnetError::TwoInfoHashes);
                }
                found = Some(hash);
            } else if strip_prefix_ignore_case(value, "urn:btmh:").is_some() {
                v2 = true;
            }
        }
        match found {
            Some(info_hash) => Ok(Magnet { info_hash, query }),
            None if v2 => Err(MagnetError::V2Only),
            None => Err(MagnetError::NoInfoHash),
        }
    }

    /// The display name (`dn`), decoded into `buf`; `None` when the link has none.
    pub fn name<'b>(&self, buf: &'b mut [u8]) -> Option<Result<&'b [u8], MagnetError>> {
        let raw = self.values("dn").next()?;
        Some(decode(raw, buf))
    }

    /// The trackers (`tr`) in the link's order, each still percent-encoded: decode one with
    /// [`decode`].
    pub fn trackers(&self) -> impl Iterator<Item = &'a str> + 'a {
        self.values("tr")
    }

    /// The peers (`x.pe`, `host:port`) in the link's order, each still percent-encoded.
    pub fn peers(&self) -> impl Iterator<Item = &'a str> + 'a {
        self.values("x.pe")
    }

    /// The web seeds (`ws`, BEP 19) in the link's order, each still percent-encoded.
    pub fn web_seeds(&self) -> impl Iterator<Item = &'a str> + 'a {
        self.values("ws")
    }

    fn values(&self, wanted: &'static str) -> impl Iterator<Item = &'a str> + 'a {
        params(self.query).filter_map(move |(k, v)| (k == wanted).then_some(v))
    }
}

/// The `key=value` pairs of a query, split on `&`; a pair without `=` has an empty value.
fn params(query: &str) -> impl Iterator<Item = (&str, &str)> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| p.split_once('=').unwrap_or((p, "")))
}

fn strip_prefix_ignore_case<'s>(s: &'s str, prefix: &str) -> Option<&'s str> {
    let head = s.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &s[prefix.len()..])
}

/// 40 hex digits or 32 base32 letters (RFC 4648, either case).
fn parse_btih(s: &str) -> Option<InfoHash> {
    match s.len() {
        40 => parse_hex20(s.as_bytes()).map(InfoHash),
        32 => base32_20(s.as_bytes()).map(InfoHash),
        _ => None,
    }
}

/// 32 base32 letters (160 bits) into 20 bytes.
fn base32_20(s: &[u8]) -> Option<[u8; 20]> {
    let mut out = [0u8; 20];
    let (mut acc, mut bits, mut at) = (0u64, 0u32, 0usize);
    for &c in s {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a',
            b'2'..=b'7' => c - b'2' + 26,
            _ => return None,
        };
        acc = (acc << 5) | u64::from(v);
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out[at] = (acc >> bits) as u8;
            at += 1;
        }
    }
    Some(out)
}

/// Percent-decode `raw` into `buf` (`+` is a space, as in a form): the decoded bytes.
pub fn decode<'b>(raw: &str, buf: &'b mut [u8]) -> Result<&'b [u8], MagnetError> {
    let raw = raw.as_bytes();
    let (mut i, mut n) = (0, 0);
    while i < raw.len() {
        let b = match raw[i] {
            b'%' => {
                let hex = raw.get(i + 1..i + 3).ok_or(MagnetError::BadValue)?;
                let hi = (hex[0] as char).to_digit(16).ok_or(MagnetError::BadValue)?;
                let lo = (hex[1] as char).to_digit(16).ok_or(MagnetError::BadValue)?;
                i += 2;
                (hi * 16 + lo) as u8
            }
            b'+' => b' ',
            b => b,
        };
        *buf.get_mut(n).ok_or(MagnetError::BadValue)? = b;
        n += 1;
        i += 1;
    }
    Ok(&buf[..n])
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const HEX: &str = "c12fe1c06bba254a9dc9f519b335aa7c1367a88a";

    #[test]
    fn the_bep_9_link_gives_its_hash_name_trackers_and_peers() {
        let link =
            "magnet:?xt=urn:btih:c12fe1c06bba254a9dc9f519b335aa7c1367a88a&dn=Big+Buck%20Bunny\
                    &tr=udp%3A%2F%2Ftracker.example%3A80&tr=http://t2.example/announce\
                    &x.pe=10.0.0.1:6881&x.pe=%5B%3A%3A1%5D:51413";
        let m = Magnet::parse(link).unwrap();
        assert_eq!(m.info_hash, InfoHash::from_hex(HEX).unwrap());
        let mut buf = [0u8; 64];
        assert_eq!(m.name(&mut buf), Some(Ok(&b"Big Buck Bunny"[..])));
        let trackers: std::vec::Vec<_> = m.trackers().collect();
        assert_eq!(trackers.len(), 2);
        assert_eq!(
            decode(trackers[0], &mut buf),
            Ok(&b"udp://tracker.example:80"[..])
        );
        assert_eq!(
            decode(trackers[1], &mut buf),
            Ok(&b"http://t2.example/announce"[..])
        );
        let peers: std::vec::Vec<_> = m.peers().collect();
        assert_eq!(peers[0], "10.0.0.1:6881");
        assert_eq!(decode(peers[1], &mut buf), Ok(&b"[::1]:51413"[..]));
    }

    #[test]
    fn web_seeds_are_the_ws_parameters() {
        let link =
            std::format!("magnet:?xt=urn:btih:{HEX}&ws=http%3A%2F%2Fws.example%2Ff&tr=x&ws=b");
        let m = Magnet::parse(&link).unwrap();
        let ws: std::vec::Vec<_> = m.web_seeds().collect();
        assert_eq!(ws, ["http%3A%2F%2Fws.example%2Ff", "b"]);
        let mut buf = [0u8; 64];
        assert_eq!(decode(ws[0], &mut buf), Ok(&b"http://ws.example/f"[..]));
    }

    #[test]
    fn base32_and_hex_name_the_same_torrent() {
        // RFC 4648 base32 of the 20 bytes of HEX.
        let b32 = "YEX6DQDLXISUVHOJ6UM3GNNKPQJWPKEK";
        let links = [
            std::format!("magnet:?xt=urn:btih:{b32}"),
            std::format!("MAGNET:?xt=URN:BTIH:{}", HEX.to_uppercase()),
            std::format!("magnet:?xt=urn:btih:{}", b32.to_lowercase()),
        ];
        let [a, b, c] = links.each_ref().map(|l| Magnet::parse(l).unwrap());
        assert_eq!(a.info_hash, b.info_hash);
        assert_eq!(a.info_hash, c.info_hash);
        assert_eq!(a.info_hash, InfoHash::from_hex(HEX).unwrap());
    }

    #[test]
    fn a_link_without_name_trackers_or_peers_has_none() {
        let link = std::format!("magnet:?xt=urn:btih:{HEX}");
        let m = Magnet::parse(&link).unwrap();
        assert_eq!(m.name(&mut [0; 8]), None);
        assert_eq!(m.trackers().count(), 0);
        assert_eq!(m.peers().count(), 0);
    }

    #[test]
    fn what_is_not_a_usable_link_is_refused_with_its_reason() {
        let two = std::format!("magnet:?xt=urn:btih:{HEX}&xt=urn:btih:{}", "0".repeat(40));
        let same = std::format!(
            "magnet:?xt=urn:btih:{HEX}&xt=urn:btih:{}",
            HEX.to_uppercase()
        );
        let hybrid = std::format!(
            "magnet:?xt=urn:btmh:1220{}&xt=urn:btih:{HEX}",
            "a".repeat(64)
        );
        let cases: [(&str, Result<(), MagnetError>); 9] = [
            ("http://example.com/", Err(MagnetError::NotMagnet)),
            ("magnet:", Err(MagnetError::NotMagnet)),
            ("magnet:?dn=x", Err(MagnetError::NoInfoHash)),
            ("magnet:?xt=urn:btih:abc", Err(MagnetError::BadInfoHash)),
            (
                "magnet:?xt=urn:btih:YEX6DQDLXISUVHOJ6UM3GNNKPQJWPKE1",
                Err(MagnetError::BadInfoHash),
            ),
            ("magnet:?xt=urn:btmh:1220abcd", Err(MagnetError::V2Only)),
            (&two, Err(MagnetError::TwoInfoHashes)),
            (&same, Ok(())),
            (&hybrid, Ok(())),
        ];
        for (link, want) in cases {
            assert_eq!(Magnet::parse(link).map(|_| ()), want, "{link}");
        }
    }

    #[test]
    fn a_bad_escape_or_a_short_buffer_is_an_error_not_a_panic() {
        let mut buf = [0u8; 4];
        assert_eq!(decode("a%2", &mut buf), Err(MagnetError::BadValue));
        assert_eq!(decode("a%zz", &mut buf), Err(MagnetError::BadValue));
        assert_eq!(decode("%", &mut buf), Err(MagnetError::BadValue));
        assert_eq!(decode("abcde", &mut buf), Err(MagnetError::BadValue));
        assert_eq!(decode("ab%41", &mut buf), Ok(&b"abA"[..]));
        assert_eq!(decode("é%C3%A9", &mut [0u8; 8]), Ok("éé".as_bytes()));
    }

    proptest! {
        /// Any bytes, percent-encoded (each byte as `%XX`, or as itself when unreserved), and
        /// any 20-byte hash in either form: a link built from them gives them back.
        #[test]
        fn a_link_built_from_any_hash_and_name_gives_them_back(
            hash in proptest::array::uniform20(any::<u8>()),
            name in proptest::collection::vec(any::<u8>(), 0..40),
            hex in any::<bool>(),
        ) {
            let mut encoded = std::string::String::new();
            for &b in &name {
                if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                    encoded.push(b as char);
                } else {
                    encoded.push_str(&std::format!("%{b:02X}"));
                }
            }
            let xt = if hex {
                hash.iter().map(|b| std::format!("{b:02x}")).collect::<std::string::String>()
            } else {
                base32(&hash)
            };
            let link = std::format!("magnet:?xt=urn:btih:{xt}&dn={encoded}");
            let m = Magnet::parse(&link).unwrap();
            prop_assert_eq!(m.info_hash, InfoHash(hash));
            let mut buf = [0u8; 40];
            prop_assert_eq!(m.name(&mut buf), Some(Ok(&name[..])));
        }
    }

    /// RFC 4648 base32 of 20 bytes, for the property above.
    fn base32(bytes: &[u8; 20]) -> std::string::String {
        let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
        let mut out = std::string::String::new();
        let (mut acc, mut bits) = (0u64, 0u32);
        for &b in bytes {
            acc = (acc << 8) | u64::from(b);
            bits += 8;
            while bits >= 5 {
                bits -= 5;
                out.push(alphabet[((acc >> bits) & 31) as usize] as char);
            }
        }
        out
    }
}
