//! The page the tracker serves (`web/`), built into the binary by `native/build.rs`.
//!
//! It never reads files at run time: what the binary was built with is what it serves. The wasm
//! (`/worker.js`, `/pkg/…`) is absent until `web/build.sh` has run before `cargo build`; those
//! paths then answer 404 with how to build it.

include!(concat!(env!("OUT_DIR"), "/web_files.rs"));

/// What to answer for a page path.
pub enum Served {
    /// Content type and bytes.
    File(&'static str, &'static [u8]),
    /// A page file this binary was built without.
    Missing,
}

/// The page file at URL `path`, or `None` when `path` is not one.
pub fn file(path: &str) -> Option<Served> {
    let (_, ctype, bytes) = FILES.iter().find(|(url, _, _)| *url == path)?;
    Some(match bytes {
        Some(b) => Served::File(ctype, b),
        None => Served::Missing,
    })
}

/// The text a missing file answers with.
pub const MISSING: &str = "the browser peer (wasm) is not built into this tracker: run web/build.sh, then cargo build --release -p enjambre\n";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_is_built_in_and_unknown_paths_are_not_page_files() {
        assert!(
            matches!(file("/"), Some(Served::File(t, b)) if t.starts_with("text/html") && !b.is_empty())
        );
        assert!(matches!(file("/app.js"), Some(Served::File(..))));
        assert!(file("/../Cargo.toml").is_none());
        assert!(file("/pkg/other.js").is_none());
    }
}
