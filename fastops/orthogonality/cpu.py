"""Numba (CPU) kernels of the orthogonality family: the passes around the BLAS GEMMs.

The interface (names, arguments, results) is ``BACKEND_INTERFACE.md`` beside this file; the
GEMMs themselves are NumPy's (``numpy.matmul``, OpenBLAS or MKL, batched over the leading axis)
and are called by ``__init__.py``. What runs here is every pass over memory that the math needs
besides them, each fused into one walk:

- ``gram_reduce``: one read of the Gram matrix computes the penalty's sums and, for the
  gradient, overwrites the Gram with the scaled, masked ``A`` the gradient GEMM multiplies by
  (so no second m x m matrix is ever allocated or written).
- ``som_normalize`` / ``som_backward``: the tanh, column normalisation and their backward
  (``fast_tanh`` of ``fastops/_vecmath.py``, which vectorises: libm's tanh made the SOM
  forward pass 4.7 ms of 7 ms on (1024, 256) float32).

Every pass follows the scheduling model of ``fastops/_numba.py``: its items (rows, or row and
column chunks) are handed out in chunks from an atomic counter (``next_chunk``), and the launch
(``Launch(items, item_ns)``) runs it serially when its estimated single-thread time, from the
per-element costs measured below, is under ``PARALLEL_MIN_NS``. Inner loops walk contiguous
1-D views so that LLVM vectorises them. Every sum is accumulated in float64 (the passes are
memory-bound, so the conversion costs nothing measurable, and it keeps float32 sums over 16M
entries exact to about 1e-16 instead of losing 3 to 4 digits). The column reductions over rows
cut the rows into chunks of a fixed amount of work, whatever the thread count, so their results
are the same bits on 1 thread as on many.

Everything compiles lazily on the first call per dtype (``cache=True`` keeps the machine code
on disk for the next process); importing this module compiles nothing.
"""

from __future__ import annotations

import math

import numpy as np
from numba import prange

from .._numba import CHUNK_NS, WORKERS, Launch, inline, jit_pair, next_chunk
from .._vecmath import fast_tanh

_DIAG_MODES = {"minus_one": 0, "zero": 1, "keep": 2}

# Columns per task of the column reductions: 512 float64 accumulators are 4 KiB, which stay in
# L1 while the task walks down the rows.
_CHUNK_COLS = 512

# Single-thread cost of one element of a memory-bound pass (every kernel here but the tanh),
# for Launch's serial / parallel decision and its chunk size. Measured (median of 25 calls,
# fastops.threads(1), 2-core VM, 2026-12-02), float32 / float64 in ns per element:
# gram_reduce with the write 0.42 / 0.55 on (1, 2048, 2048), 0.60 / 0.59 on (256, 64, 64);
# without it 0.31 / 0.39 and 0.45 / 0.47; column_sqnorms 0.13-0.28 / 0.17-0.55;
# offdiag_correct 0.21-0.36 / 0.35-0.70; som_scale 0.36-0.39 / 0.36-0.51; som_dot
# 0.27-0.36 / 0.33-0.82; som_grad 0.52-0.69 / 0.56-1.07 on (1024, 512), (16, 1024, 256),
# (256, 4096); normalize_rows 0.47-1.0 / 0.5-2.8 (from (1, 4096), the call overhead, to
# (1024, 4096) float64, beyond the caches). At 0.5 ns the 4 ms of PARALLEL_MIN_NS are 8M
# elements: the same threshold as the 8M-element rule these passes had before.
_NS_PER_ELEMENT = 0.5
# The tanh pass (som_columns: fast_tanh, vectorised, plus the column sums of squares) is ten
# times dearer: 5.1 / 4.5 ns per element on (1024, 512), 7.0 / 6.5 on (16, 1024, 256), 8.9 /
# 8.3 (min 5.0 / 4.5) on (256, 4096) (same measurement). It goes parallel from 800K elements
# on (4 ms of it), where the 8M-element rule kept it serial up to 40 ms.
_NS_PER_TANH_ELEMENT = 5.0


# --------------------------------------------------------------------------------------------
# Kernels
# --------------------------------------------------------------------------------------------


