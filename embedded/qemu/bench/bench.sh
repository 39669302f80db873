#!/usr/bin/env bash
# Measure the QEMU board seeder (a figure, not a test). As root, from embedded/qemu:
#   bench/bench.sh [MIB]    (default 3: a MIB-MiB file of random bytes is embedded)
# Builds the firmware seeding that file, boots it on a TAP in namespace ejbench$$, then prints:
# the guest's idle CPU on the host over 10 s (/proc/PID/stat), MB/s to 1 leech and to 4 at
# once (bench/leech.py: every block, 8 requests in flight, checked) with QEMU's CPU meanwhile,
# the section sizes.
set -euo pipefail
cd "$(dirname "$0")/.."
MIB=${1:-3}
NS=ejbench$$
WORK=$(mktemp -d)
QEMU=
cleanup() {
    [ -n "$QEMU" ] && kill "$QEMU" 2>/dev/null; wait 2>/dev/null || true
    ip netns del "$NS" 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT
FILE=$WORK/bench.bin
head -c $((MIB * 1024 * 1024)) /dev/urandom >"$FILE"
SEED_FILE=$FILE cargo build --release --quiet
FW=target/thumbv7em-none-eabihf/release/enjambre-qemu
TORRENT=target/thumbv7em-none-eabihf/release/bench.bin.torrent
IH=$(python3 -c "
import hashlib,sys
t=open(sys.argv[1],'rb').read(); i=t.index(b'4:infod')+6
print(hashlib.sha1(t[i:-1]).hexdigest())" "$TORRENT")
PL=$(python3 -c "
import re,sys; print(re.search(rb'12:piece lengthi(\d+)e', open(sys.argv[1],'rb').read()).group(1).decode())" "$TORRENT")

ip netns add "$NS"
ip netns exec "$NS" ip link set lo up
ip netns exec "$NS" ip tuntap add name tap0 mode tap
ip netns exec "$NS" ip link set tap0 up
ip netns exec "$NS" ip addr add 10.77.0.1/24 dev tap0
ip netns exec "$NS" ./boot.sh "$FW" tap tap0 >"$WORK/qemu.log" 2>&1 &
sleep 3
QEMU=$(ip netns pids "$NS" | head -n 1)
TCK=$(getconf CLK_TCK)
cpu() { awk '{print $14 + $15}' "/proc/$QEMU/stat"; }
a=$(cpu); sleep 10; b=$(cpu)
echo "idle: QEMU used $(python3 -c "print(round(100 * ($b - $a) / $TCK / 10, 1))") % of a host core over 10 s"

run() { # N leeches at once
    local n=$1 start end c0 c1
    c0=$(cpu)
    start=$(date +%s.%N)
    for i in $(seq "$n"); do
        ip netns exec "$NS" python3 bench/leech.py 10.77.0.2 6881 "$IH" "$FILE" "$PL" 8 "$i" >"$WORK/leech$i" &
    done
    wait $(jobs -p | grep -v "^$QEMU$") 2>/dev/null || true
    end=$(date +%s.%N)
    c1=$(cpu)
    python3 - "$n" "$start" "$end" "$WORK" "$((c1 - c0))" "$TCK" <<'PY'
import sys
n, start, end, work = int(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3]), sys.argv[4]
qemu_cpu = int(sys.argv[5]) / int(sys.argv[6]) / (end - start) * 100
runs = [open('%s/leech%d' % (work, i + 1)).read().split() for i in range(n)]
total = sum(int(r[0]) for r in runs)
each = ', '.join('%.2f' % (int(r[0]) / float(r[1]) / 1e6) for r in runs)
print('%d leech(es): %.2f MB/s in all (%d bytes in %.2f s); each %s MB/s; QEMU at %.0f %% of a host core' % (n, total / (end - start) / 1e6, total, end - start, each, qemu_cpu))
PY
}
run 1
run 4
kill -0 "$QEMU" || { echo "QEMU died"; cat "$WORK/qemu.log"; exit 1; }
llvm-size -A "$FW" | grep -E '^(section|\.vector_table|\.text|\.rodata|\.data|\.bss|\.uninit|Total)'
