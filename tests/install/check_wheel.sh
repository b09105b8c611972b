#!/usr/bin/env bash
# check_wheel.sh SOURCE_DIR PYTHON LIBRARY — the wheel is self-contained (ctest
# python_wheel; tests/install/CMakeLists.txt):
#   1. the source tree (git's files, as a fresh clone has them) copied to a temporary
#      directory, and `pip wheel --no-build-isolation python/` run there with no HOLOGRAM_*
#      variable: setup.py builds libhologram.so with CMake by itself; the wheel holds
#      hologram_ffi/libhologram.so.0 and the extension, whose RUNPATH is $ORIGIN
#   2. HOLOGRAM_LIB_DIR takes effect over the build/ the first wheel left: a second wheel
#      built from a directory holding a marked copy of LIBRARY bundles exactly that file
#   3. the copied source and build trees deleted, the first wheel installed into a fresh
#      venv (--system-site-packages: cffi and NumPy from Debian), and used from another
#      directory: import, __version__, a JIT op, evaluate over NumPy arrays, the library
#      loaded from the venv
set -euo pipefail
src=$(cd "$1" && pwd) py=$2 library=$3
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
run() { echo "+ $*"; "$@"; }
for v in $(env | grep -o '^HOLOGRAM_[A-Z_]*' || true); do unset "$v"; done

mkdir "$tmp/src"
git -C "$src" ls-files -z --cached --others --exclude-standard |
    (cd "$src" && xargs -0 tar cf - --no-recursion) | tar xf - -C "$tmp/src"
cd "$tmp/src"
run "$py" -m pip wheel -q --no-build-isolation --no-deps --no-index -w "$tmp/dist" python/ \
    > "$tmp/wheel.log" 2>&1 || { tail -40 "$tmp/wheel.log"; exit 1; }
wheel=$(ls "$tmp"/dist/hologram_ffi-*.whl)
echo "wheel: $(basename "$wheel"), $(stat -c %s "$wheel") bytes"
"$py" - "$wheel" <<'PY'
import sys, zipfile
names = zipfile.ZipFile(sys.argv[1]).namelist()
need = ["hologram_ffi/libhologram.so.0", "hologram_ffi/__init__.py", "hologram_ffi/py.typed"]
missing = [n for n in need if n not in names]
ext = [n for n in names if n.startswith("hologram_ffi/_hologram_ffi") and n.endswith(".so")]
license = [n for n in names if n.endswith("METADATA")]
assert not missing and len(ext) == 1, (missing, ext, names)
meta = zipfile.ZipFile(sys.argv[1]).read(license[0]).decode()
assert "License: MIT" in meta, meta
PY
mkdir "$tmp/unpacked"
(cd "$tmp/unpacked" && "$py" -m zipfile -e "$wheel" .)
runpath=$(readelf -d "$tmp"/unpacked/hologram_ffi/_hologram_ffi*.so | grep -o 'R.*PATH.*')
echo "extension: $runpath"
[[ "$runpath" == *'[$ORIGIN]'* ]] || { echo "RUNPATH is not \$ORIGIN"; exit 1; }

echo "== HOLOGRAM_LIB_DIR over the existing python/build/"
mkdir "$tmp/otherlib"
cp "$library" "$tmp/otherlib/libhologram.so.0"
printf 'check_wheel marker' >> "$tmp/otherlib/libhologram.so.0"  # after the ELF data
HOLOGRAM_LIB_DIR="$tmp/otherlib" run "$py" -m pip wheel -q --no-build-isolation --no-deps \
    --no-index -w "$tmp/dist2" python/ > "$tmp/wheel2.log" 2>&1 || { tail -40 "$tmp/wheel2.log"; exit 1; }
mkdir "$tmp/unpacked2"
(cd "$tmp/unpacked2" && "$py" -m zipfile -e "$tmp"/dist2/hologram_ffi-*.whl .)
run cmp "$tmp/otherlib/libhologram.so.0" "$tmp/unpacked2/hologram_ffi/libhologram.so.0"

echo "== installed in a fresh venv, source and build trees deleted"
cd "$tmp"
rm -rf "$tmp/src" "$tmp/unpacked" "$tmp/unpacked2" "$tmp/otherlib"
run "$py" -m venv --system-site-packages "$tmp/venv"
run "$tmp/venv/bin/python" -m pip install -q --no-deps --no-index "$wheel"
mkdir "$tmp/elsewhere" && cd "$tmp/elsewhere"
HOLOGRAM_CACHE_DIR="$tmp/kernel-cache" run "$tmp/venv/bin/python" - "$tmp/venv" <<'PY'
import json, os, sys
import numpy as np
import hologram_ffi as hg
venv = os.path.realpath(sys.argv[1])
assert os.path.realpath(hg.__file__).startswith(venv), hg.__file__
maps = open("/proc/self/maps").read()
lib = [line.split()[-1] for line in maps.splitlines() if "libhologram" in line]
assert lib and all(os.path.realpath(p).startswith(venv) for p in lib), lib
assert hg.__version__ == hg.get_version(), hg.__version__
e = hg.new_executor()
a, c = hg.executor_allocate_buffer(e, 4), hg.executor_allocate_buffer(e, 4)
hg.buffer_copy_from_slice(e, a, json.dumps([1.0, -2.0, 3.0, 4.0]))
hg.vector_relu_f32(e, a, c, 4)
assert json.loads(hg.buffer_to_vec(e, c)) == [1.0, 0.0, 3.0, 4.0]
hg.executor_cleanup(e)
assert hg.get_backend() == "jit" and hg.cache_stats()["compiles"] >= 1, hg.cache_stats()
x = np.arange(1000, dtype=np.float32)
assert np.array_equal(hg.evaluate("x * 2 + 1"), x * 2 + 1)
print("venv ok:", hg.__version__, lib[0])
PY
echo "python_wheel: all passed"
