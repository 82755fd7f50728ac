"""Complex logsumexp (SciPy's semantics) and its gradient, on every backend, against SciPy
and against finite differences."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import scipy.special

INF = np.inf


def _complex(rng, shape, scale=3.0):
    return rng.standard_normal(shape) * scale + 1j * rng.uniform(-10, 10, shape)


@pytest.mark.parametrize(("shape", "axis"), [
    ((7,), None), ((5, 33), 1), ((5, 33), 0), ((5, 33), None), ((3, 4, 5), (0, 2)),
    ((2, 300), -1), ((1, 1), 0),
])
@pytest.mark.parametrize("dtype", [np.complex64, np.complex128], ids=["c64", "c128"])
@pytest.mark.parametrize("return_sign", [False, True], ids=["value", "sign"])
def test_against_scipy(backend, shape, axis, dtype, return_sign, rng):
    a = _complex(rng, shape).astype(dtype)
    got = backend.run("logsumexp", a, axis=axis, return_sign=return_sign)
    expected = scipy.special.logsumexp(a, axis=axis, return_sign=return_sign)
    rtol = 2e-5 if dtype == np.complex64 else 1e-12
    for g, e in zip(got, expected, strict=True) if return_sign else [(got, expected)]:
        assert np.asarray(g).dtype == np.asarray(e).dtype
        assert np.shape(g) == np.shape(e)
        np.testing.assert_allclose(g, e, rtol=rtol, atol=rtol)


@pytest.mark.parametrize("kind", ["real b", "complex b", "negative b"])
def test_weights_and_masks(backend, kind, rng):
    a = _complex(rng, (6, 40))
    b = rng.random((1, 40)) + 0.1
    if kind == "complex b":
        b = b * np.exp(1j * rng.uniform(-3, 3, (1, 40)))
    elif kind == "negative b":
        b = -b
    b[0, :5] = 0.0  # b == 0 ignores the element, even where a is inf or NaN
    a[:, 0] = complex(INF, 1.0)
    a[:, 1] = complex(np.nan, 0.0)
    where = rng.random((6, 1)) > 2  # all False ...
    where = np.broadcast_to(where, (6, 40)).copy()
    where[:, 5:] = True  # ... except the weighted part
    for kwargs in ({"b": b}, {"b": b, "where": where}, {"b": b, "return_sign": True}):
        got = backend.run("logsumexp", a, axis=1, **kwargs)
        kw = dict(kwargs)
        kw.pop("where", None)
        expected = scipy.special.logsumexp(a[:, 5:], axis=1, b=b[:, 5:],
                                           return_sign=kw.get("return_sign", False))
        np.testing.assert_allclose(got, expected, rtol=1e-12)


@pytest.mark.parametrize(("x", "y"), list(itertools.product(
    [-INF, INF, complex(-INF, 0.0), complex(-INF, INF), complex(INF, -INF),
     complex(INF, 2.3562), complex(np.nan, 0.0), 1.5 + 2j], repeat=2)))
def test_infinities_take_the_direct_formula(backend, x, y):
    """Rows whose result is not finite are log(sum(exp(a))) with C99 complex semantics, as
    SciPy (gh-22601): bit for bit, also inside a batch of finite rows (the CPU kernel hands
    those rows to the direct formula)."""
    rows = np.array([[x, y], [0.5 + 1j, -1.0 - 2j], [y, x]])
    with np.errstate(all="ignore"):
        expected = np.log(np.sum(np.exp(rows), axis=1))
    got = backend.run("logsumexp", rows, axis=1)
    finite = np.isfinite(expected)
    np.testing.assert_array_equal(got[~finite], expected[~finite])
    np.testing.assert_allclose(got[finite], expected[finite], rtol=1e-14)


def test_nothing_kept_and_empty(backend):
    a = np.array([[1 + 1j, 2 - 1j]])
    got = backend.run("logsumexp", a, axis=1, where=np.array([[False, False]]))
    assert got[0] == complex(-INF, 0.0)
    value, sign = backend.run("logsumexp", np.zeros((2, 0), np.complex128), axis=1,
                              return_sign=True)
    assert np.all(value == -INF) and value.dtype == np.float64


def test_imaginary_part_is_wrapped(backend, rng):
    a = 30.0 + 1j * rng.uniform(20, 40, (10, 100))
    got = backend.run("logsumexp", a, axis=1)
    assert np.all(np.abs(got.imag) <= np.pi)
    np.testing.assert_allclose(got, scipy.special.logsumexp(a, axis=1), rtol=1e-13)


def test_softmax_stays_real(backend):
    with pytest.raises(TypeError, match="softmax: x must be a real array"):
        backend.run("softmax", np.array([1 + 1j, 2.0]))


@pytest.mark.parametrize("weighted", [False, True])
def test_backward_against_finite_differences(backend, weighted, rng):
    """logsumexp_backward of complex a is the holomorphic derivative b exp(a - out) times
    dout: a central difference along a real step gives it (the function is holomorphic)."""
    import fastops

    a = _complex(rng, (3, 6), scale=1.0)
    b = (rng.random((3, 6)) + 0.5) * np.exp(0.3j) if weighted else None
    dout = rng.standard_normal(3) + 1j * rng.standard_normal(3)
    out = fastops.logsumexp(a, axis=1, b=b)
    got = backend.run("logsumexp_backward", a, out, dout, axis=1, b=b)
    h = 1e-6
    fd = np.empty_like(a)
    for i, j in itertools.product(range(3), range(6)):
        step = np.zeros_like(a)
        step[i, j] = h
        diff = fastops.logsumexp(a + step, axis=1, b=b) - fastops.logsumexp(a - step, axis=1,
                                                                           b=b)
        fd[i, j] = dout[i] * diff[i] / (2 * h)
    np.testing.assert_allclose(got, fd, rtol=1e-7, atol=1e-8)
    assert got.dtype == np.complex128


def test_backward_zeros(backend):
    a = np.array([[complex(-INF, 1.0), 1 + 1j, 2.0 + 0j]])
    out = np.array([2.5 + 0.1j])
    got = backend.run("logsumexp_backward", a, out, 1.0, axis=1,
                      b=np.array([1.0, 0.0, 1.0]), where=np.array([[True, True, True]]))
    assert got[0, 0] == 0 and got[0, 1] == 0 and got[0, 2] != 0
