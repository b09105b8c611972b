"""pip install --no-build-isolation python/   (offline; cffi and setuptools from Debian)

The C library must be built first (CMake target `hologram`).  The extension is compiled
against ../include/hologram/hologram.h and linked with an rpath to the directory holding
libhologram.so: $HOLOGRAM_LIB_DIR, default ../build (what ./dev.sh builds).  Override the
header location with $HOLOGRAM_INCLUDE_DIR.
"""
import os
import re
import sys

from setuptools import setup

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from build_ffi import make_builder  # noqa: E402

INCLUDE_DIR = os.path.abspath(
    os.environ.get("HOLOGRAM_INCLUDE_DIR", os.path.join(HERE, "..", "include")))
LIB_DIR = os.path.abspath(os.environ.get("HOLOGRAM_LIB_DIR", os.path.join(HERE, "..", "build")))
if not os.path.exists(os.path.join(LIB_DIR, "libhologram.so")):
    sys.exit(f"hologram_ffi: no libhologram.so in {LIB_DIR}; build the C library with CMake "
             "first or set HOLOGRAM_LIB_DIR")

with open(os.path.join(INCLUDE_DIR, "hologram", "hologram.h")) as header:
    VERSION = re.search(r'#define HOLOGRAM_VERSION_STRING "([^"]+)"', header.read()).group(1)

setup(
    name="hologram_ffi",
    version=VERSION,
    description="Python bindings of hologram, a JIT-compiling float32 array runtime",
    packages=["hologram_ffi"],
    package_data={"hologram_ffi": ["*.pyi", "py.typed"]},
    ext_modules=[make_builder(INCLUDE_DIR, LIB_DIR, os.environ.get("CC", "cc"))
                 .distutils_extension(tmpdir=os.path.join("build", "cffi"))],
    python_requires=">=3.9",
    install_requires=["cffi>=1.15"],
    extras_require={"numpy": ["numpy"], "dask": ["numpy", "dask[array]", "distributed"],
                    "dev": ["numpy", "pytest"]},
    zip_safe=False,
)
