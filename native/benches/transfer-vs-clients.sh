#!/usr/bin/env bash
# Loopback transfer of one file (1 GiB by default) between enjambre, libtorrent (python3-libtorrent)
# and aria2, in one run, several rounds per pair:
#   enjambre → enjambre, libtorrent → libtorrent, aria2 → aria2, libtorrent → enjambre,
#   enjambre → aria2, and enjambre → floor-leech (the least a leech can do: one thread, one
#   peer, hash and pwrite from the receive buffer; the machine's floor, not a client).
# For each pair: whole-run throughput (leech process start to its exit with the complete,
# verified file), CPU seconds of the leech (/usr/bin/time) and of the seed during the transfer
# (/proc/PID/stat), peak RSS of the leech, and for enjambre leeches the time from start to the
# first payload byte. Every result is compared byte for byte with the source.
#
# Before each run, when allowed (root): sync and drop the page cache, then read the source back
# in, so every seed serves from a warm cache and every leech writes into an empty one.
#
# Needs: aria2c, python3-libtorrent (/usr/bin/python3), curl, /usr/bin/time.
# Usage: native/benches/transfer-vs-clients.sh [RUNS] [PAIR…]   (from the repository root)
#   PAIR: ours-ours lt-lt aria2-aria2 lt-ours ours-aria2 ours-floor (default: all)
#   BENCH_DIR (default /tmp/enjambre-transfer-bench) holds the data; SIZE_MIB (default 1024);
#   DROP_CACHES=0 to keep the page cache; ENCRYPTION=require runs enjambre with
#   `--encryption require`, libtorrent with forced RC4 and aria2 with --bt-require-crypto.
set -euo pipefail
shopt -s inherit_errexit
runs=${1:-3}
shift || true
pairs=("$@")
[ ${#pairs[@]} -gt 0 ] || pairs=(ours-ours lt-lt aria2-aria2 lt-ours ours-aria2 ours-floor)
size_mib=${SIZE_MIB:-1024}
dir=${BENCH_DIR:-/tmp/enjambre-transfer-bench}
repo=$(cd "$(dirname "$0")/../.." && pwd)
drop=${DROP_CACHES:-1}
encryption=${ENCRYPTION:-}
enc=()
[ -z "$encryption" ] || enc=(--encryption "$encryption")
py=/usr/bin/python3
for tool in aria2c curl /usr/bin/time; do
  command -v "$tool" > /dev/null || { echo "needs $tool" >&2; exit 1; }
done
"$py" -c 'import libtorrent' || { echo "needs python3-libtorrent for $py" >&2; exit 1; }

mkdir -p "$dir"
cd "$dir"
# Copy the executable cargo reports (a shared target dir may hold another checkout's build).
(cd "$repo" && cargo build --release -p enjambre --bin enjambre --bin floor-leech --message-format=json) \
  | "$py" -c 'import sys, json
for l in sys.stdin:
    m = json.loads(l)
    if m.get("executable"): print(m["executable"])' \
  | while read -r exe; do cp "$exe" "./$(basename "$exe")"; done
./enjambre seed --help > /dev/null

declare -a started=()
cleanup() {
  for p in "${started[@]}"; do kill "$p" 2> /dev/null || true; done
}
trap cleanup EXIT

bytes=$((size_mib * 1024 * 1024))
tport=$(( 20000 + RANDOM % 20000 ))
if [ ! -f src/data.bin ] || [ "$(stat -c %s src/data.bin)" != "$bytes" ]; then
  rm -rf src
  mkdir -p src
  head -c "$bytes" /dev/urandom > src/data.bin
fi
# One torrent for every pair; its tracker runs only for the pairs with aria2.
rm -rf src/.enjambre
./enjambre create src/data.bin -o data.torrent --force --piece-length 1048576 \
  --tracker "http://127.0.0.1:$tport/announce" > /dev/null
info_hash=$("$py" -c 'import sys, libtorrent as lt; print(lt.torrent_info(sys.argv[1]).info_hash())' data.torrent)

cat > lt.py << 'EOF'
import os, sys, time, libtorrent as lt
mode, torrent, save, iface, peer = sys.argv[1:6]
s = lt.session({'listen_interfaces': iface, 'enable_dht': False, 'enable_lsd': False,
                'enable_upnp': False, 'enable_natpmp': False,
                # uTP on loopback crawls at a few MB/s: TCP only, as the other clients.
                'enable_outgoing_utp': False, 'enable_incoming_utp': False,
                'alert_mask': lt.alert.category_t.status_notification,
                **({'out_enc_policy': 0, 'in_enc_policy': 0, 'allowed_enc_level': 2}
                   if os.environ.get('ENCRYPTION') == 'require' else {})})
h = s.add_torrent({'ti': lt.torrent_info(torrent), 'save_path': save})
if peer != '-':
    host, port = peer.rsplit(':', 1)
    h.connect_peer((host, int(port)))
if mode == 'seed':
    # Check the data first (outside the measurement), then serve until killed.
    while not h.status().is_seeding:
        time.sleep(0.05)
    print('ready', flush=True)
    while True:
        time.sleep(3600)
while True:
    s.wait_for_alert(1000)
    for a in s.pop_alerts():
        if isinstance(a, lt.torrent_finished_alert):
            print('done', flush=True)
            os._exit(0)
    if h.status().is_seeding:
        print('done', flush=True)
        os._exit(0)
EOF

# aria2 preallocates by writing the whole file first unless told not to: none, as the others.
a2=(aria2c --enable-dht=false --bt-enable-lpd=false --enable-peer-exchange=false
    --summary-interval=0 --console-log-level=warn --file-allocation=none)
[ "$encryption" != require ] || a2+=(--bt-require-crypto=true --bt-min-crypto-level=arc4)
export ENCRYPTION=$encryption
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
now() { date +%s.%N; }
clk=$(getconf CLK_TCK)
rm -f dropped

prepare() {
  rm -rf out
  mkdir -p out
  if [ "$drop" = 1 ] && sync && echo 3 2> /dev/null > /proc/sys/vm/drop_caches; then
    : > dropped
  fi
  cat src/data.bin > /dev/null
}

wait_seeder() { # wait until the tracker lists a seed
  for _ in $(seq 300); do
    curl -s "http://127.0.0.1:$tport/swarm/$info_hash" | grep -q '"seeders":[1-9]' && return 0
    sleep 0.05
  done
  echo "no seed registered at the tracker" >&2
  return 1
}

wait_line() { # FILE PATTERN: wait until FILE has a line matching PATTERN
  for _ in $(seq 600); do
    grep -q "$2" "$1" 2> /dev/null && return 0
    sleep 0.05
  done
  echo "timed out waiting for '$2' in $1" >&2
  return 1
}

# One run of a pair; prints "secs leech_cpu seed_cpu rss_kib first_ms".
run_once() {
  trap cleanup EXIT
  local pair=$1 seed_pid tracker_pid="" first="-"
  prepare
  local sport=$(( tport + 1 + RANDOM % 1000 )) lport=$(( tport + 1001 + RANDOM % 1000 ))
  case $pair in aria2-aria2|ours-aria2)
    ./enjambre tracker --listen "127.0.0.1:$tport" --poll-interval 0 --interval 10 --min-interval 1 \
      > tracker.log 2>&1 &
    tracker_pid=$!; started+=("$tracker_pid")
  esac
  case $pair in
    ours-*)
      rm -f seed.log
      ./enjambre seed data.torrent --data src/data.bin --listen 127.0.0.2 --port "$sport" --json "${enc[@]}" \
        > seed.log 2>&1 &
      seed_pid=$!
      started+=("$seed_pid")
      wait_line seed.log 'listening on port'
      ;;
    lt-*)
      rm -f seed.log
      "$py" lt.py seed data.torrent src "127.0.0.2:$sport" - > seed.log 2>&1 &
      seed_pid=$!
      started+=("$seed_pid")
      wait_line seed.log ready
      ;;
    aria2-*)
      "${a2[@]}" -V --seed-ratio=0.0 --seed-time=1000 --listen-port="$sport" -d src data.torrent \
        > seed.log 2>&1 &
      seed_pid=$!
      started+=("$seed_pid")
      ;;
  esac
  [ -z "$tracker_pid" ] || wait_seeder
  local c0 c1 t0 t1
  c0=$(ticks "$seed_pid")
  t0=$(now)
  case $pair in
    *-ours)
      RUST_LOG=enjambre::peer::driver=info /usr/bin/time -v -o leech.time \
        ./enjambre get data.torrent -o out --listen 127.0.0.3 --port "$lport" \
        --peer "127.0.0.2:$sport" --json "${enc[@]}" > leech.out 2> leech.log
      ;;
    ours-floor)
      mkdir -p out
      /usr/bin/time -v -o leech.time \
        ./floor-leech data.torrent out/data.bin "127.0.0.2:$sport" > leech.out 2> leech.log
      ;;
    lt-lt)
      /usr/bin/time -v -o leech.time \
        "$py" lt.py leech data.torrent out "127.0.0.3:$lport" "127.0.0.2:$sport" > leech.out 2> leech.log
      ;;
    *-aria2)
      /usr/bin/time -v -o leech.time \
        "${a2[@]}" --seed-time=0 --listen-port="$lport" -d out data.torrent > leech.out 2> leech.log
      ;;
  esac
  t1=$(now)
  c1=$(ticks "$seed_pid")
  kill "$seed_pid" 2> /dev/null || true
  wait "$seed_pid" 2> /dev/null || true
  if [ -n "$tracker_pid" ]; then
    kill "$tracker_pid" 2> /dev/null || true
    wait "$tracker_pid" 2> /dev/null || true
  fi
  cmp -s out/data.bin src/data.bin || { echo "$pair: the leech's file differs from the source" >&2; exit 1; }
  case $pair in *-ours)
    first=$(sed -n 's/.*first payload byte \([0-9.]*\) ms after start.*/\1/p' leech.log | head -1)
    first=${first:--}
  esac
  local user sys rss
  user=$(awk -F': ' '/User time/{print $2}' leech.time)
  sys=$(awk -F': ' '/System time/{print $2}' leech.time)
  rss=$(awk -F': ' '/Maximum resident/{print $2}' leech.time)
  echo "$(echo "$t1 - $t0" | bc -l) $(echo "$user + $sys" | bc -l) $(echo "($c1 - $c0) / $clk" | bc -l) $rss $first"
}

