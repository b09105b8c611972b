"""Builds the hologram_ffi wheel, C library included (offline; cffi, setuptools and wheel
from Debian):

    pip wheel --no-build-isolation python/       # or: pip install --no-build-isolation python/

build_ext first gets libhologram.so: by default it configures and builds the C library
with CMake from this source tree (../CMakeLists.txt; target `hologram`, portable code,
HG_NATIVE=OFF, into build/cmake-hologram next to this file, incremental), or takes the
one in $HOLOGRAM_LIB_DIR when that is set (a library you built).  It copies the library
into the package as hologram_ffi/libhologram.so.0 and compiles the cffi extension against
../include/hologram/hologram.h ($HOLOGRAM_INCLUDE_DIR overrides) with rpath $ORIGIN, so the
installed package needs neither the source nor the build tree.  Both steps run on every
build (the library copy and the extension are never taken from an earlier build/), so a
changed $HOLOGRAM_LIB_DIR always takes effect.
"""
import os
import re
import shutil
import subprocess
import sys

from setuptools import setup
from setuptools.command.build_ext import build_ext

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE_DIR = os.path.dirname(HERE)
sys.path.insert(0, HERE)
from build_ffi import make_builder  # noqa: E402

INCLUDE_DIR = os.path.abspath(
    os.environ.get("HOLOGRAM_INCLUDE_DIR", os.path.join(SOURCE_DIR, "include")))
USER_LIB_DIR = os.environ.get("HOLOGRAM_LIB_DIR")
CMAKE_BUILD_DIR = os.path.join(HERE, "build", "cmake-hologram")
LIB_DIR = os.path.abspath(USER_LIB_DIR) if USER_LIB_DIR else CMAKE_BUILD_DIR
SONAME = "libhologram.so.0"

with open(os.path.join(INCLUDE_DIR, "hologram", "hologram.h")) as header:
    VERSION = re.search(r'#define HOLOGRAM_VERSION_STRING "([^"]+)"', header.read()).group(1)


class BuildHologram(build_ext):
    """build_ext that provides libhologram.so first (CMake, or $HOLOGRAM_LIB_DIR), bundles
    it into the package and always relinks the extension against it."""

    def run(self):
        if not USER_LIB_DIR:
            self._cmake()
        library = os.path.join(LIB_DIR, SONAME)
        if not os.path.exists(library):
            sys.exit(f"hologram_ffi: no {SONAME} in {LIB_DIR}"
                     + (" ($HOLOGRAM_LIB_DIR)" if USER_LIB_DIR else ""))
        self.force = True           # never reuse an extension linked against another library
        super().run()
        target = os.path.join(HERE if self.inplace else self.build_lib, "hologram_ffi", SONAME)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        shutil.copyfile(os.path.realpath(library), target)

    def _cmake(self):
        """Configures (once) and builds the shared library into CMAKE_BUILD_DIR."""
        cmake = shutil.which("cmake")
        if cmake is None:
            sys.exit("hologram_ffi: cmake is needed to build libhologram.so (Debian: apt-get "
                     "install cmake), or set HOLOGRAM_LIB_DIR to a directory holding it")
        configure = [cmake, "-S", SOURCE_DIR, "-B", CMAKE_BUILD_DIR,
                     "-DCMAKE_BUILD_TYPE=Release", "-DHG_NATIVE=OFF",
                     "-DHG_BUILD_TESTS=OFF", "-DHG_BUILD_PYTHON=OFF"]
        subprocess.run(configure, check=True)
        subprocess.run([cmake, "--build", CMAKE_BUILD_DIR, "--target", "hologram",
                        "-j", str(min(os.cpu_count() or 1, 2))], check=True)


# The rest of the metadata (name, license, dependencies) is in pyproject.toml.
setup(
    version=VERSION,
    packages=["hologram_ffi"],
    package_data={"hologram_ffi": ["*.pyi", "py.typed"]},
    ext_modules=[make_builder(INCLUDE_DIR, LIB_DIR, os.environ.get("CC", "cc"),
                              rpath="$ORIGIN", library=":" + SONAME)
                 .distutils_extension(tmpdir=os.path.join("build", "cffi"))],
    cmdclass={"build_ext": BuildHologram},
    zip_safe=False,
)
