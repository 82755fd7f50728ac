"""mala_step: its decisions equal the NumPy reference's on the same noise; it samples a known
Gaussian (mean and variance within 3 standard errors after burn-in); rejected proposals keep the
chain; NaN log densities are rejected."""

from __future__ import annotations

import numpy as np
import pytest

import fastops
from fastops.langevin import reference

MU = np.array([1.0, -2.0, 0.5])
STD = np.array([0.5, 2.0, 1.0])


def _gaussian(xp):
    mu, var = xp.asarray(MU), xp.asarray(STD ** 2)

    def log_prob_and_score(x):
        diff = x - mu
        return -0.5 * xp.sum(diff * diff / var, axis=1), -diff / var

    return log_prob_and_score


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_decisions_match_the_reference(backend, dtype, rng):
    target = _gaussian(np)
    x = (rng.standard_normal((500, 3)) * 2).astype(dtype)
    lp, s = target(x)
    lp, s = lp.astype(dtype), s.astype(dtype)
    want = reference.mala_step(x, lp, s, lambda y: tuple(a.astype(dtype) for a in target(y)),
                               0.8, seed=4, step=6)
    dev_target = _gaussian(backend.xp)
    got = backend.call("mala_step", x, lp, s,
                       lambda y: tuple(a.astype(dtype) for a in dev_target(y)), 0.8, seed=4,
                       step=6)
    x_new, lp_new, s_new, accepted = (backend.asnumpy(g) for g in got)
    assert accepted.dtype == np.bool_ and 0.2 < accepted.mean() < 0.95
    assert np.array_equal(accepted, want[3])
    tol = {np.float32: 1e-5, np.float64: 1e-12}[dtype]
    for g, w in zip((x_new, lp_new, s_new), want[:3], strict=True):
        assert g.dtype == w.dtype and g.shape == w.shape
        np.testing.assert_allclose(g, w, rtol=tol, atol=tol)
    # rejected chains are unchanged
    np.testing.assert_array_equal(x_new[~accepted], x[~accepted])


def test_samples_a_known_gaussian(backend):
    xp = backend.xp
    target = _gaussian(xp)
    chains, burn, keep = 4000, 100, 200
    x = xp.zeros((chains, 3))
    lp, s = target(x)
    total = xp.zeros(3)
    total_sq = xp.zeros(3)
    accepted_total = 0.0
    for t in range(burn + keep):
        x, lp, s, ok = fastops.mala_step(x, lp, s, target, 0.6, seed=2024, step=t,
                                         **({"backend": "numpy"} if backend.name == "numpy"
                                            else {}))
        if t >= burn:
            total += x.mean(axis=0)
            total_sq += (x * x).mean(axis=0)
            accepted_total += float(ok.mean())
    mean = backend.asnumpy(total) / keep
    var = backend.asnumpy(total_sq) / keep - mean ** 2
    # standard errors from independent chains; successive steps are correlated, so the time
    # average counts as at most `chains` independent draws (conservative)
    se_mean = STD / np.sqrt(chains)
    se_var = STD ** 2 * np.sqrt(2.0 / chains)
    assert np.all(np.abs(mean - MU) < 3 * se_mean), (mean, MU)
    assert np.all(np.abs(var - STD ** 2) < 3 * se_var), (var, STD ** 2)
    assert 0.3 < accepted_total / keep < 0.99


def test_nan_log_prob_is_rejected(backend, rng):
    x = rng.standard_normal((6, 2))
    lp = np.zeros(6)
    s = -x

    def broken(y):
        out = -0.5 * backend.xp.sum(y * y, axis=1)
        out[::2] = np.nan
        return out, -y

    got = backend.call("mala_step", x, lp, s, broken, 0.1, seed=0, step=0)
    x_new, lp_new, _, accepted = (backend.asnumpy(g) for g in got)
    assert not accepted[::2].any()
    np.testing.assert_array_equal(x_new[::2], x[::2])
    np.testing.assert_array_equal(lp_new[::2], lp[::2])


def test_inputs_are_not_modified(backend, rng):
    x = rng.standard_normal((5, 4))
    lp = -0.5 * np.sum(x * x, axis=1)
    s = -x
    dx, dlp, ds = backend.asarray(x), backend.asarray(lp), backend.asarray(s)
    backend.call("mala_step", dx, dlp, ds,
                 lambda y: (-0.5 * backend.xp.sum(y * y, axis=1), -y), 0.3, seed=1, step=2)
    for dev, host in ((dx, x), (dlp, lp), (ds, s)):
        assert np.array_equal(backend.asnumpy(dev), host)


def test_uniforms_are_the_documented_stream():
    u = reference.mala_uniforms(5, seed=3, step=4)
    want = fastops.random.uniform(5, seed=3, stream=4, dtype="float64",
                                  offset=fastops.langevin.MALA_UNIFORM_OFFSET)
    assert np.array_equal(u, want)
