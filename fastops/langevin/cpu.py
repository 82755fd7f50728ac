"""Numba kernels of the Langevin family (interface: BACKEND_INTERFACE.md).

- ``step``: out = (x + c1 score) + c2 z, the noise z generated in registers by the random
  family's helpers (fastops.random.cpu): one pass reading x and score and writing out (12 bytes
  per float32 element). Compiled without fast-math flags, so each product and sum is rounded
  on its own, exactly as the NumPy reference: the result is the reference's bits. Full Philox
  blocks (4 float32 / 2 float64 elements) go in dynamic chunks over the threads with a
  vectorised inner loop (see fastops.random.cpu); the in-place variant (out is x) reads and
  writes one array, so that LLVM needs no runtime alias check (which fails for out = x and
  falls back to scalar code).
- ``step_strided``: the same step on (rows, n) operands read and written through their
  strides (slices, transposes, out=x of either), so that no operand is copied first: tiles
  of the normals are filled into a per-thread buffer (the same helpers, vectorised over
  blocks), then the tile is updated through the strides with the same arithmetic, so the
  bits are the same as :func:`step` on contiguous copies.
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

from .._numba import (
    CHUNK,
    FASTMATH,
    IEEE,
    ITEMS,
    NEXT,
    WORKERS,
    Launch,
    ieee_inline,
    jit_pair,
    next_chunk,
)
from .._vecmath import fast_exp, maxnum
from ..random.cpu import (
    _FILL,
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


# --------------------------------------------------------------------------------------------
# The step on strided operands (a slice, a transpose, out=x of either): read and written where
# they lie, through explicit element strides, instead of through contiguous copies
# --------------------------------------------------------------------------------------------


# The normals of a tile come from the random family's fill kernel (its serial compilation,
# called once per run of positions with a one-chunk schedule): the same bits, and no Box-Muller
# code compiled again here. A fill of the strided step's own, even compiled apart from the
# kernel, cost 2.4 s (float32) / 1.3 s (float64) of a cold first call, and tests/langevin with
# tests/rng on a cold cache took 94 s against 83 s this way (84 s before the strided step);
# inlined into both compilations of the kernel pair the float32 step's first call took 14 s.
# The price is about 0.1 us a call: 64-value runs 5.7 against 4.0 ns a value, 4096-value
# runs 3.1 either way (1 thread, measured), hence the tiles' long runs below.
_FILL_NORMALS32 = _FILL[("normal", "float32")][1]
_FILL_NORMALS64 = _FILL[("normal", "float64")][1]


@ieee_inline
def _fill_run(fill, zbuf, start, pos0, count, k0, k1, s0, s1, run_work, per_block):
    """zbuf[start + i] = the normal at stream position pos0 + i, for i < count."""
    run_work[NEXT] = 0
    run_work[ITEMS] = max((pos0 + count) // per_block - (pos0 + per_block - 1) // per_block, 0)
    run_work[CHUNK] = max(run_work[ITEMS], 1)
    run_work[WORKERS] = 1
    fill(zbuf[start:start + count], pos0, k0, k1, s0, s1, run_work)


@ieee_inline
def _update_tile(src, sb, srs, scs, score, gb, grs, gcs, dst, db, drs, dcs, c1, c2, zbuf,
                 zstart, r0, r1, c0, c1_end, rows_inner):
    """dst[r, c] = (src[r, c] + c1 score[r, c]) + c2 z over the tile's rows r0..r1 and columns
    c0..c1_end, each array a flat buffer indexed ``base + r * row_stride + c * col_stride``
    in uint64 arithmetic (no negative-index wraparound select in the loop, and a negative
    stride wraps to the right element). The inner loop runs along the axis of the smaller
    stride; z of tile row i, column j is zbuf[zstart[i] + j]."""
    if rows_inner:
        for j in range(c1_end - c0):
            cu = _U64(c0 + j)
            ju = _U64(j)
            sc = sb + cu * scs
            gc = gb + cu * gcs
            dc = db + cu * dcs
            for i in range(r1 - r0):
                ru = _U64(r0 + i)
                z = zbuf[zstart[i] + ju]
                dst[dc + ru * drs] = (src[sc + ru * srs] + c1 * score[gc + ru * grs]) + c2 * z
    else:
        for i in range(r1 - r0):
            ru = _U64(r0 + i)
            sr = sb + ru * srs
            gr = gb + ru * grs
            dr = db + ru * drs
            zr = zbuf[zstart[i]:]
            for j in range(c1_end - c0):
                cu = _U64(c0 + j)
                dst[dr + cu * dcs] = (src[sr + cu * scs] + c1 * score[gr + cu * gcs]) + c2 * zr[j]


@ieee_inline
def _step_strided(x, score, out, at, rows, n, c1, c2, k0, k1, s0, s1, p0, tile_rows, tile_cols,
                  rows_inner, work, fill, per_block):
    """The step of (rows, n) operands given as flat buffers and their (base, row stride,
    column stride) in elements as uint64 words (``at``: x's three, score's, out's). Element
    (r, c) takes the normal at position p0 + r n + c. The items are tiles of tile_rows x
    tile_cols: each thread fills the tile's normals into its own buffer (one run of positions
    per tile row, or one for the whole tile when it spans whole rows), then updates the tile
    through the strides, along its rows or (rows_inner) down its columns. In place, out is x's
    buffer with x's words: each element is read, then written, by the same iteration. (A
    variant compiled for in place, as the contiguous kernels have, measured no faster here:
    these update loops are scalar either way; it made the first compilation 1.9 s longer.)"""
    col_tiles = (n + tile_cols - 1) // tile_cols
    row_tiles = (rows + tile_rows - 1) // tile_rows
    whole_rows = tile_cols == n
    for _worker in numba.prange(work[WORKERS]):
        zbuf = np.empty(tile_rows * tile_cols, x.dtype)
        zstart = np.empty(tile_rows, np.uint64)
        run_work = np.empty(4, np.int64)
        while True:
            lo, hi = next_chunk(work)
            if lo >= hi:
                break
            for tile in range(lo, hi):
                # consecutive tiles are neighbours in memory: along the rows, or down the
                # columns when the walk is (a chunk of tiles is then one region of memory)
                if rows_inner:
                    tc = tile // row_tiles
                    tr = tile - tc * row_tiles
                else:
                    tr = tile // col_tiles
                    tc = tile - tr * col_tiles
                r0 = tr * tile_rows
                r1 = min(r0 + tile_rows, rows)
                c0 = tc * tile_cols
                c1_end = min(c0 + tile_cols, n)
                # one run of normals per tile row, or one for the whole tile (whole rows)
                runs = 1 if whole_rows else r1 - r0
                count = (r1 - r0) * n if whole_rows else c1_end - c0
                for i in range(runs):
                    _fill_run(fill, zbuf, i * tile_cols, p0 + (r0 + i) * n + c0, count, k0, k1,
                              s0, s1, run_work, per_block)
                for i in range(r1 - r0):
                    zstart[i] = i * tile_cols  # (whole rows: tile_cols is n)
                _update_tile(x, at[0], at[1], at[2], score, at[3], at[4], at[5], out, at[6],
                             at[7], at[8], c1, c2, zbuf, zstart, r0, r1, c0, c1_end, rows_inner)


def _step_strided32(x, score, out, at, rows, n, c1, c2, k0, k1, s0, s1, p0, tile_rows,
                    tile_cols, rows_inner, work):
    _step_strided(x, score, out, at, rows, n, c1, c2, k0, k1, s0, s1, p0, tile_rows, tile_cols,
                  rows_inner, work, _FILL_NORMALS32, 4)


def _step_strided64(x, score, out, at, rows, n, c1, c2, k0, k1, s0, s1, p0, tile_rows,
                    tile_cols, rows_inner, work):
    _step_strided(x, score, out, at, rows, n, c1, c2, k0, k1, s0, s1, p0, tile_rows, tile_cols,
                  rows_inner, work, _FILL_NORMALS64, 2)


_STEP_STRIDED = {
    "float32": jit_pair(_step_strided32, IEEE),
    "float64": jit_pair(_step_strided64, IEEE),
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


def _mala_accept_columns_impl(x, y, score_x, score_y, lp_x, lp_y, u, half_h, inv_2h, block,
                              accepted, work):
    """_mala_accept_impl on the transposes: x, y, score_x, score_y are (d, n) C-contiguous,
    chain c a column (the (n, d) arrays were X.T views). An item of ``work`` is a block of
    ``block`` chains: each element row adds to the block's two squared norms, vectorised
    across its chains, in the same order over the d elements as the row kernel."""
    d, n = x.shape
    for _worker in numba.prange(work[WORKERS]):
        forward = np.empty(block, np.float64)
        backward = np.empty(block, np.float64)
        while True:
            lo, hi = next_chunk(work)
            if lo >= hi:
                break
            for item in range(lo, hi):
                c0 = item * block
                c1 = min(c0 + block, n)
                w = c1 - c0
                forward[:w] = 0.0
                backward[:w] = 0.0
                for e in range(d):
                    xr, yr = x[e, c0:c1], y[e, c0:c1]
                    sxr, syr = score_x[e, c0:c1], score_y[e, c0:c1]
                    for i in range(w):
                        xv = np.float64(xr[i])
                        yv = np.float64(yr[i])
                        f = yv - xv - half_h * np.float64(sxr[i])
                        b = xv - yv - half_h * np.float64(syr[i])
                        forward[i] += f * f
                        backward[i] += b * b
                for i in range(w):
                    c = c0 + i
                    log_alpha = lp_y[c] - lp_x[c] + (forward[i] - backward[i]) * inv_2h
                    accepted[c] = math.log(u[c]) < log_alpha if u[c] > 0.0 \
                        else log_alpha > -np.inf
                kept = accepted[c0:c1]
                if kept.all():
                    continue
                for e in range(d):  # rejected chains: x's values over y's
                    xr, yr = x[e, c0:c1], y[e, c0:c1]
                    for i in range(w):
                        yr[i] = yr[i] if kept[i] else xr[i]


# Chains per block of the column kernel: each element row is read in runs of the block's
# chains, which must be long for the prefetchers (one thread, (64, 65536) float32, medians of
# 9: 256 chains (1 KiB runs) 13.4 ms, 1024 6.6, 2048 7.3, 4096 5.6-9.0, the row kernel on C
# arrays 4.5-7.5; 2026-12-03). Its two float64 norms, 32 KiB, stay in L1/L2.
_MALA_BLOCK = 2048

_MALA_ACCEPT_COLUMNS = jit_pair(_mala_accept_columns_impl, IEEE)


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
    # x may be strided (a transposed or sliced view, see gmm_score): the tile is gathered in
    # the order that walks x's memory contiguously
    points_adjacent = abs(x.strides[0]) < abs(x.strides[1])
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
                if points_adjacent:  # x = X.T of a C-contiguous X: read X's rows in runs
                    for j in range(d):
                        xrow = xt[j]
                        for p in range(m):
                            xrow[p] = x[p0 + p, j]
                else:
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


#: A strided operand of the step: (flat buffer, base, row stride, column stride), the last
#: three in elements of the buffer (strides may be negative or 0).
StridedOperand = tuple[np.ndarray, int, int, int]


def _words(*operands: StridedOperand) -> np.ndarray:
    """The operands' bases and strides as one array of uint64 words, three per operand (two's
    complement: negative strides wrap to the right elements in the kernel's uint64 index
    arithmetic)."""
    return np.array([v & 0xFFFFFFFFFFFFFFFF for op in operands for v in op[1:]], np.uint64)


def _walks_rows(operand: StridedOperand) -> bool | None:
    """Whether an operand's elements lie closer along its rows (a C-like layout: True) or
    along its columns (a transpose: False); None when both strides are 0 (a broadcast
    scalar: no preference)."""
    rs, cs = abs(operand[2]), abs(operand[3])
    if rs == 0 and cs == 0:
        return None
    return rs == 0 or (cs != 0 and cs <= rs)


def step_strided(x: StridedOperand, score: StridedOperand, out: StridedOperand, rows: int,
                 n: int, c1: float, c2: float, seed: int, stream: int, offset: int = 0) -> None:
    """:func:`step` of (rows, n) operands read and written through their strides:
    out[r, c] = (x[r, c] + c1 score[r, c]) + c2 z at position offset + r n + c, the same bits
    as :func:`step` on contiguous copies. ``out`` may be ``x`` itself (the same tuple: in
    place); otherwise it overlaps neither."""
    xbuf = x[0]
    t = xbuf.dtype.type
    dtype = xbuf.dtype.name
    inplace = out is x
    votes = [v for v in map(_walks_rows, (x, score, out)) if v is not None]
    along_rows = sum(votes) * 2 >= len(votes)
    tile_rows, tile_cols = _strided_tile(rows, n, along_rows, mixed=len(set(votes)) > 1)
    tiles = -(-rows // tile_rows) * -(-n // tile_cols)
    tile_elements = tile_rows * tile_cols
    with Launch(tiles, tile_elements * _NS_PER_STEP_ELEMENT[dtype],
                item_out_bytes=tile_elements * xbuf.itemsize) as (variant, work):
        _STEP_STRIDED[dtype][variant](
            xbuf, score[0], xbuf if inplace else out[0], _words(x, score, out), np.int64(rows),
            np.int64(n), t(c1), t(c2), *stream_words(seed, stream), np.int64(offset),
            np.int64(tile_rows), np.int64(tile_cols), not along_rows, work)


#: Elements per tile of the strided step walked along C-like rows: its normals (16 / 32 KiB)
#: stay in L1, and runs of normals this long make the fill's per-call cost (about 0.1 us a
#: run, measured) negligible.
_STRIDED_ROW_TILE = 4096
#: The tiles of the other walks. Down the columns of transposes (every operand transposed):
#: _STRIDED_SQUARE x _STRIDED_SQUARE. Mixed layouts (C-like and transposed operands together):
#: _STRIDED_LONG x _STRIDED_SHORT, the walk's inner loop short (the operands lying across it
#: then read runs of _STRIDED_LONG neighbours). Measured 2026-12-04, 1 thread, (4096, 4096)
#: float32, medians of 5-9, tile (rows, columns): x.T, score.T, out=x 256 x 64 153-156 ms,
#: 128 x 128 130-134, 64 x 256 133, 16 x 1024 155-160 (the contiguous step: 52 ms); x, score
#: C-like and out transposed, walked along the rows: 256 x 64 214, 128 x 128 231, 64 x 256 354;
#: walked down the columns 256 x 64 507, 128 x 128 209, 64 x 256 181; x C-like, score
#: transposed, out C-like, along the rows: 256 x 64 144, 128 x 128 147, 64 x 256 312.
_STRIDED_SQUARE = 128
_STRIDED_LONG = 256
_STRIDED_SHORT = 64


def _strided_tile(rows: int, n: int, along_rows: bool, mixed: bool) -> tuple[int, int]:
    """(tile rows, tile columns) of the strided step. Walked along the rows with every
    operand C-like, a tile is a run of one row, or whole rows when they are short; otherwise
    see _STRIDED_SQUARE (whole rows when they are at most a tile wide)."""
    if along_rows and not mixed:
        if n >= _STRIDED_ROW_TILE:
            return 1, _STRIDED_ROW_TILE
        return max(1, min(rows, _STRIDED_ROW_TILE // n)), n
    if not mixed:
        tile = (_STRIDED_SQUARE, _STRIDED_SQUARE)
    elif along_rows:
        tile = (_STRIDED_LONG, _STRIDED_SHORT)
    else:
        tile = (_STRIDED_SHORT, _STRIDED_LONG)
    if n <= tile[1]:
        return max(1, min(rows, tile[0] * tile[1] // n)), n
    return min(rows, tile[0]), tile[1]


def mala_accept(x: np.ndarray, y: np.ndarray, score_x: np.ndarray, score_y: np.ndarray,
                lp_x: np.ndarray, lp_y: np.ndarray, u: np.ndarray, step_size: float
                ) -> np.ndarray:
    """Metropolis decisions of the proposals y (n, d); rejected rows of y are overwritten with
    x's, so that y is x_new afterwards. lp_x, lp_y, u: float64 (n,). Returns accepted (n,).
    x, y, score_x, score_y: all C-contiguous, or all transposes of C-contiguous (d, n)."""
    accepted = np.empty(x.shape[0], np.bool_)
    chain_ns = x.shape[1] * _NS_PER_MALA_ELEMENT[x.dtype.name] + _NS_PER_MALA_CHAIN
    if all(a.T.flags.c_contiguous and not a.flags.c_contiguous
           for a in (x, y, score_x, score_y)):
        # X.T views of C-contiguous (d, n) arrays (chains as columns): the column kernel on
        # the transposes, no copies (see fastops.langevin._Chains)
        blocks = -(-x.shape[0] // _MALA_BLOCK)
        with Launch(blocks, _MALA_BLOCK * chain_ns) as (variant, work):
            _MALA_ACCEPT_COLUMNS[variant](x.T, y.T, score_x.T, score_y.T, lp_x, lp_y, u,
                                          0.5 * step_size, 1.0 / (2.0 * step_size),
                                          _MALA_BLOCK, accepted, work)
        return accepted
    with Launch(x.shape[0], chain_ns) as (variant, work):
        _MALA_ACCEPT[variant](x, y, score_x, score_y, lp_x, lp_y, u, 0.5 * step_size,
                              1.0 / (2.0 * step_size), accepted, work)
    return accepted


def gmm_score(x: np.ndarray, means: np.ndarray, log_weights: np.ndarray, var: float
              ) -> np.ndarray:
    """The mixture score at the rows of x (n, d), any strides (a transposed view is read in
    place: the kernel gathers each tile of points anyway); means (K, d) and log_weights (K,)
    in x's dtype, var = component_std^2 + sigma^2. The result is C-contiguous."""
    t = x.dtype.type
    out = np.empty(x.shape, x.dtype)
    n, d = x.shape
    tile = _gmm_tile_points(d)
    dtype = x.dtype.name
    tile_ns = tile * means.shape[0] * (d * _NS_PER_GMM_TERM[dtype] + _NS_PER_GMM_COMPONENT[dtype])
    with Launch((n + tile - 1) // tile, tile_ns) as (variant, work):
        _GMM_SCORE[variant](x, means, log_weights, t(0.5 / var), t(1.0 / var), tile, out, work)
    return out
