#!/usr/bin/env bash
# dev.sh — set up, build and run hologram on Debian 12.
#   ./dev.sh main   install what is missing, build, run the main job: the Quick Start in C and
#                   in Python, a JIT vs interpreter vs NumPy comparison, the quick benchmark
#   ./dev.sh test   install what is missing, build, run every test (CTest: C and Python),
#                   then build and test once more without the JIT ($BUILD_DIR-interp)
#   ./dev.sh bench  install what is missing, build, run the full benchmark (~2 minutes)
#   ./dev.sh fuzz [S]  install what is missing and clang 19, build the expression fuzz
#                   target (tests/fuzz: libFuzzer, ASan, UBSan, no JIT) into build-fuzz
#                   (FUZZ_DIR), fuzz for S seconds (default 60); new inputs and crashes stay
#                   in build-fuzz/fuzz/ (UBSAN_OPTIONS=suppressions=FILE skips known reports)
# Environment: BUILD_DIR (default build), HG_WERROR=ON to fail on warnings (CI sets it).
set -euo pipefail
cd "$(dirname "$0")"

PACKAGES=(build-essential cmake pkg-config llvm-19-dev libcmocka-dev libcjson-dev
          python3 python3-dev python3-cffi python3-numpy python3-pytest python3-setuptools
          python3-matplotlib python3-tqdm python3-numexpr python3-numba libopenblas-dev
          python3-dask python3-distributed valgrind)
FUZZ_PACKAGES=(clang-19 libclang-rt-19-dev libomp-19-dev)
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

# build [DIR [CMAKE_OPTION...]]: configures and builds DIR (default $BUILD_DIR).
build() {
    local dir=${1:-$BUILD_DIR}
    shift || true
    cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=Release -DHG_PYTHON="$PY" \
          -DHG_WERROR="${HG_WERROR:-OFF}" "$@" >/dev/null
    cmake --build "$dir" -j "$(nproc)"
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
        echo "== The same tests on a build without the JIT (HG_WITH_JIT=OFF: the interpreter)"
        build "$BUILD_DIR-interp" -DHG_WITH_JIT=OFF
        ctest --test-dir "$BUILD_DIR-interp" --output-on-failure -j 2
        ;;
    fuzz)
        seconds=${2:-60}
        [[ "$seconds" =~ ^[0-9]+$ ]] || { echo "usage: $0 fuzz [seconds]" >&2; exit 2; }
        PACKAGES+=("${FUZZ_PACKAGES[@]}")
        install_missing
        FUZZ_DIR=${FUZZ_DIR:-build-fuzz}
        cmake -S . -B "$FUZZ_DIR" -DCMAKE_C_COMPILER=clang-19 -DCMAKE_BUILD_TYPE=RelWithDebInfo \
              -DHG_WITH_JIT=OFF -DHG_BUILD_PYTHON=OFF -DHG_BUILD_TESTS=OFF -DHG_FUZZ=ON >/dev/null
        cmake --build "$FUZZ_DIR" -j "$(nproc)" --target fuzz_expr
        target="$FUZZ_DIR/tests/fuzz/fuzz_expr" dict="$FUZZ_DIR/tests/fuzz/expr.dict"
        out="$FUZZ_DIR/fuzz"
        mkdir -p "$out/corpus" "$out/artifacts"
        echo "== Fuzzing the expression language for ${seconds} s (tests/fuzz/fuzz_expr.c)"
        echo "   target      $target"
        echo "   dictionary  $dict (tests/fuzz/expr.dict + canon/prims.def)"
        echo "   seeds       tests/fuzz/corpus (read only)"
        echo "   new inputs  $out/corpus"
        echo "   crashes     $out/artifacts/"
        status=0
        UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}" \
            "$target" -dict="$dict" -max_len=4096 -timeout=30 \
            -max_total_time="$seconds" -print_final_stats=1 -artifact_prefix="$out/artifacts/" \
            "$out/corpus" tests/fuzz/corpus || status=$?
        echo "== fuzz_expr exited with $status; crashes in $out/artifacts/:"
        ls -1 "$out/artifacts"
        echo "   minimize: $target -minimize_crash=1 -runs=10000 -artifact_prefix=$out/ FILE"
        echo "   replay:   $target FILE  (gcc build: $BUILD_DIR/tests/fuzz/fuzz_expr_replay FILE)"
        exit "$status"
        ;;
    *)
        echo "usage: $0 main|test|bench|fuzz [seconds]" >&2
        exit 2
        ;;
esac
