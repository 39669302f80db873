//! Running a browser test script of `tests/web/` under `cargo test`: skipped, saying why, when
//! Chromium, the test tools (`npm ci` in `tests/web`) or anything else it needs is missing.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The repository root.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Run `node tests/web/<script>` against the enjambre binary built for this test; `needs`
/// lists further files that must exist, each with how to get it.
pub fn run_script(script: &str, enjambre: &str, needs: &[(PathBuf, &str)]) {
    let root = root();
    let web = root.join("tests/web");
    let base = [
        (
            PathBuf::from("/usr/bin/chromium"),
            "apt-get install -y --no-install-recommends chromium",
        ),
        (
            web.join("node_modules/playwright-core"),
            "npm ci in tests/web",
        ),
    ];
    for (need, how) in base.iter().chain(needs) {
        if !need.exists() {
            println!("SKIPPED: {} is missing ({how})", need.display());
            return;
        }
    }
    let out = Command::new("node")
        .arg(web.join(script))
        .current_dir(&root)
        .env("ENJAMBRE_BIN", enjambre)
        // The peers it starts stay off the DHT: a test never reaches the public routers.
        .env("ENJAMBRE_NO_DHT", "1")
        .output()
        .expect("run node (is it installed?)");
    let text = String::from_utf8_lossy(&out.stdout);
    println!("{text}{}", String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{script} failed:\n{text}");
}
