//! The page's own download in real headless Chromium: runs `tests/web/download.mjs` (the wasm
//! peer joins an enjambre seed and an aria2 seed through the bridge, is reloaded mid-download,
//! resumes from OPFS, finishes, and saves a file with the source's SHA-256). Skips, saying why,
//! without Chromium, `npm ci` in `tests/web`, aria2 or the built wasm (`web/build.sh`).

mod web_support;

use std::path::PathBuf;

#[test]
fn the_page_downloads_through_the_bridge_and_survives_a_reload() {
    let pkg = web_support::root().join("web/pkg/enjambre_wasm_bg.wasm");
    let needs = [
        (PathBuf::from("/usr/bin/aria2c"), "apt-get install aria2"),
        (pkg, "web/build.sh, then cargo build --release -p enjambre"),
    ];
    web_support::run_script("download.mjs", env!("CARGO_BIN_EXE_enjambre"), &needs);
}