# Median and minimum of a column of numbers ("-" when none).
stat_of() {
  sort -g | awk '{v[NR] = $1} END {
    if (NR == 0) { print "- -"; exit }
    m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
    print m, v[1] }'
}

name_of() {
  case $1 in
    ours-ours) echo "enjambre → enjambre" ;;
    lt-lt) echo "libtorrent → libtorrent" ;;
    aria2-aria2) echo "aria2 → aria2" ;;
    lt-ours) echo "libtorrent → enjambre" ;;
    ours-aria2) echo "enjambre → aria2" ;;
    ours-floor) echo "enjambre → floor-leech" ;;
    *) echo "$1" ;;
  esac
}

load=$(cut -d' ' -f1-3 /proc/loadavg)
echo "transfer of $size_mib MiB on loopback${encryption:+, encryption $encryption}, $runs runs per pair, data in $dir ($(df -T "$dir" | awk 'NR==2{print $2}')), load before: $load"
results=()
for pair in "${pairs[@]}"; do
  : > "$pair.runs"
  for r in $(seq "$runs"); do
    line=$(run_once "$pair")
    echo "$pair run $r $line" | awk '{printf "%s %s %s: %.2f s, leech %.2f CPU-s, seed %.2f CPU-s, leech RSS %.1f MiB, first byte %s ms\n", $1, $2, $3, $4, $5, $6, $7 / 1024, $8}'
    echo "$line" >> "$pair.runs"
  done
  results+=("$pair")
