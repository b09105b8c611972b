"""Expressions through evaluate() and the flat expr_* functions, under both backends.

The vocabulary is canon/prims.def's: every kind the language can write must have a NumPy
reference below (test_every_primitive_has_a_reference), so a new primitive is tested by
the random trees as soon as it has one.  Tolerances (hologram.h, API.md):
  exact kinds (+ - * / minimum maximum abs neg comparisons where clip relu sqrt **2 and the
  sugar over them): bit-equal to NumPy float32 evaluating the same tree (NaNs as NaNs;
  minimum/maximum with IEEE 754-2019's -0 < +0, written out below);
  exp/log/tanh/sigmoid/gelu: |y - y64| <= 2 ulp*|y64| + 1e-7, pow within 1 ulp, against
  float64 applied to the (exact) float32 argument;
  sum/mean: |r - r64| <= 1e-6*max(log2 n, 1)*sum|terms| (/n for mean); min/max exact.
"""
import concurrent.futures
import json
import math
import pathlib
import re

import numpy as np
import pytest

import hologram_ffi as hg
from conftest import F32_EPS, download, exp_family_close, sum_bound, upload

PRIMS_DEF = pathlib.Path(__file__).resolve().parents[2] / "canon" / "prims.def"
_ROW = re.compile(r'^CANON_PRIM\((\w+),\s*(\d+),\s*(\w+),\s*(\d),\s*(\w+),\s*(\w+),\s*(\w+),'
                  r'\s*"([^"]*)",\s*([-+.\deE]+),\s*([-+.\deE]+)', re.M)


def read_prims():
    """{NAME: (arity, syntax, spelling, test_lo, test_hi)} of prims.def's writable kinds."""
    rows = {}
    for name, _code, _role, arity, _flags, _cost, syntax, spelling, lo, hi in \
            _ROW.findall(PRIMS_DEF.read_text()):
        if syntax != "NONE":
            rows[name] = (int(arity), syntax, spelling, float(lo), float(hi))
    return rows


PRIMS = read_prims()
F32 = np.float32


def f32(x):
    return np.asarray(x, dtype=F32)


def _ieee_minmax(x, y, is_min):
    """IEEE 754-2019 minimum/maximum in NumPy float32: NaN if either is NaN, -0 < +0."""
    x, y = np.broadcast_arrays(f32(x), f32(y))
    m = np.minimum(x, y) if is_min else np.maximum(x, y)
    bits = (x.view(np.uint32) | y.view(np.uint32)) if is_min else \
        (x.view(np.uint32) & y.view(np.uint32))
    return np.where((x == y), bits.view(F32), m).astype(F32)


def flag(c):
    return np.asarray(c).astype(F32)


# Exact kinds: the NumPy float32 evaluation of the same node.
EXACT = {
    "NEG": lambda x: np.negative(x), "ABS": np.abs, "SQRT": np.sqrt,
    "ADD": lambda x, y: x + y, "SUB": lambda x, y: x - y, "MUL": lambda x, y: x * y,
    "DIV": lambda x, y: x / y,
    "MIN": lambda x, y: _ieee_minmax(x, y, True), "MAX": lambda x, y: _ieee_minmax(x, y, False),
    "LT": lambda x, y: flag(x < y), "LE": lambda x, y: flag(x <= y),
    "GT": lambda x, y: flag(x > y), "GE": lambda x, y: flag(x >= y),
    "EQ": lambda x, y: flag(x == y), "NE": lambda x, y: flag(x != y),
    "AND": lambda x, y: flag((x != 0) & (y != 0)), "OR": lambda x, y: flag((x != 0) | (y != 0)),
    "NOT": lambda x: flag(x == 0),
    "WHERE": lambda c, a, b: np.where(c != 0, a, b).astype(F32),
    "RELU": lambda x: _ieee_minmax(x, F32(0), False),
    "CLIP": lambda x, lo, hi: _ieee_minmax(_ieee_minmax(x, lo, False), hi, True),
}
# Approximate kinds: the float64 reference.
APPROX = {
    "EXP": np.exp, "LOG": np.log, "TANH": np.tanh, "POW": np.power,
    "SIGMOID": lambda x: 1.0 / (1.0 + np.exp(-x)),
    "GELU": lambda x: np.where(np.isneginf(x), -0.0, 0.5 * x * (
        1.0 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 3)))),
}
SPECIALS = np.array([np.nan, -np.nan, 0.0, -0.0, np.inf, -np.inf, 1e-40, -1e-40, 1.0, -1.0,
                     0.5, 2.0, 3.4e38, -3.4e38], dtype=F32)
