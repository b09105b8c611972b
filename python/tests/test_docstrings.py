"""Docstrings of the generated flat functions: the Python signature first, and for every op
of canon/ops.def its math with the Python parameter names (none of the C ones)."""
import inspect
import json
import re

import hologram_ffi as hg


def _flat():
    return {name: fn for name, fn in vars(hg).items()
            if inspect.isfunction(fn) and fn.__module__ == "hologram_ffi"
            and fn.__doc__ and "Calls `hg_status hg_" in fn.__doc__}


def test_first_line_is_the_python_signature():
    flat = _flat()
    assert len(flat) > 40
    for name, fn in flat.items():
        params = ", ".join(inspect.signature(fn).parameters)
        assert re.fullmatch(rf"{name}\({re.escape(params)}\) -> (None|int|float|str)",
                            fn.__doc__.splitlines()[0]), (name, fn.__doc__)


def test_ops_carry_their_math_in_python_names():
    ops = 0
    for name, fn in _flat().items():
        try:
            math_text = json.loads(hg.op_describe(name))["math"]
        except hg.InvalidArgumentError:
            assert "(canon/ops.def)" not in fn.__doc__, name
            continue
        ops += 1
        semantics = fn.__doc__.splitlines()[2]
        assert semantics.endswith("(canon/ops.def)."), (name, semantics)
        params = set(inspect.signature(fn).parameters)
        indexed = set(re.findall(r"\b(\w+)\[", semantics))
        assert indexed <= params, (name, semantics, indexed - params)
        # the words of the math survive: only names were replaced
        assert set(re.findall(r"\b(?:exp|log|tanh|sqrt|maximum|minimum|mean|sum)\b",
                              math_text)) <= set(re.findall(r"\w+", semantics)), name
    assert ops >= 25


def test_examples_of_renamed_math():
    assert "c_handle[i] = a_handle[i] + b_handle[i]" in hg.vector_add_f32.__doc__
    assert "minimum(maximum(a_handle[i], min_val), max_val)" in hg.vector_clip_f32.__doc__
    assert "c_handle[m x n] = a_handle[m x k] * b_handle[k x n]" in hg.gemm_f32.__doc__
    assert "buffer_handle[i] = value" in hg.buffer_fill.__doc__
    assert "1e-6*log2(length)" in hg.reduce_sum_f32.__doc__


def test_version():
    assert re.fullmatch(r"\d+\.\d+\.\d+", hg.__version__)
    assert hg.__version__ == hg.get_version()
