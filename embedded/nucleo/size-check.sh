#!/usr/bin/env bash
# Build the firmware for a chip and check it against the budget, from the linker's own numbers:
#   code (.vector_table + .text + .rodata, less the embedded file and its piece hashes) <= 96 KiB
#   RAM  (.data + .bss + .uninit, plus the stack's static bound)                        <= 64 KiB
# size-check.sh [h743zi|f767zi] [cargo build options, e.g. --features flash-image]
# The stack is the bound stack-bound.py computes from this very ELF's machine code (the deepest
# call chain from main, plus an interrupt); the firmware also measures its real peak at run
# time (src/stack.rs). Each chip builds in a target directory of its own. With a `slots-N`
# feature the figures are printed for sizing a board; the budget is for the default 4 slots.
set -euo pipefail
cd "$(dirname "$0")"
CHIP=h743zi
case "${1:-}" in
  h743zi|f767zi) CHIP=$1; shift ;;
esac
CODE_BUDGET=$((96 * 1024))
RAM_BUDGET=$((64 * 1024))
if [ "$CHIP" = f767zi ]; then
  export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-target/f767zi}
  set -- --no-default-features --features f767zi "$@"
fi
cargo build --release "$@" >&2
DIR=${CARGO_TARGET_DIR:-target}/thumbv7em-none-eabihf/release
ELF=$DIR/enjambre-nucleo
FILE=${SEED_FILE:-$DIR/board-seed.bin}
TORRENT=$DIR/$(basename "$FILE").torrent
EMBEDDED=1
ENFORCE=1
case " $* " in *flash-image*) EMBEDDED=0 ;; esac
case " $* " in *slots-*) ENFORCE=0 ;; esac
SIZE=$(command -v llvm-size || command -v rust-size)
STACK=$(./stack-bound.py "$ELF" | sed -n 's/^stack bound: \([0-9]*\) B$/\1/p')
[ -n "$STACK" ] || { echo "stack-bound.py gave no bound" >&2; exit 1; }
"$SIZE" -A "$ELF" | python3 -c "
import os, re, sys
sections = {}
for line in sys.stdin:
    f = line.split()
    if len(f) >= 2 and f[0].startswith('.') and f[1].isdigit():
        sections[f[0]] = int(f[1])
if $EMBEDDED:
    length = os.path.getsize('$FILE')
    piece = int(re.search(rb'12:piece lengthi(\d+)e', open('$TORRENT', 'rb').read()).group(1))
    hashes = 20 * -(-length // piece)
    print(f'$CHIP: file {length} B + piece hashes {hashes} B in flash')
else:
    length = hashes = 0
    print('$CHIP: the file is in the flash image, not in the program')
flash = sum(sections.get(s, 0) for s in ('.vector_table', '.text', '.rodata'))
code = flash - length - hashes
static = sum(sections.get(s, 0) for s in ('.data', '.bss', '.uninit'))
ram = static + $STACK
print(f'code {code} B (flash {flash} B: .text {sections.get(\".text\", 0)}, .rodata {sections.get(\".rodata\", 0)}) / budget $CODE_BUDGET B')
print(f'RAM  {ram} B (.data {sections.get(\".data\", 0)} + .bss {sections.get(\".bss\", 0)} + .uninit {sections.get(\".uninit\", 0)} + stack bound $STACK) / budget $RAM_BUDGET B')
over = [w for w, v, b in (('code', code, $CODE_BUDGET), ('RAM', ram, $RAM_BUDGET)) if v > b]
if not $ENFORCE:
    print('not checked: the budget is for 4 slots')
elif over:
    sys.exit('over budget: ' + ', '.join(over))
else:
    print('within budget')
"
