#!/usr/bin/env bash
# The board seeder on a TAP, end to end. Needs root, `ip`, aria2c, python3-libtorrent.
# tap-e2e.sh TORRENT FILE ENJAMBRE_BIN SEED_COMMAND...
# The seed command runs inside the namespace, on TAP `tap0` (10.77.0.1/24 on our side), the
# board at 10.77.0.2:6881: the host program (`enjambre-seed-tap tap0 10.77.0.2/24 10.77.0.1
# 6881`) or QEMU (`embedded/qemu/boot.sh FIRMWARE tap tap0`).
# Creates network namespace ${NS_PREFIX:-ejtap}$$, removed on exit whatever happens.
set -euo pipefail
TORRENT=$1 FILE=$2 ENJAMBRE=$3
shift 3
HERE=$(cd "$(dirname "$0")" && pwd)
NS=${NS_PREFIX:-ejtap}$$
WORK=$(mktemp -d)
PIDS=()
cleanup() {
    local rc=$?
    if [ $rc != 0 ]; then
        echo "--- seeder log (tail)"; tail -n 40 "$WORK/seed.log" 2>/dev/null || true
        echo "--- tracker log (tail)"; tail -n 20 "$WORK/tracker.log" 2>/dev/null || true
    fi
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    ip netns del "$NS" 2>/dev/null || true
    if [ "${KEEP:-}" = "" ]; then rm -rf "$WORK"; else echo "logs in $WORK"; fi
}
trap cleanup EXIT
in_ns() { ip netns exec "$NS" "$@"; }

ip netns add "$NS"
in_ns ip link set lo up
in_ns ip tuntap add name tap0 mode tap
in_ns ip link set tap0 up
in_ns ip addr add 10.77.0.1/24 dev tap0

in_ns "$ENJAMBRE" tracker --listen 10.77.0.1:6969 --poll-interval 300 --poll-grace 1 \
    >"$WORK/tracker.log" 2>&1 &
PIDS+=($!)
in_ns "$@" >"$WORK/seed.log" 2>&1 &
PIDS+=($!)

IH=$(python3 -c "
import hashlib,sys
t=open(sys.argv[1],'rb').read(); i=t.index(b'4:infod')+6
print(hashlib.sha1(t[i:-1]).hexdigest())" "$TORRENT")
PIECE_LENGTH=$(python3 -c "
import re,sys; print(re.search(rb'12:piece lengthi(\d+)e', open(sys.argv[1],'rb').read()).group(1).decode())" "$TORRENT")

# The board announces; the tracker polls it and learns it holds every piece.
for _ in $(seq 60); do
    SWARM=$(in_ns curl -s "http://10.77.0.1:6969/swarm/$IH" || true)
    if echo "$SWARM" | grep -q '"source":"poll"'; then break; fi
    sleep 0.5
done
echo "$SWARM" | python3 -c "
import json,sys
s=json.load(sys.stdin); p=[p for p in s['peers'] if p['addr']=='10.77.0.2:6881']
assert p, 'the board is not in the swarm'
p=p[0]; assert p['source']=='poll' and p['have']=='all' and p['seed'], p
print('ok: the tracker lists the board as a complete seed, learned by poll')"

# Four leeches at once, two aria2 and two libtorrent, through the tracker.
LEECHES=()
for i in 1 2; do
    mkdir -p "$WORK/aria2-$i" "$WORK/lt-$i"
    in_ns aria2c --no-conf --enable-dht=false --bt-enable-lpd=false --enable-peer-exchange=false \
        --seed-time=0 --summary-interval=0 --file-allocation=none -d "$WORK/aria2-$i" "$TORRENT" \
        >"$WORK/aria2-$i.log" 2>&1 &
    LEECHES+=("$!:aria2-$i")
    in_ns /usr/bin/python3 -c "
import sys, time, libtorrent as lt
s = lt.session({'listen_interfaces': '10.77.0.1:0', 'enable_dht': False, 'enable_lsd': False,
                'enable_upnp': False, 'enable_natpmp': False, 'alert_mask': 0})
h = s.add_torrent({'ti': lt.torrent_info(sys.argv[1]), 'save_path': sys.argv[2]})
deadline = time.time() + 90
while time.time() < deadline:
    if h.status().is_seeding:
        sys.exit(0)
    time.sleep(0.1)
sys.exit('libtorrent did not finish')" "$TORRENT" "$WORK/lt-$i" >"$WORK/lt-$i.log" 2>&1 &
    LEECHES+=("$!:lt-$i")
done
START=$(date +%s.%N)
NAME=$(basename "$FILE")
for l in "${LEECHES[@]}"; do
    wait "${l%%:*}" || { cat "$WORK/${l#*:}.log"; exit 1; }
done
END=$(date +%s.%N)
for l in "${LEECHES[@]}"; do cmp "$FILE" "$WORK/${l#*:}/$NAME"; done
echo "ok: two aria2 and two libtorrent at once downloaded $(stat -c %s "$FILE") bytes each, byte-identical, in $(python3 -c "print(round($END-$START,2))") s"

in_ns python3 "$HERE/peers.py" 10.77.0.2 6881 "$IH" "$FILE" "$PIECE_LENGTH"
kill -0 "${PIDS[1]}" || { echo "the seeder died"; cat "$WORK/seed.log"; exit 1; }
echo "ok: the seeder is still running"
