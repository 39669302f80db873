#!/usr/bin/env bash
# Build the browser peer into web/pkg/: the wasm32 build of enjambre-wasm (size profile),
# wasm-bindgen --target web, npm binaryen's wasm-opt (re-relooped, -Oz), short import names
# (short-imports.mjs), npm terser on the JS glue; print the gzip sizes.
# KEEP_NAMES=1 keeps the functions' names (larger; for tests/web/profile-worker.mjs).
# Installs what it needs when missing: the wasm32 target, wasm-bindgen-cli equal to
# Cargo.lock's wasm-bindgen, npm binaryen and terser (without npm the wasm and the glue are left
# unoptimised, and says so).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
web="$root/web"
cd "$root"

rustup target list --installed | grep -qx wasm32-unknown-unknown || rustup target add wasm32-unknown-unknown
want=$(awk '/^name = "wasm-bindgen"$/{getline; gsub(/version = |"/,""); print; exit}' Cargo.lock)
have=$(wasm-bindgen --version 2>/dev/null | awk '{print $2}' || true)
if [ "$have" != "$want" ]; then
  # No --locked: its lockfile wants a crate version missing from the index.
  cargo install wasm-bindgen-cli --version "$want"
fi
opt="$web/node_modules/.bin/wasm-opt"
terser="$web/node_modules/.bin/terser"
if { [ ! -x "$opt" ] || [ ! -x "$terser" ]; } && command -v npm >/dev/null; then
  (cd "$web" && npm ci --no-audit --no-fund)
fi

cargo build --profile wasm-release --target wasm32-unknown-unknown -p enjambre-wasm
names=(--remove-name-section)
keep=()
if [ "${KEEP_NAMES:-0}" = 1 ]; then names=(); keep=(-g); fi
wasm-bindgen --target web "${names[@]}" --remove-producers-section \
  --out-dir "$web/pkg" target/wasm32-unknown-unknown/wasm-release/enjambre_wasm.wasm
if [ -x "$opt" ]; then
  "$opt" "${keep[@]}" --flatten --rereloop -Oz --enable-bulk-memory --enable-nontrapping-float-to-int \
    --enable-sign-ext --enable-reference-types --enable-multivalue \
    "$web/pkg/enjambre_wasm_bg.wasm" -o "$web/pkg/enjambre_wasm_bg.wasm"
else
  echo "web/build.sh: no npm, so no wasm-opt: the wasm works but is larger (install node and npm)" >&2
fi
if [ -x "$terser" ] && [ "${KEEP_NAMES:-0}" != 1 ]; then
  node "$web/short-imports.mjs" "$web/pkg/enjambre_wasm_bg.wasm" "$web/pkg/enjambre_wasm.js"
  "$terser" "$web/pkg/enjambre_wasm.js" --module --compress --mangle -o "$web/pkg/enjambre_wasm.js"
fi

wasm=$(gzip -9c "$web/pkg/enjambre_wasm_bg.wasm" | wc -c)
js=$(gzip -9c "$web/pkg/enjambre_wasm.js" | wc -c)
echo "gzip -9: wasm $wasm B + JS glue $js B = $((wasm + js)) B (goal 40960)"
