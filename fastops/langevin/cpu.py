"""Numba kernels of the Langevin family (interface: BACKEND_INTERFACE.md).

- ``step``: out = (x + c1 score) + c2 z, the noise z generated in registers by the random
  family's helpers (fastops.random.cpu): one pass reading x and score and writing out (12 bytes
  per float32 element). Compiled without fast-math flags, so each product and sum is rounded
  on its own, exactly as the NumPy reference: the result is the reference's bits. Full Philox
  blocks (4 float32 / 2 float64 elements) go in chunks over the threads with a vectorised inner
  loop (see fastops.random.cpu); the in-place variant (out is x) reads and writes one array, so
  that LLVM needs no runtime alias check (which fails for out = x and falls back to scalar code).
- ``mala_accept``: per chain, the two proposal densities' squared norms (float64 sums), the
  Metropolis decision, and the accepted rows written over the proposal.
- ``gmm_score``: the mixture score in one pass over x, tiles of points transposed so that the
  distance, softmax and weighted-mean loops vectorise across points.

Importing this module compiles nothing.
"""

from __future__ import annotations

import math

import numba
import numpy as np

from .._numba import FASTMATH, IEEE, Launch, ieee_inline, jit_pair
from .._vecmath import fast_exp, maxnum
from ..random.cpu import (
    _CHUNK,
    _normals32_call,
    _normals64_call,
    normals32,
    normals64,
    stream_words,
)

_U64 = np.uint64


