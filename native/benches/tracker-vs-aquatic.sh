#!/usr/bin/env bash
# Compare `enjambre tracker` with aquatic on loopback, one server core (CPU 0) and the load
# generator on CPU 1. Uses aquatic's own load generators and our tracker-bench (memory per peer).
# Needs: cargo install aquatic_udp aquatic_http aquatic_udp_load_test aquatic_http_load_test
# Usage: native/benches/tracker-vs-aquatic.sh [ROUNDS]   (from the repository root)
set -euo pipefail
rounds=${1:-2}
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT
# Copy the executables cargo reports (a shared target dir may hold another checkout's build).
cargo build --release -p enjambre --bin enjambre --bin tracker-bench --message-format=json \
  | python3 -c 'import sys, json
for l in sys.stdin:
    m = json.loads(l)
    if m.get("executable"): print(m["executable"])' \
  | while read -r exe; do cp "$exe" "$work/"; done
cd "$work"
./enjambre tracker --help > /dev/null || { echo "the enjambre binary has no tracker command (another checkout's build in a shared target dir?)" >&2; exit 1; }
aquatic_udp -p | sed 's/^address = "0.0.0.0:3000"/address = "127.0.0.1:3000"/' > udp.toml
aquatic_http -p | sed 's/^address = "0.0.0.0:3000"/address = "127.0.0.1:3001"/' > http.toml
aquatic_udp_load_test -p | sed 's/^duration = 0/duration = 10/; s/^summarize_last = 0/summarize_last = 8/' > udpload.toml
aquatic_http_load_test -p | sed 's/^duration = 0/duration = 10/; s/^enable_tls = true/enable_tls = false/; s/127.0.0.1:3000/127.0.0.1:3001/' > httpload.toml
ours="./enjambre tracker --poll-interval 0 --max-connections-per-ip 0 --max-torrents 10000000 --max-peers-per-torrent 10000000 --max-peers 100000000"
ticks() { awk '{print $14+$15}' "/proc/$1/stat"; }
run() { # name, server command, load command, report grep
  local name=$1 server=$2 load=$3
  taskset -c 0 $server > "$name.server.log" 2>&1 &
  local pid=$!
  sleep 1
  local c0; c0=$(ticks $pid)
  taskset -c 1 $load > "$name.load.log" 2>&1
  local c1; c1=$(ticks $pid)
  local rps; rps=$(awk '/load test report/{f=1} f && /responses per second/{print $NF; exit}' "$name.load.log")
  local ann; ann=$(awk '/load test report/{f=1} f && /Announce responses/{print $NF; exit}' "$name.load.log")
  echo "$name: responses/s $rps, announce responses/s ${ann:-?}, server CPU $(( (c1 - c0) ))/$(getconf CLK_TCK) s over ~10 s, RSS $(grep VmRSS /proc/$pid/status | awk '{print $2}') kB"
  kill $pid; wait $pid 2>/dev/null || true
  sleep 0.5
}
for r in $(seq "$rounds"); do
  run aquatic_udp "aquatic_udp -c udp.toml" "aquatic_udp_load_test -c udpload.toml"
  run enjambre_udp "$ours --listen 127.0.0.1:3000" "aquatic_udp_load_test -c udpload.toml"
  run aquatic_http "aquatic_http -c http.toml" "aquatic_http_load_test -c httpload.toml"
  run enjambre_http "$ours --listen 127.0.0.1:3001" "aquatic_http_load_test -c httpload.toml"
done
# Memory per peer with the same client (tracker-bench), 200,000 peers over UDP.
taskset -c 0 aquatic_udp -c udp.toml > aq.mem.log 2>&1 &
pid=$!; sleep 1
echo "aquatic_udp: $(./tracker-bench --udp 127.0.0.1:3000 --pid $pid --skip udp --skip http --skip bitfield | grep 'memory per peer')"
kill $pid; wait $pid 2>/dev/null || true
echo "enjambre:"
ENJAMBRE_BIN=./enjambre ./tracker-bench --secs 8
