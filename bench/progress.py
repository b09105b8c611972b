"""bench/progress.py — a benchmark stage's side of the run's one progress bar.

bench/run.py runs every stage with HG_BENCH_PROGRESS_FD=N in the environment: after each
measured case a stage writes "step <label>" to file descriptor N, and bench/run.py moves
the run's one tqdm bar (hg_bench.c writes the same lines).  A stage run by hand shows a
tqdm bar of its own (nothing without tqdm).  Each stage's --count prints the number of
steps it will make and exits (count_and_exit), so bench/run.py knows the run's total
before it starts.
"""
import os
import sys


def count_and_exit(args, total):
    """With --count: prints `total` (the steps of this run) and exits."""
    if args.count:
        print(total)
        sys.exit(0)


class Progress:
    """tqdm's face for the stages: set_postfix_str(label), update(n) (n steps of the last
    label), write(line), close()."""

    def __init__(self, total, desc):
        fd = os.environ.get("HG_BENCH_PROGRESS_FD")
        self._pipe = os.fdopen(int(fd), "w", buffering=1, closefd=False) if fd else None
        self._bar, self._label = None, ""
        if self._pipe is None:
            try:
                from tqdm import tqdm
                self._bar = tqdm(total=total, desc=desc, file=sys.stderr, disable=None)
            except ImportError:
                pass

    def set_postfix_str(self, label):
        self._label = label
        if self._bar is not None:
            self._bar.set_postfix_str(label)

    def update(self, n=1):
        if self._pipe is not None:
            self._pipe.write(f"step {self._label}\n" * n)
        elif self._bar is not None:
            self._bar.update(n)

    def write(self, line):
        if self._bar is not None:
            self._bar.write(line)
        else:
            print(line, flush=True)

    def close(self):
        if self._bar is not None:
            self._bar.close()
        if self._pipe is not None:
            self._pipe.flush()
