#!/usr/bin/env bash
# bench/run.sh [--quick] — runs the whole benchmark against an existing build (it builds
# nothing): hg_bench (JIT, interpreter, gcc loop, OpenBLAS as packaged and with
# OPENBLAS_CORETYPE=SkylakeX, compile costs), bench.py (hologram_ffi vs NumPy), fusion.py
# (evaluate() vs per-op calls, NumPy, numexpr, numba), tensors.py (N-d compute vs NumPy),
# parallel.py (threads: loaded and idle machine, streams, small gemm shapes),
# dask_bench.py (hologram_ffi.dask vs Dask with NumPy chunks on a LocalCluster; skipped
# without dask.distributed) and report.py, then prints summary.md.
# Environment: BUILD_DIR (default build; relative paths are from the repository root),
# RESULTS_DIR (default $BUILD_DIR/bench-results): where the CSVs, summary.md and plots go.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD_DIR=${BUILD_DIR:-build}
case "$BUILD_DIR" in /*) ;; *) BUILD_DIR="$ROOT/$BUILD_DIR" ;; esac
PY=/usr/bin/python3
RESULTS=${RESULTS_DIR:-$BUILD_DIR/bench-results}
QUICK=()
if [ "${1:-}" = "--quick" ]; then QUICK=(--quick); fi

if [ ! -x "$BUILD_DIR/bench/hg_bench" ]; then
    echo "run.sh: $BUILD_DIR/bench/hg_bench not found: build first (./dev.sh main)" >&2
    exit 2
fi
mkdir -p "$RESULTS"
status=0
"$BUILD_DIR/bench/hg_bench" "${QUICK[@]}" --csv "$RESULTS/c.csv" || status=$?
if [ -d "$BUILD_DIR/python/hologram_ffi" ]; then
    PYTHONPATH="$BUILD_DIR/python" "$PY" "$ROOT/bench/bench.py" "${QUICK[@]}" \
        --csv "$RESULTS/py.csv" || status=$?
    PYTHONPATH="$BUILD_DIR/python" "$PY" "$ROOT/bench/fusion.py" "${QUICK[@]}" \
        --csv "$RESULTS/fusion.csv" --md "$RESULTS/fusion.md" || status=$?
    PYTHONPATH="$BUILD_DIR/python" "$PY" "$ROOT/bench/tensors.py" "${QUICK[@]}" \
        --csv "$RESULTS/tensors.csv" --md "$RESULTS/tensors.md" || status=$?
    PYTHONPATH="$BUILD_DIR/python" "$PY" "$ROOT/bench/parallel.py" "${QUICK[@]}" \
        --csv "$RESULTS/parallel.csv" --md "$RESULTS/parallel.md" || status=$?
    rm -f "$RESULTS/dask.csv" "$RESULTS/dask.md"
    if "$PY" -c "import dask.array, distributed" 2>/dev/null; then
        PYTHONPATH="$BUILD_DIR/python" "$PY" "$ROOT/bench/dask_bench.py" "${QUICK[@]}" \
            --csv "$RESULTS/dask.csv" --md "$RESULTS/dask.md" || status=$?
    else
        echo "run.sh: dask.distributed not installed: no Dask comparison" >&2
    fi
else
    echo "run.sh: $BUILD_DIR/python/hologram_ffi not built: no NumPy or fusion comparison" >&2
    rm -f "$RESULTS/py.csv" "$RESULTS/fusion.csv" "$RESULTS/fusion.md" \
          "$RESULTS/tensors.csv" "$RESULTS/tensors.md" "$RESULTS/parallel.csv" \
          "$RESULTS/parallel.md" "$RESULTS/dask.csv" "$RESULTS/dask.md"
fi
"$PY" "$ROOT/bench/report.py" --c "$RESULTS/c.csv" --py "$RESULTS/py.csv" \
    --section "$RESULTS/fusion.md" --section "$RESULTS/tensors.md" \
    --section "$RESULTS/parallel.md" \
    --section "$RESULTS/dask.md" --out "$RESULTS"
echo
cat "$RESULTS/summary.md"
exit $status
