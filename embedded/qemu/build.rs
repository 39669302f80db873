//! Put `memory.x` where the linker finds it, and embed the file to seed (`SEED_FILE`,
//! `SEED_TRACKER`: see `enjambre_embedded::embed::from_env`).

use std::path::PathBuf;

fn main() {
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("OUT_DIR"));
    std::fs::copy("memory.x", out.join("memory.x")).expect("memory.x");
    println!("cargo:rustc-link-search={}", out.display());
    println!("cargo:rerun-if-changed=memory.x");
    if let Err(e) = enjambre_embedded::embed::from_env() {
        panic!("embedding the seeded file: {e}");
    }
}
