#!/usr/bin/python3
"""bench/dask_bench.py — the same Dask graphs with hologram kernels (hologram_ffi.dask) and
with plain NumPy chunks, side by side on one distributed.LocalCluster.

    PYTHONPATH=<build>/python /usr/bin/python3 bench/dask_bench.py [--quick] [--n N]
        [--chunk C] [--rounds R] [--csv FILE] [--md FILE]

Cluster: LocalCluster(n_workers=2, threads_per_worker=1, processes=True), one thread per
task on both sides (hologram_ffi.dask sets HOLOGRAM_THREADS=1 in the workers; Dask's nanny
sets OMP/OPENBLAS/MKL_NUM_THREADS=1).  Data: float32 a and b of N elements (default 1e8;
--quick 1e7) in chunks of C (default 5e6; --quick 1e6), made on the workers as one (2, C)
block per chunk so that a's and b's chunk i live on the same worker, persisted before any
timing.  Cases:

    map     2*a + 3*b              hd.evaluate("2*a + 3*b")  /  2*a + 3*b
    fused   sigmoid(a*w + b)       hd.evaluate(...)          /  1 / (1 + da.exp(-(a*w + b)))
    reduce  sum((a - b)**2)        hd.evaluate(...)          /  ((a - b)**2).sum()

A map's run is persist() and wait until every output chunk is in the workers' memory
(nothing travels to the client); the reduction's is compute() of its scalar.  Paths run
round-robin (the order alternates each round); best, median and spread per path.  Checks
(outside the timing, computed on the cluster): the map bit-equal between both paths, the
fused map within 2 ulp*|y| + 1e-7 of float64, both sums within 1e-6*log2(n)*sum|terms| of
the float64 sum.  Scheduler overhead: a graph of 2,000 no-op tasks (the cost of a task with
nothing in it), and per case the workers' time outside task code, per task, from the task
stream of one run.  Prints and writes (--md) a markdown table with the target (hologram at
least 1.5x Dask+NumPy, ratio = NumPy path's median time / hologram path's); the CSV has a
row per case x path and info rows (CPU, load average).  It measures; it never asserts speed.
"""
import argparse
import csv
import math
import os
import statistics
import sys
import time

import numpy as np

try:
    import dask.array as da
    import distributed
except ImportError as exc:
    sys.exit(f"dask_bench.py: needs Dask and dask.distributed (Debian: python3-dask, "
             f"python3-distributed): {exc}")

import hologram_ffi.dask as hd  # noqa: E402
from report import cpu_model, emit, fmt_x, spread, table  # noqa: E402  (bench/report.py)
from progress import Progress, count_and_exit  # noqa: E402  (bench/progress.py)

TARGET = 1.5
F32 = np.float32
W = 0.5


def cases(a, b):
    """name -> (title, hologram graph, NumPy graph, kind): kind "map" persists, "reduce"
    computes."""
    w = W
    return {
        "map": ("2*a + 3*b", hd.evaluate("2*a + 3*b"), 2 * a + 3 * b, "map"),
        "fused": ("sigmoid(a*w + b)", hd.evaluate("sigmoid(a*w + b)"),
                  1 / (1 + da.exp(-(a * w + b))), "map"),
        "reduce": ("sum((a - b)**2)", hd.evaluate("sum((a - b)**2)"), ((a - b) ** 2).sum(),
                   "reduce"),
    }


def run(graph, kind):
    """One timed run of graph (seconds)."""
    t0 = time.perf_counter()
    if kind == "map":
        y = graph.persist()
        distributed.wait(y)
        elapsed = time.perf_counter() - t0
        del y
    else:
        graph.compute()
        elapsed = time.perf_counter() - t0
    return elapsed


def task_overhead(client, graph, kind):
    """(tasks, seconds inside task code, wall seconds) of one run, from the task stream."""
    with distributed.get_task_stream(client) as ts:
        wall = run(graph, kind)
    inside = sum(s["stop"] - s["start"] for t in ts.data for s in t["startstops"]
                 if s["action"] == "compute")
    return len(ts.data), inside, wall


def _noop(i):
    return i


def noop_cost(client, n=2000):
    """Wall seconds per task of n no-op tasks spread over the workers (best of 3)."""
    best = math.inf
    for r in range(3):
        t0 = time.perf_counter()
        futures = client.map(_noop, range(r * n, (r + 1) * n), pure=False)
        distributed.wait(futures)
        best = min(best, time.perf_counter() - t0)
        del futures
    return best / n


def checks(a, b, graphs):
    """case -> (status, detail), computed on the cluster."""
    out = {}
    yh, yn = graphs["map"][1], graphs["map"][2]
    differ = int((yh != yn).sum().compute())
    out["map"] = ("bit-exact" if differ == 0 else "DIFFERS", f"{differ} elements differ")
    t = a.astype(np.float64) * W + b
    ref = 1 / (1 + da.exp(-t))
    excess = {}
    for path, y in (("hologram", graphs["fused"][1]), ("numpy", graphs["fused"][2])):
        excess[path] = float(da.max(abs(y - ref) - (2 * 2.0 ** -23 * abs(ref) + 1e-7)).compute())
    out["fused"] = ("ok" if excess["hologram"] <= 0 else "DIFFERS",
                    f"worst excess over the bound: hologram {excess['hologram']:.2g}, "
                    f"NumPy {excess['numpy']:.2g}")
    terms = (a.astype(np.float64) - b) ** 2
    exact, mag = (float(v) for v in da.compute(terms.sum(), abs(terms).sum()))
    bound = 1e-6 * math.log2(a.size) * mag
    err = {p: abs(float(g.compute()) - exact) for p, g in (("hologram", graphs["reduce"][1]),
                                                           ("numpy", graphs["reduce"][2]))}
    out["reduce"] = ("ok" if err["hologram"] <= bound else "DIFFERS",
                     f"error / sum|terms|: hologram {err['hologram'] / mag:.2g}, "
                     f"NumPy {err['numpy'] / mag:.2g}")
    return out


