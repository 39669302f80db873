//! The page's own download in real headless Chromium: runs `tests/web/download.mjs` (the wasm
//! peer joins enjambre, aria2 and libtorrent seeds through the bridge, is reloaded mid-download,
//! resumes from OPFS having lost at most the block each seed had on the wire, finishes, saves a
//! file with the source's SHA-256; then a seed is killed mid-piece and the piece continues from
//! the other at its byte). Skips, saying why, without Chromium, `npm ci` in `tests/web`, aria2,
//! libtorrent or the built wasm (`web/build.sh`).

mod web_support;

use std::path::PathBuf;

#[test]
fn the_page_downloads_through_the_bridge_survives_a_reload_and_a_seed_killed_mid_piece() {
    let pkg = web_support::root().join("web/pkg/enjambre_wasm_bg.wasm");
    let needs = [
        (PathBuf::from("/usr/bin/aria2c"), "apt-get install aria2"),
        (
            PathBuf::from("/usr/lib/python3/dist-packages/libtorrent.egg-info"),
            "apt-get install python3-libtorrent",
        ),
        (pkg, "web/build.sh, then cargo build --release -p enjambre"),
    ];
    web_support::run_script("download.mjs", env!("CARGO_BIN_EXE_enjambre"), &needs);
}
