"""Properties (Hypothesis) of the random and Langevin families, on generated sizes, offsets,
seeds and streams: a request split anywhere equals the whole; float32 uniforms are multiples
of 2^-24 in [0, 1); the numba step equals the reference bit for bit; gmm_score is equivariant
under translation and permutation of the components.

Hypothesis runs derandomized (the same examples on every run) and without a database.
"""

from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import fastops
import fastops.random as fr
from fastops.langevin import reference

SETTINGS = settings(max_examples=30, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.too_slow])
U64 = st.integers(0, (1 << 64) - 1)


@SETTINGS
@given(n=st.integers(0, 300), cut=st.integers(0, 300), offset=st.integers(0, 1 << 40),
       seed=U64, stream=U64, kind=st.sampled_from(["uniform", "normal"]),
       dtype=st.sampled_from(["float32", "float64"]))
def test_split_anywhere_equals_whole(n, cut, offset, seed, stream, kind, dtype):
    cut = min(cut, n)
    gen = getattr(fr, kind)
    whole = gen(n, seed=seed, stream=stream, dtype=dtype, offset=offset)
    head = gen(cut, seed=seed, stream=stream, dtype=dtype, offset=offset)
    tail = gen(n - cut, seed=seed, stream=stream, dtype=dtype, offset=offset + cut)
    assert np.array_equal(np.concatenate([head, tail]), whole)
    ref = getattr(fr, kind)(n, seed=seed, stream=stream, dtype=dtype, offset=offset,
                            backend="numpy")
    assert np.array_equal(whole, ref)


@SETTINGS
@given(seed=U64, stream=U64, offset=st.integers(0, 1 << 62))
def test_float32_uniforms_are_24_bit_grid_points(seed, stream, offset):
    u = fr.uniform(64, seed=seed, stream=stream, offset=offset).astype(np.float64)
    assert np.all((u >= 0) & (u < 1))
    assert np.array_equal(u * 2 ** 24, np.floor(u * 2 ** 24))


@SETTINGS
@given(n=st.integers(0, 200), seed=U64, step=U64, offset=st.integers(0, 1 << 40),
       h=st.floats(1e-6, 10.0), noise=st.floats(0.0, 3.0),
       dtype=st.sampled_from([np.float32, np.float64]))
def test_step_equals_the_reference_bit_for_bit(n, seed, step, offset, h, noise, dtype):
    rng = np.random.default_rng(n)
    x = rng.standard_normal(n).astype(dtype)
    s = rng.standard_normal(n).astype(dtype)
    got = fastops.langevin_step(x, s, h, seed=seed, step=step, noise_scale=noise, offset=offset)
    want = reference.langevin_step(x, s, h, seed=seed, step=step, noise_scale=noise,
                                   offset=offset)
    assert np.array_equal(got, want)


@SETTINGS
@given(n=st.integers(1, 40), d=st.integers(1, 6), k=st.integers(1, 6),
       shift=st.floats(-50, 50), sigma=st.floats(0.05, 3.0), seed=st.integers(0, 1000))
def test_gmm_score_translation_and_permutation(n, d, k, shift, sigma, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, d)) * 2
    means = rng.standard_normal((k, d)) * 2
    lw = rng.standard_normal(k)
    base = fastops.gmm_score(x, means, sigma, log_weights=lw)
    moved = fastops.gmm_score(x + shift, means + shift, sigma, log_weights=lw)
    np.testing.assert_allclose(moved, base, rtol=1e-9, atol=1e-9 * (1 + abs(shift)) / sigma ** 2)
    perm = rng.permutation(k)
    np.testing.assert_allclose(fastops.gmm_score(x, means[perm], sigma, log_weights=lw[perm]),
                               base, rtol=1e-12, atol=1e-12 / sigma ** 2)
