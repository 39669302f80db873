//! File selection in the page, in real headless Chromium: runs `tests/web/select.mjs` (a
//! multi-file torrent, one file chosen before any seed exists: exactly its pieces fetched and
//! only it saved; the choice kept across a reload; a second file added). Skips, saying why,
//! without Chromium, `npm ci` in `tests/web` or the built wasm (`web/build.sh`).

mod web_support;

#[test]
fn the_page_downloads_and_saves_only_the_files_chosen() {
    let pkg = web_support::root().join("web/pkg/enjambre_wasm_bg.wasm");
    let needs = [(pkg, "web/build.sh, then cargo build --release -p enjambre")];
    web_support::run_script("select.mjs", env!("CARGO_BIN_EXE_enjambre"), &needs);
}
