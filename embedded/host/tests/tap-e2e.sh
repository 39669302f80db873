#!/usr/bin/env bash
# The board seeder on a TAP, end to end. Needs root, `ip`, aria2c, python3-libtorrent,
# transmission-daemon and transmission-remote, opentracker, dnsmasq.
# tap-e2e.sh TORRENT FILE ENJAMBRE_BIN SEED_COMMAND...
# The seed command runs inside the namespace, on TAP `tap0` (10.77.0.1/24 on our side), the
# board at 10.77.0.2:6881: the host program (`enjambre-seed-tap tap0 10.77.0.2/24 10.77.0.1
# 6881`) or QEMU (`embedded/qemu/boot.sh FIRMWARE tap tap0`). The board announces to the
# tracker built in (http://10.77.0.1:6969/announce, or by the name tracker.board.test), served
# first by `enjambre tracker`, then, after the board restarts, by opentracker.
# The namespace and its dnsmasq (DHCP for a board that asks, DNS for tracker.board.test) come
# from embedded/tap-net.sh; a board that got its address by DHCP, or a torrent that names its
# tracker by that name, is checked in dnsmasq's log.
# RSS_TOLERANCE_KB set: the seeder's resident memory (/proc/PID/status VmRSS) may grow by at
# most that much while the hostile peers of peers.py come and go (set for the host program,
# whose seeder has no heap; QEMU's own RSS says nothing about the guest's).
# Creates network namespace ${NS_PREFIX:-ejtap}$$, removed on exit whatever happens.
set -eEuo pipefail
TORRENT=$1 FILE=$2 ENJAMBRE=$3
shift 3
SEED=("$@")
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=../../tap-net.sh
. "$HERE/../../tap-net.sh"
NS=${NS_PREFIX:-ejtap}$$
WORK=$(mktemp -d)
PIDS=()
# Why the script failed, printed last (after the logs) so the end of the output names it.
FAILURE=""
fail() { FAILURE=$1; echo "$1"; exit 1; }
trap 'FAILURE=${FAILURE:-"line $LINENO: $BASH_COMMAND"}' ERR
cleanup() {
    local rc=$?
    if [ $rc != 0 ]; then
        echo "--- seeder log (tail)"; tail -n 40 "$WORK/seed.log" 2>/dev/null || true
        echo "--- tracker log (tail)"; tail -n 20 "$WORK/tracker.log" 2>/dev/null || true
        echo "--- tap-e2e.sh failed (exit $rc): ${FAILURE:-unknown}"
    fi
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    for f in "$WORK"/*/daemon.pid; do if [ -f "$f" ]; then kill "$(cat "$f")" 2>/dev/null || true; fi; done
    tap_net_down "$NS"
    wait 2>/dev/null || true
    if [ "${KEEP:-}" = "" ]; then rm -rf "$WORK"; else echo "logs in $WORK"; fi
}
trap cleanup EXIT
in_ns() { ip netns exec "$NS" "$@"; }
# For programs started in the background: `"${IN_NS[@]}" PROGRAM &` makes $! the program itself
# (`ip netns exec` execs it), where a function would leave $! a subshell and the program
# orphaned when it is killed.
IN_NS=(ip netns exec "$NS")
# Stop a process this script started, and wait for it.
stop() { kill "$1" 2>/dev/null || true; wait "$1" 2>/dev/null || true; }

tap_net_up "$NS" "$WORK"

IH=$(python3 -c "
import hashlib,sys
t=open(sys.argv[1],'rb').read(); i=t.index(b'4:infod')+6
print(hashlib.sha1(t[i:-1]).hexdigest())" "$TORRENT")
PIECE_LENGTH=$(python3 -c "
import re,sys; print(re.search(rb'12:piece lengthi(\d+)e', open(sys.argv[1],'rb').read()).group(1).decode())" "$TORRENT")
NAME=$(basename "$FILE")

# The board boots (again); $SEED_PID is the seeder (or QEMU: boot.sh execs it).
start_seed() {
    echo "--- boot" >>"$WORK/seed.log"
    "${IN_NS[@]}" "${SEED[@]}" >>"$WORK/seed.log" 2>&1 &
    SEED_PID=$!
    PIDS+=("$SEED_PID")
}

# Transmission in the namespace, its config in $WORK/$1, RPC on 127.0.0.1:9091 there; leaves
# when the download is complete and byte-identical.
transmission_leech() {
    local home="$WORK/$1"
    mkdir -p "$home/downloads"
    cat >"$home/settings.json" <<EOF
{"rpc-enabled": true, "rpc-port": 9091, "rpc-bind-address": "127.0.0.1",
 "rpc-whitelist-enabled": false, "rpc-host-whitelist-enabled": false,
 "rpc-authentication-required": false, "peer-port": 51413, "peer-port-random-on-start": false,
 "bind-address-ipv4": "10.77.0.1", "dht-enabled": false, "lpd-enabled": false,
 "utp-enabled": false, "pex-enabled": false, "port-forwarding-enabled": false,
 "download-dir": "$home/downloads", "incomplete-dir-enabled": false,
 "rename-partial-files": false, "start-added-torrents": true, "message-level": 2}
EOF
    "${IN_NS[@]}" transmission-daemon -f -g "$home" -e "$home/transmission.log" &
    local daemon=$!
    echo "$daemon" >"$home/daemon.pid"
    local rpc=(in_ns transmission-remote 127.0.0.1:9091)
    for _ in $(seq 100); do "${rpc[@]}" -l >/dev/null 2>&1 && break; sleep 0.1; done
    "${rpc[@]}" -a "$TORRENT" -w "$home/downloads" >/dev/null
    local finished=no deadline=$((SECONDS + LEECH_SECS))
    while [ $SECONDS -lt $deadline ]; do
        if "${rpc[@]}" -t all -i 2>/dev/null | grep -q 'Percent Done: 100%'; then finished=yes; break; fi
        sleep 0.1
    done
    { "${rpc[@]}" -t all -i; "${rpc[@]}" -t all -pi; } >"$home/info.txt" 2>&1 || true
    stop "$daemon"
    [ $finished = yes ] || { echo "Transmission did not finish"; cat "$home/info.txt"; return 1; }
}

# How long a leech may take. Usually 5-16 s: a client that tries uTP or encryption first (the
# board has neither) comes back in plaintext, and one the board turned away while its four
# slots were full comes back on its own schedule (Transmission waits longer after each refusal).
LEECH_SECS=${LEECH_SECS:-240}

# Four leeches at once through whichever tracker runs: aria2, libtorrent twice, Transmission;
# each file byte-identical.
leeches() {
    local via=$1 LEECHES=() l
    local a="aria2-$via" l1="lt1-$via" l2="lt2-$via" t="tr-$via"
    mkdir -p "$WORK/$a"
    "${IN_NS[@]}" aria2c --no-conf --enable-dht=false --bt-enable-lpd=false --enable-peer-exchange=false \
        --seed-time=0 --summary-interval=0 --file-allocation=none -d "$WORK/$a" "$TORRENT" \
        >"$WORK/$a.log" 2>&1 &
    LEECHES+=("$!:$a")
    PIDS+=("$!")
    for l in "$l1" "$l2"; do
        mkdir -p "$WORK/$l"
        "${IN_NS[@]}" /usr/bin/python3 -c "
import sys, time, libtorrent as lt
s = lt.session({'listen_interfaces': '10.77.0.1:0', 'enable_dht': False, 'enable_lsd': False,
                'enable_upnp': False, 'enable_natpmp': False, 'alert_mask': 0})
h = s.add_torrent({'ti': lt.torrent_info(sys.argv[1]), 'save_path': sys.argv[2]})
deadline = time.time() + int(sys.argv[3])
while time.time() < deadline:
    if h.status().is_seeding:
        sys.exit(0)
    time.sleep(0.1)
st = h.status()
print('state', st.state, 'progress', st.progress, 'peers', st.num_peers, 'known', st.list_peers,
      'announce', st.current_tracker, repr(st.errc.message()))
for p in h.get_peer_info():
    print('peer', p.ip, 'progress', p.progress, 'flags', hex(p.flags), 'down', p.total_download)
sys.exit('libtorrent did not finish')" "$TORRENT" "$WORK/$l" "$LEECH_SECS" >"$WORK/$l.log" 2>&1 &
        LEECHES+=("$!:$l")
        PIDS+=("$!")
    done
    transmission_leech "$t" >"$WORK/$t.log" 2>&1 &
    LEECHES+=("$!:$t")
    PIDS+=("$!")
    local start end
    start=$(date +%s.%N)
    for l in "${LEECHES[@]}"; do
        wait "${l%%:*}" || { cat "$WORK/${l#*:}.log"; fail "${l#*:} failed after $(python3 -c "print(round($(date +%s.%N)-$start,1))") s (its log is above)"; }
    done
    end=$(date +%s.%N)
    cmp "$FILE" "$WORK/$a/$NAME"
    cmp "$FILE" "$WORK/$l1/$NAME"
    cmp "$FILE" "$WORK/$l2/$NAME"
    cmp "$FILE" "$WORK/$t/downloads/$NAME"
    echo "ok ($via): aria2, two libtorrent and Transmission at once downloaded $(stat -c %s "$FILE") bytes each, byte-identical, in $(python3 -c "print(round($end-$start,2))") s"
}

rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$SEED_PID/status"; }

# --- Through `enjambre tracker`.
"${IN_NS[@]}" "$ENJAMBRE" tracker --listen 10.77.0.1:6969 --poll-interval 300 --poll-grace 1 \
    >"$WORK/tracker.log" 2>&1 &
TRACKER_PID=$!
PIDS+=("$TRACKER_PID")
start_seed

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

leeches tracker

# The board's address came from DHCP if it asked, and it found the tracker by name if the
# torrent names one.
if grep -q "DHCPDISCOVER" "$WORK/dnsmasq.log"; then
    grep -q "DHCPACK(tap0) 10.77.0.2" "$WORK/dnsmasq.log" || { cat "$WORK/dnsmasq.log"; fail "the board asked for an address and got none"; }
    echo "ok: the board got 10.77.0.2 by DHCP"
fi
TRACKER_HOST=$(python3 -c "
import re,sys; print(re.search(rb'8:announce\d+:http://([^:/]+)', open(sys.argv[1],'rb').read()).group(1).decode())" "$TORRENT")
if [ "$TRACKER_HOST" = tracker.board.test ]; then
    grep -q "query\[A\] tracker.board.test from 10.77.0.2" "$WORK/dnsmasq.log" || { cat "$WORK/dnsmasq.log"; fail "the board did not look its tracker up"; }
    echo "ok: the board found its tracker by name (DNS)"
fi

RSS_BEFORE=$(rss_kb)
in_ns python3 "$HERE/peers.py" 10.77.0.2 6881 "$IH" "$FILE" "$PIECE_LENGTH"
kill -0 "$SEED_PID" || { cat "$WORK/seed.log"; fail "the seeder died"; }
RSS_AFTER=$(rss_kb)
echo "ok: the seeder is still running; its RSS went from $RSS_BEFORE to $RSS_AFTER KiB across the hostile peers"
if [ -n "${RSS_TOLERANCE_KB:-}" ] && [ $((RSS_AFTER - RSS_BEFORE)) -gt "$RSS_TOLERANCE_KB" ]; then
    fail "the seeder's RSS grew by more than $RSS_TOLERANCE_KB KiB"
fi

# --- Through opentracker (Debian's: whitelisted hashes only, chrooted, as nobody), on the
# tracker address built into the board, which boots again to announce to it.
stop "$SEED_PID"
stop "$TRACKER_PID"
mkdir -p "$WORK/ot"
echo "$IH" >"$WORK/ot/whitelist"
chmod 755 "$WORK/ot"
chmod 644 "$WORK/ot/whitelist"
"${IN_NS[@]}" opentracker -i 10.77.0.1 -p 6969 -P 6969 -w whitelist -u nobody -d "$WORK/ot" \
    >"$WORK/opentracker.log" 2>&1 &
PIDS+=("$!")
start_seed
IH_URL=$(python3 -c "import sys,urllib.parse; print(urllib.parse.quote(bytes.fromhex(sys.argv[1])))" "$IH")
SEEDS=""
for _ in $(seq 60); do
    SEEDS=$(in_ns curl -s "http://10.77.0.1:6969/scrape?info_hash=$IH_URL" | grep -ao '8:completei[0-9]*e' || true)
    [ "$SEEDS" = 8:completei1e ] && break
    sleep 0.5
done
[ "$SEEDS" = 8:completei1e ] || fail "opentracker does not count the board as a seed: $SEEDS"
echo "ok: the board announced to opentracker, which counts it as a seed"
leeches opentracker
kill -0 "$SEED_PID" || { cat "$WORK/seed.log"; fail "the seeder died"; }
echo "ok: the seeder is still running"
# A firmware that measures its stack logs the high-water mark as it grows.
PEAK=$(grep -o 'stack peak [0-9]* B' "$WORK/seed.log" | awk '{print $3}' | sort -n | tail -n 1 || true)
if [ -n "$PEAK" ]; then echo "stack: the firmware's measured peak was $PEAK bytes"; fi