SIZES = (0, 1, 15, 16, 17, 257, 1000, 100_003)


def same(got, want):
    """Asserts float32 arrays are bit-equal, any NaN matching any NaN."""
    got, want = f32(got), np.broadcast_to(f32(want), np.shape(got))
    nan = np.isnan(got) & np.isnan(want)
    bad = np.flatnonzero(~nan & (got.view(np.uint32) != want.view(np.uint32)))
    assert bad.size == 0, (f"{bad.size} elements differ, first at {bad[0]}: got "
                           f"{got.flat[bad[0]]!r}, want {want.flat[bad[0]]!r}")


def data(rng, n, lo=-10.0, hi=10.0, spice=True):
    """n float32 in [lo, hi), every 7th a special value when `spice`."""
    x = rng.uniform(lo, hi, n).astype(F32)
    if spice and n:
        x[3::7] = rng.choice(SPECIALS, size=x[3::7].size)
    return x


# ---- random trees of exact kinds ----------------------------------------------------------

def _text(name, args):
    """The text of kind `name` applied to operand texts."""
    arity, syntax, spelling, _, _ = PRIMS[name]
    if syntax == "CALL":
        return f"{spelling}({', '.join(args)})"
    if syntax == "PREFIX":
        return f"({spelling}{args[0]})"
    if syntax == "POW":
        return f"({args[0]} ** 2)"   # only x**2 is exact
    return f"({args[0]} {spelling} {args[1]})"


def tree(rng, depth, arrays, scalars):
    """(text, reference function of the environment) of a random tree of exact kinds."""
    if depth == 0 or rng.random() < 0.25:
        pick = rng.random()
        if pick < 0.6:
            name = arrays[rng.integers(len(arrays))]
        elif pick < 0.8 and scalars:
            name = scalars[rng.integers(len(scalars))]
        else:
            lit = float(rng.choice([0.0, 1.0, 2.5, 0.1, 3.0, 1e-3, 7.25e2]))
            return repr(lit), lambda env, lit=lit: F32(lit)
        return name, lambda env, name=name: env[name]
    kinds = sorted(set(EXACT) & set(PRIMS)) + ["POW"]
    name = kinds[rng.integers(len(kinds))]
    arity = PRIMS[name][0]
    subs = [tree(rng, depth - 1, arrays, scalars) for _ in range(1 if name == "POW" else arity)]
    text = _text(name, [s[0] for s in subs])
    if name == "POW":
        return text, lambda env, f=subs[0][1]: (lambda v: f32(v * v))(f32(f(env)))
    fn = EXACT[name]
    return text, lambda env, fs=[s[1] for s in subs]: f32(fn(*[f32(f(env)) for f in fs]))


def test_every_primitive_has_a_reference():
    missing = set(PRIMS) - set(EXACT) - set(APPROX)
    assert not missing, f"prims.def kinds without a NumPy reference here: {sorted(missing)}"
    assert set(EXACT) | set(APPROX) <= set(PRIMS) | {"POW"}


@pytest.mark.parametrize("seed", range(12))
def test_random_exact_trees(backend, seed):
    rng = np.random.default_rng(1000 + seed)
    arrays, scalars = ["a", "b", "c"], ["w", "v"]
    for _ in range(6):
        text, ref = tree(rng, 4, arrays, scalars)
        while not re.search(r"\b[abc]\b", text):   # at least one array: a result of length n
            text, ref = tree(rng, 4, arrays, scalars)
        for n in SIZES[seed % 3::3]:
            env = {k: data(rng, n) for k in arrays}
            env.update(w=float(rng.uniform(-3, 3)), v=float(rng.choice([0.0, -1.5, 2.0])))
            got = hg.evaluate(text, env)
            with np.errstate(all="ignore"):
                want = np.broadcast_to(ref({k: (f32(x) if k in arrays else F32(x))
                                            for k, x in env.items()}), (n,))
            assert got.dtype == F32 and got.shape == (n,)
            same(got, want)


