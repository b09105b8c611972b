#!/usr/bin/env bash
# dev.sh — set up, build and run hologram on Debian 12.
#   ./dev.sh main   install what is missing, build, run the main job: the Quick Start in C and
#                   in Python, a JIT vs interpreter vs NumPy comparison, the quick benchmark
#   ./dev.sh test   install what is missing, build, run every test (CTest: C and Python)
#   ./dev.sh bench  install what is missing, build, run the full benchmark (~2 minutes)
# Environment: BUILD_DIR (default build), HG_WERROR=ON to fail on warnings (CI sets it).
set -euo pipefail
cd "$(dirname "$0")"

PACKAGES=(build-essential cmake pkg-config llvm-19-dev libcmocka-dev libcjson-dev
          python3 python3-dev python3-cffi python3-numpy python3-pytest python3-setuptools
          python3-matplotlib python3-tqdm python3-numexpr python3-numba libopenblas-dev
          valgrind)
BUILD_DIR=${BUILD_DIR:-build}
PY=/usr/bin/python3

install_missing() {
    local missing=()
    for p in "${PACKAGES[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    echo "dev.sh: installing ${missing[*]}"
    local sudo=""
    [ "$(id -u)" -eq 0 ] || sudo=sudo
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
}

build() {
    cmake -S . -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=Release -DHG_PYTHON="$PY" \
          -DHG_WERROR="${HG_WERROR:-OFF}" >/dev/null
    cmake --build "$BUILD_DIR" -j "$(nproc)"
}

case "${1:-}" in
    main)
        install_missing; build
        echo "== Quick Start (C: bench/quickstart.c)"
        "$BUILD_DIR/bench/hg_quickstart"
        echo; echo "== Quick Start (Python: bench/quickstart.py)"
        PYTHONPATH="$BUILD_DIR/python" "$PY" bench/quickstart.py
        echo; echo "== Quick benchmark (bench/run.sh --quick; ./dev.sh bench for the full one)"
        BUILD_DIR="$BUILD_DIR" bench/run.sh --quick
        ;;
    bench)
        install_missing; build
        BUILD_DIR="$BUILD_DIR" bench/run.sh
        ;;
    test)
        install_missing; build
        ctest --test-dir "$BUILD_DIR" --output-on-failure -j 2
        ;;
    *)
        echo "usage: $0 main|test|bench" >&2
        exit 2
        ;;
esac
