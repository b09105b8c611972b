"""Writes the seed corpus of fuzz_disk.c (tests/fuzz/corpus/disk/): valid object files in
the format of jit/disk_format.h for fuzz_disk's fixed content key and form, with a few
names and object sizes, each once as is (mode byte 0) and once with digest repair (1).

    /usr/bin/python3 tests/fuzz/make_disk_seeds.py tests/fuzz/corpus/disk
"""
import hashlib
import os
import struct
import sys

MAGIC = b"HGJITOB3"
CONTENT = hashlib.sha256(b"fuzz_disk content").digest()
FORM = b"fuzz_disk form \x01\x02\x03"


def encode(name, obj):
    """The file jit_disk_encode writes for (CONTENT, name, FORM, obj)."""
    head = MAGIC + CONTENT + struct.pack("<QQQ", len(name), len(FORM), len(obj))
    digest = hashlib.sha256(head + name + FORM + obj).digest()
    return head + digest + name + FORM + obj


def main(out):
    os.makedirs(out, exist_ok=True)
    seeds = [(b"hg_vector_add_f32_n16_0123456789abcdef", b"\x7fELF" + bytes(range(60))),
             (b"k", b"\x00"), (b"A_b9", bytes(300)), (b"x" * 255, b"\xff" * 17)]
    for i, (name, obj) in enumerate(seeds):
        for mode in (0, 1):
            with open(os.path.join(out, f"seed-{i}-{mode}"), "wb") as f:
                f.write(bytes([mode]) + encode(name, obj))


if __name__ == "__main__":
    main(sys.argv[1])
