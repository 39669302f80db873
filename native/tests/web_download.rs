//! The page's own download in real headless Chromium: runs `tests/web/download.mjs` (the wasm
//! peer joins an enjambre seed and an aria2 seed through the bridge, is reloaded mid-download,
//! resumes from OPFS, finishes, and saves a file with the source's SHA-256). Skips, saying why,
//! without Chromium, `npm ci` in `tests/web`, aria2 or the built wasm (`web/build.sh`).

use std::path::Path;
use std::process::Command;

#[test]
fn the_page_downloads_through_the_bridge_and_survives_a_reload() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let web = root.join("tests/web");
    for (need, how) in [
        (
            Path::new("/usr/bin/chromium").to_path_buf(),
            "apt-get install -y --no-install-recommends chromium",
        ),
        (
            web.join("node_modules/playwright-core"),
            "npm ci in tests/web",
        ),
        (
            Path::new("/usr/bin/aria2c").to_path_buf(),
            "apt-get install aria2",
        ),
        (
            root.join("web/pkg/enjambre_wasm_bg.wasm"),
            "web/build.sh, then cargo build --release -p enjambre",
        ),
    ] {
        if !need.exists() {
            println!("SKIPPED: {} is missing ({how})", need.display());
            return;
        }
    }
    let out = Command::new("node")
        .arg(web.join("download.mjs"))
        .current_dir(&root)
        .env("ENJAMBRE_BIN", env!("CARGO_BIN_EXE_enjambre"))
        .output()
        .expect("run node (is it installed?)");
    let text = String::from_utf8_lossy(&out.stdout);
    println!("{text}{}", String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "the download test failed:\n{text}");
}
