#!/usr/bin/env bash
# Seed FILE from the board firmware in QEMU mps2-an386, for BitTorrent clients on this machine.
#
#   embedded/qemu-seed.sh FILE TRACKER_URL      e.g. ./qemu-seed.sh ~/movie.mkv http://127.0.0.1:6969/announce
#
# Builds the firmware that embeds FILE and announces to TRACKER_URL, writes FILE.torrent beside
# FILE, boots it and runs until Ctrl-C. QEMU's user-mode network: no root, nothing changes in
# this machine's network; QEMU forwards 127.0.0.1:6881 to the board (10.77.0.2:6881), and the
# board's connections leave through QEMU like any program's here, so a tracker on this
# machine's 127.0.0.1 works (it lists the board as 127.0.0.1:6881). Port 6881 must be free.
# Needs qemu-system-arm (tests/install-qemu.sh) and the thumbv7em-none-eabihf Rust target.
set -euo pipefail
if [ $# != 2 ]; then
    sed -n '2,11p' "$0" >&2
    exit 2
fi
FILE=$(realpath "$1") TRACKER=$2
case "$TRACKER" in
    http://*) ;;
    *) echo "the board announces over plain http:// only: $TRACKER" >&2; exit 2 ;;
esac
[ -s "$FILE" ] || { echo "$FILE: no such file, or empty" >&2; exit 2; }
command -v qemu-system-arm >/dev/null || { echo "qemu-system-arm is missing: run tests/install-qemu.sh (as root)" >&2; exit 1; }
HERE=$(cd "$(dirname "$0")/qemu" && pwd)
NAME=$(basename "$FILE")

echo "building the firmware that seeds $FILE (announcing to $TRACKER)..."
(cd "$HERE" && SEED_FILE="$FILE" SEED_TRACKER="$TRACKER" cargo build --release --quiet)
BIN="$HERE/target/thumbv7em-none-eabihf/release"
cp "$BIN/$NAME.torrent" "$FILE.torrent"
echo "firmware: $BIN/enjambre-qemu"
echo "torrent:  $FILE.torrent"

"$HERE/boot.sh" "$BIN/enjambre-qemu" user 6881 &
QEMU_PID=$!
trap 'kill "$QEMU_PID" 2>/dev/null; wait "$QEMU_PID" 2>/dev/null; echo "stopped"; exit 0' INT TERM
sleep 1
kill -0 "$QEMU_PID" 2>/dev/null || { echo "QEMU did not start (is 127.0.0.1:6881 free?)" >&2; exit 1; }
echo "the board is at 127.0.0.1:6881 for clients on this machine (e.g. aria2c $FILE.torrent);"
echo "it announces to $TRACKER. Ctrl-C stops it."
wait "$QEMU_PID"
