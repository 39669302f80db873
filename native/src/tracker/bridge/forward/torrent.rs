//! A `.torrent` a page hands the relay: validated by the core's metainfo parser, its info
//! dictionary checked against the info-hash the page names, and its tracker URLs kept. Nothing
//! else of it is kept, and nothing in it is trusted before the check.

use enjambre_core::metainfo::Metainfo;
use enjambre_core::tracker::client::TrackerUrl;
use enjambre_core::InfoHash;

/// Trackers kept per torrent at most (announce and announce-list together).
pub const MAX_TRACKERS: usize = 16;

/// Why a posted torrent is refused: the HTTP status and the reason the page reads.
pub type Refusal = (&'static str, String);

/// The `(tier, url)` pairs of a torrent whose info dictionary hashes to `info_hash`: only
/// `http://`, `https://` and `udp://` URLs, each once, at most [`MAX_TRACKERS`].
pub fn trackers(info_hash: &InfoHash, bytes: &[u8]) -> Result<Vec<(usize, String)>, Refusal> {
    let meta = Metainfo::parse(bytes)
        .map_err(|e| ("400 Bad Request", format!("not a valid .torrent: {e}\n")))?;
    // The parser hashes the info dictionary's raw bytes, never a re-encoding.
    if meta.info_hash != *info_hash {
        return Err((
            "403 Forbidden",
            format!(
                "forged info dictionary: it hashes to {}, not {info_hash}\n",
                meta.info_hash
            ),
        ));
    }
    let mut list: Vec<(usize, String)> = Vec::new();
    for (tier, url) in meta.trackers() {
        if list.len() == MAX_TRACKERS {
            break;
        }
        if TrackerUrl::parse(url).is_ok() && !list.iter().any(|(_, u)| u == url) {
            list.push((tier, url.to_owned()));
        }
    }
    if list.is_empty() {
        return Err((
            "422 Unprocessable Entity",
            "the torrent names no http, https or udp tracker\n".into(),
        ));
    }
    Ok(list)
}

#[cfg(test)]
mod tests {
    use super::*;
    use enjambre_core::metainfo::{write_torrent, TorrentSpec};

    fn torrent(trackers: &[&[&str]]) -> Vec<u8> {
        let pieces = [9u8; 40];
        let spec = TorrentSpec {
            name: "t",
            piece_length: 16384,
            pieces: &pieces,
            files: &[],
            length: 20_000,
            trackers,
            private: false,
            created_by: None,
            creation_date: None,
            comment: None,
        };
        let mut out = vec![0u8; 4096];
        let n = write_torrent(&spec, &mut out).unwrap();
        out.truncate(n);
        out
    }

    #[test]
    fn urls_are_kept_in_tiers_and_forgeries_refused() {
        let bytes = torrent(&[
            &["udp://a.example:6969", "http://b.example/announce"],
            &["wss://c.example", "udp://a.example:6969"],
        ]);
        let ih = Metainfo::parse(&bytes).unwrap().info_hash;
        let got = trackers(&ih, &bytes).unwrap();
        assert_eq!(
            got,
            [
                (0, "udp://a.example:6969".to_string()),
                (0, "http://b.example/announce".to_string())
            ]
        );
        let (status, why) = trackers(&InfoHash([1; 20]), &bytes).unwrap_err();
        assert!(status.starts_with("403") && why.contains("forged"), "{why}");
        let (status, _) = trackers(&ih, b"d4:infoi1ee").unwrap_err();
        assert!(status.starts_with("400"));
        let bytes = torrent(&[&["wss://c.example"]]);
        let ih = Metainfo::parse(&bytes).unwrap().info_hash;
        assert!(trackers(&ih, &bytes).unwrap_err().0.starts_with("422"));
    }
}
