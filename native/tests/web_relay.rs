//! A swarm on opentracker, joined by the page in real headless Chromium through the tracker's
//! announce relay and bridge: runs `tests/web/relay.mjs`. Skips, saying why, without Chromium,
//! `npm ci` in `tests/web`, opentracker or the built wasm (`web/build.sh`).

mod web_support;

use std::path::PathBuf;

#[test]
fn the_page_joins_a_swarm_on_opentracker_through_the_announce_relay() {
    let pkg = web_support::root().join("web/pkg/enjambre_wasm_bg.wasm");
    let needs = [
        (
            PathBuf::from("/usr/bin/opentracker"),
            "apt-get install opentracker",
        ),
        (pkg, "web/build.sh, then cargo build --release -p enjambre"),
    ];
    web_support::run_script("relay.mjs", env!("CARGO_BIN_EXE_enjambre"), &needs);
}
