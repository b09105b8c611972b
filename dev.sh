#!/usr/bin/env bash
# dev.sh — set up, build and run hologram on Debian 12.
#   ./dev.sh main   install what is missing, build, run the main job: the Quick Start in C and
#                   in Python, a JIT vs interpreter vs NumPy comparison, the quick benchmark
#   ./dev.sh test   install what is missing, build, run every test (CTest: C and Python),
#                   then build and test once more without the JIT ($BUILD_DIR-interp)
#   ./dev.sh bench  install what is missing, build, run the full benchmark (~3 minutes; --quick: under a minute)
#   ./dev.sh sanitize K  install what is missing and clang 19, build with HG_SANITIZE=K
#                   (address: ASan + UBSan, into $BUILD_DIR-asan; thread: TSan, into
#                   $BUILD_DIR-tsan) and run every test there, Python included
#   ./dev.sh fuzz [S [T...]]  install what is missing and clang 19, build the fuzz targets
#                   T (default all: expr json tensor api disk; tests/fuzz: libFuzzer, ASan,
#                   UBSan, no JIT) into build-fuzz (FUZZ_DIR), fuzz each for S seconds
#                   (default 60) on its seed corpus; new inputs, crashes and the log stay in
#                   build-fuzz/fuzz/T/ (UBSAN_OPTIONS=suppressions=FILE skips known reports)
# Environment: BUILD_DIR (default build), HG_WERROR=ON to fail on warnings (CI sets it).
set -euo pipefail
cd "$(dirname "$0")"

PACKAGES=(build-essential cmake pkg-config llvm-19-dev libcmocka-dev libcjson-dev
          python3 python3-dev python3-cffi python3-numpy python3-pytest python3-setuptools
          python3-pip python3-venv python3-wheel
          python3-matplotlib python3-tqdm python3-numexpr python3-numba libopenblas-dev
          python3-dask python3-distributed valgrind)
FUZZ_PACKAGES=(clang-19 libclang-rt-19-dev)
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
    sanitize)
        kind=${2:-address}
        [[ "$kind" =~ ^(address|thread)$ ]] || { echo "usage: $0 sanitize address|thread" >&2; exit 2; }
        PACKAGES+=("${FUZZ_PACKAGES[@]}")
        install_missing
        dir="$BUILD_DIR-asan"
        [ "$kind" = thread ] && dir="$BUILD_DIR-tsan"
        build "$dir" -DCMAKE_C_COMPILER=clang-19 -DCMAKE_BUILD_TYPE=RelWithDebInfo \
              -DHG_SANITIZE="$kind"
        echo "== Every test under HG_SANITIZE=$kind (clang 19) in $dir"
        ctest --test-dir "$dir" --output-on-failure -j 2
        ;;
    fuzz)
        seconds=${2:-60}
        [[ "$seconds" =~ ^[0-9]+$ ]] || { echo "usage: $0 fuzz [seconds [target...]]" >&2; exit 2; }
        shift $(( $# < 2 ? $# : 2 ))
        targets=("$@")
        [ ${#targets[@]} -gt 0 ] || targets=(expr json tensor api disk)
        PACKAGES+=("${FUZZ_PACKAGES[@]}")
        install_missing
        FUZZ_DIR=${FUZZ_DIR:-build-fuzz}
        cmake -S . -B "$FUZZ_DIR" -DCMAKE_C_COMPILER=clang-19 -DCMAKE_BUILD_TYPE=RelWithDebInfo \
              -DHG_WITH_JIT=OFF -DHG_BUILD_PYTHON=OFF -DHG_BUILD_TESTS=OFF -DHG_FUZZ=ON >/dev/null
        cmake --build "$FUZZ_DIR" -j "$(nproc)" --target "${targets[@]/#/fuzz_}"
        status=0
        for t in "${targets[@]}"; do
            target="$FUZZ_DIR/tests/fuzz/fuzz_$t" out="$FUZZ_DIR/fuzz/$t"
            mkdir -p "$out/corpus" "$out/artifacts"
            dict=()
            [ "$t" = expr ] && dict=(-dict="$FUZZ_DIR/tests/fuzz/expr.dict")
            echo "== Fuzzing $t for ${seconds} s (tests/fuzz/fuzz_$t.c)"
            echo "   seeds $(ls tests/fuzz/corpus/$t | wc -l) in tests/fuzz/corpus/$t (read only);" \
                 "new inputs in $out/corpus, crashes in $out/artifacts/"
            rc=0
            UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}" \
                "$target" "${dict[@]}" -max_len=4096 -timeout=30 -max_total_time="$seconds" \
                -print_final_stats=1 -artifact_prefix="$out/artifacts/" \
                "$out/corpus" "tests/fuzz/corpus/$t" > "$out/log" 2>&1 || rc=$?
            grep -E "^stat::number_of_executed_units|^Done [0-9]+ runs|DONE" "$out/log" || true
            echo "   corpus now $(ls "$out/corpus" | wc -l) new inputs; exit status $rc"
            if [ "$rc" -ne 0 ]; then
                status=$rc
                tail -40 "$out/log"
                ls -1 "$out/artifacts"
                echo "   replay: $target FILE  (gcc build: $BUILD_DIR/tests/fuzz/fuzz_${t}_replay FILE)"
            fi
        done
        exit "$status"
        ;;
    *)
        echo "usage: $0 main|test|bench|sanitize address|thread|fuzz [seconds [target...]]" >&2
        exit 2
        ;;
esac
