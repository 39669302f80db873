#!/usr/bin/env bash
# The whole test suite, from a fresh machine: installs what it needs, then runs every check.
# Usage: ./tests/run.sh            (everything)
#        FUZZ_SECONDS=0 ./tests/run.sh   (skip the bounded fuzz runs)
set -euo pipefail
cd "$(dirname "$0")/.."
wasm_results=$(mktemp)
export CARGO_TERM_COLOR=never
FUZZ_SECONDS=${FUZZ_SECONDS:-15}
step() { printf '\n=== %s\n' "$*"; }

step "install: Debian packages for the interoperability tests"
need=()
command -v transmission-daemon >/dev/null || need+=(transmission-daemon)
command -v aria2c >/dev/null || need+=(aria2)
python3 -c 'import libtorrent' 2>/dev/null || need+=(python3-libtorrent)
command -v opentracker >/dev/null || need+=(opentracker)
command -v ip >/dev/null || need+=(iproute2)
command -v dnsmasq >/dev/null || need+=(dnsmasq-base)
command -v redis-server >/dev/null || need+=(redis-server)
command -v redis-cli >/dev/null || need+=(redis-tools)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
  else
    echo "missing ${need[*]} and cannot apt-get install them (not root?)" >&2
    exit 1
  fi
fi
# python3-libtorrent is installed for Debian's python3; make sure that is the one tests use.
if ! python3 -c 'import libtorrent' 2>/dev/null && [ -x /usr/bin/python3 ]; then
  export ENJAMBRE_PYTHON=/usr/bin/python3
fi

step "install: QEMU for the board seeder (bookworm-backports, removes nothing)"
./tests/install-qemu.sh

step "install: Rust targets for the no_std core"
rustup target add thumbv7em-none-eabihf wasm32-unknown-unknown >/dev/null

step "install: Chromium for the page and the browser peer, and the page's test tools"
if ! [ -x /usr/bin/chromium ] || ! [ -x /usr/bin/chromedriver ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium chromium-driver >/dev/null
  else
    echo "missing chromium and cannot apt-get install it (not root?)" >&2
    exit 1
  fi
fi
(cd tests/web && npm ci --no-audit --no-fund --silent)

step "browser peer: wasm build (web/build.sh, before the tracker embeds it) and its tests in Chromium"
web/build.sh
CHROMEDRIVER=/usr/bin/chromedriver CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUNNER=wasm-bindgen-test-runner \
  cargo test --target wasm32-unknown-unknown -p enjambre-wasm --tests 2>&1 | tee "$wasm_results"

step "format and lints"
cargo fmt --all -- --check
cargo clippy --workspace --all-targets -- -D warnings

step "core is no_std and allocation-free"
cargo build -p enjambre-core --target thumbv7em-none-eabihf
cargo build -p enjambre-core --target thumbv7em-none-eabihf --features defmt
cargo build -p enjambre-core --target wasm32-unknown-unknown
# thumbv7em has no std, so the build above proves no_std; alloc exists there, so look for it.
if grep -rnE 'extern crate alloc|\balloc::' core/src; then echo "core uses alloc" >&2; exit 1; fi

step "unit, property, simulator and end-to-end tests"
cargo build --release -p enjambre
results=$(mktemp)
cat "$wasm_results" > "$results"
cargo test --workspace --release 2>&1 | tee -a "$results"

step "swarm laboratory, short: 5 leeches behind emulated links, every one byte-identical (no timing checks)"
tests/lab/run.sh --short --out "$(mktemp -d)" 1-flash-crowd

step "embedded seeder: library, host TAP end to end, firmware for the board"
cargo fmt --manifest-path embedded/Cargo.toml --all -- --check
cargo fmt --manifest-path embedded/nucleo/Cargo.toml -- --check
(cd embedded && cargo test -p enjambre-embedded --features build 2>&1 | tee -a "$results")
(cd embedded && ENJAMBRE_BIN="$PWD/../target/release/enjambre" cargo test -p enjambre-seed-tap --test tap -- --nocapture 2>&1 | tee -a "$results")
# The firmware for both chips, with the file embedded and from a flash image: each links and is
# within its budget (code <= 96 KiB, RAM with the stack's static bound <= 64 KiB), or the suite fails.
for chip in h743zi f767zi; do
  (cd embedded/nucleo && ./size-check.sh $chip && ./size-check.sh $chip --features flash-image)
done
step "embedded seeder: the firmware in QEMU mps2-an386, end to end"
(cd embedded/qemu && cargo fmt -- --check && cargo clippy --release -- -D warnings && cargo build --release)
(cd embedded && ENJAMBRE_BIN="$PWD/../target/release/enjambre" cargo test -p enjambre-seed-tap --test qemu -- --nocapture 2>&1 | tee -a "$results")
summary=$(grep -E '^test result:' "$results" | awk '{p += $4; f += $6; i += $8} END {printf "%d passed, %d failed, %d skipped", p, f, i}')

if [ "$FUZZ_SECONDS" != 0 ]; then
  step "fuzz: each target for ${FUZZ_SECONDS}s"
  command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked >/dev/null 2>&1 || cargo install cargo-fuzz >/dev/null
  for target in $(cd core/fuzz && cargo +nightly fuzz list); do
    (cd core/fuzz && cargo +nightly fuzz run "$target" -- -max_total_time="$FUZZ_SECONDS" -rss_limit_mb=2048 2>&1 | tail -n 2)
  done
fi
step "all checks passed"
echo "tests: $summary"
