//! The peer side of `enjambre`: `get` and `seed`, a thin tokio shell around the core Session.

pub mod http_tracker;
pub mod resume_file;
pub mod sha1;
pub mod storage;
