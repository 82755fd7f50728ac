"""semantics.md, row by row: the smooth table, the ``b``/``return_sign`` rules and the shared rules.

The expected values here are written out (or computed with plain float64 formulas and SciPy),
never taken from ``fastops.smooth.reference``, so that the reference itself is under test too
(it is the "numpy" backend). Each table row runs on three row lengths, which take the three
paths of the CPU kernels: the row itself (n <= 64: tiles of short rows), the row followed by
-inf entries up to n = 300 (blocked long rows) and up to n = 70000 with three rows (rows split
into segments). A -inf entry changes no result, except that softmax puts 0 there, log_softmax
-inf, and a row made NaN by a kept NaN (softmax: or +inf) is NaN there as well. (log_softmax
of a row with a kept +inf and no NaN is SciPy's x - lse: NaN at the +inf, -inf elsewhere.)
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from decimal import Decimal, getcontext

import numpy as np
import pytest
import scipy.special

from fastops.smooth import reference

from ._support import BACKWARD, assert_close, assert_same

INF = math.inf
NAN = math.nan
LN2 = math.log(2.0)
T, F = True, False


@dataclass
class Row:
    """One row of the smooth table: input, optional where mask and the expected results.

    ``None`` for an expectation means the table leaves that cell empty.
    """

    id: str
    x: list
    dtype: type = np.float64
    where: list | None = None
    lse: float | None = None
    softmax: list | None = None
    log_softmax: list | None = None
    soft_argmax: float | None = None
    exact: bool = False  # the values must be met exactly, not within the dtype tolerance
    ulp_lse: float | None = None  # lse within this many ulp of the expectation
    zero_grad: bool = False  # nothing kept or all -inf: every gradient is exactly 0
    nan_row: bool = field(init=False, default=False)

    def __post_init__(self) -> None:
        self.nan_row = self.softmax is not None and any(math.isnan(v) for v in self.softmax)


def _plain(values, where=None):
    """(lse, softmax, log_softmax, soft_argmax) of a finite row by float64 formulas."""
    keep = [True] * len(values) if where is None else where
    kept = [v for v, k in zip(values, keep, strict=True) if k]
    m = max(kept)
    total = math.fsum(math.exp(v - m) for v in kept)
    lse = m + math.log(total)
    p = [math.exp(v - m) / total if k else 0.0 for v, k in zip(values, keep, strict=True)]
    logp = [v - lse if k else -INF for v, k in zip(values, keep, strict=True)]
    return lse, p, logp, math.fsum(i * pi for i, pi in enumerate(p))


_P = _plain([1.0, 5.0, 2.0, 3.0], [T, F, T, T])
_Q = _plain([1.0, 2.0], None)  # what remains of [1, +inf, 2] and [1, nan, 2] with [T, F, T]
_E7 = 3.25

TABLE = [
    Row("all -inf", [-INF, -INF, -INF], lse=-INF, softmax=[0.0] * 3,
        log_softmax=[-INF] * 3, soft_argmax=NAN, zero_grad=True),
    Row("where all False", [1.0, 2.0, 3.0], where=[F, F, F], lse=-INF, softmax=[0.0] * 3,
        log_softmax=[-INF] * 3, soft_argmax=NAN, zero_grad=True),
    Row("where all False over +inf and NaN", [INF, NAN, 3.0], where=[F, F, F], lse=-INF,
        softmax=[0.0] * 3, log_softmax=[-INF] * 3, soft_argmax=NAN, zero_grad=True),
    Row("where partly False", [1.0, 5.0, 2.0, 3.0], where=[T, F, T, T], lse=_P[0],
        softmax=_P[1], log_softmax=_P[2], soft_argmax=_P[3]),
    Row("where hides a +inf", [1.0, INF, 2.0], where=[T, F, T], lse=_Q[0],
        softmax=[_Q[1][0], 0.0, _Q[1][1]], log_softmax=[_Q[2][0], -INF, _Q[2][1]],
        soft_argmax=2 * _Q[1][1]),
    Row("where hides a NaN", [1.0, NAN, 2.0], where=[T, F, T], lse=_Q[0],
        softmax=[_Q[1][0], 0.0, _Q[1][1]], log_softmax=[_Q[2][0], -INF, _Q[2][1]],
        soft_argmax=2 * _Q[1][1]),
    Row("one +inf", [1.0, INF, 2.0], lse=INF, softmax=[NAN] * 3,
        log_softmax=[-INF, NAN, -INF], soft_argmax=NAN),
    Row("two +inf", [INF, 1.0, INF], lse=INF, softmax=[NAN] * 3,
        log_softmax=[NAN, -INF, NAN], soft_argmax=NAN),
    Row("+inf and -inf", [-INF, INF, 0.0], lse=INF, softmax=[NAN] * 3,
        log_softmax=[-INF, NAN, -INF], soft_argmax=NAN),
    Row("a NaN", [1.0, NAN, 2.0], lse=NAN, softmax=[NAN] * 3, log_softmax=[NAN] * 3,
        soft_argmax=NAN),
    Row("NaN and +inf", [NAN, INF, 1.0], lse=NAN, softmax=[NAN] * 3, log_softmax=[NAN] * 3,
        soft_argmax=NAN),
    Row("NaN and all -inf", [-INF, NAN, -INF], lse=NAN, softmax=[NAN] * 3,
        log_softmax=[NAN] * 3, soft_argmax=NAN),
    Row("n = 1", [2.5], lse=2.5, softmax=[1.0], log_softmax=[0.0], soft_argmax=0.0, exact=True),
    Row("n = 1, -inf", [-INF], lse=-INF, softmax=[0.0], log_softmax=[-INF], soft_argmax=NAN,
        zero_grad=True),
    Row("[1000, 1000] float64", [1000.0, 1000.0], lse=1000.0 + LN2, softmax=[0.5, 0.5],
        log_softmax=[-LN2, -LN2], soft_argmax=0.5),
    Row("[-1000, -1000] float64", [-1000.0, -1000.0], lse=-1000.0 + LN2, softmax=[0.5, 0.5],
        log_softmax=[-LN2, -LN2], soft_argmax=0.5),
    Row("[1e10, 1e-10]", [1e10, 1e-10], lse=1e10, softmax=[1.0, 0.0],
        log_softmax=[0.0, -1e10], soft_argmax=0.0, exact=True),
    Row("[88.8, 88.8] float32 -> 89.49315", [88.8, 88.8], dtype=np.float32, lse=89.49315,
        softmax=[0.5, 0.5]),
    Row("[0, -40] within 1 ulp of logaddexp", [0.0, -40.0],
        lse=float(np.logaddexp(0.0, -40.0)), ulp_lse=1.0),
    Row("all-equal row n=7", [_E7] * 7, lse=_E7 + math.log(7), softmax=[1 / 7] * 7,
        log_softmax=[-math.log(7)] * 7, soft_argmax=3.0),
    Row("all-equal row n=50 float32", [-2.5] * 50, dtype=np.float32,
        lse=-2.5 + math.log(50), softmax=[1 / 50] * 50, log_softmax=[-math.log(50)] * 50,
        soft_argmax=24.5),
]

# (id, padded row length or None for the row itself, number of rows in the batch)
PATHS = [
    pytest.param(None, id="short"),
    pytest.param(300, id="long-n300"),
    pytest.param(70000, id="split-n70000"),
]


def _batch(row: Row, length: int | None, rng):
    """A 3-row batch: the table row, an ordinary row, the table row again (rows are
    independent: a special value must not leak into its neighbour)."""
    n = len(row.x) if length is None else length
    pad = n - len(row.x)
    special = np.array(row.x + [-INF] * pad, dtype=row.dtype)
    normal = (rng.standard_normal(n) * 2).astype(row.dtype)
    x = np.stack([special, normal, special])
    where = None
    if row.where is not None:
        wrow = np.array(row.where + [True] * pad)
        where = np.stack([wrow, np.ones(n, bool), wrow])
    return x, where, pad


def _expected_row(row: Row, op: str, pad: int):
    if op in ("logsumexp", "smooth_max"):
        return row.lse
    if op == "soft_argmax":
        return row.soft_argmax
    values = row.softmax if op == "softmax" else row.log_softmax
    if values is None:
        return None
    kept = row.x if row.where is None else [v for v, k in zip(row.x, row.where, strict=True) if k]
    nan_fill = row.nan_row if op == "softmax" else any(math.isnan(v) for v in kept)
    fill = NAN if nan_fill else (0.0 if op == "softmax" else -INF)
    return values + [fill] * pad


def _check_row(got, expected, row: Row, op: str, x_row):
    expected = np.asarray(expected, np.float64)
    if row.exact:
        assert_same(np.asarray(got, np.float64), expected, f"{row.id}: {op} (exact)")
        return
    if row.ulp_lse is not None and op in ("logsumexp", "smooth_max"):
        tol = row.ulp_lse * np.spacing(abs(float(expected)))
        assert abs(float(got) - float(expected)) <= tol, \
            f"{row.id}: {op} = {float(got)!r}, expected {float(expected)!r} within {tol:.3g}"
        return
    finite = np.asarray(x_row, np.float64)
    finite = finite[np.isfinite(finite)]
    scale = float(np.max(np.abs(finite))) if finite.size else 0.0
    scale = scale if op == "log_softmax" else 0.0
    assert_close(got, expected, np.dtype(row.dtype), scale, f"{row.id}: {op}")


# (op, row) pairs whose cell semantics.md fills in
FORWARD_CELLS = [
    pytest.param(op, row, id=f"{op}-{row.id}")
    for op in ("logsumexp", "smooth_max", "softmax", "log_softmax", "soft_argmax")
    for row in TABLE
    if _expected_row(row, op, 0) is not None
]


@pytest.mark.parametrize("length", PATHS)
@pytest.mark.parametrize(("op", "row"), FORWARD_CELLS)
def test_table_forward(backend, op, row, length, rng):
    x, where, pad = _batch(row, length, rng)
    expected = _expected_row(row, op, pad)
    kwargs = {"axis": -1} if where is None else {"axis": -1, "where": where}
    got = backend.run(op, x, **kwargs)
    assert got.dtype == row.dtype
    expected_shape = x.shape[:1] if op in ("logsumexp", "smooth_max", "soft_argmax") else x.shape
    assert got.shape == expected_shape
    for r in (0, 2):
        _check_row(got[r], expected, row, op, x[r])
    # the ordinary row in between is untouched by its neighbours
    ref = getattr(reference, op)(x[1:2].astype(np.float64), axis=-1)
    assert_close(got[1:2], ref, np.dtype(row.dtype), np.max(np.abs(x[1])), f"{op} ordinary row")


def _backward_args(op: str, x, where, rng):
    """Arguments of a backward op around the batch x: forward results from the reference,
    cotangents with NaN at masked-out elements (they must be ignored there)."""
    x64 = x.astype(np.float64)
    mask = np.ones(x.shape, bool) if where is None else where
    dout = np.array([1.5, -0.75, 2.0])
    dy = rng.standard_normal(x.shape)
    dy = np.where(mask, dy, NAN)
    kw = {"axis": -1} if where is None else {"axis": -1, "where": where}
    if op == "logsumexp_backward":
        out = reference.logsumexp(x64, **kw).astype(x.dtype)
        return (x, out, dout.astype(x.dtype)), kw
    if op == "softmax_backward":
        return (reference.softmax(x64, **kw).astype(x.dtype), dy.astype(x.dtype)), kw
    if op == "log_softmax_backward":
        return (reference.log_softmax(x64, **kw).astype(x.dtype), dy.astype(x.dtype)), kw
    return (x, dout.astype(x.dtype)), kw


@pytest.mark.parametrize("length", PATHS)
@pytest.mark.parametrize("row", TABLE, ids=lambda r: r.id)
@pytest.mark.parametrize("op", BACKWARD)
def test_table_backward(backend, op, row, length, rng):
    """Gradients of the table rows: as the reference, exactly 0 at masked-out elements and on
    rows with nothing kept or only -inf (never NaN), even where dy is NaN at masked elements."""
    x, where, _ = _batch(row, length, rng)
    args, kw = _backward_args(op, x, where, rng)
    got = backend.run(op, *args, **kw)
    assert got.dtype == row.dtype and got.shape == x.shape
    ref_args = tuple(np.asarray(a, np.float64) for a in args)
    ref = getattr(reference, op)(*ref_args, **kw)
    scale = np.max(np.abs(np.where(np.isfinite(ref), ref, 0.0)), axis=-1, keepdims=True)
    if op in ("softmax_backward", "log_softmax_backward"):
        dy = np.where(np.isfinite(ref_args[1]), np.abs(ref_args[1]), 0.0)
        scale = scale + dy.sum(axis=-1, keepdims=True)
    assert_close(got, ref, np.dtype(row.dtype), scale, f"{row.id}: {op}")
    if where is not None:
        assert np.all(got[~where] == 0.0), f"{row.id}: {op} is not 0 at masked-out elements"
    if row.zero_grad:
        assert np.all(got[[0, 2]] == 0.0), f"{row.id}: {op} gives {got[0]} (expected all 0)"
    if not row.nan_row:
        assert not np.isnan(got).any(), f"{row.id}: {op} has NaN: {got}"


def test_all_equal_row_gradients(backend):
    """Backward values of an all-equal row of length n, written out."""
    n, v = 6, 0.75
    x = np.full((1, n), v)
    dy = np.array([[0.5, -1.0, 2.0, 0.25, 0.0, 3.0]])
    j = np.arange(n)
    y = np.full((1, n), 1.0 / n)
    got = backend.run("softmax_backward", y, dy)
    assert_close(got, (dy - dy.mean()) / n, np.dtype(np.float64), 1.0, "softmax_backward")
    got = backend.run("log_softmax_backward", np.log(y), dy)
    assert_close(got, dy - dy.sum() / n, np.dtype(np.float64), 1.0, "log_softmax_backward")
    got = backend.run("logsumexp_backward", x, np.array(v + math.log(n)), 2.0, None)
    assert_close(got, np.full((1, n), 2.0 / n), np.dtype(np.float64), 0.0, "logsumexp_backward")
    got = backend.run("smooth_max_backward", x, np.array([2.0]))
    assert_close(got, np.full((1, n), 2.0 / n), np.dtype(np.float64), 0.0,
                 "smooth_max_backward")
    got = backend.run("soft_argmax_backward", x, np.array([2.0]))
    assert_close(got, 2.0 * (j[None] - (n - 1) / 2) / n, np.dtype(np.float64), 2.0,
                 "soft_argmax_backward")


# Empty rows and empty batches (no padding: the row length is the point)

@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
def test_empty_row(backend, dtype):
    x = np.empty((3, 0), dtype)
    for op, value in (("logsumexp", -INF), ("smooth_max", -INF), ("soft_argmax", NAN)):
        got = backend.run(op, x, axis=-1)
        assert got.dtype == dtype
        assert_same(got, np.full(3, value, dtype), f"empty row: {op}")
    for op in ("softmax", "log_softmax"):
        got = backend.run(op, x, axis=-1)
        assert got.dtype == dtype and got.shape == (3, 0)
    sign = backend.run("logsumexp", x, axis=-1, return_sign=True)[1]
    assert_same(sign, np.zeros(3, dtype), "empty row: sign")
    assert_same(backend.run("logsumexp", np.empty(0, dtype)), np.array(-INF, dtype), "(0,)")
    for op, args in (("logsumexp_backward", (x, np.full(3, -INF, dtype), np.ones(3, dtype))),
                     ("softmax_backward", (x, x)), ("log_softmax_backward", (x, x)),
                     ("smooth_max_backward", (x, np.ones(3, dtype))),
                     ("soft_argmax_backward", (x, np.ones(3, dtype)))):
        kw = {"axis": -1}
        got = backend.run(op, *args, **kw)
        assert got.dtype == dtype and got.shape == (3, 0), op


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
def test_empty_batch(backend, dtype):
    x = np.empty((0, 4), dtype)
    for op in ("logsumexp", "smooth_max", "soft_argmax"):
        got = backend.run(op, x, axis=-1)
        assert got.dtype == dtype and got.shape == (0,), op
        got = backend.run(op, x, axis=-1, keepdims=True)
        assert got.shape == (0, 1), op
    for op in ("softmax", "log_softmax"):
        got = backend.run(op, x, axis=-1)
        assert got.dtype == dtype and got.shape == (0, 4), op
    for op, args in (("logsumexp_backward", (x, np.empty(0, dtype), np.empty(0, dtype))),
                     ("softmax_backward", (x, x)), ("log_softmax_backward", (x, x)),
                     ("smooth_max_backward", (x, np.empty(0, dtype))),
                     ("soft_argmax_backward", (x, np.empty(0, dtype)))):
        got = backend.run(op, *args, axis=-1)
        assert got.dtype == dtype and got.shape == (0, 4), op


def test_nan_stays_in_its_row(backend):
    x = np.array([[1.0, 2.0, 3.0], [1.0, NAN, 3.0], [4.0, 5.0, 6.0]])
    for op in ("logsumexp", "smooth_max", "soft_argmax", "softmax", "log_softmax"):
        got = backend.run(op, x, axis=-1)
        assert np.isnan(got[1]).all(), op
        assert np.isfinite(got[[0, 2]]).all(), op
        ref = getattr(reference, op)(x[[0, 2]], axis=-1)
        assert_close(got[[0, 2]], ref, np.dtype(np.float64), 6.0, op)


# ----------------------------------------------------------------------------------------------
# b weights and return_sign (SciPy semantics), compared with written-out values and with SciPy
# ----------------------------------------------------------------------------------------------


def _decimal_lse(a, b):
    """log|sum b exp(a)| and its sign with 50 significant digits (finite a)."""
    getcontext().prec = 50
    s = sum(Decimal(bi) * Decimal(ai).exp() for ai, bi in zip(a, b, strict=True))
    if s == 0:
        return -INF, 0.0
    return float(abs(s).ln()), (1.0 if s > 0 else -1.0)


_GH22903 = ([3.064, 0.372, 3.875], [1.88, 2.84, -0.85])

# (id, a, b, expected value without return_sign, expected (value, sign) with it)
B_ROWS = [
    ("b=0 hides +inf and NaN", [1.0, INF, NAN, 2.0], [1.0, 0.0, 0.0, 1.0],
     math.log(math.e + math.e**2), (math.log(math.e + math.e**2), 1.0)),
    ("negative b, positive total", [1.0, 2.0], [-1.0, 1.0],
     math.log(math.e**2 - math.e), (math.log(math.e**2 - math.e), 1.0)),
    ("negative total is NaN without return_sign", [1.0, 2.0], [1.0, -1.0],
     NAN, (math.log(math.e**2 - math.e), -1.0)),
    ("negative scalar b", [1.0, 2.0], -1.0,
     NAN, (math.log(math.e + math.e**2), -1.0)),
    ("exact zero total", [1.0, 1.0], [1.0, -1.0], -INF, (-INF, 0.0)),
    ("[inf] with b=[-1]", [INF], [-1.0], NAN, (INF, -1.0)),
    ("[inf] with b=[2]", [INF], [2.0], INF, (INF, 1.0)),
    ("[inf, inf] with b=[1, -1]", [INF, INF], [1.0, -1.0], NAN, (NAN, NAN)),
    ("[inf, -inf] with b=[1, -1]", [INF, -INF], [1.0, -1.0], INF, (INF, 1.0)),
    ("a NaN with b != 0", [1.0, NAN], [1.0, 2.0], NAN, (NAN, NAN)),
    ("all b zero", [1.0, 2.0], [0.0, 0.0], -INF, (-INF, 0.0)),
    ("SciPy gh-22903 a=[3.064, 0.372, 3.875], b=[1.88, 2.84, -0.85]", *_GH22903,
     _decimal_lse(*_GH22903)[0], _decimal_lse(*_GH22903)),
    ("largest a has a negative b, total just positive", [0.0, 1e-3], [1.0, -0.99],
     _decimal_lse([0.0, 1e-3], [1.0, -0.99])[0], _decimal_lse([0.0, 1e-3], [1.0, -0.99])),
    ("large a, mixed b, negative total", [700.0, 699.0, 10.0], [1.0, -3.0, 5.0],
     NAN, (700.0 + _decimal_lse([0.0, -1.0], [1.0, -3.0])[0], -1.0)),
]


def _b_check(got, expected, err):
    got = np.asarray(got, np.float64)
    assert got.shape == ()
    if math.isnan(expected) or math.isinf(expected):
        assert_same(got, np.array(expected), err)
    else:
        tol = max(4 * np.spacing(abs(expected)), 1e-13 * abs(expected), 1e-300)
        assert abs(float(got) - expected) <= tol, \
            f"{err}: got {float(got)!r}, expected {expected!r}"


@pytest.mark.parametrize(("a", "b", "value", "signed"), [pytest.param(*r[1:], id=r[0])
                                                         for r in B_ROWS])
def test_b_and_return_sign(backend, a, b, value, signed):
    a = np.array(a)
    b_arr = np.array(b) if isinstance(b, list) else b
    with np.errstate(all="ignore"):
        scipy_value = scipy.special.logsumexp(a, b=b_arr)
        scipy_signed = scipy.special.logsumexp(a, b=b_arr, return_sign=True)
    got = backend.run("logsumexp", a, b=b_arr)
    _b_check(got, value, "value")
    got_value, got_sign = backend.run("logsumexp", a, b=b_arr, return_sign=True)
    _b_check(got_value, signed[0], "return_sign value")
    _b_check(got_sign, signed[1], "return_sign sign")
    # where SciPy is finite or agrees on the special value, fastops gives what SciPy gives
    _b_check(got, float(scipy_value), "value vs SciPy")
    _b_check(got_value, float(scipy_signed[0]), "return_sign value vs SciPy")
    _b_check(got_sign, float(scipy_signed[1]), "sign vs SciPy")


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
def test_b_rows_batched(backend, dtype):
    """The b table rows stacked into one 2-D call (rows padded with b = 0 entries): each row
    independent of the others."""
    n = max(len(r[1]) for r in B_ROWS)
    a = np.zeros((len(B_ROWS), n))
    b = np.zeros((len(B_ROWS), n))
    for i, r in enumerate(B_ROWS):
        a[i, : len(r[1])] = r[1]
        b[i, : len(r[1])] = r[2]
        a[i, len(r[1]):] = NAN  # hidden by b = 0
    a, b = a.astype(dtype), b.astype(dtype)
    value, sign = backend.run("logsumexp", a, axis=-1, b=b, return_sign=True)
    with np.errstate(all="ignore"):
        exp_value, exp_sign = scipy.special.logsumexp(
            np.where(b != 0, a, -INF).astype(np.float64), axis=-1, b=b.astype(np.float64),
            return_sign=True)
    assert value.dtype == dtype and sign.dtype == dtype
    assert_same(sign, exp_sign.astype(dtype), "signs")
    assert_close(value, exp_value, np.dtype(dtype), 1.0, "values")


def test_return_sign_without_b(backend):
    x = np.array([[1.0, 2.0], [-INF, -INF], [NAN, 1.0], [INF, 0.0]])
    value, sign = backend.run("logsumexp", x, axis=-1, return_sign=True)
    assert_same(sign, np.array([1.0, 0.0, NAN, 1.0]), "sign")
    assert_close(value, [math.log(math.e + math.e**2), -INF, NAN, INF],
                 np.dtype(np.float64), 0.0, "value")


def test_b_with_where(backend):
    """where masks an element out even when its b is not 0 (and its a is NaN)."""
    a = np.array([1.0, NAN, 2.0])
    b = np.array([2.0, 3.0, -0.5])
    where = np.array([True, False, True])
    value, sign = backend.run("logsumexp", a, b=b, where=where, return_sign=True)
    expected = _decimal_lse([1.0, 2.0], [2.0, -0.5])
    _b_check(value, expected[0], "value")
    _b_check(sign, expected[1], "sign")


# ----------------------------------------------------------------------------------------------
# Shared rules
# ----------------------------------------------------------------------------------------------

PROMOTED = [np.bool_, np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16, np.uint32,
            np.uint64]
ALL_OPS = ("logsumexp", "smooth_max", "soft_argmax", "softmax", "log_softmax") + BACKWARD


def _promotion_input(dtype):
    if dtype is np.bool_:
        return np.array([[True, False, True], [False, False, True]])
    if np.dtype(dtype).kind == "u":
        # uint8 [0, 255]: 255 + 1 must not wrap to 0
        top = np.iinfo(dtype).max if dtype is np.uint8 else 200
        return np.array([[0, top, 1], [top, top, 3]], dtype=dtype)
    return np.array([[-3, 0, 100], [7, 7, -128]], dtype=dtype)


def _args_for(op, x):
    """The arguments of op with x (and, for the backward ops, cotangents) of x's dtype."""
    if op in ("logsumexp_backward",):
        out = reference.logsumexp(x.astype(np.float64), axis=-1)
        return (x, out, np.ones(x.shape[0], x.dtype)), {"axis": -1}
    if op in ("softmax_backward", "log_softmax_backward"):
        return (x, np.ones_like(x)), {"axis": -1}
    if op in ("smooth_max_backward", "soft_argmax_backward"):
        return (x, np.ones(x.shape[0], x.dtype)), {"axis": -1}
    return (x,), {"axis": -1}


