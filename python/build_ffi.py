"""Builds the hologram_ffi._hologram_ffi extension (cffi, out-of-line API mode).

The cdef is generated from include/hologram/hologram.h on every build, never kept by hand:

    hologram.h --cc -E -dD--> declarations and #defines, with line markers
               --keep what comes from hologram.h itself--> typedefs, enum, struct, prototypes
               + integer #defines as `#define NAME ...` (values read by the C compiler)
               + two constants compiled into the extension: the header's version string and
                 its prototypes, normalized (cffi's types drop parameter names and `const`;
                 the Python wrappers are generated from the prototypes at import time).

Used by python/CMakeLists.txt (as a script) and by python/setup.py (make_builder()).
"""
import argparse
import os
import re
import subprocess
import sys

import cffi
import pycparser
from pycparser import c_ast, c_generator

_LINE_MARKER = re.compile(r'^# (\d+) "(.*)"')
_INT_DEFINE = re.compile(r"^#define\s+([A-Za-z_]\w*)\s+\(?\d+[uUlL]*\)?\s*$")
# Widths cffi knows natively; pycparser only needs them to be type names.
_PARSE_PRELUDE = "".join(
    f"typedef int {t};\n" for t in ("size_t", "uint8_t", "uint32_t", "uint64_t", "int64_t")
)


def header_declarations(header, cc="cc"):
    """Preprocesses `header` and returns (declarations, integer macro names) that come from
    the header itself (not from the system headers it includes)."""
    out = subprocess.run(
        [cc, "-E", "-dD", "-std=c11", header],
        check=True, capture_output=True, text=True,
    ).stdout
    target = os.path.realpath(header)
    current = None
    decls, macros = [], []
    for line in out.splitlines():
        m = _LINE_MARKER.match(line)
        if m:
            current = m.group(2)
            continue
        if current is None or not os.path.exists(current) or \
                os.path.realpath(current) != target:
            continue
        if line.startswith("#"):
            d = _INT_DEFINE.match(line)
            if d:
                macros.append(d.group(1))
            continue
        if line.strip():
            decls.append(line)
    return "\n".join(decls) + "\n", macros


def prototypes(decls):
    """Returns every function prototype in `decls`, one per line, normalized by pycparser
    ("hg_status hg_buffer_pool(uint64_t buffer, const char **out_pool)").  Unlike cffi's
    types they keep parameter names and `const`, which the Python wrappers need."""
    ast = pycparser.CParser().parse(_PARSE_PRELUDE + decls, "hologram.h")
    gen = c_generator.CGenerator()
    return [gen.visit(ext) for ext in ast.ext
            if isinstance(ext, c_ast.Decl) and isinstance(ext.type, c_ast.FuncDecl)]


def make_builder(include_dir, lib_dir, cc="cc", rpath=None, library="hologram"):
    """Returns a cffi FFI builder for module hologram_ffi._hologram_ffi against
    `include_dir`/hologram/hologram.h, linked with -l`library` from `lib_dir` (rpath
    `rpath`, default `lib_dir`; library ":libhologram.so.0" names the file itself)."""
    header = os.path.join(include_dir, "hologram", "hologram.h")
    decls, macros = header_declarations(header, cc)
    protos = "\\n".join(prototypes(decls))
    cdef = decls + "".join(f"#define {m} ...\n" for m in macros) + (
        "static const char *const hg_py_header_version;\n"
        "static const char *const hg_py_prototypes;\n"
    )
    source = (
        "#include <hologram/hologram.h>\n"
        "static const char *const hg_py_header_version = HOLOGRAM_VERSION_STRING;\n"
        f'static const char *const hg_py_prototypes = "{protos}";\n'
    )
    builder = cffi.FFI()
    builder.cdef(cdef)
    builder.set_source(
        "hologram_ffi._hologram_ffi", source,
        include_dirs=[include_dir],
        library_dirs=[lib_dir],
        libraries=[library],
        extra_link_args=[f"-Wl,-rpath,{rpath or lib_dir}"],
    )
    return builder


def main(argv=None):
    """Command line used by CMake: compiles the extension into --out-dir."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--include-dir", required=True)
    ap.add_argument("--lib-dir", required=True)
    ap.add_argument("--out-dir", required=True, help="directory that gets hologram_ffi/")
    ap.add_argument("--tmp-dir", required=True, help="scratch directory for the C source")
    ap.add_argument("--cc", default=os.environ.get("CC", "cc"))
    args = ap.parse_args(argv)
    builder = make_builder(args.include_dir, args.lib_dir, args.cc)
    built = builder.compile(tmpdir=args.tmp_dir, verbose=False)
    target = os.path.join(args.out_dir, "hologram_ffi", os.path.basename(built))
    os.replace(built, target)
    return 0


if __name__ == "__main__":
    sys.exit(main())
