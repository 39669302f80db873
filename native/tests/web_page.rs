//! The page the tracker serves, in real headless Chromium: runs `tests/web/page.mjs` (swarm
//! list, live canvas checked by pixel, peers joining and leaving, a bad .torrent's error, frame
//! time at 200 peers × 10,000 pieces). Skips, saying why, without Chromium or `npm ci` in
//! `tests/web`.

use std::path::Path;
use std::process::Command;

#[test]
fn the_page_lists_and_draws_a_live_swarm_in_chromium() {
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
    ] {
        if !need.exists() {
            println!("SKIPPED: {} is missing ({how})", need.display());
            return;
        }
    }
    let out = Command::new("node")
        .arg(web.join("page.mjs"))
        .current_dir(&root)
        .env("ENJAMBRE_BIN", env!("CARGO_BIN_EXE_enjambre"))
        .output()
        .expect("run node (is it installed?)");
    let text = String::from_utf8_lossy(&out.stdout);
    println!("{text}{}", String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "the page test failed:\n{text}");
}
