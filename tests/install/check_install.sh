#!/usr/bin/env bash
# check_install.sh BUILD_DIR SOURCE_DIR CC LIBDIR CHECK_ISA — the installed package works as
# the README says (ctest install_consumer; tests/CMakeLists.txt):
#   1. cmake --install BUILD_DIR into a temporary prefix: libraries, header, CMake package
#      and hologram.pc where they belong; with CHECK_ISA=1, no AVX-512/AVX2 instruction
#      outside dispatch-guarded clones in the installed libhologram.so (check_isa.py)
#   2. tests/install/consumer configured, built and run against that prefix through
#      find_package(hologram): hologram::hologram and hologram::hologram_static
#   3. the same program built by hand through pkg-config: `cc prog.c $(pkg-config --cflags
#      --libs hologram)`, and statically from libhologram.a with `pkg-config --static
#      --libs` (Libs.private), which must then not need libhologram.so at run time
#   4. the consumer project again with hologram's source tree added by add_subdirectory
#      (only the consumer's targets built), so the build-tree targets carry the include dir
# Every step prints what it runs; any failure exits nonzero.
set -euo pipefail
build=$(cd "$1" && pwd) src=$(cd "$2" && pwd) cc=$3 libdir=$4 check_isa=$5
here="$src/tests/install"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
prefix="$tmp/prefix"
run() { echo "+ $*"; "$@"; }

run cmake --install "$build" --prefix "$prefix" > "$tmp/install.log"
for f in "$libdir/libhologram.so" "$libdir/libhologram.a" include/hologram/hologram.h \
         "$libdir/cmake/hologram/hologramConfig.cmake" \
         "$libdir/cmake/hologram/hologramConfigVersion.cmake" \
         "$libdir/pkgconfig/hologram.pc"; do
    [ -e "$prefix/$f" ] || { echo "not installed: $f"; cat "$tmp/install.log"; exit 1; }
done
if [ "$check_isa" = 1 ]; then
    run /usr/bin/python3 "$here/check_isa.py" "$prefix/$libdir/libhologram.so"
fi

echo "== find_package(hologram)"
run cmake -S "$here/consumer" -B "$tmp/fp" -DCMAKE_C_COMPILER="$cc" \
    -DCMAKE_PREFIX_PATH="$prefix" > "$tmp/fp.log" || { cat "$tmp/fp.log"; exit 1; }
run cmake --build "$tmp/fp" > "$tmp/fp-build.log" || { cat "$tmp/fp-build.log"; exit 1; }
run "$tmp/fp/consumer_shared"
run "$tmp/fp/consumer_static"

echo "== pkg-config hologram"
export PKG_CONFIG_PATH="$prefix/$libdir/pkgconfig"
run pkg-config --validate hologram
grep -qx 'License: MIT' "$PKG_CONFIG_PATH/hologram.pc" || { echo "hologram.pc: no License"; exit 1; }
run "$cc" "$here/consumer/consumer.c" -o "$tmp/pc_shared" $(pkg-config --cflags --libs hologram)
LD_LIBRARY_PATH="$prefix/$libdir" run "$tmp/pc_shared"
static_libs=$(pkg-config --static --libs hologram)
run "$cc" "$here/consumer/consumer.c" -o "$tmp/pc_static" $(pkg-config --cflags hologram) \
    ${static_libs/-lhologram/-l:libhologram.a}
if readelf -d "$tmp/pc_static" | grep -q 'NEEDED.*libhologram'; then
    echo "pc_static still needs libhologram.so"; exit 1
fi
run "$tmp/pc_static"

echo "== add_subdirectory(hologram)"
run cmake -S "$here/consumer" -B "$tmp/sub" -DCMAKE_C_COMPILER="$cc" \
    -DHOLOGRAM_SOURCE_DIR="$src" > "$tmp/sub.log" || { cat "$tmp/sub.log"; exit 1; }
run cmake --build "$tmp/sub" -j 2 --target consumer_shared consumer_static \
    > "$tmp/sub-build.log" || { cat "$tmp/sub-build.log"; exit 1; }
run "$tmp/sub/consumer_shared"
run "$tmp/sub/consumer_static"
echo "install_consumer: all passed"
