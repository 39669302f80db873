//! Build the page's files into the binary: `web/*` and the wasm that `web/build.sh` writes to
//! `web/pkg/`. A file absent at build time (the wasm before `web/build.sh` ran) is recorded as
//! missing, so the tracker answers 404 with how to build it instead of failing the build.

use std::fmt::Write;
use std::path::Path;

/// URL path, file under `web/`, content type.
const FILES: &[(&str, &str, &str)] = &[
    ("/", "index.html", "text/html; charset=utf-8"),
    ("/app.js", "app.js", "text/javascript; charset=utf-8"),
    ("/style.css", "style.css", "text/css; charset=utf-8"),
    ("/worker.js", "worker.js", "text/javascript; charset=utf-8"),
    (
        "/pkg/enjambre_wasm.js",
        "pkg/enjambre_wasm.js",
        "text/javascript; charset=utf-8",
    ),
    (
        "/pkg/enjambre_wasm_bg.wasm",
        "pkg/enjambre_wasm_bg.wasm",
        "application/wasm",
    ),
];

fn main() {
    let web = Path::new(env!("CARGO_MANIFEST_DIR")).join("../web");
    // A directory's mtime changes when a file appears or goes; each file's when it is rewritten.
    for dir in [web.clone(), web.join("pkg")] {
        if dir.is_dir() {
            println!("cargo::rerun-if-changed={}", dir.display());
        }
    }
    let mut out = String::from("/// (URL path, content type, bytes when the file was there at build time)\npub const FILES: &[(&str, &str, Option<&[u8]>)] = &[\n");
    for (url, file, ctype) in FILES {
        let path = web.join(file);
        if path.is_file() {
            println!("cargo::rerun-if-changed={}", path.display());
            let abs = path.canonicalize().expect("canonical path");
            let _ = writeln!(
                out,
                "    ({url:?}, {ctype:?}, Some(include_bytes!({abs:?}))),"
            );
        } else {
            let _ = writeln!(out, "    ({url:?}, {ctype:?}, None),");
        }
    }
    out.push_str("];\n");
    let dest = Path::new(&std::env::var("OUT_DIR").expect("OUT_DIR")).join("web_files.rs");
    std::fs::write(dest, out).expect("write web_files.rs");
}
