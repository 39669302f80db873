//! The wasm stack: the browser session (about 700 KB) is built before it moves to the heap,
//! and wasm's default 1 MiB stack cannot hold its temporaries. Host builds are left alone.

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    if std::env::var("CARGO_CFG_TARGET_ARCH").as_deref() == Ok("wasm32") {
        println!("cargo:rustc-link-arg=-zstack-size=8388608");
    }
}
