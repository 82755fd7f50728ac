"""Numba kernels of the Langevin family (interface: BACKEND_INTERFACE.md).

- ``step``: out = (x + c1 score) + c2 z, the noise z generated in registers by the random
  family's helpers (fastops.random.cpu): one pass reading x and score and writing out (12 bytes
  per float32 element). Compiled without fast-math flags, so each product and sum is rounded
  on its own, exactly as the NumPy reference: the result is the reference's bits. Full Philox
  blocks (4 float32 / 2 float64 elements) go in dynamic chunks over the threads with a
  vectorised inner loop (see fastops.random.cpu); the in-place variant (out is x) reads and
  writes one array, so that LLVM needs no runtime alias check (which fails for out = x and
  falls back to scalar code).
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

from .._numba import FASTMATH, IEEE, ITEMS, WORKERS, Launch, ieee_inline, jit_pair, next_chunk
from .._vecmath import fast_exp, maxnum
from ..random.cpu import (
    _normals32_call,
    _normals64_call,
    full_blocks,
    normals32,
    normals64,
    stream_words,
)

_U64 = np.uint64


@ieee_inline
def _step(x, score, out, c1, c2, k0, k1, s0, s1, p0, work, values, per_block, inplace,
          edge_values):
    """The step kernels' body (inlined into each below): ``values(j, k0, k1, s0, s1)`` gives
    block j's normals, ``edge_values`` the same, compiled once apart for the scalar edges.

    Element i takes the normal at stream position p0 + i: a head of elements up to the first
    block boundary, the full blocks (work[ITEMS] of them, vectorised, in dynamic chunks), then
    a partial tail. Each chunk reads and writes through views that start at its first element,
    indexed by the plain loop counter, so that LLVM sees non-negative indices and vectorises
    (as fastops.random.cpu's _fill).
    """
    n = x.size
    head = min((per_block - p0 % per_block) % per_block, n)
    first = (p0 + head) // per_block  # the block of element `head`
    for _worker in numba.prange(work[WORKERS]):
        while True:
            lo, hi = next_chunk(work)
            if lo >= hi:
                break
            start = head + lo * per_block
            xs = x[start:]
            ss = score[start:]
            dst = xs if inplace else out[start:]
            j0 = first + lo
            for t in range(hi - lo):
                z = values(_U64(j0 + t), k0, k1, s0, s1)
                i = per_block * t
                dst[i] = (xs[i] + c1 * ss[i]) + c2 * z[0]
                dst[i + 1] = (xs[i + 1] + c1 * ss[i + 1]) + c2 * z[1]
                if per_block == 4:
                    dst[i + 2] = (xs[i + 2] + c1 * ss[i + 2]) + c2 * z[2]
                    dst[i + 3] = (xs[i + 3] + c1 * ss[i + 3]) + c2 * z[3]
    dst = x if inplace else out
    # the partial blocks at both ends, element by element
    for lo, hi in ((0, head), (head + work[ITEMS] * per_block, n)):
        if lo < hi:
            j = (p0 + lo) // per_block
            z = edge_values(_U64(j), k0, k1, s0, s1)
            for i in range(lo, hi):
                dst[i] = (x[i] + c1 * score[i]) + c2 * z[p0 + i - j * per_block]


# Module-level kernels, not closures of a factory (Numba's disk cache cannot key closures over
# dispatchers across processes; see fastops.random.cpu). The in-place ones read and write x.
def _step32(x, score, out, c1, c2, k0, k1, s0, s1, p0, work):
    _step(x, score, out, c1, c2, k0, k1, s0, s1, p0, work, normals32, 4, False, _normals32_call)


def _step32_inplace(x, score, out, c1, c2, k0, k1, s0, s1, p0, work):
    _step(x, score, out, c1, c2, k0, k1, s0, s1, p0, work, normals32, 4, True, _normals32_call)


def _step64(x, score, out, c1, c2, k0, k1, s0, s1, p0, work):
    _step(x, score, out, c1, c2, k0, k1, s0, s1, p0, work, normals64, 2, False, _normals64_call)


def _step64_inplace(x, score, out, c1, c2, k0, k1, s0, s1, p0, work):
    _step(x, score, out, c1, c2, k0, k1, s0, s1, p0, work, normals64, 2, True, _normals64_call)


# Estimated single-thread cost of one element of a step, per dtype, for Launch (serial below
# fastops._numba.PARALLEL_MIN_NS of work, chunks of CHUNK_NS). Measured: step() of 2^20
# cache-resident elements, in place and out of place alike, fastops.threads(1), median of 15,
# lower of two runs, 2-core AVX2 development VM, 2026-12-02: the normal (fastops.random.cpu's
# _NS_PER_VALUE) plus the update.
_NS_PER_STEP_ELEMENT = {"float32": 2.4, "float64": 8.3}

_STEP = {
    ("float32", False): jit_pair(_step32, IEEE),
    ("float32", True): jit_pair(_step32_inplace, IEEE),
    ("float64", False): jit_pair(_step64, IEEE),
    ("float64", True): jit_pair(_step64_inplace, IEEE),
}


def _mala_accept_impl(x, y, score_x, score_y, lp_x, lp_y, u, half_h, inv_2h, accepted, work):
    """Decide each chain; rejected chains get x's row written over y's (y becomes x_new)."""
    d = x.shape[1]
    for _worker in numba.prange(work[WORKERS]):
        while True:
            lo, hi = next_chunk(work)
            if lo >= hi:
                break
            for c in range(lo, hi):
                xr, yr, sxr, syr = x[c], y[c], score_x[c], score_y[c]
                forward = 0.0
                backward = 0.0
                for e in range(d):
                    xv = np.float64(xr[e])
                    yv = np.float64(yr[e])
                    f = yv - xv - half_h * np.float64(sxr[e])
                    b = xv - yv - half_h * np.float64(syr[e])
                    forward += f * f
                    backward += b * b
                log_alpha = lp_y[c] - lp_x[c] + (forward - backward) * inv_2h
                ok = math.log(u[c]) < log_alpha if u[c] > 0.0 else log_alpha > -np.inf
                accepted[c] = ok
                if not ok:
                    for e in range(d):
                        yr[e] = xr[e]


# Estimated single-thread cost of one chain of mala_accept: per element (the two squared norms)
# plus per chain (log u, the decision). Measured: 2^20 elements as (2^18, 4) and (2^14, 64),
# fastops.threads(1), median of 15, lower of two runs, 2026-12-02: float32 17.9 and 56.7 ns a
# chain, float64 17.4 and 115 ns; the straight line through each pair.
_NS_PER_MALA_ELEMENT = {"float32": 0.65, "float64": 1.6}
_NS_PER_MALA_CHAIN = 15.0

_MALA_ACCEPT = jit_pair(_mala_accept_impl, FASTMATH)


def _gmm_tile_points(d):
    """Points per tile: the (d, P) transposed tile and accumulators stay within ~64 KiB."""
    return int(min(256, max(16, (8192 // max(d, 1)) // 16 * 16)))


def _gmm_score_impl(x, means, log_weights, inv_2v, inv_v, tile, out, work):
    """Each thread takes chunks of tiles of ``tile`` points; its scratch arrays are allocated
    once, not per tile."""
    n, d = x.shape
    k_count = means.shape[0]
    T = x.dtype.type
    for _worker in numba.prange(work[WORKERS]):
        xt = np.empty((d, tile), x.dtype)
        logits = np.empty((k_count, tile), x.dtype)
        top = np.empty(tile, x.dtype)
        total = np.empty(tile, x.dtype)
        acc = np.empty((d, tile), x.dtype)
        while True:
            lo, hi = next_chunk(work)
            if lo >= hi:
                break
            for ti in range(lo, hi):
                p0 = ti * tile
                m = min(tile, n - p0)
                # a last, partial tile: the points past its end are zeros, as in a full one
                xt[:, m:] = 0
                for p in range(m):
                    for j in range(d):
                        xt[j, p] = x[p0 + p, j]
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
                top[:] = logits[0]
                for k in range(1, k_count):
                    lk = logits[k]
                    for p in range(tile):
                        top[p] = maxnum(top[p], lk[p])
                total[:] = 0
                for k in range(k_count):
                    lk = logits[k]
                    for p in range(tile):
                        e = fast_exp(lk[p] - top[p])
                        lk[p] = e
                        total[p] += e
                acc[:] = 0
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


# gmm_score's single-thread cost: per point, component and dimension (the distance and the
# weighted mean), plus per point and component (the softmax). Measured: K = 8 and 2^20 / (8 d)
# cache-resident points, fastops.threads(1), median of 15, lower of two runs, 2026-12-02:
# float32 2.16 ns per point and component at d = 2, 25.0 at d = 64; float64 4.7 and 56.4; the
# straight line through each pair. (1e6 points at d = 64, 256 MB, ran 2x slower a term: the
# estimate is the cache-resident cost, that of calls near the threshold.)
_NS_PER_GMM_TERM = {"float32": 0.37, "float64": 0.83}
_NS_PER_GMM_COMPONENT = {"float32": 1.4, "float64": 3.0}

_GMM_SCORE = jit_pair(_gmm_score_impl, FASTMATH)


# --------------------------------------------------------------------------------------------
# The backend interface (BACKEND_INTERFACE.md)
# --------------------------------------------------------------------------------------------


def step(x: np.ndarray, score: np.ndarray, out: np.ndarray, c1: float, c2: float, seed: int,
         stream: int, offset: int = 0) -> None:
    """out = (x + c1 score) + c2 z on flat contiguous arrays, z[i] the normal at position
    offset + i of (seed, stream) (out may be x itself)."""
    t = x.dtype.type
    dtype = x.dtype.name
    inplace = out is x
    per_block = 4 if dtype == "float32" else 2
    blocks = full_blocks(offset, x.size, per_block)
    with Launch(blocks, per_block * _NS_PER_STEP_ELEMENT[dtype],
                item_out_bytes=per_block * x.itemsize) as (variant, work):
        _STEP[(dtype, inplace)][variant](x, score, x if inplace else out, t(c1), t(c2),
                                         *stream_words(seed, stream), np.int64(offset), work)


def mala_accept(x: np.ndarray, y: np.ndarray, score_x: np.ndarray, score_y: np.ndarray,
                lp_x: np.ndarray, lp_y: np.ndarray, u: np.ndarray, step_size: float
                ) -> np.ndarray:
    """Metropolis decisions of the proposals y (n, d); rejected rows of y are overwritten with
    x's, so that y is x_new afterwards. lp_x, lp_y, u: float64 (n,). Returns accepted (n,)."""
    accepted = np.empty(x.shape[0], np.bool_)
    chain_ns = x.shape[1] * _NS_PER_MALA_ELEMENT[x.dtype.name] + _NS_PER_MALA_CHAIN
    with Launch(x.shape[0], chain_ns) as (variant, work):
        _MALA_ACCEPT[variant](x, y, score_x, score_y, lp_x, lp_y, u, 0.5 * step_size,
                              1.0 / (2.0 * step_size), accepted, work)
    return accepted


def gmm_score(x: np.ndarray, means: np.ndarray, log_weights: np.ndarray, var: float
              ) -> np.ndarray:
    """The mixture score at the rows of x (n, d); means (K, d) and log_weights (K,) in x's
    dtype, var = component_std^2 + sigma^2."""
    t = x.dtype.type
    out = np.empty_like(x)
    n, d = x.shape
    tile = _gmm_tile_points(d)
    dtype = x.dtype.name
    tile_ns = tile * means.shape[0] * (d * _NS_PER_GMM_TERM[dtype] + _NS_PER_GMM_COMPONENT[dtype])
    with Launch((n + tile - 1) // tile, tile_ns) as (variant, work):
        _GMM_SCORE[variant](x, means, log_weights, t(0.5 / var), t(1.0 / var), tile, out, work)
    return out
