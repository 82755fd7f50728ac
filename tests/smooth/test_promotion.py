"""SciPy's promotion, broadcasting and 0-d rules in logsumexp / softmax / log_softmax, on every
backend, against SciPy itself (the values and dtypes it returns)."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.special

DTYPES = [np.bool_, np.int32, np.int64, np.float16, np.float32, np.float64]


@pytest.mark.parametrize("dtype_a", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("dtype_b", DTYPES, ids=lambda d: np.dtype(d).name)
def test_result_dtype_from_a_and_b(backend, dtype_a, dtype_b):
    a = np.array([2, 1], dtype_a)
    b = np.array([1, 3], dtype_b)
    got = backend.run("logsumexp", a, b=b)
    expected = scipy.special.logsumexp(a, b=b)
    assert np.dtype(got.dtype) == expected.dtype
    np.testing.assert_allclose(got, expected, rtol=2e-3 if expected.dtype == np.float16 else 1e-6)


@pytest.mark.parametrize("b", [2.0, 2, True, np.float64(2.0), np.float32(2.0), np.array(2.0),
                               np.array([2.0, 2.0], np.float32)],
                         ids=["py-float", "py-int", "py-bool", "np-float64", "np-float32",
                              "0d-float64", "float32"])
@pytest.mark.parametrize("dtype_a", [np.float16, np.float32, np.float64],
                         ids=lambda d: np.dtype(d).name)
def test_python_scalars_are_weak(backend, b, dtype_a):
    """NEP 50: a Python scalar b takes a's dtype, a NumPy scalar or 0-d array does not."""
    a = np.array([1.0, 2.0], dtype_a)
    got = backend.run("logsumexp", a, b=b)
    expected = scipy.special.logsumexp(a, b=b)
    assert np.dtype(got.dtype) == expected.dtype, (got.dtype, expected.dtype)
    np.testing.assert_allclose(got, expected, rtol=1e-3)


@pytest.mark.parametrize(("shape_a", "shape_b", "axis"), [
    ((4, 1, 2, 1), (3, 1, 5), None),  # SciPy's test_logsumexp_b_shape: both broadcast
    ((4, 1, 2, 1), (3, 1, 5), 0),
    ((4, 1, 2, 1), (3, 1, 5), (1, 3)),
    ((3,), (2, 3), -1),  # b adds a leading axis
    ((2, 1), (1, 5), 1),
])
def test_a_and_b_broadcast_together(backend, shape_a, shape_b, axis, rng):
    a = rng.standard_normal(shape_a)
    b = rng.random(shape_b) + 0.1
    got = backend.run("logsumexp", a, axis=axis, b=b)
    expected = scipy.special.logsumexp(a, axis=axis, b=b)
    assert np.shape(got) == np.shape(expected)
    np.testing.assert_allclose(got, expected, rtol=1e-13)
    got, sign = backend.run("logsumexp", a, axis=axis, b=-b, return_sign=True)
    np.testing.assert_allclose(got, expected, rtol=1e-13)
    assert np.all(sign == -1.0)


def test_shapes_that_do_not_broadcast(backend):
    with pytest.raises(ValueError, match=r"logsumexp: a of shape \(2, 3\) and b of shape "
                                         r"\(4,\) do not broadcast together"):
        backend.run("logsumexp", np.ones((2, 3)), b=np.ones(4))


@pytest.mark.parametrize("op", ["softmax", "log_softmax"])
@pytest.mark.parametrize("x", [1000.0, np.float32(-3.0), np.float64(np.inf), 7],
                         ids=["py-float", "float32", "inf", "py-int"])
@pytest.mark.parametrize("axis", [-1, 0, None])
def test_zero_d_softmax(backend, op, x, axis):
    """A 0-d input is a row of one element: softmax 1 (NaN for +inf), log_softmax 0, returned
    0-d (a NumPy scalar on the CPU), in SciPy's dtype."""
    got = backend.run(op, backend.asarray(np.asarray(x)) if backend.name == "cupy" else x,
                      axis=axis)
    expected = getattr(scipy.special, op)(x, axis=axis)
    assert np.shape(got) == ()
    if backend.name != "cupy":
        assert np.isscalar(got) or isinstance(got, np.generic)
    np.testing.assert_equal(np.asarray(got), np.asarray(expected).astype(np.asarray(got).dtype))


@pytest.mark.parametrize("keepdims", [False, True])
def test_zero_d_logsumexp(backend, keepdims):
    got = backend.run("logsumexp", np.float64(3.0), keepdims=keepdims)
    expected = scipy.special.logsumexp(np.float64(3.0), keepdims=keepdims)
    assert np.shape(got) == np.shape(expected)  # (1,) with keepdims, as SciPy
    np.testing.assert_equal(got, expected)


def test_zero_d_backward(backend):
    y = backend.run("softmax", np.float64(2.0))
    assert backend.run("softmax_backward", np.float64(y), np.float64(5.0)) == 0.0
    assert backend.run("smooth_max_backward", np.float64(2.0), 3.0) == 3.0


@pytest.mark.parametrize("x", [[0.0, np.inf], [np.inf, 1.0, -np.inf, np.inf], [np.inf]],
                         ids=["one", "two", "alone"])
def test_log_softmax_of_a_row_with_inf_is_scipys(backend, x):
    x = np.array(x)
    got = backend.run("log_softmax", x)
    np.testing.assert_array_equal(got, scipy.special.log_softmax(x))
    np.testing.assert_array_equal(backend.run("softmax", x), np.full(x.shape, np.nan))
