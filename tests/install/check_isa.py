#!/usr/bin/python3
"""check_isa.py LIB [--allow-clones] — counts the AVX-512 and AVX/AVX2 instructions in a
library's code (objdump -d) per function, and fails when any lies outside a function that
run-time dispatch guards.

An instruction counts as AVX-512 when it names a zmm or mask (k0-k7) register, and as
AVX/AVX2 when it names a ymm register or is VEX-encoded on xmm (a v-prefixed SSE/AVX
mnemonic: baseline x86-64 has none of them).  Dispatch-guarded functions are the clones
that gcc and clang make for __attribute__((target_clones(...))): their symbols end in
.<target>.<n> (gcc: interp_kernel.avx2.0) or .<target> (clang: interp_kernel.avx2), and
only the ifunc resolver, which reads the CPU's features, ever calls them.
Prints one line per function with such instructions, then the totals; exit status 1 when
an unguarded one exists, 0 otherwise."""
import re
import subprocess
import sys

AVX512 = re.compile(r"%zmm\d|%k[0-7]\b|\{%k[0-7]\}")
AVX = re.compile(r"%ymm\d")
VEX_MNEMONIC = re.compile(r"^v(?!err|erw)[a-z0-9]+$")
FUNC = re.compile(r"^[0-9a-f]+ <(.+)>:$")
CLONE = re.compile(r"\.(?:avx2|avx512f|arch_x86_64_v[234]|arch=x86-64-v[234])(?:\.\d+)?$")


def scan(path):
    """{function: [avx512 count, avx/avx2 count]} over the library's executable sections."""
    out = subprocess.run(["objdump", "-d", "--no-show-raw-insn", "-w", path], check=True,
                         capture_output=True, text=True).stdout
    counts, func = {}, None
    for line in out.splitlines():
        m = FUNC.match(line)
        if m:
            func = m.group(1)
            continue
        parts = line.split("\t")
        if func is None or len(parts) < 2 or not re.match(r"^\s+[0-9a-f]+:$", parts[0]):
            continue
        insn = parts[1].strip()
        if not insn:
            continue
        mnemonic, _, operands = insn.partition(" ")
        c = counts.setdefault(func, [0, 0])
        if AVX512.search(operands):
            c[0] += 1
        elif AVX.search(operands) or VEX_MNEMONIC.match(mnemonic):
            c[1] += 1
    return {f: c for f, c in counts.items() if c[0] or c[1]}


def main(argv):
    path = argv[1]
    counts = scan(path)
    total = [0, 0]
    guarded = [0, 0]
    bad = []
    for func, (a512, a2) in sorted(counts.items()):
        total[0] += a512
        total[1] += a2
        if CLONE.search(func):
            guarded[0] += a512
            guarded[1] += a2
            tag = "dispatch-guarded"
        else:
            bad.append(func)
            tag = "UNGUARDED"
        print(f"{tag:16} {func}: {a512} AVX-512, {a2} AVX/AVX2")
    print(f"{path}: {total[0]} AVX-512 and {total[1]} AVX/AVX2 instructions in "
          f"{len(counts)} functions; {guarded[0]} and {guarded[1]} of them in dispatch-guarded "
          f"clones; {len(bad)} unguarded functions")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
