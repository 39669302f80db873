//! BEP 19 web seeds: HTTP servers holding the torrent's files (its `url-list`, and a magnet
//! link's `ws=` once the metadata is known), fetched with range requests and mixed with peers.
//! Each one joins the session as a peer that has every piece (`source`); its files' URLs are
//! `files`, its HTTP client `http`. The session loop adds them, and adds one again after the
//! session closed it, unless it was banned or given up (`driver::webseeds`).

pub mod files;
pub mod http;
pub mod source;

pub use files::WebFiles;

use super::driver::WebSeed;
use super::Torrent;

impl Torrent {
    /// The web seeds (BEP 19) with their files' URLs: the torrent's `url-list`, then those
    /// named elsewhere (a magnet link's `ws=`), each once; one whose URLs cannot be written is
    /// skipped with a warning.
    pub(super) fn web_seeds(&self) -> Vec<WebSeed> {
        let listed = enjambre_core::metainfo::web_seeds(self.bytes);
        let mut seen = std::collections::HashSet::new();
        let urls = (listed.chain(self.more_web_seeds.iter().map(String::as_str)))
            .filter(|url| seen.insert(*url));
        let files = urls.filter_map(|url| match WebFiles::new(&self.meta, url) {
            Ok(f) => Some(f),
            Err(e) => {
                tracing::warn!("{e}: skipped");
                None
            }
        });
        let info_hash = self.meta.info_hash;
        (files.enumerate())
            .map(|(n, f)| WebSeed::new(n, f, info_hash))
            .collect()
    }
}