done
load=$(cut -d' ' -f1-3 /proc/loadavg)
echo
dropped=no; [ -f dropped ] && dropped=yes
echo "caches dropped before each run: $dropped; load after: $load; $(date -u +%Y-%m-%d)"
echo "figures: median (best) of $runs runs, best = highest MB/s, lowest CPU, RSS and delay; CPU per GiB;"
echo "whole run = leech start to its exit with the verified file; libtorrent maps the file, so its RSS counts the file's pages"
echo
echo "| pair | whole-run MB/s | leech CPU-s/GiB | seed CPU-s/GiB | leech peak RSS MiB | first payload byte ms |"
echo "|------|----------------|-----------------|----------------|--------------------|-----------------------|"
gib=$(echo "$size_mib / 1024" | bc -l)
for pair in "${results[@]}"; do
  read -r tm tmin < <(awk '{print $1}' "$pair.runs" | stat_of)
  read -r lm lmin < <(awk '{print $2}' "$pair.runs" | stat_of)
  read -r sm smin < <(awk '{print $3}' "$pair.runs" | stat_of)
  read -r rm rmin < <(awk '{print $4}' "$pair.runs" | stat_of)
  read -r fm fmin < <(awk '$5 != "-" {print $5}' "$pair.runs" | stat_of)
  awk -v n="$(name_of "$pair")" -v b="$bytes" -v g="$gib" -v tm="$tm" -v tmin="$tmin" \
      -v lm="$lm" -v lmin="$lmin" -v sm="$sm" -v smin="$smin" -v rm="$rm" -v rmin="$rmin" \
      -v fm="$fm" -v fmin="$fmin" 'BEGIN {
    first = (fm == "-") ? "–" : sprintf("%.1f (%.1f)", fm, fmin)
    printf "| %s | %.0f (%.0f) | %.2f (%.2f) | %.2f (%.2f) | %.1f (%.1f) | %s |\n", n,
      b / tm / 1e6, b / tmin / 1e6, lm / g, lmin / g, sm / g, smin / g, rm / 1024, rmin / 1024, first }'
done
