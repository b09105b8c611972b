"""The module's surface: the seed's 50 names with the seed's parameter order, the stubs in
__init__.pyi matching the runtime, the import-time version check, the eight examples."""
import ast
import importlib.util
import inspect
import os
import pathlib
import re
import subprocess
import sys

import pytest

import hologram_ffi as hg

PYTHON_DIR = pathlib.Path(__file__).resolve().parents[1]

# The seed README's functions with its parameter names (`class` -> class_index).  It says
# "50" but its own lists name 58: buffers and tensors have 15 each, not 13.
SEED = {
    "get_version": "", "clear_all_registries": "", "new_executor": "",
    "executor_cleanup": "executor_handle",
    "executor_allocate_buffer": "executor_handle length",
    "executor_allocate_boundary_buffer": "executor_handle class_index width height",
    **{f"buffer_{p}": "buffer_handle" for p in (
        "length", "is_empty", "is_linear", "is_boundary", "pool", "element_size",
        "size_bytes", "class_index", "cleanup")},
    "buffer_copy_from_slice": "executor_handle buffer_handle data_json",
    "buffer_to_vec": "executor_handle buffer_handle",
    "buffer_fill": "executor_handle buffer_handle value length",
    "buffer_copy": "executor_handle src_handle dst_handle length",
    **{f"vector_{o}_f32": "executor_handle a_handle b_handle c_handle length"
       for o in ("add", "sub", "mul", "div", "min", "max")},
    **{f"vector_{o}_f32": "executor_handle a_handle c_handle length"
       for o in ("abs", "neg", "relu")},
    "vector_clip_f32": "executor_handle a_handle c_handle length min_val max_val",
    "scalar_add_f32": "executor_handle a_handle c_handle length scalar",
    "scalar_mul_f32": "executor_handle a_handle c_handle length scalar",
    **{f"reduce_{o}_f32": "executor_handle input_handle output_handle length"
       for o in ("sum", "min", "max")},
    **{f"{o}_f32": "executor_handle input_handle output_handle length"
       for o in ("sigmoid", "tanh", "gelu", "softmax")},
    **{f"{o}_f32": "executor_handle pred_handle target_handle output_handle length"
       for o in ("mse_loss", "cross_entropy_loss", "binary_cross_entropy_loss")},
    "gemm_f32": "executor_handle a_handle b_handle c_handle m n k",
    "matvec_f32": "executor_handle a_handle x_handle y_handle m n",
    "tensor_from_buffer": "buffer_handle shape_json",
    "tensor_from_buffer_with_strides": "buffer_handle shape_json strides_json",
    **{f"tensor_{p}": "tensor_handle" for p in (
        "shape", "strides", "offset", "ndim", "numel", "is_contiguous", "buffer", "transpose",
        "cleanup")},
    "tensor_contiguous": "executor_handle tensor_handle",
    "tensor_reshape": "executor_handle tensor_handle new_shape_json",
    "tensor_select": "tensor_handle dim index",
    "tensor_matmul": "executor_handle a_handle b_handle",
}
EXAMPLES = ["basic_operations.py", "simple_executor_example.py", "simple_tensor_example.py",
            "executor_management.py", "buffer_operations.py", "tensor_operations.py",
            "error_handling.py", "performance_benchmarks.py"]


def test_seed_functions():
    assert len(SEED) == 58
    for name, params in SEED.items():
        fn = getattr(hg, name)
        assert list(inspect.signature(fn).parameters) == params.split(), name
        assert name in hg.__all__


def _stub_signatures(tree):
    return {node.name: [a.arg for a in node.args.args + [node.args.vararg] * bool(node.args.vararg)
                        + node.args.kwonlyargs]
            for node in tree.body if isinstance(node, ast.FunctionDef)}


def test_stubs_match_runtime():
    tree = ast.parse((PYTHON_DIR / "hologram_ffi" / "__init__.pyi").read_text())
    stubs = _stub_signatures(tree)
    public = {n for n in hg.__all__ if callable(getattr(hg, n)) and
              not isinstance(getattr(hg, n), type)}
    assert set(stubs) == public
    for name, params in stubs.items():
        assert list(inspect.signature(getattr(hg, name)).parameters) == params, name
    executor_stub = next(n for n in tree.body if isinstance(n, ast.ClassDef)
                         and n.name == "Executor")
    methods = _stub_signatures(executor_stub)
    runtime = {n for n in dir(hg.Executor) if not n.startswith("_")} - {"handle"}
    assert set(methods) - {"__init__", "__enter__", "__exit__"} == runtime
    for name in runtime:
        assert list(inspect.signature(getattr(hg.Executor, name)).parameters) == \
            methods[name], name


def test_typed_package_files():
    assert (PYTHON_DIR / "hologram_ffi" / "py.typed").exists()


def test_version_matches_header():
    header = (PYTHON_DIR.parent / "include" / "hologram" / "hologram.h").read_text()
    assert f'#define HOLOGRAM_VERSION_STRING "{hg.get_version()}"' in header
    assert hg._HEADER_VERSION == hg.__version__ == hg.get_version()


def test_version_mismatch_is_an_import_error():
    with pytest.raises(ImportError, match=r"9\.9\.9.*0\.1\.0"):
        hg._check_versions("9.9.9", "0.1.0")
    hg._check_versions(hg.__version__, hg.get_version())


def test_cache_stats_and_reset():
    stats = hg.cache_stats()
    for key in ("hits", "misses", "compiles", "disk_loads", "evictions", "entries",
                "capacity", "fallbacks"):
        assert isinstance(stats[key], int) and stats[key] >= 0
    for key in ("compile_seconds", "disk_load_seconds"):
        assert isinstance(stats[key], float) and stats[key] >= 0.0
    assert stats["disk_error"] == ""  # the test cache directory is ours (tests/test_disk.c)
    assert hg.cache_reset() is None
    assert hg.cache_stats()["entries"] == 0


@pytest.mark.parametrize("example", EXAMPLES)
def test_example_runs(example):
    path = PYTHON_DIR / "examples" / example
    out = subprocess.run([sys.executable, str(path)], capture_output=True, text=True,
                         timeout=600, env=dict(os.environ))
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip()


README_SNIPPETS = re.findall(r"```python\n(.*?)```",
                             (PYTHON_DIR.parent / "README.md").read_text(), re.S)


@pytest.mark.parametrize("index", range(len(README_SNIPPETS)))
def test_readme_python_snippets_run(index):
    if "hologram_ffi.dask" in README_SNIPPETS[index]:
        for module in ("dask", "distributed"):
            if importlib.util.find_spec(module) is None:
                pytest.skip(f"{module} is not installed (dev.sh installs python3-dask and "
                            "python3-distributed)")
    out = subprocess.run([sys.executable, "-c", README_SNIPPETS[index]], capture_output=True,
                         text=True, timeout=600, env=dict(os.environ))
    assert out.returncode == 0, out.stderr
