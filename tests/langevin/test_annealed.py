"""annealed_langevin: Algorithm 1's step sizes and streams, the final denoising step, callbacks
and progress; and the 8-mode mixture sampled with each mode's fraction within 3 standard
errors of 1/8."""

from __future__ import annotations

import numpy as np
import pytest

import fastops
import fastops.random as fr


def _eight_modes():
    angles = np.arange(8) * np.pi / 4
    return 4.0 * np.stack([np.cos(angles), np.sin(angles)], axis=1)


def test_algorithm_one_step_sizes_and_streams():
    sigmas = [1.0, 0.5, 0.1]
    x0 = np.linspace(-1, 1, 6).reshape(3, 2)
    calls = []

    def score(x, sigma):
        calls.append(sigma)
        return -x / (1.0 + sigma ** 2)

    got = fastops.annealed_langevin(score, x0, sigmas, n_steps_each=4, eps=1e-3, seed=9,
                                    denoise=False)
    x = x0.copy()
    for i, sigma in enumerate(sigmas):
        alpha = 1e-3 * sigma ** 2 / sigmas[-1] ** 2
        for t in range(4):
            z = fr.normal(x.shape, seed=9, stream=i * 4 + t, dtype="float64")
            x = (x + 0.5 * alpha * (-x / (1.0 + sigma ** 2))) + np.sqrt(alpha) * z
    np.testing.assert_allclose(got, x, rtol=1e-14, atol=1e-14)
    assert calls == [s for s in sigmas for _ in range(4)]


def test_denoise_adds_the_tweedie_step():
    score = lambda x, sigma: -x  # noqa: E731
    x0 = np.ones((4, 3))
    plain = fastops.annealed_langevin(score, x0, [0.2], n_steps_each=3, denoise=False)
    denoised = fastops.annealed_langevin(score, x0, [0.2], n_steps_each=3, denoise=True)
    np.testing.assert_allclose(denoised, plain + 0.04 * (-plain), rtol=1e-15)
    assert np.array_equal(x0, np.ones((4, 3))), "x0 was modified"


def test_callback_and_progress(capsys):
    seen = []
    fastops.annealed_langevin(lambda x, s: -x, np.zeros((2, 2), np.float32), [1.0, 0.1],
                              n_steps_each=3, callback=lambda i, t, x: seen.append((i, t)),
                              progress=True)
    assert seen == [(i, t) for i in range(2) for t in range(3)]


def test_float32_stays_float32(backend):
    x0 = backend.asarray(np.zeros((5, 2), np.float32))
    out = fastops.annealed_langevin(lambda x, s: -x, x0, [1.0, 0.5], n_steps_each=2)
    assert out.dtype == np.float32 and isinstance(out, backend.array_type)


@pytest.mark.parametrize("bad", [
    ({"sigmas": []}, ValueError, r"sigmas must hold at least one noise level"),
    ({"sigmas": [1.0, -0.1]}, ValueError, r"sigmas\[i\] must be a finite number > 0"),
    ({"n_steps_each": 0}, ValueError, r"n_steps_each must be an int >= 1"),
    ({"eps": 0.0}, ValueError, r"eps must be a finite number > 0"),
    ({"seed": -1}, ValueError, r"seed must be an int in \[0, 2\^64\)"),
], ids=["no-levels", "negative-level", "no-steps", "eps", "seed"])
def test_bad_arguments(bad):
    kwargs, exc, message = bad
    args = {"sigmas": [1.0], **kwargs}
    sigmas = args.pop("sigmas")
    with pytest.raises(exc, match=rf"^annealed_langevin: {message}"):
        fastops.annealed_langevin(lambda x, s: -x, np.zeros(3), sigmas, **args)


def test_eight_mode_mixture_fractions(backend):
    """The demo's problem at 20k particles: every mode within 3 standard errors of 1/8."""
    means = _eight_modes()
    dev_means = backend.asarray(means)
    kw = {"backend": "numpy"} if backend.name == "numpy" else {}

    def score(x, sigma):
        return fastops.gmm_score(x, dev_means, sigma, component_std=0.2, **kw)

    n = 20_000
    # an isotropic start: every mode is equally likely by symmetry
    x0 = backend.asarray(fr.normal((n, 2), seed=1, stream=1 << 40, dtype="float64") * 3.0)
    x = backend.asnumpy(fastops.annealed_langevin(score, x0, np.geomspace(1.0, 0.01, 10),
                                                  n_steps_each=100, eps=2e-5, seed=7))
    d2 = np.sum((x[:, None, :] - means[None]) ** 2, axis=-1)
    nearest = np.argmin(d2, axis=1)
    assert np.mean(np.min(d2, axis=1) < (4 * 0.2) ** 2) > 0.99  # on a mode
    fractions = np.bincount(nearest, minlength=8) / n
    se = np.sqrt((1 / 8) * (7 / 8) / n)
    assert np.all(np.abs(fractions - 1 / 8) < 3 * se), fractions