def _gram_reduce_impl(G, mode, scale, write, sumsq_rows, total_rows, work):
    """Per row i of every matrix: sums of A_ij^2 and A_ij; optionally G[i] <- scale * A[i].

    The diagonal entry is handled apart from the two off-diagonal runs, so that A = G - I is
    never formed as (sum of G^2) - G_ii^2 + (G_ii - 1)^2, which would cancel catastrophically
    for the nearly orthogonal W that training produces.
    """
    m = G.shape[1]
    for _worker in prange(work[WORKERS]):
        while True:
            lo, hi = next_chunk(work)
            if lo >= hi:
                break
            for idx in range(lo, hi):  # row idx of the B * m rows
                b = idx // m
                i = idx - b * m
                row = G[b, i]
                left = row[:i]
                right = row[i + 1:]
                s2 = 0.0
                s1 = 0.0
                for j in range(left.size):
                    v = np.float64(left[j])
                    s2 += v * v
                    s1 += v
                for j in range(right.size):
                    v = np.float64(right[j])
                    s2 += v * v
                    s1 += v
                g = np.float64(row[i])
                if mode == 0:
                    a = g - 1.0
                elif mode == 1:
                    a = 0.0
                else:
                    a = g
                sumsq_rows[idx] = s2 + a * a
                total_rows[idx] = s1 + a
                if write:
                    sc = scale[b]
                    for j in range(row.size):
                        row[j] = sc * row[j]
                    row[i] = sc * a


def _column_sqnorms_impl(W, out, work):
    """out[b, i] = sum_r W[b, r, i]^2; tasks of _CHUNK_COLS columns walk down the rows (the
    items are the B * ceil(k / _CHUNK_COLS) tasks)."""
    k = W.shape[2]
    d = W.shape[1]
    nchunk = (k + _CHUNK_COLS - 1) // _CHUNK_COLS
    for _worker in prange(work[WORKERS]):
        while True:
            lo, hi = next_chunk(work)
            if lo >= hi:
                break
            for idx in range(lo, hi):
                b = idx // nchunk
                c0 = (idx - b * nchunk) * _CHUNK_COLS
                c1 = min(c0 + _CHUNK_COLS, k)
                acc = np.zeros(c1 - c0)
                for r in range(d):
                    seg = W[b, r, c0:c1]
                    for j in range(seg.size):
                        v = np.float64(seg[j])
                        acc[j] += v * v
                out[b, c0:c1] = acc


def _offdiag_correct_impl(grad, W, coef, work):
    """grad[b, r, :] -= coef[b, :] * W[b, r, :]; the items are the B * d rows."""
    d = W.shape[1]
    for _worker in prange(work[WORKERS]):
        while True:
            lo, hi = next_chunk(work)
            if lo >= hi:
                break
            for idx in range(lo, hi):
                b = idx // d
                r = idx - b * d
                g = grad[b, r]
                w = W[b, r]
                c = coef[b]
                for j in range(g.size):
                    g[j] = g[j] - c[j] * np.float64(w[j])


def _som_columns_impl(Y, gamma, T, partial, rows_per_chunk, work):
    """T = tanh(gamma * Y) (stored), and per row chunk the column sums of the stored T^2 (in
    float64: the norms are those of the rounded T, so that a one-row column normalises to
    exactly +-1, as in the float64 reference). The items are the B * nchunk row chunks."""
    n = Y.shape[1]
    nchunk = partial.shape[1]
    for _worker in prange(work[WORKERS]):
        while True:
            lo, hi = next_chunk(work)
            if lo >= hi:
                break
            for idx in range(lo, hi):
                b = idx // nchunk
                a0 = (idx - b * nchunk) * rows_per_chunk
                a1 = min(a0 + rows_per_chunk, n)
                acc = partial[b, idx - b * nchunk]
                for a in range(a0, a1):
                    y = Y[b, a]
                    t = T[b, a]
                    for i in range(y.size):
                        t[i] = fast_tanh(gamma * np.float64(y[i]))
                        v = np.float64(t[i])
                        acc[i] += v * v


def _som_scale_impl(T, guarded, rowsum, work):
    """In place T[b, a, :] /= guarded[b, :] (T becomes Yhat; a division, not a product with the
    reciprocal, so that x / |x| is exactly +-1); rowsum[b, a] = sum of the stored row. The
    items are the B * n rows."""
    n = T.shape[1]
    for _worker in prange(work[WORKERS]):
        while True:
            lo, hi = next_chunk(work)
            if lo >= hi:
                break
            for idx in range(lo, hi):
                b = idx // n
                a = idx - b * n
                t = T[b, a]
                g = guarded[b]
                acc = 0.0
                for i in range(t.size):
                    t[i] = t[i] / g[i]
                    acc += np.float64(t[i])
                rowsum[b, a] = acc