def test_exact_kinds_one_by_one(backend):
    rng = np.random.default_rng(5)
    for name in sorted(set(EXACT) & set(PRIMS)):
        arity = PRIMS[name][0]
        args = ["a", "b", "c"][:arity]
        text = _text(name, args)
        for n in SIZES:
            env = {k: data(rng, n) for k in args}
            got = hg.evaluate(text, env)
            with np.errstate(all="ignore"):
                same(got, EXACT[name](*[env[k] for k in args]))


# ---- approximate kinds ------------------------------------------------------------------------

def test_transcendentals_against_float64(backend):
    rng = np.random.default_rng(6)
    for name in sorted(set(APPROX) & set(PRIMS)):
        arity, _, _, lo, hi = PRIMS[name]
        for n in SIZES:
            a, b = data(rng, n, lo, hi, spice=False), data(rng, n, lo, hi, spice=False)
            # alone, and on an exact argument (the same float32 value on both sides)
            for text, args in ((_text(name, ["a", "b"][:arity]), (a, b)),
                               (_text(name, ["(a * 0.5 + 0.5 * a)", "b"][:arity]),
                                (a * F32(0.5) + F32(0.5) * a, b))):
                if name == "POW":
                    text = f"(a * 0.5 + 0.5 * a) ** b" if "0.5" in text else "a ** b"
                got = hg.evaluate(text, {"a": a, "b": b}).astype(np.float64)
                with np.errstate(all="ignore"):
                    ref = APPROX[name](*[x.astype(np.float64) for x in args[:arity]])
                tol = (F32_EPS if name == "POW" else 2 * F32_EPS) * np.abs(ref) + \
                    (0 if name == "POW" else 1e-7)
                bad = np.flatnonzero(~(np.abs(got - ref) <= tol))
                assert bad.size == 0, (text, n, got[bad[0]], ref[bad[0]])


def test_pow_specials_match_c_powf(backend):
    x = np.repeat(SPECIALS, SPECIALS.size)
    y = np.tile(np.concatenate([SPECIALS[:-2], [F32(3), F32(-3)]]), SPECIALS.size)
    got = hg.evaluate("x ** y", {"x": x, "y": y})
    with np.errstate(all="ignore"):
        want = np.power(x, y)          # NumPy float32 power is C's powf
    finite = np.isfinite(want) & (want != 0)  # special results exact, the rest within 1 ulp
    same(got[~finite], want[~finite])
    ulp = np.spacing(np.abs(want[finite]))
    assert np.all(np.abs(got[finite].astype(np.float64) - want[finite]) <= ulp)
    # integer exponents of negative bases, both signs
    xs = data(np.random.default_rng(7), 5000, -6, 6, spice=False)
    ys = np.random.default_rng(8).integers(-8, 9, 5000).astype(F32)
    got = hg.evaluate("x ** y", {"x": xs, "y": ys}).astype(np.float64)
    ref = np.power(xs.astype(np.float64), ys.astype(np.float64))
    assert np.all(np.abs(got - ref) <= F32_EPS * np.abs(ref) + 1e-45)


def test_activation_names_share_the_ops(backend, ex):
    x = data(np.random.default_rng(9), 1000, -20, 20)
    buf, out = upload(ex, x), hg.executor_allocate_buffer(ex, 1000)
    for fn in ("sigmoid", "tanh", "gelu"):
        getattr(hg, f"{fn}_f32")(ex, buf, out, 1000)
        same(hg.evaluate(f"{fn}(x)", {"x": x}), download(ex, out))
    with np.errstate(invalid="ignore"):
        ref = APPROX["GELU"](x.astype(np.float64))
    exp_family_close(hg.evaluate("gelu(x)", {"x": x}), ref)
    assert hg.evaluate("gelu(x)", {"x": f32([-np.inf])})[0] == 0.0


# ---- reductions --------------------------------------------------------------------------------

