#!/usr/bin/env bash
# Build the firmware and check it against the budget, from the linker's own section sizes:
#   code (.vector_table + .text + .rodata, less the embedded file and its piece hashes) <= 96 KiB
#   RAM  (.data + .bss + .uninit, plus a stack allowance)                               <= 64 KiB
# size-check.sh [cargo build options, e.g. --no-default-features --features f767zi]
# The stack is not measured here (that needs the board): STACK_ALLOWANCE (default 10 KiB) stands
# for it; the recipe measured a peak main stack of 8,660 B for this kind of program.
set -euo pipefail
cd "$(dirname "$0")"
STACK_ALLOWANCE=${STACK_ALLOWANCE:-10240}
CODE_BUDGET=$((96 * 1024))
RAM_BUDGET=$((64 * 1024))
cargo build --release "$@" >&2
DIR=target/thumbv7em-none-eabihf/release
ELF=$DIR/enjambre-nucleo
FILE=${SEED_FILE:-$DIR/board-seed.bin}
TORRENT=$DIR/$(basename "$FILE").torrent
SIZE=$(command -v llvm-size || command -v rust-size)
"$SIZE" -A "$ELF" | python3 -c "
import os, re, sys
sections = {}
for line in sys.stdin:
    f = line.split()
    if len(f) >= 2 and f[0].startswith('.') and f[1].isdigit():
        sections[f[0]] = int(f[1])
length = os.path.getsize('$FILE')
piece = int(re.search(rb'12:piece lengthi(\d+)e', open('$TORRENT', 'rb').read()).group(1))
hashes = 20 * -(-length // piece)
flash = sum(sections.get(s, 0) for s in ('.vector_table', '.text', '.rodata'))
code = flash - length - hashes
static = sum(sections.get(s, 0) for s in ('.data', '.bss', '.uninit'))
ram = static + $STACK_ALLOWANCE
print(f'file {length} B + piece hashes {hashes} B in flash')
print(f'code {code} B (flash {flash} B: .text {sections.get(\".text\", 0)}, .rodata {sections.get(\".rodata\", 0)}) / budget $CODE_BUDGET B')
print(f'RAM  {ram} B (.data {sections.get(\".data\", 0)} + .bss {sections.get(\".bss\", 0)} + .uninit {sections.get(\".uninit\", 0)} + stack allowance $STACK_ALLOWANCE) / budget $RAM_BUDGET B')
over = [w for w, v, b in (('code', code, $CODE_BUDGET), ('RAM', ram, $RAM_BUDGET)) if v > b]
if over:
    sys.exit('over budget: ' + ', '.join(over))
print('within budget')
"
