"""gmm_score against the float64 reference over shapes, dtypes and weights, against central
finite differences of the mixture log density, and its special values."""

from __future__ import annotations

import numpy as np
import pytest

import fastops
from fastops.langevin import reference

F64 = np.float64
RTOL = {np.dtype(np.float32): 3e-5, np.dtype(np.float64): 1e-11}

# (n, d, K): points, dimension, components; on the GPU d <= 16 is a thread per point, d = 64
# four lanes, d = 300 32 lanes, d = 600 the "wide" path
CASES = [(1, 1, 1), (7, 2, 8), (130, 3, 5), (64, 64, 64), (33, 17, 3), (9, 300, 4), (5, 600, 3),
         (0, 2, 3)]


def _mixture(rng, n, d, k, dtype):
    means = (rng.standard_normal((k, d)) * 2).astype(dtype)
    x = (rng.standard_normal((n, d)) * 2).astype(dtype)
    return x, means


def _check(got, want, x, means, var):
    got = np.asarray(got)
    assert got.dtype == want.dtype and got.shape == want.shape
    scale = (np.abs(x).astype(F64) + np.max(np.abs(means))) / var
    assert np.all(np.abs(got.astype(F64) - want) <= RTOL[got.dtype] * (np.abs(want) + scale))


@pytest.mark.parametrize("weighted", [False, True], ids=["uniform", "weighted"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(("n", "d", "k"), CASES, ids=str)
def test_against_the_reference(backend, n, d, k, dtype, weighted, rng):
    x, means = _mixture(rng, n, d, k, dtype)
    lw = rng.standard_normal(k) if weighted else None
    sigma, cstd = 0.7, 0.4
    want = reference.gmm_score(x.astype(F64), means.astype(F64), sigma, log_weights=lw,
                               component_std=cstd).astype(dtype)
    got = backend.run("gmm_score", x, means, sigma, log_weights=lw, component_std=cstd)
    _check(got, want, x, means, sigma ** 2 + cstd ** 2)


def test_leading_dims_and_integer_input(backend, rng):
    x = rng.integers(-3, 4, size=(2, 3, 4))
    means = rng.standard_normal((5, 4))
    got = backend.run("gmm_score", x, means, 1.0)
    want = reference.gmm_score(x.reshape(-1, 4).astype(F64), means, 1.0).reshape(2, 3, 4)
    assert got.dtype == F64 and got.shape == (2, 3, 4)
    np.testing.assert_allclose(got, want, rtol=1e-11, atol=1e-11)


def test_finite_differences_of_the_log_density(rng):
    means = rng.standard_normal((6, 3)) * 1.5
    lw = rng.standard_normal(6)
    x = rng.standard_normal((20, 3)) * 2
    kw = {"log_weights": lw, "component_std": 0.3}
    got = fastops.gmm_score(x, means, 0.5, **kw)
    h = 1e-6
    fd = np.empty_like(x)
    for j in range(3):
        e = np.zeros(3)
        e[j] = h
        fd[:, j] = (reference.gmm_log_density(x + e, means, 0.5, **kw)
                    - reference.gmm_log_density(x - e, means, 0.5, **kw)) / (2 * h)
    np.testing.assert_allclose(got, fd, rtol=1e-6, atol=1e-6)


def test_far_points_are_stable(backend):
    # a point 1e3 away: the logits are -1e6 and below; a naive exp underflows to 0/0
    means = np.array([[0.0, 0.0], [1.0, 0.0]])
    x = np.array([[1000.0, 0.0], [-1000.0, 5.0]])
    got = backend.run("gmm_score", x, means, 0.5)
    want = reference.gmm_score(x, means, 0.5)
    np.testing.assert_allclose(got, want, rtol=1e-12)
    assert np.all(np.isfinite(got))


def test_nan_point_gives_nan_row_only(backend, rng):
    x, means = _mixture(rng, 5, 3, 4, np.float64)
    x[2, 1] = np.nan
    got = backend.run("gmm_score", x, means, 1.0)
    assert np.all(np.isnan(got[2])) and np.all(np.isfinite(np.delete(got, 2, axis=0)))


def test_zero_weight_component_is_ignored(backend, rng):
    x, means = _mixture(rng, 8, 2, 3, np.float64)
    lw = np.array([0.0, -np.inf, 0.5])
    got = backend.run("gmm_score", x, means, 0.8, log_weights=lw)
    want = reference.gmm_score(x, means[[0, 2]], 0.8, log_weights=lw[[0, 2]])
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


def test_one_component_is_the_gaussian_score(backend, rng):
    x, means = _mixture(rng, 10, 4, 1, np.float64)
    got = backend.run("gmm_score", x, means, 0.6, component_std=0.8)
    np.testing.assert_allclose(got, (means - x) / 1.0, rtol=1e-13, atol=1e-13)


@pytest.mark.parametrize("chunks", [(7, 3), (1, 3), (20, 1)], ids=str)
def test_dask_points_give_the_in_memory_bits(chunks, rng):
    """Points as a dask array (the last axis d rechunked whole when split): the in-memory
    call's bits per block; dask means are refused with a clear error."""
    da = pytest.importorskip("dask.array")
    x = rng.standard_normal((20, 3))
    means = rng.standard_normal((4, 3))
    logw = rng.standard_normal(4)
    whole = fastops.gmm_score(x, means, 0.5, log_weights=logw, component_std=0.2)
    lazy = fastops.gmm_score(da.from_array(x, chunks=chunks), means, 0.5, log_weights=logw,
                             component_std=0.2)
    assert isinstance(lazy, da.Array)
    got = lazy.compute()
    assert got.dtype == whole.dtype and np.array_equal(got, whole)
    with pytest.raises(TypeError, match="gmm_score: means must be an in-memory array"):
        fastops.gmm_score(da.from_array(x), da.from_array(means), 0.5)
    with pytest.raises(ValueError, match="gmm_score: means"):
        fastops.gmm_score(da.from_array(x), means[:, :2], 0.5)
