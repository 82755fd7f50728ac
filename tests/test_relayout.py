"""fastops._relayout: the CPU's transposing copy into rows and its float16 conversions.

Against NumPy bit for bit (a NaN only needs to stay a NaN): every float16 bit pattern
widened, float32 values of every magnitude (subnormal, overflowing, ties) narrowed, and the
transposing copy on layouts whose tiles do not divide the axes, in every dtype the kernels
take, serial and parallel; plus the cases it must leave to NumPy, and the ops that reach it
through RowLayout.to_rows.
"""

from __future__ import annotations

import numpy as np
import pytest
from smooth._support import assert_close  # tests/ is on sys.path (no __init__ there)

import fastops
from fastops import _relayout
from fastops._rows import RowLayout


def _numpy_rows(arr, axes, dtype):
    """RowLayout.to_rows as NumPy alone makes it."""
    layout = RowLayout(arr.shape, axes)
    moved = np.moveaxis(arr, axes, tuple(range(-len(axes), 0)))
    return np.ascontiguousarray(moved.reshape(layout.rows, layout.n), dtype=dtype)


def test_every_float16_widens_to_numpys_bits():
    bits = np.arange(1 << 16, dtype=np.uint16)
    got = _relayout.convert(bits.view(np.float16), np.float32)
    assert got is not None
    expected = bits.view(np.float16).astype(np.float32)
    nan = np.isnan(expected)
    assert np.isnan(got[nan]).all()  # signalling NaNs come back quiet (the hardware's way)
    np.testing.assert_array_equal(got[~nan].view(np.uint32), expected[~nan].view(np.uint32))


def test_float32_narrows_to_numpys_bits(rng):
    exponents = rng.integers(-30, 18, 1 << 17)
    values = (rng.standard_normal(1 << 17) * 2.0 ** exponents).astype(np.float32)
    # halfway cases at every float16 exponent (ties to even), the overflow edge, subnormals
    halves = np.arange(1 << 16, dtype=np.uint16).view(np.float16).astype(np.float32)
    finite = halves[np.isfinite(halves)]
    ties = ((finite[:-1].astype(np.float64) + finite[1:]) / 2).astype(np.float32)
    special = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, 65504.0, 65519.996, 65520.0,
                        5.96e-8, 2.98e-8, 2.9802322e-08, 1e-45], np.float32)
    values = np.concatenate([values, ties, special])
    got = _relayout.convert(values, np.float16)
    assert got is not None
    with np.errstate(over="ignore"):
        expected = values.astype(np.float16)
    same = (got.view(np.uint16) == expected.view(np.uint16)) | \
        (np.isnan(got) & np.isnan(expected))
    assert same.all(), f"{(~same).sum()} values differ, first {values[~same][:5]}"


def test_small_and_other_conversions_are_left_to_numpy():
    assert _relayout.convert(np.ones(100, np.float16), np.float32) is None
    assert _relayout.convert(np.ones(1 << 16, np.float64), np.float32) is None
    assert _relayout.convert(np.ones((512, 256), np.float16).T, np.float32) is None


