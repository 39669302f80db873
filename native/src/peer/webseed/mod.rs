//! BEP 19 web seeds: HTTP servers holding the torrent's files, fetched with range requests and
//! mixed with peers. Each one joins the session as a peer that has every piece (`source`); its
//! files' URLs are `files`, its HTTP client `http`. The session loop adds them, and adds one
//! again after the session closed it, unless it was banned or given up (`driver::webseeds`).

pub mod files;
pub mod http;
pub mod source;

pub use files::WebFiles;