@pytest.mark.parametrize("n", (1, 17, 1000, 1_000_000))
def test_reductions(backend, n):
    rng = np.random.default_rng(10)
    a, b = data(rng, n, spice=False), data(rng, n, spice=False)
    terms = ((a - b) * (a - b)).astype(np.float64)
    r = hg.evaluate("sum((a - b)**2)", {"a": a, "b": b})
    assert isinstance(r, float)
    assert abs(r - terms.sum()) <= sum_bound(terms)
    m = hg.evaluate("mean(a * b)", {"a": a, "b": b})
    t = (a * b).astype(np.float64)
    assert abs(m - t.mean()) <= sum_bound(t) / n
    assert hg.evaluate("min(a - b)", {"a": a, "b": b}) == float((a - b).min())
    assert hg.evaluate("max(where(a > 0, a, -a))", {"a": a}) == float(np.abs(a).max())
    a[n // 2] = np.nan
    assert math.isnan(hg.evaluate("max(a)", {"a": a}))
    assert math.isnan(hg.evaluate("sum(a)", {"a": a}))


def test_reductions_of_nothing(backend):
    e = np.zeros(0, F32)
    assert hg.evaluate("sum(a * 2)", {"a": e}) == 0.0
    assert math.isnan(hg.evaluate("mean(a)", {"a": e}))
    for r in ("min", "max"):
        with pytest.raises(hg.InvalidArgumentError, match=r"of no elements"):
            hg.evaluate(f"{r}(a)", {"a": e})


# ---- calling convention --------------------------------------------------------------------------

def test_names_from_the_caller(backend):
    a = np.arange(6, dtype=F32)
    w = 0.5

    def inner():
        b = np.ones(6, F32)
        return hg.evaluate("a * w + b")   # b from the locals, a and w from the globals
    globals_before = dict(globals())
    globals().update(a=a, w=w)
    try:
        same(inner(), a * F32(0.5) + F32(1))
    finally:
        for k in ("a", "w"):
            if k not in globals_before:
                del globals()[k]
    same(hg.evaluate("a + b", {"a": a, "b": a}), a + a)


def test_scalars_of_every_kind(backend):
    a = np.linspace(-2, 2, 9, dtype=F32)
    for w in (2, 2.5, True, np.float32(0.25), np.float64(-1.5), np.int64(3), f32(1.75),
              float("nan"), float("inf")):
        with np.errstate(all="ignore"):
            same(hg.evaluate("a * w", {"a": a, "w": w}), a * F32(float(w)))


def test_parameters_never_recompile(backend):
    a, b = np.arange(1000, dtype=F32), np.ones(1000, F32)
    hg.evaluate("a * w + b", {"a": a, "b": b, "w": 1.0})
    hg.cache_reset()
    compiled = len(hg._evaluate._compiled)
    for i in range(50):
        same(hg.evaluate("a * w + b", {"a": a, "b": b, "w": i * 0.5}), a * F32(i * 0.5) + b)
    stats = hg.cache_stats()
    assert len(hg._evaluate._compiled) == compiled
    if backend == "jit":   # the first call after the reset loads the kernel, once
        assert stats["compiles"] + stats["disk_loads"] == 1 and stats["hits"] == 49


def test_out_in_place_and_shapes(backend):
    a = np.arange(12, dtype=F32).reshape(3, 4)
    b = np.full((3, 4), 2, F32)
    out = np.empty_like(a)
    assert hg.evaluate("a * b", {"a": a, "b": b}, out=out) is out
    same(out, a * b)
    r = hg.evaluate("a - 1", {"a": a}, out=a)   # in place
    assert r is a
    same(a, np.arange(12, dtype=F32).reshape(3, 4) - 1)
    assert hg.evaluate("a * 2", {"a": a}).shape == (3, 4)
    zero_d = hg.evaluate("2 * w + 1", {"w": 3})
    assert zero_d.shape == () and zero_d == 7.0
    filled = np.zeros(5, F32)
    hg.evaluate("w", {"w": 1.5}, out=filled)
    same(filled, np.full(5, 1.5, F32))
    assert hg.evaluate("sum(a)", {"a": a}) == float(a.sum())


def test_threads(backend):
    rng = np.random.default_rng(11)
    arrays = [data(rng, 50_000, spice=False) for _ in range(8)]

    def work(i):
        x = arrays[i]
        for k in range(20):
            got = hg.evaluate("x * k + sqrt(abs(x))", {"x": x, "k": k})
            same(got, x * F32(k) + np.sqrt(np.abs(x)))
        return True
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        assert all(pool.map(work, range(8)))


# ---- bad input ----------------------------------------------------------------------------------

def test_syntax_and_name_errors():
    a = np.ones(4, F32)
    cases = [
        ("a +", "column 4"), ("a + * a", "column 5: expected a number"),
        ("exp(a, a)", "exp() takes 1 argument, got 2"), ("foo(a)", "unknown function 'foo'"),
        ("a < a < a", "chained comparison"), ("sum(a) + 1", "must enclose the whole"),
        ("a + sum(a)", "reduction sum() is inside an expression"), ("(a", "expected ')'"),
        ("a and a", "use &"), ("a $ a", "unexpected character '$'"), ("1e39 * a", "float32"),
        ("(" * 65 + "a" + ")" * 65, "nesting deeper than 64 levels"),
        ("+".join(f"a*{i}" for i in range(1500)), "more than 4096 nodes (the limit)"),
        ("a + q_undefined", "name 'q_undefined' is not defined"),
        ("a\0+ a", "NUL character at position 1"),
    ]
    for text, message in cases:
        with pytest.raises(hg.ExpressionError, match=re.escape(message)) as info:
            hg.evaluate(text, {"a": a})
        assert isinstance(info.value, ValueError) and isinstance(info.value, hg.HologramError)


def test_array_errors_name_the_variable():
    a = np.ones(8, F32)
    with pytest.raises(TypeError, match=r"array 'b' has dtype float64.*must be float32"):
        hg.evaluate("a + b", {"a": a, "b": np.ones(8)})
    with pytest.raises(TypeError, match=r"array 'b' has dtype int32"):
        hg.evaluate("a + b", {"a": a, "b": np.ones(8, np.int32)})
    with pytest.raises(hg.ShapeError, match=r"shapes 'a' \(8,\), 'b' \(7,\) do not broadcast"):
        hg.evaluate("a + b", {"a": a, "b": np.ones(7, F32)})
    strided = np.arange(16, dtype=F32)[::2]      # any strides: read in place
    same(hg.evaluate("a + b", {"a": a, "b": strided}), a + strided)
    with pytest.raises(TypeError, match=r"'s' is str"):
        hg.evaluate("a * s", {"a": a, "s": "2"})
    with pytest.raises(TypeError, match=r"'s' is list"):
        hg.evaluate("a * s", {"a": a, "s": [1, 2]})
    with pytest.raises(hg.InvalidArgumentError, match=r"scalar 's' = 1e\+300 is beyond"):
        hg.evaluate("a * s", {"a": a, "s": 1e300})
    with pytest.raises(TypeError, match=r"out must be a float32"):
        hg.evaluate("a * 2", {"a": a}, out=np.ones(8))
    with pytest.raises(hg.ShapeError, match=r"shapes \[8\] and \[4\] do not broadcast"):
        hg.evaluate("a * 2", {"a": a}, out=np.ones(4, F32))
    with pytest.raises(hg.InvalidArgumentError, match=r"out= is for maps"):
        hg.evaluate("sum(a)", {"a": a}, out=np.ones(8, F32))
    with pytest.raises(hg.InvalidArgumentError, match=r"partly overlaps array 'a'"):
        big = np.arange(9, dtype=F32)
        hg.evaluate("a * 2", {"a": big[:8]}, out=big[1:])
    ro = np.ones(8, F32)
    ro.flags.writeable = False
    with pytest.raises(hg.InvalidArgumentError, match=r"writeable"):
        hg.evaluate("a * 2", {"a": a}, out=ro)
    same(hg.evaluate("a * 2", {"a": ro}), np.full(8, 2, F32))   # read-only inputs are fine
    with pytest.raises(TypeError, match=r"must be str"):
        hg.evaluate(42)


# ---- the flat functions ------------------------------------------------------------------------

def test_flat_functions(backend, ex):
    h = hg.expr_compile("x * w + y", '["w"]')
    variables = json.loads(hg.expr_variables(h))
    assert variables == {"arrays": ["x", "y"], "scalars": ["w"], "kind": "map",
                         "output": True, "result": False, "axis": None}
    doc = json.loads(hg.expr_describe(h))
    assert doc["source"] == "x * w + y" and doc["nodes_after"] == len(doc["after"]["nodes"])
    x = upload(ex, np.arange(10, dtype=F32))
    y = upload(ex, np.ones(10, F32))
    out = hg.executor_allocate_buffer(ex, 10)
    assert hg.expr_run(ex, h, [x, y], [2.0], out, 10) is None
    same(download(ex, out), np.arange(10, dtype=F32) * 2 + 1)
    g = hg.expr_compile(json.dumps(doc["after"]))   # the JSON form compiles too
    assert json.loads(hg.expr_describe(g))["after"] == doc["after"]
    s = hg.expr_compile("sum(x * x)", ["x"][:0])
    assert hg.expr_run(ex, s, [x], [], out, 10) == 285.0
    assert download(ex, out)[0] == 285.0
    assert hg.expr_run(ex, s, [x], [], 0, 4) == 14.0
    with pytest.raises(hg.OutOfBoundsError, match=r"array 'x'"):
        hg.expr_run(ex, h, [x, y], [2.0], out, 11)
    with pytest.raises(hg.InvalidArgumentError, match=r"takes 2 arrays and 1 scalar"):
        hg.expr_run(ex, h, [x], [2.0], out, 10)
    with pytest.raises(hg.InvalidArgumentError, match=r"negative"):
        hg.expr_run(ex, h, [x, -1], [2.0], out, 10)
    with pytest.raises(TypeError):
        hg.expr_run(ex, h, [x, y], ["2"], out, 10)
    for handle in (h, g, s):
        hg.expr_cleanup(handle)
    with pytest.raises(hg.InvalidHandleError, match=r"was freed"):
        hg.expr_cleanup(h)
    with pytest.raises(hg.InvalidHandleError, match=r"was freed"):
        hg.expr_describe(h)
    with pytest.raises(hg.JsonError):
        hg.expr_compile("x * w", '["w"')
    with pytest.raises(hg.ExpressionError, match=r"program"):
        hg.expr_compile('{"nodes": [], "stages": [], "arrays": []}')


def test_expression_objects(backend):
    f = hg.Expression("x * w + y", scalars=["w"])
    assert f.arrays == ("x", "y") and f.scalars == ("w",)
    x, y, o = np.arange(10, dtype=F32), np.ones(10, F32), np.empty(10, F32)
    assert f(x, y, 2.0, out=o) is o
    same(o, x * F32(2) + y)
    same(f(x, y, -1), x * F32(-1) + y)
    assert json.loads(f.describe())["source"] == "x * w + y"
    with pytest.raises(TypeError, match=r"takes 3 arguments \(the arrays x, y, then the "
                                        r"scalars w\), got 2"):
        f(x, y)
    with pytest.raises(TypeError, match=r"array 'y' must be a float32 numpy.ndarray, not list"):
        f(x, [1.0] * 10, 2.0)
    with pytest.raises(TypeError, match=r"array 'x' has dtype float64"):
        f(np.ones(10), y, 2.0)
    with pytest.raises(hg.ShapeError, match=r"'y' \(5,\) do not broadcast"):
        f(x, y[:5], 2.0)
    s = hg.Expression("sum(x * x)")
    assert s(x) == 285.0 and s.scalars == ()
    with pytest.raises(TypeError, match=r"list of names"):
        hg.Expression("x * w", scalars="w")
    with pytest.raises(hg.ExpressionError, match=r"does not appear"):
        hg.Expression("x * 2", scalars=["w"])
    f.close()
    with pytest.raises(hg.InvalidArgumentError, match=r"was closed"):
        f(x, y, 2.0)


def test_clear_all_registries_drops_compiled_expressions():
    a = np.ones(4, F32)
    hg.evaluate("a * 3", {"a": a})
    hg.clear_all_registries()
    same(hg.evaluate("a * 3", {"a": a}), np.full(4, 3, F32))
