#!/usr/bin/env bash
# Announces per second with the registry in Redis, over 1, 2 and 3 tracker nodes on this machine,
# against the in-memory registry in the same run: one `tracker-bench` load generator per node,
# all at once; the CPU each node and Redis used per announce. On 2 cores this is a per-node cost,
# not a scaling claim (nodes, Redis and load generators share the cores).
# Needs redis-server (apt install redis-server). Usage (from the repository root):
#   native/benches/redis-nodes.sh [SECS]
set -euo pipefail
secs=${1:-5}
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
ticks() { awk '{print $14+$15}' "/proc/$1/stat"; }
hz=$(getconf CLK_TCK)
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
sum_rate() { # proto, logs...: total announces/s over the load generators' lines
  local proto=$1; shift
  cat "$@" | awk -v p="$proto announces:" 'index($0, p) == 1 {split($3, a, "/"); s += a[1]} END {printf "%.0f", s}'
}
run() { # nodes, store ("" for memory)
  local n=$1 store=$2 pids=() rpid="" r0=0
  if [ -n "$store" ]; then
    local rport; rport=$(free_port)
    redis-server --port "$rport" --bind 127.0.0.1 --save '' --appendonly no > redis.log 2>&1 &
    rpid=$!
    until redis-cli -p "$rport" ping > /dev/null 2>&1; do sleep 0.1; done
  fi
  local addrs=()
  for k in $(seq "$n"); do
    local port; port=$(free_port)
    if [ -n "$store" ]; then
      ./enjambre tracker --listen "127.0.0.1:$port" --poll-interval 0 --store "redis://127.0.0.1:$rport" > "node$k.log" 2>&1 &
    else
      ./enjambre tracker --listen "127.0.0.1:$port" --poll-interval 0 > "node$k.log" 2>&1 &
    fi
    pids+=($!)
    addrs+=("127.0.0.1:$port")
  done
  sleep 1
  local c0=() loads=()
  for p in "${pids[@]}"; do c0+=("$(ticks "$p")"); done
  [ -n "$rpid" ] && r0=$(ticks "$rpid")
  for k in $(seq 0 $((n - 1))); do
    ./tracker-bench --udp "${addrs[$k]}" --http "${addrs[$k]}" --pid "${pids[$k]}" --secs "$secs" \
      --skip mem --skip bitfield > "load$k.log" 2>&1 &
    loads+=($!)
  done
  wait "${loads[@]}"
  local cpu=0
  for k in $(seq 0 $((n - 1))); do cpu=$((cpu + $(ticks "${pids[$k]}") - ${c0[$k]})); done
  local rcpu=0
  [ -n "$rpid" ] && rcpu=$(( $(ticks "$rpid") - r0 ))
  local udp http
  udp=$(sum_rate udp load*.log); http=$(sum_rate http load*.log)
  local count; count=$(awk -v u="$udp" -v h="$http" -v s="$secs" 'BEGIN{print (u + h) * s}')
  per() { awk -v c="$1" -v hz="$hz" -v n="$count" 'BEGIN{printf "%.0f", 1e6 * c / hz / n}'; }
  echo "$([ -n "$store" ] && echo redis || echo memory), $n node(s): UDP $udp/s, HTTP $http/s in total;" \
    "CPU per announce: nodes $(per $cpu) µs, Redis $(per $rcpu) µs"
  kill "${pids[@]}" $rpid 2>/dev/null || true
  wait "${pids[@]}" $rpid 2>/dev/null || true
  rm -f load*.log
}
run 1 ""
for n in 1 2 3; do run "$n" redis; done