@pytest.mark.parametrize("dtype", PROMOTED, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("op", ALL_OPS)
def test_promotion_to_float64(backend, op, dtype):
    x = _promotion_input(dtype)
    args, kw = _args_for(op, x)
    got = backend.run(op, *args, **kw)
    assert got.dtype == np.float64
    ref = getattr(reference, op)(*(np.asarray(a, np.float64) for a in args), **kw)
    assert_close(got, ref, np.dtype(np.float64), 300.0, f"{op} {np.dtype(dtype).name}")


def test_uint8_does_not_wrap(backend):
    x = np.array([0, 255], np.uint8)
    got = backend.run("logsumexp", x)
    assert got.dtype == np.float64
    assert float(got) == 255.0 + math.log1p(math.exp(-255.0))
    got = backend.run("softmax", x)
    assert_close(got, [math.exp(-255.0), 1.0], np.dtype(np.float64), 0.0, "softmax uint8")
    got = backend.run("soft_argmax", np.array([250, 255, 0], np.uint8))
    expected = _plain([250.0, 255.0, 0.0])[3]
    assert_close(got, expected, np.dtype(np.float64), 3.0, "soft_argmax uint8")


@pytest.mark.parametrize("op", ALL_OPS)
def test_float16_stays_float16(backend, op, rng):
    x = (rng.standard_normal((3, 10)) * 2).astype(np.float16)
    args, kw = _args_for(op, x)
    args = tuple(a.astype(np.float16) if isinstance(a, np.ndarray) else a for a in args)
    got = backend.run(op, *args, **kw)
    assert got.dtype == np.float16
    ref = getattr(reference, op)(*(np.asarray(a, np.float64) for a in args), **kw)
    scale = np.max(np.abs(np.where(np.isfinite(ref), ref, 0)))  # one scale for all rows
    assert_close(got, ref, np.dtype(np.float16), scale + 10.0 * (op == "log_softmax"), op)


@pytest.mark.parametrize("op", ALL_OPS)
def test_zero_d_input(backend, op):
    """A 0-d input with axis=None behaves as a 1-element row."""
    x0 = np.array(1.75)
    x1 = np.array([1.75])
    if op == "logsumexp_backward":
        a0, a1 = (x0, np.array(1.75), np.array(2.0)), (x1, np.array(1.75), np.array(2.0))
    elif op in ("softmax_backward", "log_softmax_backward"):
        y = 1.0 if op == "softmax_backward" else 0.0
        a0, a1 = (np.array(y), np.array(2.0)), (np.array([y]), np.array([2.0]))
    elif op in BACKWARD:
        a0, a1 = (x0, np.array(2.0)), (x1, np.array(2.0))
    else:
        a0, a1 = (x0,), (x1,)
    got0 = backend.run(op, *a0, axis=None)
    got1 = backend.run(op, *a1, axis=None)
    assert np.shape(got0) == ()
    assert np.asarray(got0).dtype == np.float64
    assert_same(np.asarray(got0), np.asarray(got1).reshape(()), op)
    expected = {"logsumexp": 1.75, "smooth_max": 1.75, "soft_argmax": 0.0, "softmax": 1.0,
                "log_softmax": 0.0, "logsumexp_backward": 2.0, "softmax_backward": 0.0,
                "log_softmax_backward": 0.0, "smooth_max_backward": 2.0,
                "soft_argmax_backward": 0.0}[op]
    assert float(got0) == expected


def test_scalar_and_list_inputs(backend):
    """Python scalars and lists are accepted like 0-d and 1-d NumPy arrays (CPU backends)."""
    if backend.name == "cupy":
        x = backend.xp.asarray([2.0, 1.0, 4.0, 5.0, 3.0])
    else:
        x = [2.0, 1.0, 4.0, 5.0, 3.0]
    got = backend.function("logsumexp")(x)
    assert abs(float(got) - 5.451914395937593) <= 4e-15


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_exact_cancellations_at_two_levels(backend, dtype):
    """Terms at e^700 that cancel, then at e^50, leave e^-50: scaled by the largest term the
    rest underflowed to a zero total (-inf); equal a are grouped and cancelling groups dropped
    (reference.exact_cancellations). In a batch, on a non-trailing axis, with a mask."""
    a = np.array([[700.0, 700.0, 50.0, 50.0, -50.0, 3.0],
                  [700.0, 700.0, 50.0, 50.0, -50.0, 3.0],
                  [1.0, 1.0, 2.0, 2.0, 0.0, 0.0],
                  [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]], dtype)
    b = np.array([[1.0, -1.0, 1.0, -1.0, 1.0, 0.0],
                  [2.0, -2.0, -1.0, 1.0, -3.0, 0.0],
                  [1.0, -1.0, 2.0, -2.0, 0.0, 0.0],  # an exact zero stays (-inf, 0)
                  [1.0, 1.0, 1.0, 1.0, 1.0, 1.0]], dtype)
    where = np.ones(a.shape, bool)
    where[1, 5] = False
    expected_value = np.array([-50.0, -50.0 + np.log(3.0), -np.inf,
                               scipy.special.logsumexp(a[3].astype(np.float64))])
    expected_sign = np.array([1.0, -1.0, 0.0, 1.0])
    for args, axis in (((a, b), 1), ((a.T.copy(), b.T.copy()), 0)):
        value, sign = backend.run("logsumexp", args[0], axis=axis, b=args[1], where=where
                                  if axis == 1 else where.T, return_sign=True)
        np.testing.assert_allclose(value, expected_value, rtol=1e-6)
        np.testing.assert_array_equal(sign, expected_sign)
