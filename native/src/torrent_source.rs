//! Reading a `.torrent` for `get`, `seed` and `info`: a local file, or an `http://` or
//! `https://` URL (rustls, the webpki roots), bounded in size and time.

use std::path::Path;
use std::time::Duration;

use crate::peer::Failure;

/// How long fetching a torrent over HTTP may take, all told.
const FETCH_TIMEOUT: Duration = Duration::from_secs(30);

/// The largest `.torrent` accepted (a 10,000-piece torrent is about 200 KiB).
pub const MAX_TORRENT_BYTES: u64 = 16 << 20;

/// Read the torrent at `source`; a failure exits with code 2 (a bad torrent).
pub fn read(source: &Path) -> Result<Vec<u8>, Failure> {
    match source.to_str() {
        Some(url) if is_url(url) => fetch(url),
        _ => read_file(source),
    }
}

/// Whether `source` names an HTTP(S) URL rather than a file.
pub fn is_url(source: &str) -> bool {
    let lower = source.get(..8).unwrap_or(source).to_ascii_lowercase();
    lower.starts_with("http://") || lower.starts_with("https://")
}

fn fetch(url: &str) -> Result<Vec<u8>, Failure> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(FETCH_TIMEOUT))
        .max_redirects(5)
        .build()
        .into();
    let cannot = |e: ureq::Error| {
        let why = match e {
            ureq::Error::StatusCode(code) => format!("the server answered HTTP {code}"),
            ureq::Error::BodyExceedsLimit(_) => return too_large(url),
            e => e.to_string(),
        };
        Failure::new(2, format!("cannot fetch {url}: {why}"))
    };
    let mut response = agent.get(url).call().map_err(cannot)?;
    response
        .body_mut()
        .with_config()
        .limit(MAX_TORRENT_BYTES)
        .read_to_vec()
        .map_err(cannot)
}

fn read_file(path: &Path) -> Result<Vec<u8>, Failure> {
    let shown = path.display();
    let cannot = |e: std::io::Error| Failure::new(2, format!("cannot read {shown}: {e}"));
    let len = std::fs::metadata(path).map_err(cannot)?.len();
    if len > MAX_TORRENT_BYTES {
        return Err(too_large(&shown.to_string()));
    }
    std::fs::read(path).map_err(cannot)
}

fn too_large(source: &str) -> Failure {
    Failure::new(
        2,
        format!(
            "{source} is larger than {} MiB: not a torrent",
            MAX_TORRENT_BYTES >> 20
        ),
    )
}
