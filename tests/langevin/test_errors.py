"""The "langevin and random" rows of semantics.md about bad input, and the other bad arguments
of the Langevin family: the error type and a message naming the function, the argument, what
was expected and what was given, on every backend, raised before any kernel runs."""

from __future__ import annotations

import numpy as np
import pytest

import fastops

X = np.zeros((4, 3), np.float32)
S = np.ones((4, 3), np.float32)


@pytest.mark.parametrize("step_size", [0.0, -1e-3, np.nan, np.inf, -np.inf])
def test_step_size_must_be_positive_and_finite(backend, step_size):
    with pytest.raises(ValueError, match=r"^langevin_step: step_size must be a finite number > 0"):
        backend.call("langevin_step", X, S, step_size, seed=0, step=0)
    with pytest.raises(ValueError, match=r"^mala_step: step_size must be a finite number > 0"):
        backend.call("mala_step", X, np.zeros(4), S, lambda y: (None, None), step_size, seed=0,
                     step=0)


@pytest.mark.parametrize("seed", [-1, 1 << 64, 2.0, "3", None, True])
def test_seed_must_be_a_uint64(backend, seed):
    with pytest.raises(ValueError, match=r"^langevin_step: seed must be an int in \[0, 2\^64\)"):
        backend.call("langevin_step", X, S, 0.1, seed=seed, step=0)


@pytest.mark.parametrize("step", [-1, 1 << 64, 1.5])
def test_step_must_be_a_uint64(backend, step):
    with pytest.raises(ValueError, match=r"^langevin_step: step must be an int in \[0, 2\^64\)"):
        backend.call("langevin_step", X, S, 0.1, seed=0, step=step)


def test_seed_edges_are_valid(backend):
    for seed in (0, (1 << 64) - 1):
        backend.call("langevin_step", X, S, 0.1, seed=seed, step=(1 << 64) - 1)


def test_score_shape_must_match(backend):
    with pytest.raises(ValueError, match=r"^langevin_step: score must have the shape of x "
                                         r"\(4, 3\); got shape \(3, 4\)"):
        backend.call("langevin_step", X, S.T.copy(), 0.1, seed=0, step=0)
    with pytest.raises(ValueError, match=r"^mala_step: score must have the shape of x"):
        backend.call("mala_step", X, np.zeros(4), S[:3], lambda y: (None, None), 0.1, seed=0,
                     step=0)
    with pytest.raises(ValueError, match=r"^mala_step: log_prob must have the shape of x's "
                                         r"chains \(4,\); got shape \(3,\)"):
        backend.call("mala_step", X, np.zeros(3), S, lambda y: (None, None), 0.1, seed=0, step=0)


def test_noise_scale(backend):
    with pytest.raises(ValueError, match=r"^langevin_step: noise_scale must be a finite number "
                                         r">= 0; got -1"):
        backend.call("langevin_step", X, S, 0.1, seed=0, step=0, noise_scale=-1)


def test_out_may_alias_x_but_nothing_else(backend):
    x = backend.asarray(np.zeros((4, 6), np.float32))
    s = backend.asarray(np.ones((4, 6), np.float32))
    backend.call("langevin_step", x, s, 0.1, seed=0, step=0, out=x)  # in place: allowed
    with pytest.raises(ValueError, match=r"^langevin_step: out may be x itself .* must not "
                                         r"overlap x otherwise, nor score"):
        backend.call("langevin_step", x[:, :3], s[:, :3], 0.1, seed=0, step=0, out=x[:, 1:4])
    with pytest.raises(ValueError, match=r"must not overlap x otherwise, nor score"):
        backend.call("langevin_step", x, s, 0.1, seed=0, step=0, out=s)
    with pytest.raises(ValueError, match=r"^langevin_step: out must have dtype float32; "
                                         r"got float64"):
        backend.call("langevin_step", x, s, 0.1, seed=0, step=0,
                     out=backend.xp.zeros((4, 6), np.float64))
    with pytest.raises(ValueError, match=r"^langevin_step: out must have the shape of x"):
        backend.call("langevin_step", x, s, 0.1, seed=0, step=0,
                     out=backend.xp.zeros((6, 4), np.float32))


def test_interleaved_out_is_not_an_overlap(cpu_backend):
    buf = np.zeros(20, np.float32)
    x, out = buf[0::2], buf[1::2]
    cpu_backend.call("langevin_step", x, np.ones(10, np.float32), 0.1, seed=0, step=0, out=out)
    assert np.all(buf[0::2] == 0)


def test_non_real_input(backend):
    with pytest.raises(TypeError, match=r"^langevin_step: x must be a real array .* got dtype "
                                        r"complex128"):
        backend.call("langevin_step", np.zeros(3, complex), np.zeros(3), 0.1, seed=0, step=0)


def test_mixed_devices_are_a_type_error():
    from conftest import cupy_status
    if not cupy_status()[0]:
        pytest.skip("cupy: " + cupy_status()[1])
    import cupy
    with pytest.raises(TypeError, match=r"^langevin_step: all array arguments must be on the "
                                        r"same device"):
        fastops.langevin_step(X, cupy.asarray(S), 0.1, seed=0, step=0)


@pytest.mark.parametrize(("args", "kwargs", "exc", "message"), [
    ((np.zeros((3, 2)), np.zeros((2, 3)), 1.0), {}, ValueError,
     r"means of shape \(2, 3\) and x of shape \(3, 2\) differ in the last dimension d"),
    ((np.zeros((3, 2)), np.zeros(2), 1.0), {}, ValueError,
     r"means must have shape \(K, d\) with K >= 1; got shape \(2,\)"),
    ((np.zeros((3, 2)), np.zeros((0, 2)), 1.0), {}, ValueError,
     r"means must have shape \(K, d\) with K >= 1"),
    ((np.zeros((3, 2)), np.zeros((4, 2)), 0.0), {}, ValueError,
     r"component_std\^2 \+ sigma\^2 must be finite and > 0"),
    ((np.zeros((3, 2)), np.zeros((4, 2)), -1.0), {}, ValueError,
     r"sigma must be a finite number >= 0"),
    ((np.zeros((3, 2)), np.zeros((4, 2)), 1.0), {"log_weights": np.zeros(3)}, ValueError,
     r"log_weights must have the shape of means' components \(4,\); got shape \(3,\)"),
    ((np.zeros(()), np.zeros((4, 2)), 1.0), {}, ValueError, r"x must have shape \(\.\.\., d\)"),
], ids=["d-mismatch", "means-1d", "no-components", "zero-variance", "negative-sigma",
        "log-weights", "scalar-x"])
def test_gmm_score_bad_arguments(backend, args, kwargs, exc, message):
    with pytest.raises(exc, match=rf"^gmm_score: {message}"):
        backend.call("gmm_score", *args, **kwargs)


def test_mala_callback_results_are_checked(backend):
    lp = np.zeros(4)
    with pytest.raises(ValueError, match=r"^mala_step: log_prob_and_score\(\.\.\.\)\[0\] must "
                                         r"have the shape of x's chains \(4,\); got shape \(2,\)"):
        backend.call("mala_step", X, lp, S,
                     lambda y: (backend.xp.zeros(2), backend.xp.zeros((4, 3))), 0.1, seed=0,
                     step=0)
    with pytest.raises(TypeError, match=r"^mala_step: log_prob_and_score must be callable"):
        backend.call("mala_step", X, lp, S, 3, 0.1, seed=0, step=0)
