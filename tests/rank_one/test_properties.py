"""Properties (Hypothesis) of the rank-one exponentials on generated shapes and scales: an
apply followed by the inverse apply gives v back, the chain's inverse undoes the chain, the
log-determinant is symmetric in x and y and equals log|det| of the dense matrix, and an apply is
linear in v.

Hypothesis runs derandomized (the same examples on every run) and without a database.
"""

from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import fastops

SETTINGS = settings(max_examples=30, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.too_slow])


def _vectors(seed, batch, k, scale):
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((3, batch, k)) * np.array([scale, scale, 1.0])[:, None, None])


@SETTINGS
@given(batch=st.integers(1, 20), k=st.integers(1, 40), scale=st.floats(0.0, 1.2),
       seed=st.integers(0, 10_000))
def test_inverse_apply_gives_v_back(batch, k, scale, seed):
    x, y, v = _vectors(seed, batch, k, scale / np.sqrt(k) ** 0.5)
    z = fastops.expm_rank1_apply(x, y, v)
    back = fastops.expm_rank1_apply(x, y, z, inverse=True)
    s = np.abs(np.sum(x * y, axis=-1))[:, None]
    tol = 1e-13 * np.exp(s) * (1 + np.abs(z).max(axis=-1, keepdims=True))
    assert np.all(np.abs(back - v) <= tol)


@SETTINGS
@given(batch=st.integers(1, 8), k=st.integers(1, 12), layers=st.integers(1, 8),
       seed=st.integers(0, 10_000))
def test_chain_inverse_undoes_the_chain(batch, k, layers, seed):
    rng = np.random.default_rng(seed)
    xs = rng.standard_normal((layers, k)) / np.sqrt(k)
    ys = rng.standard_normal((layers, k)) / np.sqrt(k)
    v = rng.standard_normal((batch, k))
    z, logdet = fastops.expm_rank1_chain_apply(xs, ys, v)
    back, minus = fastops.expm_rank1_chain_apply(xs, ys, z, inverse=True)
    np.testing.assert_allclose(back, v, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(minus, -logdet, rtol=1e-13, atol=1e-13)


@SETTINGS
@given(k=st.integers(1, 10), scale=st.floats(0.0, 2.0), seed=st.integers(0, 10_000))
def test_logdet_is_symmetric_and_matches_slogdet(k, scale, seed):
    x, y, _ = _vectors(seed, 1, k, scale)
    s = fastops.expm_rank1_logdet(x, y)
    assert np.array_equal(s, fastops.expm_rank1_logdet(y, x))
    sign, logabs = np.linalg.slogdet(fastops.expm_rank1(x, y))
    assert np.all(sign == 1)
    np.testing.assert_allclose(logabs, s, rtol=1e-10, atol=1e-10)


@SETTINGS
@given(batch=st.integers(1, 10), k=st.integers(1, 30), a=st.floats(-3, 3), seed=st.integers(0, 999))
def test_apply_is_linear_in_v(batch, k, a, seed):
    x, y, v = _vectors(seed, batch, k, 0.5)
    w = np.random.default_rng(seed + 1).standard_normal((batch, k))
    lhs = fastops.expm_rank1_apply(x, y, a * v + w)
    rhs = a * fastops.expm_rank1_apply(x, y, v) + fastops.expm_rank1_apply(x, y, w)
    np.testing.assert_allclose(lhs, rhs, rtol=1e-12, atol=1e-12 * (1 + abs(a)) * k)
