//! BEP 19 web seeds: the `url-list` of a torrent, and the URL of each file on such a server.
//!
//! Read from the `.torrent` bytes on demand (a separate pass over the root dictionary), so
//! [`Metainfo::parse`](super::Metainfo::parse) and a shell that never uses web seeds pay
//! nothing for them. `url-list` is a string or a list of strings; entries that are not UTF-8
//! strings, or not `http://`/`https://`, are skipped, never an error.

use super::Components;
use crate::bencode::{decode_with, DecodeOptions, ListIter, Value};
use crate::tracker::urlencode::encode_into;
use crate::BufferTooSmall;

/// The web seed URLs of a torrent (see [`web_seeds`]).
#[derive(Clone)]
pub struct WebSeeds<'a> {
    single: Option<&'a str>,
    list: Option<ListIter<'a>>,
}

/// Iterate over the `url-list` of the `.torrent` bytes `torrent`; nothing when it has none or
/// is not a torrent.
pub fn web_seeds(torrent: &[u8]) -> WebSeeds<'_> {
    let root = decode_with(torrent, DecodeOptions::LENIENT)
        .ok()
        .and_then(|v| v.as_dict());
    let value = root.and_then(|r| r.get(b"url-list"));
    WebSeeds {
        single: value.as_ref().and_then(Value::as_str),
        list: value.and_then(|v| v.as_list()).map(|l| l.iter()),
    }
}

impl<'a> Iterator for WebSeeds<'a> {
    type Item = &'a str;
    fn next(&mut self) -> Option<&'a str> {
        if let Some(url) = self.single.take().filter(|u| is_web_url(u)) {
            return Some(url);
        }
        let list = self.list.as_mut()?;
        list.by_ref()
            .filter_map(|v| v.as_str())
            .find(|u| is_web_url(u))
    }
}

/// Return whether `url` is one a web seed can be fetched from.
pub fn is_web_url(url: &str) -> bool {
    let url = url.as_bytes();
    let starts = |p: &[u8]| url.len() > p.len() && url[..p.len()].eq_ignore_ascii_case(p);
    starts(b"http://") || starts(b"https://")
}

/// Write the URL of one file on the web seed `base` into `out` and return its length.
///
/// A single-file torrent (`multi_file` false): `base` is the file itself, unless it ends with
/// `/`, when the torrent's `name` is appended. A multi-file torrent: `base`, `/` if missing,
/// `name`, then each component of the file's `path` after a `/`. Names and components are
/// percent-encoded (RFC 3986 unreserved bytes kept); `base` is written as given.
pub fn write_file_url(
    base: &str,
    name: &str,
    multi_file: bool,
    path: Components<'_>,
    out: &mut [u8],
) -> Result<usize, BufferTooSmall> {
    let mut n = put(out, 0, base.as_bytes())?;
    if !multi_file && !base.ends_with('/') {
        return Ok(n);
    }
    if !base.ends_with('/') {
        n = put(out, n, b"/")?;
    }
    n += encode_into(name.as_bytes(), out.get_mut(n..).unwrap_or_default())?;
    if multi_file {
        for component in path {
            n = put(out, n, b"/")?;
            n += encode_into(component.as_bytes(), out.get_mut(n..).unwrap_or_default())?;
        }
    }
    Ok(n)
}

fn put(out: &mut [u8], at: usize, bytes: &[u8]) -> Result<usize, BufferTooSmall> {
    let end = at + bytes.len();
    let slot = out
        .get_mut(at..end)
        .ok_or(BufferTooSmall { required: end })?;
    slot.copy_from_slice(bytes);
    Ok(end)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metainfo::Metainfo;
    use std::string::String;
    use std::vec::Vec;

    fn urls(torrent: &[u8]) -> Vec<&str> {
        web_seeds(torrent).collect()
    }

    fn file_urls(torrent: &[u8], base: &str) -> Vec<String> {
        let m = Metainfo::parse(torrent).unwrap();
        m.files()
            .map(|f| {
                let mut out = [0u8; 256];
                let multi = m.is_multi_file();
                let n = write_file_url(base, m.name, multi, f.path.components(), &mut out).unwrap();
                String::from(core::str::from_utf8(&out[..n]).unwrap())
            })
            .collect()
    }

    const INFO_SINGLE: &str =
        "4:infod6:lengthi5e4:name5:a b.c12:piece lengthi16384e6:pieces20:aaaaaaaaaaaaaaaaaaaae";
    const INFO_MULTI: &str = "4:infod5:filesld6:lengthi3e4:pathl3:dir5:x%y.zeed6:lengthi2e4:pathl1:beee4:name3:top12:piece lengthi16384e6:pieces20:aaaaaaaaaaaaaaaaaaaae";

    #[test]
    fn url_list_is_a_string_or_a_list_and_odd_entries_are_skipped() {
        let one = std::format!("d{INFO_SINGLE}8:url-list17:http://ws.test/a/e");
        assert_eq!(urls(one.as_bytes()), ["http://ws.test/a/"]);
        let many = std::format!(
            "d{INFO_SINGLE}8:url-listl14:http://a.test/i7e12:ftp://b.test15:HTTPS://c.test/ee"
        );
        assert_eq!(urls(many.as_bytes()), ["http://a.test/", "HTTPS://c.test/"]);
        let none = std::format!("d{INFO_SINGLE}e");
        assert!(urls(none.as_bytes()).is_empty());
        assert!(urls(b"not bencode").is_empty());
        assert!(is_web_url("http://é.example/f") && !is_web_url("http://") && !is_web_url("htt"));
    }

    #[test]
    fn a_single_file_url_is_the_file_unless_it_ends_with_a_slash() {
        let t = std::format!("d{INFO_SINGLE}e");
        assert_eq!(
            file_urls(t.as_bytes(), "http://ws.test/f.bin"),
            ["http://ws.test/f.bin"]
        );
        assert_eq!(
            file_urls(t.as_bytes(), "http://ws.test/d/"),
            ["http://ws.test/d/a%20b.c"]
        );
    }

    #[test]
    fn a_multi_file_url_is_base_name_and_path_percent_encoded() {
        let t = std::format!("d{INFO_MULTI}e");
        assert_eq!(
            file_urls(t.as_bytes(), "http://ws.test/seeds/"),
            [
                "http://ws.test/seeds/top/dir/x%25y.z",
                "http://ws.test/seeds/top/b"
            ]
        );
        assert_eq!(
            file_urls(t.as_bytes(), "http://ws.test/seeds"),
            [
                "http://ws.test/seeds/top/dir/x%25y.z",
                "http://ws.test/seeds/top/b"
            ]
        );
    }

    #[test]
    fn a_short_buffer_is_an_error_not_a_panic() {
        let t = std::format!("d{INFO_MULTI}e");
        let m = Metainfo::parse(t.as_bytes()).unwrap();
        let f = m.files().next().unwrap();
        for len in 0.."http://ws.test/top/dir/x%25y.z".len() {
            let mut out = std::vec![0u8; len];
            let r = write_file_url(
                "http://ws.test/",
                m.name,
                true,
                f.path.components(),
                &mut out,
            );
            assert!(r.is_err(), "{len}");
        }
    }
}
