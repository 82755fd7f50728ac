"""The matrix: every smooth op x backend x dtype x shape x axis against the float64 reference.

Also: keepdims, temperature, ``where`` masks, ``b`` weights with ``return_sign``, the kernel
paths of the CPU backend (short rows n <= 64 in tiles of 64 rows, long rows in blocks of 256,
few huge rows split into segments), and inputs of unusual layout (read-only, big-endian,
broadcast, memmap). Results must keep the input's array type, the result dtype and shape, and
inputs must never be written.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

import fastops

from ._support import (
    KEEPDIMS_OPS,
    OPS,
    REDUCTIONS,
    TEMPERATURE_OPS,
    assert_same,
    check_result,
    make_case,
    norm_axes,
    random_values,
)

DTYPES = [np.float16, np.float32, np.float64, np.int64]
DTYPE_IDS = ["f16", "f32", "f64", "i64"]

# (id, base shape, view taking the input from the base: works on NumPy and CuPy arrays alike)
SHAPES = [
    ("(0,)", (0,), None),
    ("(1,)", (1,), None),
    ("(7,)", (7,), None),
    ("(1000,)", (1000,), None),
    ("(3,5)", (3, 5), None),
    ("(64,257)", (64, 257), None),
    ("(2,3,4)", (2, 3, 4), None),
    ("(0,5)", (0, 5), None),
    ("(5,0)", (5, 0), None),
    ("T(9,6)", (9, 6), lambda a: a.T),
    ("negstride(8,12)[::-1,::-2]", (8, 12), lambda a: a[::-1, ::-2]),
]


def _axes_for(ndim: int) -> list:
    if ndim == 1:
        return [None, -1, (0,)]
    return [None, 0, -1, (0, ndim - 1)]


MATRIX = [
    pytest.param(base, view, axis, id=f"{sid}-axis={axis}".replace(" ", ""))
    for sid, base, view in SHAPES
    for axis in _axes_for(len(base))
]


def _relayout(xp, a, base_shape, view):
    """``a`` as view(base) of a fresh base: same values, the view's strides. The elements of
    the base outside the view hold NaN (or a large integer), so reading them shows."""
    fill = np.nan if np.dtype(a.dtype).kind == "f" else 10**6
    base = xp.full(base_shape, fill, dtype=a.dtype)
    out = view(base)
    out[...] = a
    return out


def _run_and_check(backend, case, base_shape=None, view=None, err=""):
    """Call case.op on backend (moving inputs there), check the result and that no input moved.

    With ``view``, every argument shaped like the input is passed as view(base) of a base of
    ``base_shape``, so that non-contiguous layouts reach the backend as such.
    """
    args = [backend.asarray(a) for a in case.args]
    if view is not None:
        shape = case.args[0].shape
        args = [_relayout(backend.xp, a, base_shape, view)
                if getattr(a, "shape", None) == shape else a for a in args]
    kwargs = {k: backend.asarray(v) for k, v in case.kwargs.items()}
    host_copies = [np.array(a, copy=True) for a in case.inputs]
    dev_copies = [np.array(backend.asnumpy(a), copy=True) for a in args]
    got = backend.function(case.op)(*args, **kwargs)
    check_result(backend, case, got, err_msg=err or case.op)
    for a, c in zip(case.inputs, host_copies, strict=True):
        assert_same(a, c, f"{case.op}: an input on the host was modified")
    for a, c in zip(args, dev_copies, strict=True):
        assert_same(backend.asnumpy(a), c, f"{case.op}: an input argument was modified")
    return got


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize(("base", "view", "axis"), MATRIX)
@pytest.mark.parametrize("op", OPS)
def test_matrix(backend, op, base, view, axis, dtype, rng):
    base_host = random_values(rng, base, dtype)
    x = base_host if view is None else view(base_host)
    _run_and_check(backend, make_case(op, x, axis, rng), base, view)


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize(("shape", "axis"), [
    ((3, 5), 0), ((3, 5), -1), ((3, 5), None), ((2, 3, 4), (0, 2)), ((2, 3, 4), 1), ((7,), 0),
], ids=lambda v: str(v).replace(" ", ""))
@pytest.mark.parametrize("op", KEEPDIMS_OPS)
def test_keepdims(backend, op, shape, axis, dtype, rng):
    x = random_values(rng, shape, dtype)
    case = make_case(op, x, axis, rng, keepdims=True)
    got = _run_and_check(backend, case)
    axes = norm_axes(axis, len(shape))
    if op in REDUCTIONS:
        assert tuple(got.shape) == tuple(1 if i in axes else s for i, s in enumerate(shape))
    else:
        assert tuple(got.shape) == shape


@pytest.mark.parametrize("temperature", [0.3, 2.5])
@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64], ids=["f16", "f32", "f64"])
@pytest.mark.parametrize(("shape", "axis"), [
    ((7,), -1), ((3, 5), 0), ((64, 257), -1), ((130, 16), -1), ((2, 3, 4), (0, 2)),
], ids=lambda v: str(v).replace(" ", ""))
@pytest.mark.parametrize("op", TEMPERATURE_OPS)
def test_temperature(backend, op, shape, axis, dtype, temperature, rng):
    x = random_values(rng, shape, dtype)
    _run_and_check(backend, make_case(op, x, axis, rng, temperature=temperature))


def _mask(rng, shape, axis, kind):
    """A where mask: 'random' (30% False, plus one fully masked row where there are rows),
    'row-broadcast' (a mask of the row shape only, broadcast over the other axes)."""
    if kind == "random":
        mask = rng.random(shape) > 0.3
        if len(shape) >= 2 and axis == -1:
            mask[0] = False  # a row with nothing kept
        return mask
    return rng.random(shape[-1:]) > 0.3  # broadcasts along the leading axes


@pytest.mark.parametrize("kind", ["random", "row-broadcast"])
@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64], ids=["f16", "f32", "f64"])
@pytest.mark.parametrize(("shape", "axis"), [
    ((9,), -1), ((3, 5), -1), ((64, 257), -1), ((130, 16), -1), ((2, 3, 4), (0, 2)),
    ((5, 7), 0),
], ids=lambda v: str(v).replace(" ", ""))
@pytest.mark.parametrize("op", OPS)
def test_where(backend, op, shape, axis, dtype, kind, rng):
    x = random_values(rng, shape, dtype)
    where = _mask(rng, shape, axis, kind)
    _run_and_check(backend, make_case(op, x, axis, rng, where=where))


@pytest.mark.parametrize("temperature", [None, 0.5])
@pytest.mark.parametrize("op", TEMPERATURE_OPS)
def test_where_with_temperature(backend, op, temperature, rng):
    x = random_values(rng, (6, 40), np.float64)
    where = rng.random((6, 40)) > 0.5
    where[2] = False
    where[3, :] = False
    where[3, 7] = True  # a row with a single kept element
    _run_and_check(backend, make_case(op, x, -1, rng, where=where, temperature=temperature))


# b weights: positive, mixed sign, with zeros (which also hide inf/NaN entries of a)
@pytest.mark.parametrize("return_sign", [False, True], ids=["value", "return_sign"])
@pytest.mark.parametrize("b_kind", ["positive", "mixed-sign", "zeros-hide-inf-nan", "scalar",
                                    "row-broadcast"])
@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64, np.int64],
                         ids=["f16", "f32", "f64", "i64"])
@pytest.mark.parametrize(("shape", "axis"), [
    ((7,), None), ((4, 9), -1), ((4, 9), 0), ((3, 200), -1), ((2, 3, 4), (0, 2)),
], ids=lambda v: str(v).replace(" ", ""))
def test_logsumexp_b(backend, shape, axis, dtype, b_kind, return_sign, rng):
    x = random_values(rng, shape, dtype)
    if b_kind == "positive":
        b = rng.uniform(0.25, 3.0, shape)
    elif b_kind == "mixed-sign":
        b = rng.uniform(-1.0, 3.0, shape)
    elif b_kind == "zeros-hide-inf-nan":
        b = rng.uniform(0.25, 3.0, shape)
        b.flat[::3] = 0.0
        if x.dtype.kind == "f":
            x = x.copy()
            x.flat[::6] = np.inf
            x.flat[3::6] = np.nan
    elif b_kind == "scalar":
        b = 2.5
    else:
        b = rng.uniform(-0.5, 2.0, shape[-1:])
    if isinstance(b, np.ndarray) and dtype != np.int64:
        b = b.astype(dtype)
    case = make_case("logsumexp", x, axis, rng, b=b, return_sign=return_sign)
    _run_and_check(backend, case)


@pytest.mark.parametrize("where", [False, True], ids=["no-where", "where"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize(("shape", "axis"), [((7,), None), ((4, 9), -1), ((3, 200), 0)],
                         ids=lambda v: str(v).replace(" ", ""))
def test_logsumexp_backward_b(backend, shape, axis, dtype, where, rng):
    x = random_values(rng, shape, dtype)
    b = rng.uniform(0.25, 3.0, shape).astype(dtype)
    b.flat[::4] = 0.0
    mask = (rng.random(shape) > 0.3) if where else None
    _run_and_check(backend, make_case("logsumexp_backward", x, axis, rng, b=b, where=mask))


# The CPU kernel paths: short rows (n <= 64, tiles of 64 rows; row counts that are not a
# multiple of 64), long rows (n > 64, n not a multiple of the 256-element block) and few huge
# rows (split into segments: rows < 2 * threads and n >= 32768).
PATH_SHAPES = [
    pytest.param((130, 16), id="short(130,16)"),
    pytest.param((1000, 64), id="short(1000,64)"),
    pytest.param((3, 1), id="short(3,1)"),
    pytest.param((5, 1000), id="long(5,1000)"),
    pytest.param((70, 65), id="long(70,65)"),
    pytest.param((1, 70000), id="split(1,70000)"),
    pytest.param((2, 40000), id="split(2,40000)"),
]


@pytest.mark.parametrize("masked", [False, True], ids=["no-mask", "mask"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("shape", PATH_SHAPES)
@pytest.mark.parametrize("op", OPS)
def test_kernel_paths(backend, op, shape, dtype, masked, rng):
    x = random_values(rng, shape, dtype)
    where = None
    if masked:
        where = rng.random(shape) > 0.25
        where[0, : shape[1] // 2] = False  # half a row masked out
        if shape[0] > 2:
            where[2] = False  # a row with nothing kept
    _run_and_check(backend, make_case(op, x, -1, rng, where=where))


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("shape", PATH_SHAPES)
@pytest.mark.parametrize("op", ["soft_argmax", "smooth_max", "softmax", "soft_argmax_backward"])
def test_kernel_paths_temperature_and_large_values(backend, op, shape, dtype, rng):
    """Values far from 0 (x ~ 300 +- 20, the max late in the row) and temperature 0.7."""
    x = random_values(rng, shape, np.float64, spread=5.0) + 300.0
    x[:, (2 * shape[1]) // 3] += 15.0
    _run_and_check(backend, make_case(op, x.astype(dtype), -1, rng, temperature=0.7))


# Layouts only NumPy arrays have (big-endian, memmap) run on the CPU backends; the result must
# equal that of a native contiguous copy bit for bit, and match the reference. Every argument
# shaped like the input (x, y, dy) gets the layout.
LAYOUTS = ["readonly", "big-endian", "broadcast-stride0", "memmap", "fortran", "negstride"]


def _layout(kind, a, path):
    if kind == "readonly":
        y = a.copy()
        y.flags.writeable = False
        return y
    if kind == "big-endian":
        return a.astype(a.dtype.newbyteorder(">"))
    if kind == "broadcast-stride0":
        # only arrays whose rows are all equal can be a broadcast of their first row
        return np.broadcast_to(a[:1], a.shape) if np.array_equal(a, a[:1].repeat(
            a.shape[0], axis=0)) else a
    if kind == "memmap":
        mm = np.memmap(path, dtype=a.dtype, mode="w+", shape=a.shape)
        mm[...] = a
        mm.flush()
        del mm
        return np.memmap(path, dtype=a.dtype, mode="r", shape=a.shape)
    if kind == "fortran":
        return np.asfortranarray(a)
    out = np.empty_like(a)[::-1]  # negative strides along the first axis
    out[...] = a
    return out


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("kind", LAYOUTS)
@pytest.mark.parametrize("op", OPS)
def test_layouts(cpu_backend, op, kind, dtype, rng, tmp_path):
    x = random_values(rng, (5, 9), dtype)
    if kind == "broadcast-stride0":
        x = np.repeat(x[:1], 5, axis=0)
    case = make_case(op, x, -1, rng)
    args = [_layout(kind, a, tmp_path / f"arg{i}.dat") if getattr(a, "shape", None) == x.shape
            else a for i, a in enumerate(case.args)]
    if kind == "big-endian":  # every array argument big-endian (out, dout too)
        args = [a.astype(a.dtype.newbyteorder(">")) if isinstance(a, np.ndarray)
                and a.dtype.byteorder == "=" else a for a in args]
    if kind == "broadcast-stride0":
        assert 0 in args[0].strides
    native_args = [np.ascontiguousarray(a, dtype=a.dtype.newbyteorder("="))
                   if isinstance(a, np.ndarray) else a for a in args]
    native = cpu_backend.function(op)(*native_args, **case.kwargs)
    before = [np.array(a, copy=True) for a in args]
    got = cpu_backend.function(op)(*args, **case.kwargs)
    assert_same(got, native, f"{op} on a {kind} input against a native contiguous copy")
    check_result(cpu_backend, case, got, err_msg=f"{op} {kind}")
    for a, c in zip(args, before, strict=True):
        assert_same(a, c, f"{op}: a {kind} input was modified")


@pytest.mark.parametrize("op", ["logsumexp", "softmax", "smooth_max_backward"])
def test_broadcast_row_input(backend, op, rng):
    """A stride-0 input built on the device itself (np/cupy.broadcast_to of one row)."""
    row = random_values(rng, (11,), np.float64)
    x = np.broadcast_to(row, (6, 11))
    case = make_case(op, np.ascontiguousarray(x), -1, rng)
    args = list(case.args)
    args = [backend.asarray(a) for a in args]
    args[0] = backend.xp.broadcast_to(backend.asarray(row), (6, 11))
    got = backend.function(op)(*args, **case.kwargs)
    check_result(backend, case, got, err_msg=op)


_CUPY = fastops.backends()["cupy"]


@pytest.mark.gpu
@pytest.mark.slow
@pytest.mark.skipif(not _CUPY["available"], reason=f"cupy: {_CUPY['reason']}")
def test_more_than_2_31_elements():
    """A row of 2^31 + 7 float32 elements (8.6 GB) whose largest element is the last one:
    32-bit indexing would miss it (or wrap the soft argmax index)."""
    import cupy as cp

    n = 2**31 + 7
    x = cp.zeros(n, cp.float32)
    x[-1] = 30.0
    e = math.exp(-30.0)
    den = (n - 1) * e + 1.0
    lse = float(fastops.logsumexp(x))
    assert abs(lse - (30.0 + math.log(den))) <= 1e-5, lse
    y = float(fastops.soft_argmax(x))
    expected = (e * (n - 1) * (n - 2) / 2 + (n - 1)) / den
    assert abs(y - expected) <= 1e-5 * expected, (y, expected)
    p = fastops.softmax(x)
    assert p.shape == (n,) and p.dtype == cp.float32
    assert abs(float(p[-1]) - 1.0 / den) <= 1e-5
    assert abs(float(p[0]) - e / den) <= 1e-5 * e / den
    assert abs(float(p[2**31 + 1]) - e / den) <= 1e-5 * e / den
