#!/usr/bin/env bash
# The swarm laboratory, one command (as root): installs its tools, builds the star of emulated
# links, runs the scenarios, tears everything down (also on Ctrl-C or failure).
# Usage: tests/lab/run.sh [--short] [--tracker ours|opentracker] [--clients enjambre,libtorrent]
#                         [--out DIR] [SCENARIO...]
#   SCENARIO: fidelity, or a file name in tests/lab/scenarios/ without .toml (default: all).
#   Results: DIR/results.jsonl, DIR/results.md, DIR/<scenario>.png (DIR default /tmp/enjlab-out).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
[ "$(id -u)" = 0 ] || { echo "tests/lab/run.sh needs root (namespaces, TAP devices)" >&2; exit 1; }
need=()
for t in vde_switch:vde2 wirefilter:vde2 aria2c:aria2 transmission-daemon:transmission-daemon \
         transmission-cli:transmission-cli opentracker:opentracker curl:curl cmp:diffutils ip:iproute2; do
  command -v "${t%%:*}" > /dev/null || need+=("${t#*:}")
done
/usr/bin/python3 -c 'import libtorrent' 2> /dev/null || need+=(python3-libtorrent)
/usr/bin/python3 -c 'import matplotlib' 2> /dev/null || need+=(python3-matplotlib)
if [ ${#need[@]} -gt 0 ]; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" > /dev/null
fi
enj="$here/../../target/release/enjambre"
[ -x "$enj" ] || (cd "$here/../.." && cargo build --release -p enjambre --bin enjambre)
cleanup() { /usr/bin/python3 "$here/labnet.py"; }
# lab.py runs in the background so a signal to this script is handled at once, not after it.
stop() {
  kill -TERM "$lab" 2> /dev/null || true
  wait "$lab" 2> /dev/null || true
  exit 130
}
trap cleanup EXIT
trap stop INT TERM
/usr/bin/python3 "$here/lab.py" --enjambre "$enj" "$@" &
lab=$!
wait "$lab"
