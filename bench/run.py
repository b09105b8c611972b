#!/usr/bin/python3
"""bench/run.py [--quick] — runs the whole benchmark against an existing build (it builds
nothing) under one progress bar, then report.py, and prints summary.md.

Stages, in order (each a process of its own, its output shown above the bar):
  hg_bench       JIT, interpreter, gcc loop, OpenBLAS as packaged and with
                 OPENBLAS_CORETYPE=SkylakeX, compile costs (C)
  bench.py       hologram_ffi vs NumPy
  fusion.py      evaluate() vs per-op calls, NumPy, numexpr, numba
  tensors.py     N-d compute vs NumPy
  parallel.py    threads: default vs one thread with busy processes on the other cores,
                 two threads vs one when idle, streams vs a non-temporal C loop, small gemm
                 shapes vs OpenBLAS
  dask_bench.py  hologram_ffi.dask vs Dask with NumPy chunks (skipped without
                 dask.distributed)
The bar's total is the sum of the stages' --count; each stage reports its steps through
HG_BENCH_PROGRESS_FD (bench/progress.py, hg_bench.c).  The bar stays on screen at the end
with the run's total time.  Environment: BUILD_DIR (default build; relative paths are from
the repository root), RESULTS_DIR (default $BUILD_DIR/bench-results): where the CSVs,
summary.md and plots go.  Exit status: nonzero when a stage failed.
"""
import argparse
import os
import selectors
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PY = "/usr/bin/python3"


def stages(build, results, quick, has_python, has_dask):
    """[(name, argv)] of this run."""
    q = ["--quick"] if quick else []
    out = [("hg_bench", [os.path.join(build, "bench", "hg_bench")] + q +
            ["--csv", os.path.join(results, "c.csv")])]
    if has_python:
        py = lambda script, *extra: (script, [PY, os.path.join(ROOT, "bench", script)] + q +
                                     list(extra))
        out.append(py("bench.py", "--csv", os.path.join(results, "py.csv")))
        for name in ("fusion", "tensors", "parallel"):
            out.append(py(f"{name}.py", "--csv", os.path.join(results, f"{name}.csv"),
                          "--md", os.path.join(results, f"{name}.md")))
        if has_dask:
            out.append(py("dask_bench.py", "--csv", os.path.join(results, "dask.csv"),
                          "--md", os.path.join(results, "dask.md")))
    return out


def run_stage(name, argv, env, bar, say):
    """Runs one stage: its output lines through say(), its progress lines moving bar.
    Returns its exit status."""
    read_fd, write_fd = os.pipe()
    env = dict(env, HG_BENCH_PROGRESS_FD=str(write_fd))
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            pass_fds=(write_fd,))
    os.close(write_fd)
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ, "out")
    sel.register(read_fd, selectors.EVENT_READ, "progress")
    pending = {"out": b"", "progress": b""}
    open_streams = 2
    while open_streams:
        for key, _ in sel.select():
            fd = key.fileobj if isinstance(key.fileobj, int) else key.fileobj.fileno()
            data = os.read(fd, 65536)
            if not data:
                sel.unregister(key.fileobj)
                open_streams -= 1
                data = b"\n" if pending[key.data] else b""
            pending[key.data] += data
            *lines, pending[key.data] = pending[key.data].split(b"\n")
            for line in lines:
                text = line.decode("utf-8", "replace").rstrip("\r")
                if key.data == "out":
                    say(text)
                elif text.startswith("step "):
                    bar.set_postfix_str(f"{name}: {text[5:]}", refresh=False)
                    bar.update(1)
    os.close(read_fd)
    return proc.wait()


class Plain:
    """The bar without tqdm (or without a terminal): counts, shows nothing."""

    def __init__(self, total):
        self.n, self.total = 0, total

    def set_postfix_str(self, text, refresh=True):
        pass

    def update(self, n):
        self.n += n

    def set_description_str(self, text):
        pass

    def refresh(self):
        pass

    def close(self):
        pass


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="the quick run (under a minute)")
    args = ap.parse_args()
    build = os.environ.get("BUILD_DIR", "build")
    build = build if os.path.isabs(build) else os.path.join(ROOT, build)
    results = os.environ.get("RESULTS_DIR", os.path.join(build, "bench-results"))
    if not os.access(os.path.join(build, "bench", "hg_bench"), os.X_OK):
        sys.exit(f"run.py: {build}/bench/hg_bench not found: build first (./dev.sh main)")
    os.makedirs(results, exist_ok=True)
    env = dict(os.environ)
    has_python = os.path.isdir(os.path.join(build, "python", "hologram_ffi"))
    if has_python:
        env["PYTHONPATH"] = os.path.join(build, "python")
    else:
        print(f"run.py: {build}/python/hologram_ffi not built: no NumPy or fusion comparison",
              file=sys.stderr)
    has_dask = has_python and subprocess.run(
        [PY, "-c", "import dask.array, distributed"], capture_output=True).returncode == 0
    if has_python and not has_dask:
        print("run.py: dask.distributed not installed: no Dask comparison", file=sys.stderr)
    for name in ("py.csv", "fusion.csv", "fusion.md", "tensors.csv", "tensors.md",
                 "parallel.csv", "parallel.md", "dask.csv", "dask.md"):      # no stale results of a stage that is not run
        if os.path.exists(os.path.join(results, name)):
            os.remove(os.path.join(results, name))
    run = stages(build, results, args.quick, has_python, has_dask)
    t0 = time.monotonic()
    counts = [int(subprocess.run(argv + ["--count"], env=env, capture_output=True, text=True,
                                 check=True).stdout) for _, argv in run]
    try:
        from tqdm import tqdm
        bar = tqdm(total=sum(counts), desc="bench", unit="case", file=sys.stderr,
                   dynamic_ncols=True, disable=None)
        say = bar.write
    except ImportError:
        bar, say = Plain(sum(counts)), print
    if bar.disable if hasattr(bar, "disable") else False:
        say = print
    failed = []
    done = 0
    for (name, argv), count in zip(run, counts):
        say(f"== {name} ({' '.join(os.path.relpath(a, ROOT) if a.startswith(ROOT) else a for a in argv)})")
        status = run_stage(name, argv, env, bar, say)
        done += count
        bar.update(done - bar.n)       # steps a stage skipped (e.g. no JIT) still count
        if status:
            failed.append(f"{name} (exit status {status})")
        say("")
    report = subprocess.run(
        [PY, os.path.join(ROOT, "bench", "report.py"), "--c", os.path.join(results, "c.csv"),
         "--py", os.path.join(results, "py.csv"),
         *[a for md in ("fusion.md", "tensors.md", "parallel.md", "dask.md")
           for a in ("--section", os.path.join(results, md))],
         "--out", results], env=env, capture_output=True, text=True)
    for line in (report.stdout + report.stderr).splitlines():
        say(line)
    if report.returncode:
        failed.append(f"report.py (exit status {report.returncode})")
    elapsed = time.monotonic() - t0
    bar.set_postfix_str(f"total {elapsed:.1f} s", refresh=False)
    bar.set_description_str(f"bench{' --quick' if args.quick else ''} done")
    bar.refresh()
    bar.close()
    with open(os.path.join(results, "summary.md")) as fh:
        print("\n" + fh.read())
    print(f"bench{' --quick' if args.quick else ''}: {sum(counts)} cases in {len(run)} "
          f"stages, {elapsed:.1f} s; results in {results}")
    if failed:
        print("bench: failed: " + ", ".join(failed), file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
