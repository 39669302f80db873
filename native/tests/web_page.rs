//! The page the tracker serves, in real headless Chromium: runs `tests/web/page.mjs` (swarm
//! list, live canvas checked by pixel, peers joining and leaving, a bad .torrent's error, frame
//! time at 200 peers × 10,000 pieces). Skips, saying why, without Chromium or `npm ci` in
//! `tests/web`.

mod web_support;

#[test]
fn the_page_lists_and_draws_a_live_swarm_in_chromium() {
    web_support::run_script("page.mjs", env!("CARGO_BIN_EXE_enjambre"), &[]);
}
