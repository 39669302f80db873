#!/usr/bin/env python3
"""A static bound on the firmware's peak stack, from its own machine code (stable toolchain).

    stack-bound.py ELF [--top N] [--callees NAME] [--executor NAME]

From `llvm-objdump -d`: each function's frame is the sum of what it takes from `sp` (`push`,
`vpush`, `sub sp, #n`, `str rX, [sp, #-n]!`); its callees are its `bl`/`b` targets that start
a function; a `blx rN` (an indirect call: a waker, defmt's logger) may reach any function
whose address the program takes (a word in a literal pool, `.rodata` or `.data`, or a
`movw`/`movt` pair), except that a task's poll is only reached from the executor, which
reaches nothing else indirectly (the executor is embassy-executor's, or a function of the
program named by `--executor`, such as the QEMU firmware's own loop). The bound is the deepest chain from `main`, plus the deepest
interrupt handler and the registers the core stacks on entry (26 words with the FPU's): one
interrupt level, as every handler here runs at the same priority.

Counting every `sub sp` of a function and every address-taken function behind every indirect
call makes this an over-estimate. A cycle (recursion) is cut where it closes, so it counts
once; the cycles are listed (here: a panic inside the panic handler's logging, which the
handler's flag stops, and two leaf pairs). A function that sets `sp` from a register (a
variable-sized frame) is flagged. `--callees NAME` lists the deepest callees of a function.
"""
import re
import shutil
import subprocess
import sys
from functools import lru_cache

OBJDUMP = shutil.which("llvm-objdump") or shutil.which("rust-objdump") or "llvm-objdump"

EXCEPTION_FRAME = 26 * 4  # r0-r3, r12, lr, pc, xpsr + s0-s15, fpscr, reserved

SYM = re.compile(r"^([0-9a-f]+) <(.*)>:$")
INS = re.compile(r"^\s*([0-9a-f]+):\s+\t(\S+)\t?(.*)$")
WORD = re.compile(r"^\s*[0-9a-f]+:\s+(?:[0-9a-f]{2} ?){4}\s+\.word\s+0x([0-9a-f]+)")
TARGET = re.compile(r"^0x([0-9a-f]+) <")


def regs(text):
    """Registers named in a register list like `{r4, r5, r6, r7, lr}` or `{d8-d11}`."""
    n = 0
    for part in text.strip("{} ").split(","):
        part = part.strip()
        m = re.match(r"([rsd])(\d+)-[rsd](\d+)", part)
        width = 8 if part.startswith("d") else 4
        n += (int(m.group(3)) - int(m.group(2)) + 1) * width if m else width
    return n