@inline
def _ybar(k1, k2, r, y, p, dg):
    """Ŷ̄ at one element: c1 (rowsum - Ŷ) + c2 (P - Ŷ diag), in float64 (both SOM backward
    passes call this, so they agree bit for bit)."""
    return k1 * (r - y) + k2 * (np.float64(p) - y * dg)


def _som_dot_impl(Yhat, P, rowsum, diag, c1, c2, partial, rows_per_chunk, work):
    """Per row chunk, the column sums of Yhat * Ybar (Ybar formed on the fly, never stored).
    The items are the B * nchunk row chunks."""
    n = Yhat.shape[1]
    nchunk = partial.shape[1]
    for _worker in prange(work[WORKERS]):
        while True:
            lo, hi = next_chunk(work)
            if lo >= hi:
                break
            for idx in range(lo, hi):
                b = idx // nchunk
                a0 = (idx - b * nchunk) * rows_per_chunk
                a1 = min(a0 + rows_per_chunk, n)
                acc = partial[b, idx - b * nchunk]
                dg = diag[b]
                k1 = c1[b]
                k2 = c2[b]
                for a in range(a0, a1):
                    yh = Yhat[b, a]
                    p = P[b, a]
                    r = rowsum[b, a]
                    for i in range(yh.size):
                        y = np.float64(yh[i])
                        acc[i] += y * _ybar(k1, k2, r, y, p[i], dg[i])


def _som_grad_impl(Yhat, P, rowsum, diag, dot, norms, inv_live, c1, c2, gamma, work):
    """P[b, a, i] <- dY: column-normalisation backward, then tanh backward (in P's buffer).
    The items are the B * n rows."""
    n = Yhat.shape[1]
    for _worker in prange(work[WORKERS]):
        while True:
            lo, hi = next_chunk(work)
            if lo >= hi:
                break
            for idx in range(lo, hi):
                b = idx // n
                a = idx - b * n
                yh = Yhat[b, a]
                p = P[b, a]
                r = rowsum[b, a]
                dg = diag[b]
                dt = dot[b]
                nr = norms[b]
                iv = inv_live[b]
                k1 = c1[b]
                k2 = c2[b]
                for i in range(yh.size):
                    y = np.float64(yh[i])
                    ybar = _ybar(k1, k2, r, y, p[i], dg[i])
                    t = y * nr[i]  # tanh(gamma * Y) recovered from Yhat and the column norm
                    p[i] = gamma * (1.0 - t * t) * ((ybar - y * dt[i]) * iv[i])


def _normalize_rows_impl(V, eps, out, norms, work):
    """norms[b] = ||V[b]||, out[b] = V[b] / max(norms[b], eps); the items are the rows."""
    for _worker in prange(work[WORKERS]):
        while True:
            lo, hi = next_chunk(work)
            if lo >= hi:
                break
            for b in range(lo, hi):
                v = V[b]
                o = out[b]
                s = 0.0
                for j in range(v.size):
                    x = np.float64(v[j])
                    s += x * x
                nrm = math.sqrt(s)
                norms[b] = nrm
                inv = 1.0 / max(nrm, eps)
                for j in range(v.size):
                    o[j] = v[j] * inv


_gram_reduce_rows = jit_pair(_gram_reduce_impl)
_column_sqnorms = jit_pair(_column_sqnorms_impl)
_offdiag_correct = jit_pair(_offdiag_correct_impl)
_som_columns = jit_pair(_som_columns_impl)
_som_scale = jit_pair(_som_scale_impl)
_som_dot = jit_pair(_som_dot_impl)
_som_grad = jit_pair(_som_grad_impl)
_normalize_rows = jit_pair(_normalize_rows_impl)