# (id, shape, axes, layout); the tiles (64 x 64) do not divide the axes
LAYOUTS = [
    ("C(300,257)-axis0", (300, 257), (0,), None),
    ("C(5,70,200)-axis1", (5, 70, 200), (1,), None),
    ("C(3,40,30,20)-axes12", (3, 40, 30, 20), (1, 2), None),
    ("F(257,300)-axis1", (257, 300), (1,), np.asfortranarray),
    ("perm(20,70,60)-axis0", (20, 70, 60), (0,),
     lambda a: np.ascontiguousarray(a.transpose(1, 0, 2)).transpose(1, 0, 2)),
]
DTYPES = [(np.float32, np.float32), (np.float64, np.float64), (np.bool_, np.bool_),
          (np.float16, np.float32), (np.float16, np.float16)]


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize(("src", "dst"), DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize(("shape", "axes", "layout"),
                         [pytest.param(s, a, f, id=i) for i, s, a, f in LAYOUTS])
def test_transposing_copy_matches_numpy(shape, axes, layout, src, dst, threads, rng):
    arr = rng.standard_normal(shape) * 100
    arr = (arr > 0) if src is np.bool_ else arr.astype(src)
    if layout is not None:
        arr = layout(arr)
    before = arr.copy()
    rows_layout = RowLayout(shape, axes)
    with fastops.threads(threads):
        got = _relayout.rows_copy(arr, axes, rows_layout.rows, rows_layout.n, dst)
    assert got is not None and got.flags.c_contiguous and got.dtype == dst
    np.testing.assert_array_equal(got, _numpy_rows(arr, axes, dst))
    np.testing.assert_array_equal(arr, before)


def test_parallel_transposing_copy(rng):
    """Large enough for Launch to go parallel (4 ns per element x 2^22 > 4 ms)."""
    arr = rng.standard_normal((2048, 2048)).astype(np.float32)
    got = _relayout.rows_copy(arr, (0,), 2048, 2048, np.float32)
    np.testing.assert_array_equal(got, arr.T)


@pytest.mark.parametrize(("src", "dst"), [(np.float32, np.float32), (np.float64, np.float64),
                                        (np.float16, np.float32), (np.float32, np.float64)],
                         ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("make", [
    pytest.param(lambda a: a.reshape(300, 400).T, id="transposed"),
    pytest.param(lambda a: np.asfortranarray(a.reshape(400, 300)), id="F"),
    pytest.param(lambda a: a.reshape(20, 60, 100).transpose(2, 0, 1), id="perm3d"),
    pytest.param(lambda a: a.reshape(400, 300)[:, ::2], id="strided"),
    pytest.param(lambda a: a[:1000].reshape(100, 10).T, id="small"),
])
def test_as_contiguous_is_numpys_copy(make, src, dst, rng):
    """Every family's conversion into its kernels' layout (fastops._rows.as_contiguous): the
    tiled copy for permutations of contiguous arrays, NumPy's otherwise (float32 -> float64,
    strided, small), the same values either way, the input untouched."""
    from fastops._rows import as_contiguous

    arr = make((rng.standard_normal(120000) * 100).astype(src))
    before = arr.copy()
    got = as_contiguous(np, arr, np.dtype(dst))
    want = np.ascontiguousarray(arr, dtype=dst)
    assert got.flags.c_contiguous and got.dtype == dst and got.shape == arr.shape
    np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(arr, before)


@pytest.mark.parametrize(("make", "axes"), [
    (lambda a: a[:, ::2], (0,)),  # a strided slice: NumPy's copy
    (lambda a: a, (1,)),  # trailing axis of a C array, same dtype: a view
    (lambda a: np.asfortranarray(a), (0,)),  # the rows lie contiguous: a view
    (lambda a: a[:100, :100], (0,)),  # small
])
def test_cases_left_to_numpy(make, axes, rng):
    arr = make(rng.standard_normal((400, 400)).astype(np.float32))
    layout = RowLayout(arr.shape, axes)
    assert _relayout.rows_copy(arr, axes, layout.rows, layout.n, np.float32) is None


@pytest.mark.parametrize(("op", "kwargs"), [
    ("softmax", {"axis": 0}),
    ("logsumexp", {"axis": 0, "where": "mask"}),
    ("log_softmax", {"axis": -1}),
    ("smooth_max_backward", {"axis": 0}),
])
def test_ops_through_the_fast_copies(op, kwargs, rng):
    """Ops whose input takes the transposing copy or the conversions (float16 in and out),
    against the float64 reference."""
    from fastops.smooth import reference

    x = (rng.standard_normal((300, 257)) * 3).astype(np.float16)
    kw = dict(kwargs)
    if kw.get("where") == "mask":
        kw["where"] = rng.random(x.shape) > 0.3
    args = (x,)
    if op == "smooth_max_backward":
        args = (x, rng.standard_normal(257).astype(np.float16))
    got = getattr(fastops, op)(*args, **kw)
    ref = getattr(reference, op)(*(a.astype(np.float64) for a in args), **kw)
    assert got.dtype == np.float16
    scale = np.abs(ref).max() if op == "smooth_max_backward" else 0.0
    assert_close(got, ref, np.float16, scale=scale * 1e-3, err_msg=op)


# float16 on the CPU: the kernels read the float16 bits, compute in float32 and round each
# result once to float16 (fastops._vecmath.load / store), so a float16 call has the bits of the
# same call on the input widened to float32, rounded to float16: rows, broadcast masks and
# weights, the column kernels (axis 0), float16 and float32 dy.
_HALF_CASES = [
    ("logsumexp", {"axis": -1}, ()),
    ("logsumexp", {"axis": -1, "where": "key"}, ()),
    ("logsumexp", {"axis": 1, "b": "weights"}, ()),
    ("softmax", {"axis": -1, "where": "key"}, ()),
    ("log_softmax", {"axis": 0}, ()),  # the column kernels
    ("softmax_backward", {"axis": 0}, ("dy16",)),
    ("smooth_max_backward", {"axis": 0}, ("dout",)),
    ("smooth_max", {"axis": -1, "temperature": 0.5}, ()),
    ("soft_argmax", {"axis": -1}, ()),
    ("softmax_backward", {"axis": -1}, ("dy16",)),
    ("softmax_backward", {"axis": -1}, ("dy32",)),  # float32 dy: sliced, not narrowed
    ("log_softmax_backward", {"axis": -1, "where": "key"}, ("dy16",)),
    ("smooth_max_backward", {"axis": -1}, ("dout",)),
    ("soft_argmax_backward", {"axis": -1}, ("dout",)),
    ("logsumexp_backward", {"axis": -1}, ("out", "dout")),
]


@pytest.mark.parametrize(("op", "kwargs", "extra"), _HALF_CASES,
                         ids=[f"{op}-{i}" for i, (op, _, _) in enumerate(_HALF_CASES)])
@pytest.mark.parametrize("threads", [1, 2])
def test_float16_is_the_float32_computation_rounded_once(op, kwargs, extra, threads, rng):
    x = (rng.standard_normal((4, 25, 40)) * 3).astype(np.float16)
    kw = dict(kwargs)
    if kw.get("where") == "key":
        kw["where"] = rng.random((4, 1, 40)) > 0.3  # broadcast over the middle axis
    if kw.get("b") == "weights":
        kw["b"] = rng.random((1, 25, 1)).astype(np.float16)  # float16 result (promotion)
    if op in ("softmax_backward", "log_softmax_backward"):  # y: the forward op's output
        x = getattr(fastops, op.removesuffix("_backward"))(x, **kw)
    per_row = tuple(np.delete(x.shape, kw["axis"]))
    values = {"dy16": x[::-1].copy(), "dy32": rng.standard_normal(x.shape).astype(np.float32),
              "dout": rng.standard_normal(per_row).astype(np.float32),
              "out": fastops.logsumexp(x.astype(np.float32), axis=-1)}
    args = [x] + [values[name] for name in extra]
    fn = getattr(fastops, op)
    with fastops.threads(threads):
        got = fn(*args, **kw)
    with fastops.threads(threads):
        expected = fn(*(a.astype(np.float32) if a.dtype == np.float16 else a for a in args),
                      **kw)
    assert got.dtype == np.float16
    np.testing.assert_array_equal(got, expected.astype(np.float16))


def test_float16_rows_make_no_float32_copy(rng):
    """softmax of float16 rows allocates its float16 output only, not the input-sized
    float32 copies (input and output) a conversion of the whole array made."""
    import tracemalloc

    x = rng.standard_normal((2048, 1024)).astype(np.float16)  # 4 MiB; in float32 8 MiB
    for axis in (-1, 0):  # the row and the column kernels
        fastops.softmax(x, axis=axis)  # compiled outside the measurement
        tracemalloc.start()
        fastops.softmax(x, axis=axis)
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        assert peak < x.nbytes + (1 << 20), (axis, peak)