def fmt_s(s):
    return f"{s * 1e3:.0f} ms" if s >= 0.1 else f"{s * 1e3:.1f} ms"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--n", type=float)
    ap.add_argument("--chunk", type=float)
    ap.add_argument("--rounds", type=int)
    ap.add_argument("--csv")
    ap.add_argument("--md")
    ap.add_argument("--count", action="store_true",
                    help="print the number of progress steps and exit (bench/progress.py)")
    args = ap.parse_args(argv)
    n = int(args.n or (1e7 if args.quick else 1e8))
    chunk = int(args.chunk or (1e6 if args.quick else 5e6))
    rounds = args.rounds or (3 if args.quick else 7)
    # steps: the cluster and its data, the warm-up, each round, the overheads, the checks
    count_and_exit(args, rounds + 4)
    progress = Progress(rounds + 4, "dask_bench.py")
    load0 = os.getloadavg()
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                       dashboard_address=None)
    client = distributed.Client(cluster)
    try:
        workers = len(client.scheduler_info()["workers"])
        ab = da.random.RandomState(7).uniform(-3, 3, (2, n), chunks=(2, chunk)).astype(F32)
        a, b = client.persist([ab[0], ab[1]])
        distributed.wait([a, b])
        progress.set_postfix_str("cluster and data")
        progress.update(1)
        graphs = cases(a, b)
        for name, (_, gh, gn, kind) in graphs.items():      # warm-up: kernels, imports
            run(gh, kind)
            run(gn, kind)
        progress.set_postfix_str("warm-up")
        progress.update(1)
        times = {name: {"hologram": [], "numpy": []} for name in graphs}
        for r in range(rounds):
            for name, (_, gh, gn, kind) in graphs.items():
                order = (("hologram", gh), ("numpy", gn))
                for path, g in (order if r % 2 == 0 else order[::-1]):
                    times[name][path].append(run(g, kind))
            progress.set_postfix_str(f"round {r + 1}/{rounds}")
            progress.update(1)
        overhead = {name: {path: task_overhead(client, g, kind)
                           for path, g in (("hologram", gh), ("numpy", gn))}
                    for name, (_, gh, gn, kind) in graphs.items()}
        noop = noop_cost(client)
        progress.set_postfix_str("overheads")
        progress.update(1)
        verdicts = checks(a, b, graphs)
        progress.set_postfix_str("checks")
        progress.update(1)
    finally:
        progress.close()
        client.close()
        cluster.close()
    load1 = os.getloadavg()
    head = ["graph", "hologram (median)", "Dask+NumPy (median)", "ratio median (best)",
            f"≥ {TARGET}×", "spread (h / np)", "tasks (h / np)",
            "outside task code per task (h / np)", "check"]
    body = []
    for name, (title, _, _, kind) in graphs.items():
        h, p = times[name]["hologram"], times[name]["numpy"]
        rm, rb = statistics.median(p) / statistics.median(h), min(p) / min(h)
        oh = {k: (workers * wall - inside) / tasks
              for k, (tasks, inside, wall) in overhead[name].items()}
        body.append([f"`{title}`", fmt_s(statistics.median(h)), fmt_s(statistics.median(p)),
                     f"{fmt_x(rm)} ({fmt_x(rb)})", "yes" if rm >= TARGET else "no",
                     f"{spread(h) * 100:.0f}% / {spread(p) * 100:.0f}%",
                     f"{overhead[name]['hologram'][0]} / {overhead[name]['numpy'][0]}",
                     f"{fmt_s(oh['hologram'])} / {fmt_s(oh['numpy'])}", verdicts[name][0]])
    md = (f"## Dask: hologram kernels vs NumPy chunks (dask_bench.py)\n\n"
          f"LocalCluster of {workers} worker processes x 1 thread; n = {n:.3g} float32 in chunks "
          f"of {chunk:.3g} ({math.ceil(n / chunk)} chunks); {rounds} rounds; {cpu_model()}; load "
          f"average {load0[0]:.2f} before, {load1[0]:.2f} after.  A no-op task costs "
          f"{noop * 1e6:.0f} µs of wall time (2,000 over {workers} workers).\n\n"
          + table(head, body) + "\n"
          + "".join(f"- `{graphs[k][0]}`: {verdicts[k][1]}\n" for k in graphs))
    emit(md, args.md)
    if args.csv:
        with open(args.csv, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["kind", "case", "impl", "best_ms", "median_ms", "spread_pct", "tasks",
                        "outside_task_ms_per_task", "check"])
            w.writerow(["info", "cpu", cpu_model(), "", "", "", "", "", ""])
            w.writerow(["info", "load", f"{load0[0]:.2f}", f"{load1[0]:.2f}", "", "", "", "", ""])
            w.writerow(["info", "noop_task_us", f"{noop * 1e6:.1f}", "", "", "", "", "", ""])
            for name in graphs:
                for path, ts in times[name].items():
                    tasks, inside, wall = overhead[name][path]
                    w.writerow(["time", name, path, f"{min(ts) * 1e3:.2f}",
                                f"{statistics.median(ts) * 1e3:.2f}", f"{spread(ts) * 100:.1f}",
                                tasks, f"{(workers * wall - inside) / tasks * 1e3:.3f}",
                                verdicts[name][0]])
    return 1 if any(v[0] == "DIFFERS" for v in verdicts.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