def _row_chunks(n: int, row_ns: float) -> tuple[int, int]:
    """(chunks per matrix, rows per chunk) of the column reductions over n rows that cost
    ``row_ns`` each: chunks of about CHUNK_NS of work, the unit the threads take from the
    counter, never empty, and independent of the thread count (so are the partial sums, and
    the result's bits)."""
    rows_per_chunk = max(1, min(n, int(CHUNK_NS // row_ns)))
    return -(-n // rows_per_chunk), rows_per_chunk


# --------------------------------------------------------------------------------------------
# The backend interface
# --------------------------------------------------------------------------------------------


def gram_reduce(G: np.ndarray, diag: str, scale: np.ndarray | None
                ) -> tuple[np.ndarray, np.ndarray]:
    """(sum of A^2, sum of A) per matrix of ``G`` (B, m, m), A = G - I / G zero-diagonal / G;
    with ``scale`` (B,) G is overwritten with scale[b] * A[b]."""
    B, m = G.shape[0], G.shape[1]
    sumsq = np.empty(B * m)
    total = np.empty(B * m)
    write = scale is not None
    scale_arg = scale if write else np.empty(0)
    with Launch(B * m, m * _NS_PER_ELEMENT) as (variant, work):
        _gram_reduce_rows[variant](G, _DIAG_MODES[diag], scale_arg, write, sumsq, total, work)
    return sumsq.reshape(B, m).sum(axis=1), total.reshape(B, m).sum(axis=1)


def column_sqnorms(W: np.ndarray) -> np.ndarray:
    """Squared column norms of each matrix of W (B, d, k), as (B, k) float64."""
    B, d, k = W.shape
    out = np.empty((B, k))
    tasks = B * -(-k // _CHUNK_COLS)
    with Launch(tasks, d * min(k, _CHUNK_COLS) * _NS_PER_ELEMENT) as (variant, work):
        _column_sqnorms[variant](W, out, work)
    return out


def offdiag_correct(grad: np.ndarray, W: np.ndarray, coef: np.ndarray) -> None:
    """In place: grad[b, r, i] -= coef[b, i] * W[b, r, i]."""
    B, d, k = W.shape
    with Launch(B * d, k * _NS_PER_ELEMENT) as (variant, work):
        _offdiag_correct[variant](grad, W, coef, work)


def som_normalize(Y: np.ndarray, gamma: float, eps: float
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(Yhat, norms, rowsum): T = tanh(gamma Y), its column norms over the rows, Yhat =
    T / max(norms, eps), and the row sums of Yhat."""
    B, n, k = Y.shape
    row_ns = k * _NS_PER_TANH_ELEMENT
    nchunk, rows_per_chunk = _row_chunks(n, row_ns)
    Yhat = np.empty_like(Y)
    partial = np.zeros((B, nchunk, k))
    rowsum = np.empty((B, n))
    with Launch(B * nchunk, rows_per_chunk * row_ns) as (variant, work):
        _som_columns[variant](Y, gamma, Yhat, partial, rows_per_chunk, work)
    norms = np.sqrt(partial.sum(axis=1))
    with Launch(B * n, k * _NS_PER_ELEMENT) as (variant, work):
        _som_scale[variant](Yhat, np.maximum(norms, eps), rowsum, work)
    return Yhat, norms, rowsum


def som_backward(Yhat: np.ndarray, P: np.ndarray, rowsum: np.ndarray, diag: np.ndarray,
                 norms: np.ndarray, c1: np.ndarray, c2: np.ndarray, gamma: float, eps: float
                 ) -> np.ndarray:
    """dY of the SOM penalty from Yhat, P = Yhat Θ and the row/column statistics; written
    into P's buffer, which is returned."""
    B, n, k = Yhat.shape
    row_ns = k * _NS_PER_ELEMENT
    nchunk, rows_per_chunk = _row_chunks(n, row_ns)
    partial = np.zeros((B, nchunk, k))
    with Launch(B * nchunk, rows_per_chunk * row_ns) as (variant, work):
        _som_dot[variant](Yhat, P, rowsum, diag, c1, c2, partial, rows_per_chunk, work)
    dot = partial.sum(axis=1)
    live = norms > eps
    inv_live = np.where(live, 1.0 / np.where(live, norms, 1.0), 0.0)
    with Launch(B * n, row_ns) as (variant, work):
        _som_grad[variant](Yhat, P, rowsum, diag, dot, norms, inv_live, c1, c2, gamma, work)
    return P


def normalize_rows(V: np.ndarray, eps: float) -> tuple[np.ndarray, np.ndarray]:
    """(V / max(||V||, eps) row by row, the norms as float64)."""
    out = np.empty_like(V)
    norms = np.empty(V.shape[0])
    with Launch(V.shape[0], V.shape[1] * _NS_PER_ELEMENT) as (variant, work):
        _normalize_rows[variant](V, eps, out, norms, work)
    return out, norms
