"""The HOLOGRAM_* environment knobs (canon/env.h), each read once per process, so every case
runs in a fresh interpreter: a bad value makes ops raise InvalidArgumentError naming the
variable and the value, and leaves the buffer as it was; "" is the same as unset.  And
HOLOGRAM_DUMP=ir,opt-ir for a kernel loaded from the disk cache."""
import os
import re
import subprocess
import sys

import pytest

import hologram_ffi as hg

PROBE = r"""
import hologram_ffi as hg
e = hg.new_executor()
a = hg.executor_allocate_buffer(e, 1)
hg.buffer_copy_from_slice(e, a, "[-2]")
try:
    hg.vector_abs_f32(e, a, a, 1)
    print("ok", hg.buffer_to_vec(e, a))
except hg.HologramError as exc:
    print(type(exc).__name__, hg.buffer_to_vec(e, a), exc)
"""

BAD = ("0", "-5", "abc", "99999999999999999999999")
KNOBS = {  # variable: (bad values, good values); "" is always good (unset)
    "HOLOGRAM_CACHE_ENTRIES": (BAD, ("", "64")),
    "HOLOGRAM_CACHE_DISK_FILES": (BAD, ("", "100")),
    "HOLOGRAM_JIT_HASH_BITS": (BAD + ("64",), ("", "8")),
    "HOLOGRAM_CACHE_DIR": (("relative/dir", "-5", "0", "Off"), ("", "off")),
    "HOLOGRAM_DUMP": (("irr", "0", "-5", "canon;ir"), ("",)),
    "HOLOGRAM_BACKEND": (("jitt", "0", "-5", "abc"), ("", "interp")),
}
JIT_KNOBS = ("HOLOGRAM_CACHE_ENTRIES", "HOLOGRAM_CACHE_DISK_FILES", "HOLOGRAM_JIT_HASH_BITS",
             "HOLOGRAM_CACHE_DIR")
CASES = [(name, value, value != "" and value in bad)
         for name, (bad, good) in KNOBS.items() for value in bad + good]


def has_jit():
    try:
        previous = hg.get_backend()
        hg.set_backend("jit")
        hg.set_backend(previous)
        return True
    except hg.InvalidArgumentError:
        return False


@pytest.fixture(scope="module")
def outcomes():
    """Every case's output line, the interpreters run two at a time."""
    results, running = {}, []
    for i, (name, value, _) in enumerate(CASES):
        env = dict(os.environ, **{name: value})
        running.append(((name, value), subprocess.Popen(
            [sys.executable, "-c", PROBE], env=env, stdout=subprocess.PIPE, text=True)))
        if len(running) == 2 or i == len(CASES) - 1:
            for key, proc in running:
                results[key] = proc.communicate(timeout=120)[0].strip()
            running = []
    return results


@pytest.mark.parametrize("name,value,bad", CASES)
def test_bad_values_are_named(outcomes, name, value, bad):
    if bad and name in JIT_KNOBS and not has_jit():
        bad = False  # a knob of the JIT does nothing without it
    line = outcomes[(name, value)]
    if bad:
        assert line.startswith(f'InvalidArgumentError [-2.0] {name}="{value}" '), line
    else:
        assert line == "ok [2.0]", line


def dumps(text):
    """{(stage, kernel): module text} of a HOLOGRAM_DUMP output, headings' notes dropped."""
    parts = re.split(r"^; ---- hologram (ir|opt-ir): (\S+)[^\n]*----\n", text, flags=re.M)
    return {(parts[i], parts[i + 1]): parts[i + 2] for i in range(1, len(parts) - 2, 3)}


def test_dump_ir_of_a_disk_cached_kernel(tmp_path):
    if not has_jit():
        pytest.skip("no JIT in this build")
    code = ("import hologram_ffi as hg\ne = hg.new_executor()\n"
            "a = hg.executor_allocate_buffer(e, 1000)\nhg.tanh_f32(e, a, a, 1000)\n"
            "print(hg.cache_stats()['disk_loads'])")
    env = dict(os.environ, HOLOGRAM_DUMP="ir,opt-ir", HOLOGRAM_CACHE_DIR=str(tmp_path))
    runs = [subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                           text=True, timeout=120) for _ in range(2)]
    assert [r.stdout.strip() for r in runs] == ["0", "1"]   # compiled, then loaded
    compiled, loaded = dumps(runs[0].stderr), dumps(runs[1].stderr)
    assert sorted(stage for stage, _ in compiled) == ["ir", "opt-ir"]
    assert loaded == compiled                                # the same IR, regenerated
    assert "loaded from the disk cache; IR regenerated" in runs[1].stderr
    assert "loaded from the disk cache" not in runs[0].stderr
