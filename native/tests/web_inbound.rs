//! The browser peer is reachable, in real headless Chromium: runs `tests/web/inbound.mjs` (the
//! page downloads from an enjambre seed through the bridge while holding a bridge port; the
//! tracker polls it there; then a libtorrent leech that knows only the tracker downloads the
//! file from the page alone). Skips, saying why, without Chromium, `npm ci` in `tests/web`,
//! python3-libtorrent or the built wasm (`web/build.sh`).

mod web_support;

use std::process::Command;

#[test]
fn a_libtorrent_leech_downloads_from_the_page_through_its_bridge_port() {
    let python = std::env::var("ENJAMBRE_PYTHON").unwrap_or_else(|_| "/usr/bin/python3".into());
    let has_libtorrent = Command::new(&python)
        .args(["-c", "import libtorrent"])
        .status()
        .is_ok_and(|s| s.success());
    if !has_libtorrent {
        println!("SKIPPED: {python} has no libtorrent (apt-get install python3-libtorrent)");
        return;
    }
    let pkg = web_support::root().join("web/pkg/enjambre_wasm_bg.wasm");
    let needs = [(pkg, "web/build.sh, then cargo build --release -p enjambre")];
    web_support::run_script("inbound.mjs", env!("CARGO_BIN_EXE_enjambre"), &needs);
}