@ieee_inline
def _step(x, score, out, c1, c2, k0, k1, s0, s1, p0, values, per_block, inplace, edge_values):
    """The step kernels' body (inlined into each below): ``values(j, k0, k1, s0, s1)`` gives
    block j's normals, ``edge_values`` the same, compiled once apart for the scalar edges.

    Element i takes the normal at stream position p0 + i: a head of elements up to the first
    block boundary, the full blocks (vectorised, in parallel chunks), then a partial tail.
    """
    n = x.size
    head = min((per_block - p0 % per_block) % per_block, n)
    full = (n - head) // per_block
    first = (p0 + head) // per_block  # the block of element `head`
    for chunk in numba.prange((full + _CHUNK - 1) // _CHUNK):
        lo = chunk * _CHUNK
        start = head + lo * per_block
        xs = x[start:]
        ss = score[start:]
        dst = xs if inplace else out[start:]
        for t in range(min(_CHUNK, full - lo)):
            z = values(_U64(first + lo + t), k0, k1, s0, s1)
            i = per_block * t
            dst[i] = (xs[i] + c1 * ss[i]) + c2 * z[0]
            dst[i + 1] = (xs[i + 1] + c1 * ss[i + 1]) + c2 * z[1]
            if per_block == 4:
                dst[i + 2] = (xs[i + 2] + c1 * ss[i + 2]) + c2 * z[2]
                dst[i + 3] = (xs[i + 3] + c1 * ss[i + 3]) + c2 * z[3]
    dst = x if inplace else out
    # the partial blocks at both ends, element by element
    for lo, hi in ((0, head), (head + full * per_block, n)):
        if lo < hi:
            j = (p0 + lo) // per_block
            z = edge_values(_U64(j), k0, k1, s0, s1)
            for i in range(lo, hi):
                dst[i] = (x[i] + c1 * score[i]) + c2 * z[p0 + i - j * per_block]


# Module-level kernels, not closures of a factory (Numba's disk cache cannot key closures over
# dispatchers across processes; see fastops.random.cpu). The in-place ones read and write x.
def _step32(x, score, out, c1, c2, k0, k1, s0, s1, p0):
    _step(x, score, out, c1, c2, k0, k1, s0, s1, p0, normals32, 4, False, _normals32_call)


def _step32_inplace(x, score, out, c1, c2, k0, k1, s0, s1, p0):
    _step(x, score, out, c1, c2, k0, k1, s0, s1, p0, normals32, 4, True, _normals32_call)


def _step64(x, score, out, c1, c2, k0, k1, s0, s1, p0):
    _step(x, score, out, c1, c2, k0, k1, s0, s1, p0, normals64, 2, False, _normals64_call)


def _step64_inplace(x, score, out, c1, c2, k0, k1, s0, s1, p0):
    _step(x, score, out, c1, c2, k0, k1, s0, s1, p0, normals64, 2, True, _normals64_call)


_STEP = {
    ("float32", False): jit_pair(_step32, IEEE),
    ("float32", True): jit_pair(_step32_inplace, IEEE),
    ("float64", False): jit_pair(_step64, IEEE),
    ("float64", True): jit_pair(_step64_inplace, IEEE),
}


def _mala_accept_impl(x, y, score_x, score_y, lp_x, lp_y, u, half_h, inv_2h, accepted):
    """Decide each chain; rejected chains get x's row written over y's (y becomes x_new)."""
    n, d = x.shape
    for c in numba.prange(n):
        forward = 0.0
        backward = 0.0
        for e in range(d):
            xv = np.float64(x[c, e])
            yv = np.float64(y[c, e])
            f = yv - xv - half_h * np.float64(score_x[c, e])
            b = xv - yv - half_h * np.float64(score_y[c, e])
            forward += f * f
            backward += b * b
        log_alpha = lp_y[c] - lp_x[c] + (forward - backward) * inv_2h
        ok = math.log(u[c]) < log_alpha if u[c] > 0.0 else log_alpha > -np.inf
        accepted[c] = ok
        if not ok:
            for e in range(d):
                y[c, e] = x[c, e]


_MALA_ACCEPT = jit_pair(_mala_accept_impl, FASTMATH)


def _gmm_tile_points(d):
    """Points per tile: the (d, P) transposed tile and accumulators stay within ~64 KiB."""
    return int(min(256, max(16, (8192 // max(d, 1)) // 16 * 16)))


def _gmm_score_impl(x, means, log_weights, inv_2v, inv_v, tile, out):
    n, d = x.shape
    k_count = means.shape[0]
    T = x.dtype.type
    for ti in numba.prange((n + tile - 1) // tile):
        p0 = ti * tile
        m = min(tile, n - p0)
        xt = np.zeros((d, tile), x.dtype)
        for p in range(m):
            for j in range(d):
                xt[j, p] = x[p0 + p, j]
        logits = np.empty((k_count, tile), x.dtype)
        for k in range(k_count):
            lk = logits[k]
            lk[:] = 0
            for j in range(d):
                mu = means[k, j]
                row = xt[j]
                for p in range(tile):
                    diff = row[p] - mu
                    lk[p] += diff * diff
            lw = log_weights[k]
            for p in range(tile):
                lk[p] = lw - lk[p] * inv_2v
        top = logits[0].copy()
        for k in range(1, k_count):
            lk = logits[k]
            for p in range(tile):
                top[p] = maxnum(top[p], lk[p])
        total = np.zeros(tile, x.dtype)
        for k in range(k_count):
            lk = logits[k]
            for p in range(tile):
                e = fast_exp(lk[p] - top[p])
                lk[p] = e
                total[p] += e
        acc = np.zeros((d, tile), x.dtype)
        for k in range(k_count):
            lk = logits[k]
            for j in range(d):
                mu = means[k, j]
                a = acc[j]
                for p in range(tile):
                    a[p] += lk[p] * mu
        for p in range(m):
            inv_total = T(1.0) / total[p]
            for j in range(d):
                out[p0 + p, j] = (acc[j, p] * inv_total - xt[j, p]) * inv_v


_GMM_SCORE = jit_pair(_gmm_score_impl, FASTMATH)


# --------------------------------------------------------------------------------------------
# The backend interface (BACKEND_INTERFACE.md)
# --------------------------------------------------------------------------------------------


def step(x: np.ndarray, score: np.ndarray, out: np.ndarray, c1: float, c2: float, seed: int,
         stream: int, offset: int = 0) -> None:
    """out = (x + c1 score) + c2 z on flat contiguous arrays, z[i] the normal at position
    offset + i of (seed, stream) (out may be x itself)."""
    t = x.dtype.type
    inplace = out is x
    with Launch() as variant:
        _STEP[(x.dtype.name, inplace)][variant](x, score, x if inplace else out, t(c1), t(c2),
                                                *stream_words(seed, stream), np.int64(offset))


def mala_accept(x: np.ndarray, y: np.ndarray, score_x: np.ndarray, score_y: np.ndarray,
                lp_x: np.ndarray, lp_y: np.ndarray, u: np.ndarray, step_size: float
                ) -> np.ndarray:
    """Metropolis decisions of the proposals y (n, d); rejected rows of y are overwritten with
    x's, so that y is x_new afterwards. lp_x, lp_y, u: float64 (n,). Returns accepted (n,)."""
    accepted = np.empty(x.shape[0], np.bool_)
    with Launch() as variant:
        _MALA_ACCEPT[variant](x, y, score_x, score_y, lp_x, lp_y, u, 0.5 * step_size,
                              1.0 / (2.0 * step_size), accepted)
    return accepted


def gmm_score(x: np.ndarray, means: np.ndarray, log_weights: np.ndarray, var: float
              ) -> np.ndarray:
    """The mixture score at the rows of x (n, d); means (K, d) and log_weights (K,) in x's
    dtype, var = component_std^2 + sigma^2."""
    t = x.dtype.type
    out = np.empty_like(x)
    with Launch() as variant:
        _GMM_SCORE[variant](x, means, log_weights, t(0.5 / var), t(1.0 / var),
                            _gmm_tile_points(x.shape[1]), out)
    return out
