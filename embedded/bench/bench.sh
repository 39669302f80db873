#!/usr/bin/env bash
# Measure the board seeder (figures, not a test). As root, from anywhere:
#   embedded/bench/bench.sh host|qemu [MIB] [TX]
# host: the release `enjambre-seed-tap` on a TAP; qemu: the firmware in QEMU mps2-an386 on a TAP
# (address by DHCP, as on the board). MIB (default 32 on the host, 3 in QEMU, whose flash is
# 4 MiB): a file of that many MiB of random bytes is embedded. TX (default 4096): the socket transmit buffer, 4096 or 16384 bytes (feature
# `tx16k`). Builds the seeder for that file, starts it in namespace ejbench$$ (tap-net.sh),
# then prints: the seeder's idle CPU on this machine over 10 s (/proc/PID/stat), MB/s to 1
# leech and to 4 at once (leech.py: every block, 8 requests in flight, each checked; from the
# first unchoke to the last block) with the seeder's CPU seconds per GiB served, and for QEMU the firmware's section sizes and measured stack peak.
set -euo pipefail
MODE=${1:-} TX=${3:-4096}
case "$MODE" in host) MIB=${2:-32} ;; qemu) MIB=${2:-3} ;; *) sed -n '2,11p' "$0" >&2; exit 2 ;; esac
case "$TX" in 4096) FEATURES=() ;; 16384) FEATURES=(--features tx16k) ;; *) echo "TX is 4096 or 16384" >&2; exit 2 ;; esac
HERE=$(cd "$(dirname "$0")" && pwd)
EMBEDDED=$(dirname "$HERE")
# shellcheck source=../tap-net.sh
. "$EMBEDDED/tap-net.sh"
NS=ejbench$$
WORK=$(mktemp -d)
SEED=
cleanup() {
    if [ -n "$SEED" ]; then kill "$SEED" 2>/dev/null || true; fi
    tap_net_down "$NS"
    wait 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT
FILE=$WORK/bench.bin
head -c $((MIB * 1024 * 1024)) /dev/urandom >"$FILE"

if [ "$MODE" = host ]; then
    (cd "$EMBEDDED" && SEED_FILE=$FILE cargo build --release --quiet -p enjambre-seed-tap "${FEATURES[@]}")
    BIN=$EMBEDDED/target/release
    COMMAND=("$BIN/enjambre-seed-tap" tap0 10.77.0.2/24 10.77.0.1 6881)
else
    (cd "$EMBEDDED/qemu" && SEED_FILE=$FILE cargo build --release --quiet "${FEATURES[@]}")
    BIN=$EMBEDDED/qemu/target/thumbv7em-none-eabihf/release
    COMMAND=("$EMBEDDED/qemu/boot.sh" "$BIN/enjambre-qemu" tap tap0)
fi
TORRENT=$BIN/bench.bin.torrent
IH=$(python3 -c "
import hashlib,sys
t=open(sys.argv[1],'rb').read(); i=t.index(b'4:infod')+6
print(hashlib.sha1(t[i:-1]).hexdigest())" "$TORRENT")
PL=$(python3 -c "
import re,sys; print(re.search(rb'12:piece lengthi(\d+)e', open(sys.argv[1],'rb').read()).group(1).decode())" "$TORRENT")

tap_net_up "$NS" "$WORK"
# `ip netns exec` execs the seeder (boot.sh execs QEMU), so $! is the process to measure.
ip netns exec "$NS" "${COMMAND[@]}" >"$WORK/seed.log" 2>&1 &
SEED=$!
# Wait until the seeder takes connections (QEMU's board first asks for its address).
for _ in $(seq 100); do
    ip netns exec "$NS" python3 -c "import socket; socket.create_connection(('10.77.0.2', 6881), 0.2).close()" 2>/dev/null && break
    sleep 0.2
done
TCK=$(getconf CLK_TCK)
cpu() { awk '{print $14 + $15}' "/proc/$SEED/stat"; }
sleep 2
a=$(cpu); sleep 10; b=$(cpu)
echo "$MODE, $TX-byte transmit buffers, $MIB MiB: idle, the seeder used $(python3 -c "print(round(100 * ($b - $a) / $TCK / 10, 1))") % of a core over 10 s"

run() { # N leeches at once
    local n=$1 c0 c1 pids=()
    c0=$(cpu)
    for i in $(seq "$n"); do
        ip netns exec "$NS" python3 "$HERE/leech.py" 10.77.0.2 6881 "$IH" "$FILE" "$PL" 8 "$i" >"$WORK/leech$i" &
        pids+=("$!")
    done
    wait "${pids[@]}"
    c1=$(cpu)
    python3 - "$n" "$WORK" "$((c1 - c0))" "$TCK" <<'PY'
import sys
n, work, ticks, tck = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
runs = [[float(x) for x in open('%s/leech%d' % (work, i + 1)).read().split()] for i in range(n)]
total = sum(r[0] for r in runs)
span = max(r[3] for r in runs) - min(r[2] for r in runs)
each = ', '.join('%.1f' % (r[0] / r[1] / 1e6) for r in runs)
print('%d leech(es): %.1f MB/s in all (%d bytes in %.2f s; each %s MB/s); the seeder: %.2f CPU-s per GiB served'
      % (n, total / span / 1e6, total, span, each, ticks / tck / (total / 2**30)))
PY
}
run 1
run 4
kill -0 "$SEED" || { echo "the seeder died"; cat "$WORK/seed.log"; exit 1; }
if [ "$MODE" = qemu ]; then
    llvm-size -A "$BIN/enjambre-qemu" | grep -E '^(section|\.vector_table|\.text|\.rodata|\.data|\.bss|\.uninit|Total)'
    PEAK=$(grep -o 'stack peak [0-9]* B' "$WORK/seed.log" | tail -n 1 || true)
    echo "measured ${PEAK:-stack peak: not logged}"
fi
