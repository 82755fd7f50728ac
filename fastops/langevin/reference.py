"""NumPy references of the Langevin family: the specification the kernels are tested against.

- :func:`langevin_step`: ``(x + c1 score) + c2 z`` with ``c1 = step_size / 2`` and
  ``c2 = noise_scale sqrt(step_size)`` rounded once to the working dtype and every product and
  sum rounded on its own (the kernels compute exactly this, so the CPU kernel equals it bit for
  bit); ``z`` is ``fastops.random.normal(x.shape, seed=seed, stream=step)``: flat position i of
  x (C order) takes the normal at position i.
- :func:`mala_step`: the Metropolis-adjusted Langevin step, chains along the leading axis.
- :func:`gmm_score`, :func:`gmm_log_density`: an isotropic Gaussian mixture smoothed by
  N(0, sigma^2 I).

Math: ../shared/formulas.md section 7 (D3, D6) and 1.1(c).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from ..random import reference as random_reference

#: mala_step's acceptance uniforms: float64 uniforms of the stream ``step`` at positions
#: ``MALA_UNIFORM_OFFSET + chain``, far from the positions the proposal noise takes.
MALA_UNIFORM_OFFSET = 1 << 62


def step_coefficients(step_size: float, noise_scale: float, dtype: Any) -> tuple[Any, Any]:
    """(c1, c2) = (step_size / 2, noise_scale sqrt(step_size)), rounded to ``dtype``."""
    t = np.dtype(dtype).type
    return t(0.5 * step_size), t(noise_scale * math.sqrt(step_size))


def langevin_step(x: np.ndarray, score: np.ndarray, step_size: float, *, seed: int, step: int,
                  noise_scale: float = 1.0, z: np.ndarray | None = None,
                  offset: int = 0) -> np.ndarray:
    """x + (step_size / 2) score + noise_scale sqrt(step_size) z in x's (float) dtype; z at
    stream positions offset, offset + 1, ... (C order)."""
    dt = x.dtype
    c1, c2 = step_coefficients(step_size, noise_scale, dt)
    if z is None:
        z = random_reference.normal(x.shape, seed, step, dt, offset)
    return (x + c1 * score.astype(dt)) + c2 * z.astype(dt)


def mala_uniforms(n_chains: int, seed: int, step: int) -> np.ndarray:
    """The acceptance uniforms of mala_step (float64, one per chain)."""
    return random_reference.uniform((n_chains,), seed, step, np.float64, MALA_UNIFORM_OFFSET)


def mala_accept(x: np.ndarray, y: np.ndarray, log_prob_x: np.ndarray, log_prob_y: np.ndarray,
                score_x: np.ndarray, score_y: np.ndarray, step_size: float,
                u: np.ndarray) -> np.ndarray:
    """Metropolis-Hastings decisions of the proposals y from x (chains along axis 0).

    log alpha = lp(y) - lp(x) + log q(x | y) - log q(y | x), with
    log q(a | b) = -||a - b - (h/2) s(b)||^2 / (2h); accepted where log u < log alpha (a NaN
    log alpha is rejected). Sums in float64.
    """
    h = float(step_size)
    n = x.shape[0]
    x64, y64 = x.reshape(n, -1).astype(np.float64), y.reshape(n, -1).astype(np.float64)
    sx, sy = score_x.reshape(n, -1).astype(np.float64), score_y.reshape(n, -1).astype(np.float64)
    forward = np.sum((y64 - x64 - 0.5 * h * sx) ** 2, axis=1)
    backward = np.sum((x64 - y64 - 0.5 * h * sy) ** 2, axis=1)
    log_alpha = (log_prob_y.astype(np.float64) - log_prob_x.astype(np.float64)
                 + (forward - backward) / (2.0 * h))
    with np.errstate(divide="ignore"):
        return np.log(u) < log_alpha


def mala_step(x: np.ndarray, log_prob: np.ndarray, score: np.ndarray,
              log_prob_and_score: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]],
              step_size: float, *, seed: int, step: int) -> tuple[np.ndarray, ...]:
    """(x_new, log_prob_new, score_new, accepted) of one MALA step."""
    y = langevin_step(x, score, step_size, seed=seed, step=step)
    lp_y, s_y = log_prob_and_score(y)
    lp_y = np.asarray(lp_y)
    s_y = np.asarray(s_y)
    accepted = mala_accept(x, y, log_prob, lp_y, score, s_y, step_size,
                           mala_uniforms(x.shape[0], seed, step))
    keep = accepted.reshape((-1,) + (1,) * (x.ndim - 1))
    return (np.where(keep, y, x), np.where(accepted, lp_y, log_prob).astype(log_prob.dtype),
            np.where(keep, s_y, score).astype(score.dtype), accepted)


def _mixture_logits(x: np.ndarray, means: np.ndarray, var: float,
                    log_weights: np.ndarray | None) -> np.ndarray:
    x64, m64 = x.astype(np.float64), means.astype(np.float64)
    d2 = np.sum((x64[:, None, :] - m64[None, :, :]) ** 2, axis=-1)
    logits = -d2 / (2.0 * var)
    if log_weights is not None:
        logits = logits + log_weights.astype(np.float64)[None, :]
    return logits


def gmm_score(x: np.ndarray, means: np.ndarray, sigma: float, *,
              log_weights: np.ndarray | None = None, component_std: float = 0.0) -> np.ndarray:
    """Score of sum_k w_k N(mu_k, (component_std^2 + sigma^2) I) at the rows of x (n, d).

    w = softmax(log_weights) (uniform when None): score(x) = sum_k r_k(x) (mu_k - x) / v with
    v = component_std^2 + sigma^2 and r = softmax_k(log w_k - ||x - mu_k||^2 / (2v)). In x's dtype.
    """
    var = component_std ** 2 + sigma ** 2
    logits = _mixture_logits(x, means, var, log_weights)
    logits -= np.max(logits, axis=1, keepdims=True)
    r = np.exp(logits)
    r /= np.sum(r, axis=1, keepdims=True)
    return ((r @ means.astype(np.float64) - x.astype(np.float64)) / var).astype(x.dtype)


def gmm_log_density(x: np.ndarray, means: np.ndarray, sigma: float, *,
                    log_weights: np.ndarray | None = None,
                    component_std: float = 0.0) -> np.ndarray:
    """log of the mixture density of :func:`gmm_score` at the rows of x (float64)."""
    var = component_std ** 2 + sigma ** 2
    k, d = means.shape
    lw = (np.full(k, -math.log(k)) if log_weights is None
          else log_weights - np.logaddexp.reduce(log_weights.astype(np.float64)))
    logits = _mixture_logits(x, means, var, lw)
    top = np.max(logits, axis=1)
    lse = top + np.log(np.sum(np.exp(logits - top[:, None]), axis=1))
    return lse - 0.5 * d * math.log(2.0 * math.pi * var)
