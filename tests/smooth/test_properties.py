"""Properties (Hypothesis) and sanity of the reference.

- bounds max <= logsumexp <= max + log n, shift invariance, softmax rows summing to 1,
  smooth_max -> max and soft_argmax -> argmax as the temperature -> 0;
- every backward op against central finite differences of the reference forward (float64,
  random cotangents, with ``where`` masks and temperatures != 1);
- the numba backend equals the reference on generated inputs holding -inf entries and masks;
- the reference agrees with scipy.special and with the values of formulas.md section 9.

Hypothesis runs derandomized (the same examples on every run) and without a database.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.special
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

import fastops
from fastops.smooth import reference

from ._support import BACKWARD, FORWARD, OPS, assert_close, make_case

SETTINGS = settings(max_examples=40, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.too_slow,
                                           HealthCheck.function_scoped_fixture])
FEW = settings(SETTINGS, max_examples=25)

CPU = ["numba", "numpy"]


def _call(backend: str, op: str, *args, **kwargs):
    if backend == "numpy":
        if op in FORWARD:
            return getattr(fastops, op)(*args, backend="numpy", **kwargs)
        return getattr(reference, op)(*args, **kwargs)
    return getattr(fastops, op)(*args, **kwargs)


def finite_rows(max_rows=4, min_n=1, max_n=80, lo=-100.0, hi=100.0, dtype=np.float64):
    """2-D arrays (rows, n) of finite floats in [lo, hi]."""
    shapes = st.tuples(st.integers(1, max_rows), st.integers(min_n, max_n))
    return shapes.flatmap(lambda s: arrays(
        dtype, s, elements=st.floats(lo, hi, allow_nan=False, allow_infinity=False,
                                     width=np.dtype(dtype).itemsize * 8)))


EPS = {np.dtype(np.float32): float(np.finfo(np.float32).eps),
       np.dtype(np.float64): float(np.finfo(np.float64).eps)}


# ----------------------------------------------------------------------------------------------
# Bounds and invariances
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("backend", CPU)
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@SETTINGS
@given(data=st.data())
def test_lse_bounds(backend, dtype, data):
    x = data.draw(finite_rows(dtype=dtype))
    tau = data.draw(st.sampled_from([1.0, 0.25, 3.0]))
    n = x.shape[1]
    m = x.max(axis=-1).astype(np.float64)
    slack = 4 * EPS[np.dtype(dtype)] * (np.abs(m) + tau * math.log(n) + 1.0)
    lse = np.asarray(_call(backend, "logsumexp", x, axis=-1), np.float64)
    assert np.all(lse >= m - slack) and np.all(lse <= m + math.log(n) + slack), (x, lse)
    sm = np.asarray(_call(backend, "smooth_max", x, temperature=tau), np.float64)
    assert np.all(sm >= m - slack) and np.all(sm <= m + tau * math.log(n) + slack), (x, sm)


@pytest.mark.parametrize("backend", CPU)
@SETTINGS
@given(data=st.data())
def test_shift_invariance(backend, data):
    x = data.draw(finite_rows(lo=-50.0, hi=50.0))
    c = data.draw(st.floats(-200.0, 200.0))
    xc = x + c
    lse = _call(backend, "logsumexp", x, axis=-1)
    lse_c = _call(backend, "logsumexp", xc, axis=-1)
    scale = np.max(np.abs(xc), axis=-1) + np.max(np.abs(x), axis=-1) + abs(c) + 10.0
    assert np.all(np.abs(lse_c - (lse + c)) <= 1e-13 * scale), (lse_c, lse + c)
    p = _call(backend, "softmax", x)
    p_c = _call(backend, "softmax", xc)
    # x + c is rounded: exp(x_i - m) moves by |x + c| eps relative
    assert np.all(np.abs(p_c - p) <= 1e-13 * scale[:, None] * np.maximum(p, p_c) + 1e-300)
    y = _call(backend, "soft_argmax", x)
    y_c = _call(backend, "soft_argmax", xc)
    assert np.all(np.abs(y_c - y) <= 1e-13 * scale * x.shape[1])


@pytest.mark.parametrize("backend", CPU)
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@SETTINGS
@given(data=st.data())
def test_softmax_rows_sum_to_one(backend, dtype, data):
    x = data.draw(finite_rows(max_n=300, dtype=dtype))
    tau = data.draw(st.sampled_from([1.0, 0.5, 4.0]))
    p = _call(backend, "softmax", x, temperature=tau)
    assert p.dtype == dtype
    n = x.shape[1]
    total = p.astype(np.float64).sum(axis=-1)
    assert np.all(np.abs(total - 1.0) <= 4 * EPS[np.dtype(dtype)] * n), total
    assert np.all((p >= 0) & (p <= 1))
    # exp of log_softmax is softmax
    logp = _call(backend, "log_softmax", x, temperature=tau).astype(np.float64)
    # log_softmax = x/tau - lse: its absolute error is eps * (|x|/tau + |lse|)
    size = np.abs(logp) + np.max(np.abs(x), axis=-1, keepdims=True) / tau + math.log(n) + 1
    assert np.all(np.abs(np.exp(logp) - p) <= 8 * EPS[np.dtype(dtype)] * size * p + 1e-30)


@pytest.mark.parametrize("backend", CPU)
@SETTINGS
@given(x=finite_rows(lo=-10.0, hi=10.0))
def test_smooth_max_tends_to_max(backend, x):
    m = x.max(axis=-1)
    n = x.shape[1]
    for tau in (1e-2, 1e-4, 1e-8, 1e-300):
        sm = _call(backend, "smooth_max", x, temperature=tau)
        ulps = 4 * np.spacing(np.abs(m))
        assert np.all(sm >= m - ulps), (tau, sm, m)
        # (1 + 1e-12): tau * log(n) itself is rounded (all-tied rows reach the bound exactly)
        assert np.all(sm <= m + tau * math.log(n) * (1 + 1e-12) + ulps), (tau, sm, m)


@pytest.mark.parametrize("backend", CPU)
@SETTINGS
@given(data=st.data())
def test_soft_argmax_tends_to_argmax(backend, data):
    n = data.draw(st.integers(2, 200))
    x = data.draw(arrays(np.float64, n, elements=st.floats(-10, 10), unique=True))
    top = int(np.argmax(x))
    gap = np.sort(x)[-1] - np.sort(x)[-2]
    assume(gap > 1e-3)
    tau = gap / 60.0  # every other element weighs at most exp(-60)
    y = float(_call(backend, "soft_argmax", x, temperature=tau))
    assert abs(y - top) <= n * n * math.exp(-59.0) + 1e-9 * n, (y, top)
    y1 = float(_call(backend, "soft_argmax", x))
    assert 0.0 <= y1 <= n - 1


# ----------------------------------------------------------------------------------------------
# Backward ops against finite differences of the reference forward
# ----------------------------------------------------------------------------------------------


def _objective(op, x, cot, kwargs):
    """The scalar whose gradient the backward op returns: sum of cot * forward(x) over the
    finite forward values (rows with nothing kept, and masked log_softmax entries, are
    constants -inf and drop out)."""
    y = getattr(reference, op.replace("_backward", ""))(x, axis=-1, **kwargs)
    live = np.isfinite(y)
    return float(np.sum(np.where(live, cot * np.where(live, y, 0.0), 0.0)))


def _finite_differences(op, x, cot, kwargs, h=1e-5):
    g = np.zeros_like(x)
    for idx in np.ndindex(*x.shape):
        xp, xm = x.copy(), x.copy()
        xp[idx] += h
        xm[idx] -= h
        g[idx] = (_objective(op, xp, cot, kwargs) - _objective(op, xm, cot, kwargs)) / (2 * h)
    return g


@pytest.mark.parametrize("backend", CPU)
@pytest.mark.parametrize("op", BACKWARD)
@FEW
@given(data=st.data())
def test_backward_matches_finite_differences(backend, op, data):
    rows = data.draw(st.integers(1, 3))
    n = data.draw(st.integers(1, 7))
    x = data.draw(arrays(np.float64, (rows, n), elements=st.floats(-4.0, 4.0)))
    use_where = data.draw(st.booleans())
    where = data.draw(arrays(np.bool_, (rows, n))) if use_where else None
    seed = data.draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    kwargs = {} if where is None else {"where": where}
    if op.startswith("logsumexp"):
        if data.draw(st.booleans()):
            kwargs["b"] = rng.uniform(0.25, 2.0, (rows, n))
    else:
        kwargs["temperature"] = data.draw(st.sampled_from([1.0, 0.5, 1.7]))
    fwd = op.replace("_backward", "")
    elementwise = fwd in ("softmax", "log_softmax")
    cot = rng.standard_normal((rows, n) if elementwise else (rows,))
    expected = _finite_differences(op, x, cot, kwargs)
    if op == "logsumexp_backward":
        out = reference.logsumexp(x, axis=-1, **kwargs)
        got = _call(backend, op, x, out, cot, -1, **kwargs)
    elif elementwise:
        y = reference.softmax(x, axis=-1, **kwargs) if fwd == "softmax" else \
            reference.log_softmax(x, axis=-1, **kwargs)
        got = _call(backend, op, y, cot, -1, **kwargs)
    else:
        got = _call(backend, op, x, cot, -1, **kwargs)
    assert got.shape == x.shape and not np.isnan(got).any()
    tol = 1e-6 * (1.0 + np.max(np.abs(expected))) * (1.0 + np.max(np.abs(cot))) * n
    assert np.all(np.abs(got - expected) <= tol), (got, expected)
    if where is not None:
        assert np.all(got[~where] == 0.0)


# ----------------------------------------------------------------------------------------------
# numba == reference on generated inputs with -inf entries and masks
# ----------------------------------------------------------------------------------------------


@st.composite
def rows_with_specials(draw, dtype, specials=(-np.inf,)):
    """(x, where): rows of finite values with a few ``specials`` placed at drawn positions,
    sometimes a whole row of -inf, sometimes a where mask; row lengths cover every CPU path."""
    rows = draw(st.integers(1, 5))
    n = draw(st.sampled_from([0, 1, 2, 5, 16, 63, 64, 65, 100, 257, 300]))
    width = np.dtype(dtype).itemsize * 8
    x = draw(arrays(dtype, (rows, n), elements=st.floats(-30.0, 30.0, width=width)))
    if n:
        if draw(st.booleans()):  # a whole row of -inf
            x[draw(st.integers(0, rows - 1))] = -np.inf
        for _ in range(draw(st.integers(0, 4))):
            x[draw(st.integers(0, rows - 1)), draw(st.integers(0, n - 1))] = \
                draw(st.sampled_from(specials))
    where = None
    if draw(st.booleans()):
        where = draw(arrays(np.bool_, (rows, n)))
    return x, where


def _numba_equals_reference(op, dtype, data, specials):
    x, where = data.draw(rows_with_specials(dtype, specials))
    seed = data.draw(st.integers(0, 2**32 - 1))
    temperature = None
    if op not in ("logsumexp", "logsumexp_backward"):
        temperature = data.draw(st.sampled_from([None, 0.5, 2.0]))
    case = make_case(op, x, -1, np.random.default_rng(seed), where=where,
                     temperature=temperature)
    got = getattr(fastops, op)(*case.args, **case.kwargs)
    assert isinstance(got, np.ndarray) and got.dtype == case.dtype
    assert_close(got, case.ref, case.dtype, case.scale, op)


@pytest.mark.parametrize("op", OPS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@SETTINGS
@given(data=st.data())
def test_numba_equals_reference(op, dtype, data):
    """-inf entries, all -inf rows and masks."""
    _numba_equals_reference(op, dtype, data, (-np.inf,))


@pytest.mark.parametrize("op", OPS)
@SETTINGS
@given(data=st.data())
def test_numba_equals_reference_nan_inf(op, data):
    """As above, with +inf and NaN entries as well (float64)."""
    _numba_equals_reference(op, np.float64, data, (-np.inf, np.inf, np.nan))


# ----------------------------------------------------------------------------------------------
# The reference against SciPy and formulas.md section 9
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("axis", [None, 0, -1, (0, 2)], ids=lambda a: f"axis={a}")
def test_reference_matches_scipy(axis):
    rng = np.random.default_rng(7)
    for _ in range(20):
        x = rng.standard_normal((3, 4, 5)) * rng.uniform(0.1, 30.0)
        b = rng.uniform(0.0, 2.0, x.shape)
        b_signed = rng.uniform(-1.0, 2.0, x.shape)
        scale = np.max(np.abs(x)) + 5.0
        assert_close(reference.logsumexp(x, axis), scipy.special.logsumexp(x, axis),
                     np.dtype(np.float64), scale, "logsumexp")
        assert_close(reference.logsumexp(x, axis, b=b), scipy.special.logsumexp(x, axis, b=b),
                     np.dtype(np.float64), scale, "logsumexp b")
        v, s = reference.logsumexp(x, axis, b=b_signed, return_sign=True)
        sv, ss = scipy.special.logsumexp(x, axis, b=b_signed, return_sign=True)
        assert np.array_equal(s, ss)
        # the signed sums may cancel: compare log|s| relative to the largest term
        assert_close(v, sv, np.dtype(np.float64), 1e3 * scale, "logsumexp b signed")
        assert_close(reference.logsumexp(x, axis, keepdims=True),
                     scipy.special.logsumexp(x, axis, keepdims=True), np.dtype(np.float64),
                     scale, "keepdims")
        ax = -1 if axis is None else axis
        p = scipy.special.softmax(x, axis=ax)
        assert_close(reference.softmax(x, ax), p, np.dtype(np.float64), np.max(p), "softmax")
        assert_close(reference.log_softmax(x, ax), scipy.special.log_softmax(x, axis=ax),
                     np.dtype(np.float64), scale, "log_softmax")


X9 = np.array([2.0, 1.0, 4.0, 5.0, 3.0])
SOFTMAX9 = [0.03168492, 0.01165623, 0.23412166, 0.63640865, 0.08612854]


def test_reference_formulas_section_9():
    assert abs(float(reference.logsumexp(X9)) - 5.451914395937593) <= 4e-15
    np.testing.assert_allclose(reference.softmax(X9), SOFTMAX9, rtol=0, atol=5e-9)
    assert abs(float(reference.soft_argmax(X9)) + 1.0 - 3.7336396628830797) <= 4e-15
    assert abs(float(reference.soft_argmax(X9)) - 2.7336396628830797) <= 4e-15
    assert int(np.argmax(reference.softmax(X9))) + 1 == 4


def test_formulas_section_9_every_backend(backend):
    lse = float(backend.run("logsumexp", X9))
    assert abs(lse - 5.451914395937593) <= 4 * np.spacing(5.45)
    p = backend.run("softmax", X9)
    np.testing.assert_allclose(p, SOFTMAX9, rtol=0, atol=5e-9)
    y = float(backend.run("soft_argmax", X9))
    assert abs(y - 2.7336396628830797) <= 4 * np.spacing(2.73)  # 1-based: 3.7336396628830797
    sm = float(backend.run("smooth_max", X9, temperature=1.0))
    assert abs(sm - 5.451914395937593) <= 4 * np.spacing(5.45)
    np.testing.assert_allclose(backend.run("log_softmax", X9), np.log(SOFTMAX9), atol=2e-7)