def main():
    elf = sys.argv[1]
    top = int(sys.argv[sys.argv.index("--top") + 1]) if "--top" in sys.argv else 12
    dis = subprocess.run(
        [OBJDUMP, "-d", "-C", "--no-show-raw-insn", elf],
        capture_output=True, text=True, check=True,
    ).stdout.splitlines()
    words = subprocess.run(
        [OBJDUMP, "-s", "-j", ".rodata", "-j", ".data", elf],
        capture_output=True, text=True, check=True,
    ).stdout.splitlines()
    vector_words = subprocess.run(
        [OBJDUMP, "-s", "-j", ".vector_table", elf],
        capture_output=True, text=True, check=True,
    ).stdout.splitlines()

    starts = {}  # address -> name
    frame, calls, indirect = {}, {}, set()
    taken = set()
    dynamic = set()
    cur = None
    movw = {}
    for line in dis:
        m = SYM.match(line)
        if m:
            name = m.group(2)
            if not name.startswith("$"):
                cur = name
                starts[int(m.group(1), 16)] = name
                frame.setdefault(cur, 0)
                calls.setdefault(cur, set())
            continue
        w = WORD.match(line)
        if w:
            taken.add(int(w.group(1), 16))
            continue
        m = INS.match(line)
        if not m or cur is None:
            continue
        op, args = m.group(2), m.group(3)
        if op in ("push", "push.w", "stmdb", "stmdb.w") and (op.startswith("push") or args.startswith("sp!")):
            frame[cur] += regs(args[args.index("{"):args.index("}") + 1])
        elif op in ("vpush", "vpush.64", "vpush.32"):
            frame[cur] += regs(args[args.index("{"):args.index("}") + 1])
        elif op in ("sub", "sub.w", "subw", "subs") and re.match(r"sp, (sp, )?#\d+", args):
            frame[cur] += int(re.search(r"#(\d+)", args).group(1))
        elif op.startswith("str") and re.search(r"\[sp, #-(\d+)\]!", args):
            frame[cur] += int(re.search(r"\[sp, #-(\d+)\]!", args).group(1))
        elif re.match(r"(sub|add|mov)\S*$", op) and re.match(r"sp, (sp, )?r\d", args):
            # A stack pointer set from a register: a variable-sized frame (none in this
            # program but the reset code's), or a return to a saved one.
            if cur not in ("Reset", "__stext") and not args.startswith("sp, r7"):
                dynamic.add(cur)
        elif op in ("bl", "b", "b.w", "blx") and TARGET.match(args):
            calls[cur].add(int(TARGET.match(args).group(1), 16))
        elif op == "blx":
            indirect.add(cur)
        elif op in ("movw", "movt"):
            r, imm = args.split(", ")[0], args.split("#")[-1].split()[0]
            try:
                v = int(imm, 0)
            except ValueError:
                continue
            if op == "movw":
                movw[r] = v
            elif r in movw:
                taken.add((v << 16) | movw.pop(r))
    def dump_words(lines):
        out = set()
        for line in lines:
            f = line.split()
            if len(f) >= 5 and re.fullmatch(r"[0-9a-f]+", f[0]):
                for h in f[1:5]:
                    if re.fullmatch(r"[0-9a-f]{8}", h):
                        out.add(int.from_bytes(bytes.fromhex(h), "little"))
        return out

    taken |= dump_words(words)
    vectors = {starts[a & ~1] for a in dump_words(vector_words) if (a & ~1) in starts}

    # Calls into the middle of a function (a `b` inside it) are not calls.
    callees = {f: {starts[a] for a in calls[f] if a in starts and starts[a] != f} for f in frame}
    # Exception handlers are entered by the core, never called through a pointer.
    pointed = {starts[a & ~1] for a in taken if a & 1 and (a & ~1) in starts} - vectors
    # A task's poll is called by the executor alone (through the pointer it keeps in the
    # task's header); every other indirect call may reach any other address-taken function.
    polls = {f for f in pointed if "TaskStorage" in f and "::poll::" in f}
    own = sys.argv[sys.argv.index("--executor") + 1] if "--executor" in sys.argv else None
    for f in indirect:
        executor = ("embassy_executor" in f and "TaskStorage" not in f) or (own is not None and own in f)
        callees[f] |= (polls if executor else pointed - polls) - {f}

    on_path = {}
    cycles = set()

    @lru_cache(maxsize=None)
    def depth(f):
        if f in on_path:
            # A cycle: counted once. Every one here should be a panic inside the panic
            # handler's logging, which the handler's flag stops; they are listed.
            cycles.add(" -> ".join(list(on_path)[list(on_path).index(f):] + [f]))
            return 0, None
        on_path[f] = True
        best, via = 0, None
        for g in sorted(callees.get(f, ())):  # sorted: a cycle is cut at the same place every run
            d = depth(g)[0]
            if d > best:
                best, via = d, g
        on_path.pop(f)
        return frame.get(f, 0) + best, via

    sys.setrecursionlimit(100000)
    main_depth = depth("main")[0]
    handlers = sorted(((depth(v)[0], v) for v in sorted(vectors) if v not in ("Reset", "__stext")), reverse=True)
    if "--callees" in sys.argv:
        who = sys.argv[sys.argv.index("--callees") + 1]
        for f in frame:
            if who in f:
                for g in sorted(callees[f], key=lambda g: -depth(g)[0])[:8]:
                    print(f"  {depth(g)[0]:6} {g[:110]}")
                break
    chain, f = [], "main"
    while f:
        chain.append((frame.get(f, 0), f))
        f = depth(f)[1]
    irq = handlers[0] if handlers else (0, "none")
    for size, name in chain[:top]:
        print(f"  {size:6} {name[:110]}")
    if len(chain) > top:
        print(f"  ... {len(chain) - top} more frames, {sum(s for s, _ in chain[top:])} B")
    print(f"main: {main_depth} B over {len(chain)} frames; "
          f"{len(indirect)} functions call through pointers to {len(pointed)} address-taken ones")
    print(f"deepest interrupt: {irq[1]} {irq[0]} B, + {EXCEPTION_FRAME} B stacked on entry")
    for c in sorted(cycles):
        print(f"cycle, counted once: {c[:300]}")
    for f in sorted(dynamic):
        print(f"warning: {f[:100]} sets sp from a register: its frame may be larger")
    print(f"stack bound: {main_depth + irq[0] + EXCEPTION_FRAME} B")


if __name__ == "__main__":
    main()
