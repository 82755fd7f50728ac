"""Numba (CPU) kernels of the smooth family.

The interface (names, arguments, special values) is fastops/smooth/BACKEND_INTERFACE.md: every
function takes C-contiguous ``(rows, n)`` arrays with ``rows, n >= 1`` and returns new arrays.

How the kernels are fast:

- One pass over memory per row. A row is walked in blocks of ``_BLOCK`` elements: the block's
  maximum is found first (the block is then in L1), the running state is rescaled if the maximum
  grew, and the block's exponentials are summed. So each element is read from memory once, and
  both inner loops vectorise (the online max/sum recurrence applied element by element does not:
  it needs an exp per element for the rescale and a loop-carried branch).
- A branch-free ``exp`` (``fastops/_vecmath.py``: Cody-Waite range reduction, polynomial,
  scaling through the exponent bits), because pip's llvmlite has no SVML and ``math.exp``
  would be a scalar libm call that stops the loop from vectorising. Measured on the 2-core
  development machine (``fastops bench``, 2026-11-25): a float64 logsumexp over (4096, 4096)
  takes 10.8 ms with it, torch.logsumexp 64 ms and scipy.special.logsumexp 149 ms in the same
  run.
- Row state ``(m, s_lt, c_eq)``: the maximum, the sum of exp(v - m) over elements strictly below
  it, and the count of elements equal to it. ``log(sum) = log1p(s_lt + c_eq - 1)`` then keeps the
  dominant term's 1 out of the sum, which is SciPy's gh-18295 accuracy fix.
- Rows run in parallel (``prange``). Few huge rows (fewer than two per thread) are split into
  segments whose states are merged afterwards, so (8, 2097152) uses every core of a 16-core
  machine too. Rows of at most ``_SHORT_ROW`` elements go through transposed tiles (below).
- ``fastmath`` is limited to ``{"reassoc", "contract"}``: reassociation lets LLVM vectorise the
  sums and max; ``nnan``/``ninf`` are never set, so inf and NaN keep their meaning.

Everything compiles lazily on the first call per dtype and mask-ness (``cache=True`` keeps the
machine code on disk for the next process); importing this module compiles nothing.
"""

from __future__ import annotations

import numba
import numpy as np
from numba import prange

from .._numba import WORKERS, Launch, inline, jit_pair, next_chunk, worth_parallel
from .._rows import RowPair
from .._vecmath import fast_exp, fast_log1p, load, maxnum, store, work_type

# Elements per block of the one-pass walk. 256 float64 are 2 KiB: the block's second read (the
# exponentials, after its max) hits L1, and 256 is long enough that the per-block rescale is
# negligible. Blocks of 128, 256 and 1024 timed within noise of each other (logsumexp over
# (4096, 4096), float32 and float64, on a loaded machine): the choice is not sensitive.
_BLOCK = 256

# Rows shorter than this are not worth splitting into segments.
_MIN_SEGMENT = 16384


# --------------------------------------------------------------------------------------------
# Row state
# --------------------------------------------------------------------------------------------
# The state of a row (or part of one) is (m, s_lt, c_eq[, sj_lt, cj_eq]): m the maximum of the
# kept raw values, s_lt the sum of exp(sc * (v - m)) over kept values strictly below m, c_eq the
# count of values equal to m, and for soft_argmax the same two sums weighted by the column
# index. Working on raw values and scaling the differences (rather than scaling the values
# first) keeps m exact, so smooth_max -> max exactly as the temperature -> 0 and log_softmax
# can be formed in float64 without the rounding of sc * x.
#
# Kernels index 1-D views (a row, a block of a row) with ``range(view.size)``: a 2-D index
# ``x[r, start + k]`` keeps NumPy's negative-index wraparound check in the loop and stops LLVM
# from vectorising it (measured: 0.60 ns per float32 element against 0.07 ns for the 1-D form).
#
# A mask is None or a pair (distinct rows, row index) from RowLayout.broadcast_rows: row r of
# the mask is mask[0][mask[1][r]], so a mask broadcast over kept axes is never copied out (the
# same pair carries logsumexp's b). A mask row is None or a bool view; helpers receive it as an
# argument so that Numba compiles a mask-free specialisation when it is None (branches on a None
# *argument* are pruned).


@inline
def _value(row, mrow, k, ninf):
    """Element k of a row (or block), or -inf when masked out."""
    if mrow is None:
        return load(row, k)
    return load(row, k) if mrow[k] else ninf


@inline
def _block_max(row, mrow, ninf):
    bm = ninf
    for k in range(row.size):
        bm = maxnum(bm, _value(row, mrow, k, ninf))
    return bm


@inline
def _mask_row(mask, r):
    return None if mask is None else mask[0][mask[1][r]]


@inline
def _mask_block(mrow, lo, hi):
    return None if mrow is None else mrow[lo:hi]


@inline
def _state(row, mrow, lo, hi, sc, with_index):
    """State of row[lo:hi]; sc (the scale, in the row's dtype) multiplies v - m.

    Column indices in sj/cj are relative to lo.
    """
    T = work_type(row)
    ninf = T(-np.inf)
    zero = T(0.0)
    one = T(1.0)
    sc64 = np.float64(sc)
    m = ninf
    s = 0.0  # float64 running sums: block partial sums are in T, the totals are not
    c = 0.0
    sj = 0.0
    cj = 0.0
    for start in range(lo, hi, _BLOCK):
        stop = min(start + _BLOCK, hi)
        blk = row[start:stop]
        mblk = _mask_block(mrow, start, stop)
        bm = _block_max(blk, mblk, ninf)
        if bm > m:
            f = fast_exp(sc64 * (np.float64(m) - np.float64(bm)))
            s = (s + c) * f
            sj = (sj + cj) * f
            c = 0.0
            cj = 0.0
            m = bm
        acc = zero
        cnt = zero
        # Index weights relative to the block start stay below _BLOCK, so they can be summed
        # in T; the block offset is added back in float64: sum (off + k) e = off sum e + sum k e.
        # (Branches on with_index stay outside the loops: inside, they stop vectorisation.)
        accj = zero
        cntj = zero
        if with_index:
            for k in range(blk.size):
                v = _value(blk, mblk, k, ninf)
                e = fast_exp(sc * (v - m))
                lt = e if v != m else zero
                eq = one if v == m else zero
                acc += lt
                cnt += eq
                accj += lt * T(k)
                cntj += eq * T(k)
        else:
            for k in range(blk.size):
                v = _value(blk, mblk, k, ninf)
                e = fast_exp(sc * (v - m))
                acc += e if v != m else zero
                cnt += one if v == m else zero
        s += acc
        c += cnt
        if with_index:
            off = np.float64(start - lo)
            sj += accj + off * acc
            cj += cntj + off * cnt
    if m == ninf:  # empty or all -inf: nothing counts, and no NaN from (-inf) - (-inf)
        c = 0.0
        cj = 0.0
    return m, s, c, sj, cj


@inline
def _lse_value(m, s, c, inv_sc):
    """(1/sc) log sum exp(sc v) from a state: -inf if empty, +inf if m is +inf, NaN if s is."""
    if s != s:  # a kept NaN, even in a row that is otherwise all -inf
        return np.nan
    if m == -np.inf:
        return -np.inf
    if m == np.inf:
        return np.inf
    return np.float64(m) + np.log1p(s + (c - 1.0)) * inv_sc


@inline
def _argmax_value(m, s, c, sj, cj):
    """sum j p_j from a state: NaN for empty rows and rows holding +inf."""
    if m == -np.inf or m == np.inf:
        return np.nan
    return (sj + cj) / (s + c)


@inline
def _segment_bounds(t, nseg, n):
    """(row, lo, hi) of task t when each row of length n is cut into nseg segments."""
    seg = (n + nseg - 1) // nseg
    r = t // nseg
    lo = min(n, (t - r * nseg) * seg)
    return r, lo, min(n, lo + seg)


# --------------------------------------------------------------------------------------------
# Forward reductions, one row per task
# --------------------------------------------------------------------------------------------


def _reduce_rows_impl(x, mask, sc, with_index, out, work):
    """lse (with_index False) or soft_argmax (True) per row."""
    T = work_type(x)
    inv_sc = 1.0 / sc
    for _worker in prange(work[WORKERS]):
        while True:
            start, stop = next_chunk(work)
            if start >= stop:
                break
            for r in range(start, stop):
                m, s, c, sj, cj = _state(x[r], _mask_row(mask, r), 0, x.shape[1], T(sc), with_index)
                store(out, r, _argmax_value(m, s, c, sj, cj) if with_index
                          else _lse_value(m, s, c, inv_sc))


def _segment_states_impl(x, mask, sc, nseg, with_index, states, work):
    """states[r, g] = (m, s, c, sj, cj) of segment g of row r (for few, long rows)."""
    T = work_type(x)
    for _worker in prange(work[WORKERS]):
        while True:
            start, stop = next_chunk(work)
            if start >= stop:
                break
            for t in range(start, stop):
                r, lo, hi = _segment_bounds(t, nseg, x.shape[1])
                m, s, c, sj, cj = _state(x[r], _mask_row(mask, r), lo, hi, T(sc), with_index)
                g = t - r * nseg
                states[r, g, 0] = m
                states[r, g, 1] = s
                states[r, g, 2] = c
                # index sums relative to the segment start -> relative to the row start
                states[r, g, 3] = sj + lo * s
                states[r, g, 4] = cj + lo * c


def _combine_states_impl(states, sc, row_state):
    """Merge the segment states of each row into row_state[r] = (m, s, c, sj, cj)."""
    for r in range(states.shape[0]):
        m = -np.inf
        s = 0.0
        c = 0.0
        sj = 0.0
        cj = 0.0
        for g in range(states.shape[1]):
            m2, s2, c2, sj2, cj2 = states[r, g]
            if m2 > m:  # the new segment holds the maximum: rescale what was merged so far
                f = np.exp(sc * (m - m2))
                s = (s + c) * f
                sj = (sj + cj) * f
                c = 0.0
                cj = 0.0
                m = m2
            if m2 == m:
                s += s2
                c += c2
                sj += sj2
                cj += cj2
            elif m2 > -np.inf:
                f = np.exp(sc * (m2 - m))
                s += (s2 + c2) * f
                sj += (sj2 + cj2) * f
            if s2 != s2:  # a NaN in any segment poisons its row
                s = np.nan
        row_state[r, 0] = m
        row_state[r, 1] = s
        row_state[r, 2] = c
        row_state[r, 3] = sj
        row_state[r, 4] = cj


_reduce_rows = jit_pair(_reduce_rows_impl)
_segment_states = jit_pair(_segment_states_impl)
_combine_states = numba.njit(cache=True, nogil=True, error_model="numpy")(_combine_states_impl)


# --------------------------------------------------------------------------------------------
# Per-element outputs, one row (or one segment of a row) per task
# --------------------------------------------------------------------------------------------
# Where an output can cancel (log_softmax near 0, the backward passes' differences) it is formed
# in float64 from the float32 inputs and rounded once, so float32 results stay within a few ulp
# of the float64 reference; exp itself stays in the working dtype (a product, no cancellation).


@inline
def _nan_kept(mrow, fill, orow):
    """NaN at the kept elements of a row, fill at the masked-out ones."""
    T = work_type(orow)
    for j in range(orow.size):
        store(orow, j, T(np.nan) if (mrow is None or mrow[j]) else fill)


@inline
def _write_softmax(row, mrow, sc, m, s, c, log, yrow):
    """softmax (or log_softmax) of a row (segment) into yrow, given the whole row's state."""
    T = work_type(row)
    ninf = T(-np.inf)
    fill = ninf if log else T(0.0)
    # A kept NaN, or for softmax a kept +inf: NaN (checked first: NaN beats all -inf). For
    # log_softmax a kept +inf goes through the formula below, SciPy's x - lse: NaN at the +inf
    # elements (inf - inf), -inf at the others.
    if s != s or (m == T(np.inf) and not log):
        _nan_kept(mrow, fill, yrow)
        return
    if m == ninf:  # empty or all -inf row: all 0 (log: all -inf)
        for k in range(yrow.size):
            store(yrow, k, fill)
        return
    if log:
        sc64 = np.float64(sc)
        m64 = np.float64(m)
        log_total = np.log1p(s + (c - 1.0))
        for k in range(yrow.size):
            store(yrow, k, T(sc64 * (np.float64(_value(row, mrow, k, ninf)) - m64) - log_total))
    else:
        # A reciprocal and a product per element instead of a division: vector division costs
        # about 2.5 cycles per float64 element here, the product 0.1; one extra rounding.
        inv_total = T(1.0 / (s + c))
        for k in range(yrow.size):
            store(yrow, k, fast_exp(sc * (_value(row, mrow, k, ninf) - m)) * inv_total)


def _softmax_rows_impl(x, mask, sc, log, y, work):
    T = work_type(x)
    for _worker in prange(work[WORKERS]):
        while True:
            start, stop = next_chunk(work)
            if start >= stop:
                break
            for r in range(start, stop):
                mrow = _mask_row(mask, r)
                m, s, c, _, _ = _state(x[r], mrow, 0, x.shape[1], T(sc), False)
                _write_softmax(x[r], mrow, T(sc), m, s, c, log, y[r])


def _softmax_segments_impl(x, mask, sc, log, nseg, row_state, y, work):
    T = work_type(x)
    for _worker in prange(work[WORKERS]):
        while True:
            start, stop = next_chunk(work)
            if start >= stop:
                break
            for t in range(start, stop):
                r, lo, hi = _segment_bounds(t, nseg, x.shape[1])
                _write_softmax(x[r, lo:hi], _mask_block(_mask_row(mask, r), lo, hi), T(sc),
                               T(row_state[r, 0]), row_state[r, 1], row_state[r, 2], log,
                               y[r, lo:hi])


@inline
def _write_prob_grad(row, mrow, offset, sc, m, s, c, dout, y_mean, index_weighted, dxrow):
    """dout * p (smooth_max) or dout * sc * p * (j - y_mean) (soft_argmax), p = softmax.

    ``offset`` is the column of row[0] within the full row (j = offset + k).
    """
    T = work_type(row)
    ninf = T(-np.inf)
    zero = T(0.0)
    if m == T(np.inf) or s != s:  # a kept +inf or NaN (checked first: NaN beats all -inf)
        _nan_kept(mrow, zero, dxrow)
        return
    if m == ninf:  # empty or all -inf row: no gradient
        for k in range(dxrow.size):
            store(dxrow, k, zero)
        return
    inv_total = T(1.0 / (s + c))  # a product per element instead of a division (_write_softmax)
    g = T(dout)
    g64 = dout * np.float64(sc)
    rel_mean = y_mean - offset  # j - y = k - (y - offset)
    if index_weighted:
        for k in range(dxrow.size):
            p = fast_exp(sc * (_value(row, mrow, k, ninf) - m)) * inv_total
            w = T(g64 * np.float64(p) * (np.float64(k) - rel_mean))
            store(dxrow, k, w if (mrow is None or mrow[k]) else zero)
    else:
        for k in range(dxrow.size):
            w = g * (fast_exp(sc * (_value(row, mrow, k, ninf) - m)) * inv_total)
            store(dxrow, k, w if (mrow is None or mrow[k]) else zero)


def _prob_grad_rows_impl(x, mask, sc, dout, index_weighted, dx, work):
    T = work_type(x)
    for _worker in prange(work[WORKERS]):
        while True:
            start, stop = next_chunk(work)
            if start >= stop:
                break
            for r in range(start, stop):
                mrow = _mask_row(mask, r)
                m, s, c, sj, cj = _state(x[r], mrow, 0, x.shape[1], T(sc), index_weighted)
                y_mean = _argmax_value(m, s, c, sj, cj) if index_weighted else 0.0
                _write_prob_grad(x[r], mrow, 0, T(sc), m, s, c, dout[r], y_mean, index_weighted,
                                 dx[r])


def _prob_grad_segments_impl(x, mask, sc, dout, index_weighted, nseg, row_state, dx, work):
    T = work_type(x)
    for _worker in prange(work[WORKERS]):
        while True:
            start, stop = next_chunk(work)
            if start >= stop:
                break
            for t in range(start, stop):
                r, lo, hi = _segment_bounds(t, nseg, x.shape[1])
                m, s, c, sj, cj = row_state[r]
                y_mean = _argmax_value(m, s, c, sj, cj) if index_weighted else 0.0
                _write_prob_grad(x[r, lo:hi], _mask_block(_mask_row(mask, r), lo, hi), lo, T(sc),
                                 T(m), s, c, dout[r], y_mean, index_weighted, dx[r, lo:hi])


_softmax_rows = jit_pair(_softmax_rows_impl)
_softmax_segments = jit_pair(_softmax_segments_impl)
_prob_grad_rows = jit_pair(_prob_grad_rows_impl)
_prob_grad_segments = jit_pair(_prob_grad_segments_impl)


# --------------------------------------------------------------------------------------------
# Short rows: tiles of rows, vectorised across rows
# --------------------------------------------------------------------------------------------
# For n <= _SHORT_ROW the per-row loops are too short to vectorise (LLVM's vector body wants
# 4 x 16 float32 lanes; 16 elements fall into the scalar remainder): the row-per-task kernels
# took 37-100 ms for (1048576, 16). So _TILE rows are copied transposed into an (n, _TILE)
# buffer, with the mask applied on the way, and every later loop runs over the _TILE rows of one
# column: contiguous, long, mask-free and vectorised. Rows past the end are padded with -inf.
# The tile of a 64-element float64 row block is 32 KiB: it stays in L1/L2 between the passes.

_SHORT_ROW = 64
_TILE = 64


@inline
def _load_tile(x, mask, r0, tile):
    """tile[j, i] = x[r0 + i, j], or -inf where masked out or past the last row."""
    ninf = work_type(x)(-np.inf)
    nrows = min(_TILE, x.shape[0] - r0)
    # Flat views of the (contiguous) block of rows and of the tile: the transposing copy with
    # flat indices took 0.53 ns per float32 element against 0.77 with 2-D indices.
    _transpose_into(x[r0:r0 + nrows].ravel(), mask, r0, x.shape[1], nrows, ninf, tile.ravel())
    for j in range(x.shape[1]):
        col = tile[j]
        for i in range(nrows, _TILE):
            col[i] = ninf
    return nrows


@inline
def _transpose_into(block, mask, r0, n, nrows, ninf, flat_tile):
    for i in range(nrows):
        _row_into_tile(block[i * n:(i + 1) * n], _mask_row(mask, r0 + i), i, ninf, flat_tile)


@inline
def _row_into_tile(row, mrow, i, ninf, flat_tile):
    for j in range(row.size):
        flat_tile[j * _TILE + i] = _value(row, mrow, j, ninf)


@inline
def _tile_state(tile, sc, m, s, c, sj, cj, with_index, store_exp):
    """Per tile row i: m[i], s_lt[i], c_eq[i] (and index sums when with_index), as _state.

    With store_exp the tile is overwritten with exp(sc * (v - m)) (the row maximum is known
    before the exponentials are taken), which the per-element outputs then reuse instead of
    computing each exp twice.
    """
    T = work_type(tile)
    ninf = T(-np.inf)
    zero = T(0.0)
    one = T(1.0)
    for i in range(_TILE):
        m[i] = ninf
        s[i] = zero
        c[i] = zero
        sj[i] = zero
        cj[i] = zero
    for j in range(tile.shape[0]):
        col = tile[j]
        for i in range(_TILE):
            m[i] = maxnum(m[i], col[i])
    for j in range(tile.shape[0]):
        col = tile[j]
        tj = T(j)
        if with_index:  # branches stay outside the loops (see _state)
            for i in range(_TILE):
                v = col[i]
                e = fast_exp(sc * (v - m[i]))
                lt = e if v != m[i] else zero
                eq = one if v == m[i] else zero
                s[i] += lt
                c[i] += eq
                sj[i] += lt * tj
                cj[i] += eq * tj
                col[i] = e if store_exp else v
        else:
            for i in range(_TILE):
                v = col[i]
                e = fast_exp(sc * (v - m[i]))
                s[i] += e if v != m[i] else zero
                c[i] += one if v == m[i] else zero
                col[i] = e if store_exp else v
    for i in range(_TILE):  # empty / all -inf rows: nothing counts
        c[i] = zero if m[i] == ninf else c[i]
        cj[i] = zero if m[i] == ninf else cj[i]


@inline
def _tile_buffers(x):
    """The (n, _TILE) tile, five per-row buffers in the working dtype and two in float64."""
    T = work_type(x)
    tile = np.empty((x.shape[1], _TILE), T)
    stats = np.empty((5, _TILE), T)
    wide = np.empty((2, _TILE), np.float64)
    return tile, stats[0], stats[1], stats[2], stats[3], stats[4], wide[0], wide[1]


@inline
def _fix_bad_rows(mask, r0, nrows, m, s, fill, inf_is_bad, out):
    """Rows holding a kept NaN (or, with inf_is_bad, a kept +inf): NaN at the kept elements,
    fill at the masked ones."""
    T = work_type(out)
    for i in range(nrows):
        if s[i] != s[i] or (inf_is_bad and m[i] == T(np.inf)):
            _nan_kept(_mask_row(mask, r0 + i), fill, out[r0 + i])


@inline
def _store_tile(tile, mask, r0, nrows, fill, out):
    """out[r0 + i, j] = tile[j, i] at kept elements, fill at masked-out ones (flat indices,
    as in _load_tile)."""
    _transpose_from(tile.ravel(), mask, r0, out.shape[1], nrows, fill, out[r0:r0 + nrows].ravel())


@inline
def _transpose_from(flat_tile, mask, r0, n, nrows, fill, block):
    for i in range(nrows):
        _row_from_tile(flat_tile, _mask_row(mask, r0 + i), i, fill, block[i * n:(i + 1) * n])


@inline
def _row_from_tile(flat_tile, mrow, i, fill, row):
    for j in range(row.size):
        keep = mrow is None or mrow[j]
        store(row, j, flat_tile[j * _TILE + i] if keep else fill)


def _short_reduce_impl(x, mask, sc, with_index, out, work):
    """lse (with_index False) or soft_argmax (True) of short rows."""
    T = work_type(x)
    inv_sc = 1.0 / sc
    for _worker in prange(work[WORKERS]):
        while True:
            start, stop = next_chunk(work)
            if start >= stop:
                break
            for t in range(start, stop):
                r0 = t * _TILE
                tile, m, s, c, sj, cj, _, _ = _tile_buffers(x)
                nrows = _load_tile(x, mask, r0, tile)
                _tile_state(tile, T(sc), m, s, c, sj, cj, with_index, False)
                # a view: out[r0 + i] would not vectorise (wraparound)
                tile_out = out[r0:r0 + nrows]
                if with_index:
                    for i in range(nrows):
                        finite = m[i] > T(-np.inf) and m[i] < T(np.inf)
                        mean = (np.float64(sj[i]) + cj[i]) / (np.float64(s[i]) + c[i])
                        store(tile_out, i, mean if finite else np.nan)
                else:
                    for i in range(nrows):
                        # c = 0 for empty rows: log1p(-1) = -inf, and m is -inf as well
                        log_total = fast_log1p(np.float64(s[i]) + (np.float64(c[i]) - 1.0))
                        store(tile_out, i, np.float64(m[i]) + log_total * inv_sc)


def _short_softmax_impl(x, mask, sc, log, y, work):
    T = work_type(x)
    ninf = T(-np.inf)
    fill = ninf if log else T(0.0)
    sc64 = np.float64(sc)
    for _worker in prange(work[WORKERS]):
        while True:
            start, stop = next_chunk(work)
            if start >= stop:
                break
            for t in range(start, stop):
                r0 = t * _TILE
                tile, m, s, c, total, unused, log_total, m64 = _tile_buffers(x)
                nrows = _load_tile(x, mask, r0, tile)
                _tile_state(tile, T(sc), m, s, c, total, unused, False, not log)
                if log:  # (the log of the total costs about 0.6 ns per element: only when needed)
                    for i in range(_TILE):
                        log_total[i] = fast_log1p(np.float64(s[i]) + (np.float64(c[i]) - 1.0))
                        m64[i] = np.float64(m[i])
                else:
                    for i in range(_TILE):  # 1 / total: products instead of divisions below
                        total[i] = T(1.0) / (s[i] + c[i])
                for j in range(tile.shape[0]):
                    col = tile[j]
                    if log:
                        for i in range(_TILE):
                            val = T(sc64 * (np.float64(col[i]) - m64[i]) - log_total[i])
                            col[i] = val if m[i] != ninf else fill
                    else:
                        for i in range(_TILE):  # the tile holds the exponentials
                            col[i] = col[i] * total[i] if m[i] != ninf else fill
                _store_tile(tile, None, r0, nrows, fill, y)  # masked elements already hold the fill
                _fix_bad_rows(mask, r0, nrows, m, s, fill, not log, y)  # as _write_softmax


def _short_prob_grad_impl(x, mask, sc, dout, index_weighted, dx, work):
    T = work_type(x)
    ninf = T(-np.inf)
    zero = T(0.0)
    sc64 = np.float64(sc)
    for _worker in prange(work[WORKERS]):
        while True:
            start, stop = next_chunk(work)
            if start >= stop:
                break
            for t in range(start, stop):
                r0 = t * _TILE
                tile, m, s, c, sj, cj, g64, y64 = _tile_buffers(x)
                nrows = _load_tile(x, mask, r0, tile)
                _tile_state(tile, T(sc), m, s, c, sj, cj, index_weighted, True)
                for i in range(_TILE):  # reuse the buffers: s <- 1/total, sj <- g (working dtype)
                    total = np.float64(s[i]) + c[i]
                    d = dout[min(r0 + i, x.shape[0] - 1)]
                    y64[i] = (np.float64(sj[i]) + cj[i]) / total if index_weighted else 0.0
                    g64[i] = d * sc64
                    sj[i] = T(d)
                    s[i] = T(1.0 / total)  # products instead of divisions below
                for j in range(tile.shape[0]):
                    col = tile[j]  # holds the exponentials
                    if index_weighted:
                        for i in range(_TILE):
                            w = T(g64[i] * np.float64(col[i] * s[i]) * (np.float64(j) - y64[i]))
                            col[i] = w if m[i] != ninf else zero
                    else:
                        for i in range(_TILE):
                            col[i] = sj[i] * (col[i] * s[i]) if m[i] != ninf else zero
                _store_tile(tile, mask, r0, nrows, zero, dx)
                _fix_bad_rows(mask, r0, nrows, m, s, zero, True, dx)


_short_reduce = jit_pair(_short_reduce_impl)
_short_softmax = jit_pair(_short_softmax_impl)
_short_prob_grad = jit_pair(_short_prob_grad_impl)


# --------------------------------------------------------------------------------------------
# Columns: a reduced axis that is not the trailing one, walked as the input lies
# --------------------------------------------------------------------------------------------
# The caller views x as a C-contiguous (outer, n, inner) array: the reduced axis in the middle,
# `inner` kept elements contiguous after it (axis=0 of a C array, axis=-1 of an F array, the
# middle axis of (64, 4096, 64)). Moving the axis to the end would copy the whole input (that
# copy made logsumexp(axis=0) of (4096, 4096) float32 33x slower than axis=-1). Instead a task
# takes a tile of `width` adjacent columns of one outer index and keeps one state per column,
# the same (m, s_lt, c_eq[, sj, cj]) as _state: the reduced axis is swept in blocks of
# _COL_BLOCK rows (each row of the block a contiguous run of the tile's columns), the block's
# column maxima first, then a rescale of the columns whose maximum grew, then the block's
# exponentials (the block is still in L1). Every inner loop runs over the tile's columns:
# contiguous and vectorised, like the short-row tiles above but without the transposing copy.

# Reduced rows per block: a block's chunk (below) of 64 rows x 2 KiB is 128 KiB, in L2 for the
# block's second read. Wide tiles do not mind (lse over axis 0 of (4096, 4096) float32, one
# thread: blocks of 4, 16 and 64 rows within noise, 2026-12-02); narrow ones pay the per-block
# work (the rescale, the chunk views) once per block: the middle axis of (64, 4096, 64)
# float32, 64-column tiles, one thread, thread_time medians of 11 in 2 alternating runs
# (2026-12-03): lse 34.3 / 35.6 ms with 16 rows, 31.5 / 33.1 with 32, 29.3 / 30.0 with 64,
# 24.1 / 24.6 with 128; softmax 62-68, 57-60, 52-53, 51-62 ms (axis 0 of (4096, 4096):
# 49-51 ms with 16 or 64, 52-59 with 128).
_COL_BLOCK = 64
# Columns per tile. Wide tiles walk the input in long contiguous runs: one thread's lse over
# axis 0 of (4096, 4096) float32 took 53 ms with 256-column tiles (1 KiB runs 16 KiB apart),
# 34 ms with 1024 and 30.5 ms with 4096, against 19.9 ms for the rows of axis=-1 (2026-12-02,
# the noisy 2-core VM, medians of 11). Tiles are narrowed only to give each thread two tiles.
_COL_WIDTH = 4096
_COL_MIN_SPLIT = 1024
# Reduced rows per segment when a call with fewer tiles than threads splits the reduced axis
# instead (a segment's state pass costs ~1.8 ns x 4096 columns per row: 1024 rows ~ 8 ms).
_COL_MIN_SEGMENT = 256
# Columns of a block handled at a time: 2 KiB of each of the block's rows, so that the block's
# rows (16 x 2 KiB) and the chunk's per-column state stay in L1 (48 KiB here) between the max
# and the sum passes. With the whole 4096-column tile at once they (256 KiB and 7 state arrays
# of 16-32 KiB) came from L2. lse over axis 0 of (4096, 4096) float32, one thread: 39.9 -> 30.3
# ms (means of 3 alternating processes' medians of 7; 2026-12-03, the VM showed 33% steal).
_COL_CHUNK_BYTES = 2048


@inline
def _column_buffers(width, T):
    """Per-column state of a tile: m, block max and block sums in T; totals in float64."""
    small = np.empty((7, width), T)
    wide = np.empty((4, width), np.float64)
    return (small[0], small[1], small[2], small[3], small[4], small[5], small[6],
            wide[0], wide[1], wide[2], wide[3])


@inline
def _column_state(plane, mplane, j0, j1, sc, with_index, bufs):
    """States of columns j0..j1 of ``plane`` (n, inner), as _state computes for a row: after the
    call m[i] (in T) and s[i], c[i], sj[i], cj[i] (float64) hold column j0 + i's state.
    ``mplane``: None or the (n, inner) mask plane (any strides: a broadcast mask has 0s)."""
    m, bm, acc, cnt, accj, cntj, _, s, c, sj, cj = bufs
    T = work_type(plane)
    width = j1 - j0
    n = plane.shape[0]
    chunk = _COL_CHUNK_BYTES // plane.itemsize
    for i in range(width):
        m[i] = T(-np.inf)
        s[i] = 0.0
        c[i] = 0.0
        sj[i] = 0.0
        cj[i] = 0.0
    for k0 in range(0, n, _COL_BLOCK):
        k1 = min(k0 + _COL_BLOCK, n)
        for c0 in range(0, width, chunk):
            c1 = min(c0 + chunk, width)
            _column_block(plane, mplane, k0, k1, j0 + c0, j0 + c1, sc, with_index,
                          m[c0:c1], bm[c0:c1], acc[c0:c1], cnt[c0:c1], accj[c0:c1],
                          cntj[c0:c1], s[c0:c1], c[c0:c1], sj[c0:c1], cj[c0:c1])
    for i in range(width):  # empty / all -inf columns: nothing counts
        c[i] = 0.0 if m[i] == T(-np.inf) else c[i]
        cj[i] = 0.0 if m[i] == T(-np.inf) else cj[i]


@inline
def _column_block(plane, mplane, k0, k1, j0, j1, sc, with_index,
                  m, bm, acc, cnt, accj, cntj, s, c, sj, cj):
    """Rows k0..k1 of columns j0..j1 into their states (views of the chunk's columns): the
    block's column maxima, a rescale of the columns whose maximum grew, the block's sums."""
    T = work_type(plane)
    ninf = T(-np.inf)
    zero = T(0.0)
    one = T(1.0)
    sc64 = np.float64(sc)
    width = j1 - j0
    for i in range(width):
        bm[i] = m[i]
    k4 = k0 + (k1 - k0) // 4 * 4  # rows four at a time (see the sums below), then the rest
    for k in range(k0, k4, 4):
        r0 = plane[k, j0:j1]
        r1 = plane[k + 1, j0:j1]
        r2 = plane[k + 2, j0:j1]
        r3 = plane[k + 3, j0:j1]
        q0 = _mask_plane_row(mplane, k, j0, j1)
        q1 = _mask_plane_row(mplane, k + 1, j0, j1)
        q2 = _mask_plane_row(mplane, k + 2, j0, j1)
        q3 = _mask_plane_row(mplane, k + 3, j0, j1)
        for i in range(width):
            bm[i] = maxnum(maxnum(maxnum(bm[i], _value(r0, q0, i, ninf)),
                                  maxnum(_value(r1, q1, i, ninf), _value(r2, q2, i, ninf))),
                           _value(r3, q3, i, ninf))
    for k in range(k4, k1):
        row = plane[k, j0:j1]
        mrow = _mask_plane_row(mplane, k, j0, j1)
        for i in range(width):
            bm[i] = maxnum(bm[i], _value(row, mrow, i, ninf))
    for i in range(width):  # columns whose maximum grew: rescale what they summed so far
        grown = bm[i] > m[i]
        f = fast_exp(sc64 * (np.float64(m[i]) - np.float64(bm[i]))) if grown else 1.0
        s[i] = (s[i] + c[i]) * f if grown else s[i]
        sj[i] = (sj[i] + cj[i]) * f if grown else sj[i]
        c[i] = 0.0 if grown else c[i]
        cj[i] = 0.0 if grown else cj[i]
        m[i] = bm[i]
        acc[i] = zero
        cnt[i] = zero
        accj[i] = zero
        cntj[i] = zero
    # Block sums in T (at most _COL_BLOCK terms), totals in float64, as _state; index weights
    # relative to the block start, the offset added back in float64.
    if with_index:  # branches stay outside the loops (see _state)
        for k in range(k0, k1):
            row = plane[k, j0:j1]
            mrow = _mask_plane_row(mplane, k, j0, j1)
            tk = T(k - k0)
            for i in range(width):
                v = _value(row, mrow, i, ninf)
                e = fast_exp(sc * (v - m[i]))
                lt = e if v != m[i] else zero
                eq = one if v == m[i] else zero
                acc[i] += lt
                cnt[i] += eq
                accj[i] += lt * tk
                cntj[i] += eq * tk
        off = np.float64(k0)
        for i in range(width):
            s[i] += acc[i]
            c[i] += cnt[i]
            sj[i] += accj[i] + off * acc[i]
            cj[i] += cntj[i] + off * cnt[i]
    else:
        # Four rows per sweep: each column's m, acc and cnt are loaded and stored once per
        # four rows instead of once per row (lse over axis 0 of (4096, 4096) float32, one
        # thread, with the max pass likewise: 32.3 -> 28.6 ms, medians of 11 in 3 alternating
        # processes each, 2026-12-03).
        for k in range(k0, k4, 4):
            r0 = plane[k, j0:j1]
            r1 = plane[k + 1, j0:j1]
            r2 = plane[k + 2, j0:j1]
            r3 = plane[k + 3, j0:j1]
            q0 = _mask_plane_row(mplane, k, j0, j1)
            q1 = _mask_plane_row(mplane, k + 1, j0, j1)
            q2 = _mask_plane_row(mplane, k + 2, j0, j1)
            q3 = _mask_plane_row(mplane, k + 3, j0, j1)
            for i in range(width):
                mi = m[i]
                v0 = _value(r0, q0, i, ninf)
                v1 = _value(r1, q1, i, ninf)
                v2 = _value(r2, q2, i, ninf)
                v3 = _value(r3, q3, i, ninf)
                e0 = fast_exp(sc * (v0 - mi))
                e1 = fast_exp(sc * (v1 - mi))
                e2 = fast_exp(sc * (v2 - mi))
                e3 = fast_exp(sc * (v3 - mi))
                acc[i] += ((e0 if v0 != mi else zero) + (e1 if v1 != mi else zero)) + \
                    ((e2 if v2 != mi else zero) + (e3 if v3 != mi else zero))
                cnt[i] += ((one if v0 == mi else zero) + (one if v1 == mi else zero)) + \
                    ((one if v2 == mi else zero) + (one if v3 == mi else zero))
        for k in range(k4, k1):
            row = plane[k, j0:j1]
            mrow = _mask_plane_row(mplane, k, j0, j1)
            for i in range(width):
                v = _value(row, mrow, i, ninf)
                e = fast_exp(sc * (v - m[i]))
                acc[i] += e if v != m[i] else zero
                cnt[i] += one if v == m[i] else zero
        for i in range(width):
            s[i] += acc[i]
            c[i] += cnt[i]


@inline
def _mask_plane_row(mplane, k, j0, j1):
    return None if mplane is None else mplane[k, j0:j1]


@inline
def _mask_plane(mask, o):
    return None if mask is None else mask[o]


@inline
def _mask_segment(mask, o, lo, hi):
    return None if mask is None else mask[o, lo:hi]


@inline
def _tile_bounds(t, tiles, width, inner):
    """(outer index, first column, end column) of tile t, ``tiles`` tiles per outer index."""
    o = t // tiles
    j0 = (t - o * tiles) * width
    return o, j0, min(inner, j0 + width)


def _reduce_columns_impl(x, mask, sc, with_index, width, out, work):
    """lse (with_index False) or soft_argmax (True) over axis 1 of x (outer, n, inner) into
    out (outer, inner); mask None or a bool (outer, n, inner) of any strides."""
    T = work_type(x)
    inv_sc = 1.0 / sc
    inner = x.shape[2]
    tiles = -(-inner // width)
    for _worker in prange(work[WORKERS]):
        bufs = _column_buffers(width, T)
        m, _, _, _, _, _, _, s, c, sj, cj = bufs
        while True:
            start, stop = next_chunk(work)
            if start >= stop:
                break
            for t in range(start, stop):
                o, j0, j1 = _tile_bounds(t, tiles, width, inner)
                _column_state(x[o], _mask_plane(mask, o), j0, j1, T(sc), with_index, bufs)
                orow = out[o, j0:j1]
                for i in range(j1 - j0):
                    store(orow, i, _argmax_value(m[i], s[i], c[i], sj[i], cj[i]) if with_index
                          else _lse_value(m[i], s[i], c[i], inv_sc))


@inline
def _tile_segment(t, nseg, n, tiles, width, inner):
    """(tile, lo, hi, outer index, first column, end column) of task t of a segmented column
    kernel: tile t // nseg, rows lo..hi of its reduced axis."""
    tile, lo, hi = _segment_bounds(t, nseg, n)
    o, j0, j1 = _tile_bounds(tile, tiles, width, inner)
    return tile, lo, hi, o, j0, j1


def _column_segment_states_impl(x, mask, sc, with_index, width, nseg, states, work):
    """states[o * inner + j, g] = (m, s, c, sj, cj) of column j of x[o] (outer, n, inner) over
    segment g of the reduced axis (nseg segments): a task per (tile, segment), for the calls
    with fewer tiles than threads (index sums relative to the column start, as
    _segment_states_impl)."""
    T = work_type(x)
    n = x.shape[1]
    inner = x.shape[2]
    tiles = -(-inner // width)
    for _worker in prange(work[WORKERS]):
        bufs = _column_buffers(width, T)
        m, _, _, _, _, _, _, s, c, sj, cj = bufs
        while True:
            start, stop = next_chunk(work)
            if start >= stop:
                break
            for t in range(start, stop):
                tile, lo, hi, o, j0, j1 = _tile_segment(t, nseg, n, tiles, width, inner)
                mplane = _mask_segment(mask, o, lo, hi)
                _column_state(x[o, lo:hi], mplane, j0, j1, T(sc), with_index, bufs)
                g = t - tile * nseg
                base = o * inner + j0
                for i in range(j1 - j0):
                    states[base + i, g, 0] = m[i]
                    states[base + i, g, 1] = s[i]
                    states[base + i, g, 2] = c[i]
                    states[base + i, g, 3] = sj[i] + lo * s[i]
                    states[base + i, g, 4] = cj[i] + lo * c[i]


@inline
def _fill_masked(mrow, fill, yrow):
    """yrow[i] = fill where masked out (nothing without a mask)."""
    if mrow is None:
        return
    for i in range(yrow.size):
        store(yrow, i, load(yrow, i) if mrow[i] else fill)


@inline
def _column_classes(m, s, width, fill, inf_is_bad, ok, special):
    """Per column of a tile's state: ok[i] 1 where the column has a finite maximum (or, without
    inf_is_bad, a +inf one: log_softmax, see _write_softmax) and no NaN, else 0 with special[i]
    its value for every element: NaN for a kept NaN or +inf (checked first: NaN beats all
    -inf), ``fill`` for nothing kept or only -inf."""
    T = work_type(ok)
    for i in range(width):
        bad = s[i] != s[i] or (inf_is_bad and m[i] == T(np.inf))
        ok[i] = T(0.0) if (bad or m[i] == T(-np.inf)) else T(1.0)
        special[i] = T(np.nan) if bad else fill


@inline
def _write_softmax_columns(plane, mplane, k0, j0, j1, sc, log, m, coef, ok, special,
                           log_total, m64, out):
    """softmax / log_softmax of rows k0..k0+_COL_BLOCK of columns j0..j1 into ``out``, from
    the chunk's per-column write coefficients (views of the chunk's columns)."""
    T = work_type(plane)
    fill = T(-np.inf) if log else T(0.0)
    sc64 = np.float64(sc)
    w = j1 - j0
    for k in range(k0, min(k0 + _COL_BLOCK, plane.shape[0])):
        row = plane[k, j0:j1]
        yrow = out[k, j0:j1]
        if log:
            for i in range(w):
                val = T(sc64 * (np.float64(load(row, i)) - m64[i]) - log_total[i])
                store(yrow, i, val if ok[i] != T(0.0) else special[i])
        else:
            for i in range(w):  # T(sc): a float64 sc would make this exp float64
                val = fast_exp(T(sc) * (load(row, i) - m[i])) * coef[i]
                store(yrow, i, val if ok[i] != T(0.0) else special[i])
        _fill_masked(_mask_plane_row(mplane, k, j0, j1), fill, yrow)


def _softmax_columns_impl(x, mask, sc, log, width, y, work):
    """softmax (or log_softmax) over axis 1 of x (outer, n, inner) into y of the same shape;
    masked elements get the fill (0, log: -inf), also in a NaN column."""
    T = work_type(x)
    inner = x.shape[2]
    tiles = -(-inner // width)
    for _worker in prange(work[WORKERS]):
        bufs = _column_buffers(width, T)
        while True:
            start, stop = next_chunk(work)
            if start >= stop:
                break
            for t in range(start, stop):
                o, j0, j1 = _tile_bounds(t, tiles, width, inner)
                plane = x[o]
                mplane = _mask_plane(mask, o)
                _column_state(plane, mplane, j0, j1, T(sc), False, bufs)
                _write_softmax_plane(plane, mplane, j0, j1, sc, log, bufs, y[o])


@inline
def _write_softmax_plane(plane, mplane, j0, j1, sc, log, bufs, out):
    """softmax / log_softmax of columns j0..j1 of ``plane`` (rows, inner) into ``out`` (the
    same shape), given the columns' states in ``bufs`` (m, s, c as _column_state leaves them)."""
    T = work_type(plane)
    fill = T(-np.inf) if log else T(0.0)
    m, _, coef, special, _, _, ok, s, c, log_total, m64 = bufs
    w = j1 - j0
    # Per column: the coefficient of the write, or the special value of the whole column (a
    # kept +inf or NaN: NaN, checked first; nothing but -inf: the fill).
    _column_classes(m, s, w, fill, not log, ok, special)
    for i in range(w):
        if log:
            log_total[i] = np.log1p(s[i] + (c[i] - 1.0))
            m64[i] = np.float64(m[i])
        else:
            coef[i] = T(1.0 / (s[i] + c[i]))  # products, not divisions, below
    chunk = _COL_CHUNK_BYTES // plane.itemsize
    for k0 in range(0, plane.shape[0], _COL_BLOCK):  # blocks of rows, then chunks of columns:
        for c0 in range(0, w, chunk):  # the state's chunk stays in L1
            c1 = min(c0 + chunk, w)
            _write_softmax_columns(plane, mplane, k0, j0 + c0, j0 + c1, sc, log, m[c0:c1],
                                   coef[c0:c1], ok[c0:c1], special[c0:c1], log_total[c0:c1],
                                   m64[c0:c1], out)


def _softmax_column_segments_impl(x, mask, sc, log, column_state, width, nseg, y, work):
    """The write of softmax_columns from merged per-column states (_column_states): a task per
    (tile, segment of the reduced axis), as _column_segment_states_impl."""
    T = work_type(x)
    n = x.shape[1]
    inner = x.shape[2]
    tiles = -(-inner // width)
    for _worker in prange(work[WORKERS]):
        bufs = _column_buffers(width, T)
        m, _, _, _, _, _, _, s, c, _, _ = bufs
        while True:
            start, stop = next_chunk(work)
            if start >= stop:
                break
            for t in range(start, stop):
                _, lo, hi, o, j0, j1 = _tile_segment(t, nseg, n, tiles, width, inner)
                base = o * inner + j0
                for i in range(j1 - j0):
                    m[i] = T(column_state[base + i, 0])
                    s[i] = column_state[base + i, 1]
                    c[i] = column_state[base + i, 2]
                mplane = _mask_segment(mask, o, lo, hi)
                _write_softmax_plane(x[o, lo:hi], mplane, j0, j1, sc, log, bufs, y[o, lo:hi])


@inline
def _write_prob_grad_columns(plane, k0, j0, j1, sc, index_weighted, m, inv_total, ok,
                             special, g64, y_mean, out):
    """The prob-grad write of rows k0..k0+_COL_BLOCK of columns j0..j1 into ``out``, from the
    chunk's per-column coefficients (views of the chunk's columns)."""
    T = work_type(plane)
    w = j1 - j0
    for k in range(k0, min(k0 + _COL_BLOCK, plane.shape[0])):
        row = plane[k, j0:j1]
        dxrow = out[k, j0:j1]
        if index_weighted:  # branches stay outside the loops (see _state)
            for i in range(w):
                p = fast_exp(T(sc) * (load(row, i) - m[i])) * inv_total[i]
                val = T(g64[i] * np.float64(p) * (np.float64(k) - y_mean[i]))
                store(dxrow, i, val if ok[i] != T(0.0) else special[i])
        else:  # inv_total holds dout / total in T (see _prob_grad_columns_impl)
            for i in range(w):
                val = fast_exp(T(sc) * (load(row, i) - m[i])) * inv_total[i]
                store(dxrow, i, val if ok[i] != T(0.0) else special[i])


def _prob_grad_columns_impl(x, sc, dout, index_weighted, width, dx, work):
    """smooth_max_backward (index_weighted False) or soft_argmax_backward (True) over axis 1
    of x (outer, n, inner); dout (outer, inner) float64. The column state of each tile, then
    the write, as _write_prob_grad does for a row."""
    T = work_type(x)
    inner = x.shape[2]
    tiles = -(-inner // width)
    for _worker in prange(work[WORKERS]):
        bufs = _column_buffers(width, T)
        m, _, inv_total, special, _, _, ok, s, c, sj, cj = bufs
        wide = np.empty((2, width), np.float64)
        g64, y_mean = wide[0], wide[1]
        while True:
            start, stop = next_chunk(work)
            if start >= stop:
                break
            for t in range(start, stop):
                o, j0, j1 = _tile_bounds(t, tiles, width, inner)
                plane = x[o]
                _column_state(plane, None, j0, j1, T(sc), index_weighted, bufs)
                w = j1 - j0
                drow = dout[o, j0:j1]
                _column_classes(m, s, w, T(0.0), True, ok, special)
                for i in range(w):
                    y_mean[i] = _argmax_value(m[i], s[i], c[i], sj[i], cj[i]) \
                        if index_weighted else 0.0
                    g64[i] = drow[i] * np.float64(sc) if index_weighted else drow[i]
                    # smooth_max: dout / total in T, one product per element in the write.
                    # A float64 factor there (converted per element) halved the vector width:
                    # the write of (4096, 4096) float32 on one thread took 39 ms, 19 ms with
                    # the T coefficient (2026-12-03, thread_time medians of 11).
                    inv_total[i] = T(1.0 / (s[i] + c[i])) if index_weighted \
                        else T(g64[i] / (s[i] + c[i]))
                chunk = _COL_CHUNK_BYTES // x.itemsize
                for k0 in range(0, plane.shape[0], _COL_BLOCK):  # as _softmax_columns_impl
                    for c0 in range(0, w, chunk):
                        c1 = min(c0 + chunk, w)
                        _write_prob_grad_columns(plane, k0, j0 + c0, j0 + c1, sc,
                                                 index_weighted, m[c0:c1], inv_total[c0:c1],
                                                 ok[c0:c1], special[c0:c1], g64[c0:c1],
                                                 y_mean[c0:c1], dx[o])


def _lse_backward_columns_impl(x, out, dout, width, dx, work):
    """dout * exp(x - out) over axis 1 of x (outer, n, inner), out/dout (outer, inner); 0 where
    x == -inf or out == -inf (as _lse_backward_row)."""
    T = work_type(x)
    ninf = T(-np.inf)
    inner = x.shape[2]
    tiles = -(-inner // width)
    for _worker in prange(work[WORKERS]):
        while True:
            start, stop = next_chunk(work)
            if start >= stop:
                break
            for t in range(start, stop):
                o, j0, j1 = _tile_bounds(t, tiles, width, inner)
                orow = out[o, j0:j1]
                drow = dout[o, j0:j1]
                for k in range(x.shape[1]):
                    row = x[o, k, j0:j1]
                    dxrow = dx[o, k, j0:j1]
                    for i in range(j1 - j0):
                        v = load(row, i)
                        g = drow[i] * fast_exp(v - orow[i])
                        store(dxrow, i, g if (v != ninf) & (orow[i] != ninf) else T(0.0))


def _softmax_backward_columns_impl(y, dy, sc, log, width, dx, work):
    """softmax_backward / log_softmax_backward over axis 1 of y, dy (outer, n, inner): the
    per-column sum in float64 (as _softmax_backward_row), then the write."""
    T = work_type(y)
    ninf = T(-np.inf)
    zero = T(0.0)
    sc64 = np.float64(sc)
    inner = y.shape[2]
    tiles = -(-inner // width)
    for _worker in prange(work[WORKERS]):
        acc = np.empty(width, np.float64)
        while True:
            start, stop = next_chunk(work)
            if start >= stop:
                break
            for t in range(start, stop):
                o, j0, j1 = _tile_bounds(t, tiles, width, inner)
                w = j1 - j0
                for i in range(w):
                    acc[i] = 0.0
                for k in range(y.shape[1]):
                    yrow = y[o, k, j0:j1]
                    dyrow = dy[o, k, j0:j1]
                    if log:  # branches stay outside the loops (see _softmax_backward_row)
                        for i in range(w):
                            acc[i] += np.float64(load(dyrow, i)) if load(yrow, i) != ninf else 0.0
                    else:
                        for i in range(w):
                            acc[i] += np.float64(load(yrow, i)) * np.float64(load(dyrow, i))
                for k in range(y.shape[1]):
                    yrow = y[o, k, j0:j1]
                    dyrow = dy[o, k, j0:j1]
                    dxrow = dx[o, k, j0:j1]
                    if log:
                        for i in range(w):
                            yi = load(yrow, i)
                            g = T(sc64 * (np.float64(load(dyrow, i))
                                          - np.float64(fast_exp(yi)) * acc[i]))
                            store(dxrow, i, g if yi != ninf else zero)
                    else:
                        for i in range(w):
                            store(dxrow, i, T(sc64 * np.float64(load(yrow, i))
                                              * (np.float64(load(dyrow, i)) - acc[i])))


_reduce_columns = jit_pair(_reduce_columns_impl)
_column_segment_states = jit_pair(_column_segment_states_impl)
_softmax_columns = jit_pair(_softmax_columns_impl)
_softmax_column_segments = jit_pair(_softmax_column_segments_impl)
_prob_grad_columns = jit_pair(_prob_grad_columns_impl)
_lse_backward_columns = jit_pair(_lse_backward_columns_impl)
_softmax_backward_columns = jit_pair(_softmax_backward_columns_impl)


# --------------------------------------------------------------------------------------------
# Backward passes given the forward output
# --------------------------------------------------------------------------------------------


@inline
def _lse_backward_row(row, mrow, brow, o, d, dxrow):
    T = work_type(row)
    ninf = T(-np.inf)
    zero = T(0.0)
    if o == ninf:  # empty row: no gradient (and no exp(-inf - -inf) = NaN)
        for k in range(row.size):
            store(dxrow, k, zero)
        return
    for k in range(row.size):
        v = load(row, k)
        w = T(1.0) if brow is None else brow[k]
        g = d * w * fast_exp(v - o)
        live = v != ninf and w != zero and (mrow is None or mrow[k])
        store(dxrow, k, g if live else zero)


def _lse_backward_impl(x, b, mask, out, dout, dx, work):
    for _worker in prange(work[WORKERS]):
        while True:
            start, stop = next_chunk(work)
            if start >= stop:
                break
            for r in range(start, stop):
                brow = _mask_row(b, r)  # b is a (distinct rows, index) pair like a mask
                _lse_backward_row(x[r], _mask_row(mask, r), brow, out[r], dout[r], dx[r])


@inline
def _softmax_backward_row(yrow, dyrow, mrow, sc64, log, dxrow):
    T = work_type(yrow)
    ninf = T(-np.inf)
    zero = T(0.0)
    # Pass 1: <dy, y> (softmax) or sum of dy (log_softmax), in float64: the gradient is a
    # difference with it and would otherwise inherit float32 rounding of the sum.
    # Pass 2 writes the gradient (the row was just read: it is in cache). The log branch stays
    # outside the loops: inside, it stops vectorisation (measured 2.3x slower).
    acc = 0.0
    if log:
        for k in range(yrow.size):
            live = (mrow is None or mrow[k]) and load(yrow, k) != ninf
            acc += np.float64(load(dyrow, k)) if live else 0.0
        for k in range(yrow.size):
            yk = load(yrow, k)
            live = (mrow is None or mrow[k]) and yk != ninf
            g = T(sc64 * (np.float64(load(dyrow, k)) - np.float64(fast_exp(yk)) * acc))
            store(dxrow, k, g if live else zero)
    else:
        for k in range(yrow.size):
            keep = mrow is None or mrow[k]
            acc += np.float64(load(yrow, k)) * np.float64(load(dyrow, k)) if keep else 0.0
        for k in range(yrow.size):
            keep = mrow is None or mrow[k]
            g = T(sc64 * np.float64(load(yrow, k)) * (np.float64(load(dyrow, k)) - acc))
            store(dxrow, k, g if keep else zero)


def _softmax_backward_impl(y, dy, mask, sc, log, dx, work):
    for _worker in prange(work[WORKERS]):
        while True:
            start, stop = next_chunk(work)
            if start >= stop:
                break
            for r in range(start, stop):
                _softmax_backward_row(y[r], dy[r], _mask_row(mask, r), sc, log, dx[r])


_lse_backward_rows = jit_pair(_lse_backward_impl)
_softmax_backward_rows = jit_pair(_softmax_backward_impl)


@inline
def _weight_kept(w, mrow, j):
    """Whether element j of a weighted row counts: not masked out and its weight w != 0."""
    if mrow is None:
        return w != 0.0
    return (w != 0.0) & mrow[j]


@inline
def _weighted_scan(xrow, brow, mrow):
    """First pass of a weighted row: (max of the kept x, sum of the kept x * b). Kept means not
    masked out and b != 0. The sum is only a probe: it is NaN when a kept x or b is NaN (or
    infinities of both signs meet), which sends the row to _weighted_row_exact. One reduction
    per loop: each loop alone vectorises, the two reductions in one loop do not (measured on
    the 2-core AVX2 machine, (2048, 512) float32 in cache: 0.41 + 0.40 ns per element in two
    loops, 3.1 ns in one)."""
    m = -np.inf
    for j in range(xrow.size):
        w = np.float64(brow[j])
        m = maxnum(m, np.float64(load(xrow, j)) if _weight_kept(w, mrow, j) else -np.inf)
    probe = 0.0
    for j in range(xrow.size):
        w = np.float64(brow[j])
        probe += np.float64(load(xrow, j)) * w if _weight_kept(w, mrow, j) else 0.0
    return m, probe


@inline
def _weighted_sums(xrow, brow, mrow, m):
    """Second pass, m finite: (b_eq, s_lt) = (sum of b at kept x == m, sum of b exp(x - m) at
    kept x < m). One reduction per loop, as in _weighted_scan (2.3 + 0.4 ns per element in
    two loops, 3.6 in one)."""
    b_eq = 0.0
    for j in range(xrow.size):
        w = np.float64(brow[j])
        b_eq += w if _weight_kept(w, mrow, j) & (np.float64(load(xrow, j)) == m) else 0.0
    s_lt = 0.0
    for j in range(xrow.size):
        w = np.float64(brow[j])
        v = np.float64(load(xrow, j))
        s_lt += w * fast_exp(v - m) if _weight_kept(w, mrow, j) & (v < m) else 0.0
    return b_eq, s_lt


@inline
def _weighted_row_exact(xrow, brow, mrow):
    """(m, b_eq, s_lt, has_nan, inf_pos, inf_neg) of a row holding a NaN or an infinity: the
    online scalar loop, which keeps every special-value rule in one obvious place."""
    m = -np.inf
    b_eq = 0.0
    s_lt = 0.0
    has_nan = False
    inf_pos = False
    inf_neg = False
    for j in range(xrow.size):
        w = np.float64(brow[j])
        if not _weight_kept(w, mrow, j):
            continue
        v = np.float64(load(xrow, j))
        if v != v or w != w:
            has_nan = True
            continue
        if v > m:
            s_lt = (s_lt + b_eq) * np.exp(m - v) if m > -np.inf else 0.0
            b_eq = 0.0
            m = v
        if v == m:
            b_eq += w
            if v == np.inf:
                inf_pos = inf_pos or w > 0
                inf_neg = inf_neg or w < 0
        elif v > -np.inf:
            s_lt += w * np.exp(v - m)
    return m, b_eq, s_lt, has_nan, inf_pos, inf_neg


def _lse_weighted_impl(x, b, mask, out, sign, work):
    """SciPy's signed weighted logsumexp per row (see BACKEND_INTERFACE.md), in float64.

    Rows of finite values take two vectorised passes: the maximum, then the sums relative to
    it; a row with a kept NaN or infinity takes the exact scalar loop. The scalar loop with
    libm exp for every row took 108 ms for (8, 16, 256, 512) float32 on 2 threads (13 ns per
    element and thread).
    """
    for _worker in prange(work[WORKERS]):
        while True:
            start, stop = next_chunk(work)
            if start >= stop:
                break
            for r in range(start, stop):
                xrow = x[r]
                brow = _mask_row(b, r)  # b is a (distinct rows, index) pair like a mask
                mrow = _mask_row(mask, r)
                m, probe = _weighted_scan(xrow, brow, mrow)
                has_nan = False
                inf_pos = False
                inf_neg = False
                if probe == probe and -np.inf < m < np.inf:
                    b_eq, s_lt = _weighted_sums(xrow, brow, mrow, m)
                else:
                    m, b_eq, s_lt, has_nan, inf_pos, inf_neg = _weighted_row_exact(xrow, brow,
                                                                                  mrow)
                if has_nan:
                    out[r] = np.nan
                    sign[r] = np.nan
                elif m == -np.inf:
                    out[r] = -np.inf
                    sign[r] = 0.0
                elif m == np.inf:
                    mixed = inf_pos and inf_neg
                    out[r] = np.nan if mixed else np.inf
                    sign[r] = np.nan if mixed else (1.0 if inf_pos else -1.0)
                else:
                    ratio = s_lt / b_eq if b_eq != 0.0 else -np.inf
                    if ratio > -0.5:  # the log1p form is accurate here; otherwise form the total
                        out[r] = m + np.log(abs(b_eq)) + np.log1p(ratio)
                        sign[r] = 1.0 if b_eq > 0 else -1.0
                    else:
                        total = b_eq + s_lt
                        out[r] = m + np.log(abs(total)) if total != 0.0 else -np.inf
                        sign[r] = np.sign(total)


_lse_weighted_rows = jit_pair(_lse_weighted_impl)


# --------------------------------------------------------------------------------------------
# Complex logsumexp (SciPy's semantics, fastops.smooth.reference.complex_lse), complex128 rows
# --------------------------------------------------------------------------------------------


@inline
def _complex_kept(brow, mrow, j):
    """Element j takes part: not masked out and a nonzero weight."""
    kept = True if mrow is None else mrow[j]
    return kept if brow is None else (kept and brow[j] != 0)


@inline
def _complex_weight(brow, j):
    return 1.0 + 0.0j if brow is None else brow[j]


@inline
def _complex_sign(z):
    """z / |z| (0 for 0): NumPy 2's sign of a complex number."""
    size = abs(z)
    return z / size if size != 0.0 else 0.0j


def _lse_complex_impl(x, b, mask, out, sign, direct, work):
    """Per row: the element with the largest real part (the last of equal ones) kept out of
    the sum, ``log1p(s / w_max) + log(w_max) + a_max`` with ``s = sum w exp(a - a_max)`` over
    the others, and the complex sign; ``direct[r]`` where that is not finite (nothing kept, an
    infinity, a NaN: the caller takes those rows from the direct formula, as SciPy does).
    Complex exp and log are scalar here (Numba does not vectorise them)."""
    for _worker in prange(work[WORKERS]):
        while True:
            start, stop = next_chunk(work)
            if start >= stop:
                break
            for r in range(start, stop):
                row = x[r]
                brow = _mask_row(b, r)
                mrow = _mask_row(mask, r)
                imax = -1
                best = -np.inf
                for j in range(row.size):
                    if _complex_kept(brow, mrow, j) and (imax < 0 or row[j].real >= best):
                        best = row[j].real
                        imax = j
                if imax < 0:
                    out[r] = 0.0
                    sign[r] = 0.0
                    direct[r] = True
                    continue
                a_max = row[imax]
                w_max = _complex_weight(brow, imax)
                s = 0.0j
                for j in range(row.size):
                    if j != imax and _complex_kept(brow, mrow, j):
                        s += _complex_weight(brow, j) * np.exp(row[j] - a_max)
                if s != 0.0:
                    s = s / w_max
                value = np.log1p(s) + np.log(w_max) + a_max
                out[r] = value
                sign[r] = _complex_sign(s + 1.0) * _complex_sign(w_max) * \
                    np.exp(1j * a_max.imag)
                direct[r] = not (np.isfinite(value.real) and np.isfinite(value.imag))


_lse_complex = jit_pair(_lse_complex_impl)


# --------------------------------------------------------------------------------------------
# Launch helpers
# --------------------------------------------------------------------------------------------

# Single-thread cost per element of each kernel kind, in ns (float64, the slower dtype; float32
# is 0.6-0.9x of it), for the parallel-or-serial decision of fastops._numba.Launch. Measured
# with fastops.threads(1) on the 2-core development VM, (4096, 4096) rows (the short-row tile
# kernels on (1048576, 16)), medians of 15 calls, 2026-12-02.
_NS_PER_ELEMENT = {
    "reduce": 1.0,  # logsumexp / smooth_max / soft_argmax
    "softmax": 2.0,  # softmax / log_softmax
    "prob_grad": 2.0,  # smooth_max_backward / soft_argmax_backward
    "backward": 1.0,  # logsumexp_backward / softmax_backward / log_softmax_backward
    "weighted": 4.0,  # logsumexp with b: float64, four one-reduction passes (4.1 ns measured)
    # complex logsumexp: scalar complex exp per element (estimated from Numba's scalar exp and
    # sincos, ~20-30 ns; not measured on its own)
    "complex": 25.0,
    "short": 2.0,  # the transposed-tile kernels of rows <= _SHORT_ROW
    # The column kernels, one thread, (1, 4096, 4096) float32 in 4096-column tiles (2026-12-02,
    # the noisy VM, medians of 11): lse 30.5 ms and softmax 87.8 ms for 16.8M elements.
    "reduce_columns": 1.8,
    "softmax_columns": 5.2,
    # not measured on their own yet: the row kernels' figures scaled as softmax_columns is
    "prob_grad_columns": 5.2,
    "backward_columns": 2.6,
    "softmax_backward_columns": 2.6,
}


def _row_launch(x: np.ndarray, kind: str, nseg: int = 1, writes: bool = False) -> Launch:
    """The schedule of a kernel over x's rows (each cut into nseg segments), or over its tiles
    of _TILE rows when the rows are short. ``writes``: the kernel writes a fresh output of x's
    size (its chunks then cover whole huge pages of it, see fastops._numba.HUGE_PAGE_BYTES)."""
    rows, n = x.shape
    if kind == "short":
        return Launch(-(-rows // _TILE), _TILE * n * _NS_PER_ELEMENT["short"],
                      item_out_bytes=_TILE * n * x.itemsize if writes else 0)
    seg = -(-n // nseg)
    return Launch(rows * nseg, seg * _NS_PER_ELEMENT[kind],
                  item_out_bytes=seg * x.itemsize if writes else 0)


def _column_launch(x: np.ndarray, width: int, kind: str) -> Launch:
    """The schedule of a column kernel over x's (outer, n, inner) tiles of ``width`` columns."""
    outer, n, inner = x.shape
    return Launch(outer * -(-inner // width), n * width * _NS_PER_ELEMENT[kind])


def _column_width(x: np.ndarray, kind: str) -> int:
    """Columns per tile: all of ``inner`` up to _COL_WIDTH, narrowed (not below _COL_MIN_SPLIT)
    so that a parallel call has at least two tiles per thread."""
    outer, n, inner = x.shape
    width = min(inner, _COL_WIDTH)
    threads = numba.get_num_threads()
    if worth_parallel(x.size * _NS_PER_ELEMENT[kind]):
        per_outer = -(-2 * threads // outer)  # tiles each outer index needs
        width = min(width, max(_COL_MIN_SPLIT, -(-inner // per_outer)))
    return int(width)


def _segments(rows: int, n: int, kind: str) -> int:
    """How many segments to cut each row into so that every thread has work (1 when the call
    runs serially or the rows are many or short)."""
    threads = numba.get_num_threads()
    serial = not worth_parallel(rows * n * _NS_PER_ELEMENT[kind])
    if serial or rows >= 2 * threads or n < 2 * _MIN_SEGMENT:
        return 1
    return int(min(-(-2 * threads // rows), n // _MIN_SEGMENT))


def _row_state(x: np.ndarray, mask, sc: float, nseg: int, with_index: bool) -> np.ndarray:
    """Per-row (m, s, c, sj, cj) as float64 (rows, 5), computed over nseg segments per row."""
    states = np.empty((x.shape[0], nseg, 5), np.float64)
    with _row_launch(x, "reduce", nseg) as (variant, work):
        _segment_states[variant](x, mask, sc, nseg, with_index, states, work)
    row_state = np.empty((x.shape[0], 5), np.float64)
    _combine_states(states, sc, row_state)
    return row_state


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _finish_rows(row_state, sc, with_index, out):
    """Per-row results from merged states (the split path): the same finish as the kernels."""
    inv_sc = 1.0 / sc
    for r in range(row_state.shape[0]):
        m, s, c, sj, cj = row_state[r]
        store(out, r, _argmax_value(m, s, c, sj, cj) if with_index
              else _lse_value(m, s, c, inv_sc))


# --------------------------------------------------------------------------------------------
# The backend interface
# --------------------------------------------------------------------------------------------


def _reduce(x: np.ndarray, mask: RowPair | None, scale: float, with_index: bool
            ) -> np.ndarray:
    """lse (with_index False) or soft_argmax (True) per row, on the path the shape calls for."""
    nseg = _segments(*x.shape, "reduce")
    out = np.empty(x.shape[0], x.dtype)
    if nseg > 1:
        _finish_rows(_row_state(x, mask, scale, nseg, with_index), scale, with_index, out)
        return out
    if x.shape[1] <= _SHORT_ROW:
        with _row_launch(x, "short") as (variant, work):
            _short_reduce[variant](x, mask, scale, with_index, out, work)
    else:
        with _row_launch(x, "reduce") as (variant, work):
            _reduce_rows[variant](x, mask, scale, with_index, out, work)
    return out


def lse(x: np.ndarray, mask: RowPair | None, scale: float) -> np.ndarray:
    """(1/scale) * logsumexp(scale * x) per row over the kept elements."""
    return _reduce(x, mask, scale, False)


def lse_float64(x: np.ndarray, mask: RowPair | None, scale: float) -> np.ndarray:
    """lse per row returned in float64, not rounded to x's dtype: the kernels' float64 row
    states finished in float64 (fastops.smooth.dask's block states of float32 input)."""
    out = np.empty(x.shape[0], np.float64)
    _finish_rows(_row_state(x, mask, scale, _segments(*x.shape, "reduce"), False), scale, False,
                 out)
    return out


def soft_argmax(x: np.ndarray, mask: RowPair | None, scale: float) -> np.ndarray:
    """sum_j j * softmax(scale * x)_j per row (0-based j)."""
    return _reduce(x, mask, scale, True)


def _column_segments(x: np.ndarray, kind: str) -> int:
    """Segments of the reduced axis per full-width column tile: 1 when the call runs serially
    or has at least two tiles per thread, else enough for two tasks per thread (each at least
    _COL_MIN_SEGMENT rows)."""
    outer, n, inner = x.shape
    threads = numba.get_num_threads()
    tiles = outer * -(-inner // min(inner, _COL_WIDTH))
    if not worth_parallel(x.size * _NS_PER_ELEMENT[kind]) or tiles >= 2 * threads:
        return 1
    return int(max(1, min(-(-2 * threads // tiles), n // _COL_MIN_SEGMENT)))


def _column_states(x: np.ndarray, mask: np.ndarray | None, scale: float, with_index: bool,
                   nseg: int) -> np.ndarray:
    """Per-column (m, s, c, sj, cj) as float64 (outer * inner, 5) over nseg segments of the
    reduced axis per full-width tile, merged."""
    outer, n, inner = x.shape
    width = min(inner, _COL_WIDTH)
    states = np.empty((outer * inner, nseg, 5), np.float64)
    launch = Launch(outer * -(-inner // width) * nseg,
                    -(-n // nseg) * width * _NS_PER_ELEMENT["reduce_columns"])
    with launch as (variant, work):
        _column_segment_states[variant](x, mask, scale, with_index, width, nseg, states, work)
    column_state = np.empty((outer * inner, 5), np.float64)
    _combine_states(states, scale, column_state)
    return column_state


def _reduce_columns_call(x: np.ndarray, mask: np.ndarray | None, scale: float,
                         with_index: bool) -> np.ndarray:
    out = np.empty((x.shape[0], x.shape[2]), x.dtype)
    nseg = _column_segments(x, "reduce_columns")
    if nseg > 1:
        _finish_rows(_column_states(x, mask, scale, with_index, nseg), scale, with_index,
                     out.reshape(-1))
        return out
    width = _column_width(x, "reduce_columns")
    with _column_launch(x, width, "reduce_columns") as (variant, work):
        _reduce_columns[variant](x, mask, scale, with_index, width, out, work)
    return out


def lse_columns(x: np.ndarray, scale: float, mask: np.ndarray | None = None) -> np.ndarray:
    """lse over axis 1 of x (outer, n, inner): out (outer, inner). ``mask``: None or a bool
    (outer, n, inner) array of any strides (stride 0 along broadcast axes)."""
    return _reduce_columns_call(x, mask, scale, False)


def lse_columns_float64(x: np.ndarray, scale: float, mask: np.ndarray | None = None
                        ) -> np.ndarray:
    """lse over axis 1 of x (outer, n, inner) returned in float64 (see lse_float64)."""
    out = np.empty((x.shape[0], x.shape[2]), np.float64)
    states = _column_states(x, mask, scale, False, _column_segments(x, "reduce_columns"))
    _finish_rows(states, scale, False, out.reshape(-1))
    return out


def soft_argmax_columns(x: np.ndarray, scale: float, mask: np.ndarray | None = None
                        ) -> np.ndarray:
    """soft_argmax over axis 1 of x (outer, n, inner): out (outer, inner)."""
    return _reduce_columns_call(x, mask, scale, True)


def softmax_columns(x: np.ndarray, scale: float, log: bool, mask: np.ndarray | None = None
                    ) -> np.ndarray:
    """softmax (or log_softmax) over axis 1 of x (outer, n, inner): y of x's shape."""
    y = np.empty_like(x)
    nseg = _column_segments(x, "softmax_columns")
    if nseg > 1:
        column_state = _column_states(x, mask, scale, False, nseg)
        width = min(x.shape[2], _COL_WIDTH)
        launch = Launch(x.shape[0] * -(-x.shape[2] // width) * nseg,
                        -(-x.shape[1] // nseg) * width * _NS_PER_ELEMENT["softmax_columns"])
        with launch as (variant, work):
            _softmax_column_segments[variant](x, mask, scale, log, column_state, width, nseg,
                                              y, work)
        return y
    width = _column_width(x, "softmax_columns")
    with _column_launch(x, width, "softmax_columns") as (variant, work):
        _softmax_columns[variant](x, mask, scale, log, width, y, work)
    return y


def _work_dtype(x: np.ndarray) -> np.dtype:
    """The dtype the kernels compute x in: float32 for float16 bits (uint16), else x's."""
    return np.dtype(np.float32) if x.dtype == np.uint16 else x.dtype


def _columns_call(kernel, kind: str, x: np.ndarray, *args) -> np.ndarray:
    """A per-element column kernel over x (outer, n, inner): ``kernel[variant](x, *args,
    width, dx, work)`` into a fresh dx of x's shape."""
    dx = np.empty_like(x)
    width = _column_width(x, kind)
    with _column_launch(x, width, kind) as (variant, work):
        kernel[variant](x, *args, width, dx, work)
    return dx


def smooth_max_backward_columns(x: np.ndarray, scale: float, dout: np.ndarray) -> np.ndarray:
    """smooth_max_backward over axis 1 of x (outer, n, inner), dout (outer, inner)."""
    return _columns_call(_prob_grad_columns, "prob_grad_columns", x, scale,
                         dout.astype(np.float64), False)


def soft_argmax_backward_columns(x: np.ndarray, scale: float, dout: np.ndarray) -> np.ndarray:
    """soft_argmax_backward over axis 1 of x (outer, n, inner), dout (outer, inner)."""
    return _columns_call(_prob_grad_columns, "prob_grad_columns", x, scale,
                         dout.astype(np.float64), True)


def lse_backward_columns(x: np.ndarray, out: np.ndarray, dout: np.ndarray) -> np.ndarray:
    """logsumexp_backward (no b, no mask) over axis 1 of x (outer, n, inner)."""
    work = _work_dtype(x)
    return _columns_call(_lse_backward_columns, "backward_columns", x, out.astype(work),
                         dout.astype(work))


def softmax_backward_columns(y: np.ndarray, dy: np.ndarray, scale: float, log: bool
                             ) -> np.ndarray:
    """(log_)softmax_backward over axis 1 of y and dy (outer, n, inner)."""
    return _columns_call(_softmax_backward_columns, "softmax_backward_columns", y, dy, scale,
                         log)


def lse_weighted(x: np.ndarray, b: RowPair, mask: RowPair | None
                 ) -> tuple[np.ndarray, np.ndarray]:
    """log|sum b exp(x)| and its sign per row, SciPy semantics."""
    out = np.empty(x.shape[0], np.float64)
    sign = np.empty(x.shape[0], np.float64)
    with _row_launch(x, "weighted") as (variant, work):
        _lse_weighted_rows[variant](x, b, mask, out, sign, work)
    return out.astype(_work_dtype(x)), sign.astype(_work_dtype(x))


def lse_complex(x: np.ndarray, b: RowPair | None, mask: RowPair | None
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Complex logsumexp of complex128 rows x (rows, n): (out, sign, direct) per row, out and
    sign complex128, not yet wrapped; direct True where the caller must use the direct
    formula instead (see _lse_complex_impl)."""
    out = np.empty(x.shape[0], np.complex128)
    sign = np.empty(x.shape[0], np.complex128)
    direct = np.empty(x.shape[0], np.bool_)
    with _row_launch(x, "complex") as (variant, work):
        _lse_complex[variant](x, b, mask, out, sign, direct, work)
    return out, sign, direct


def softmax(x: np.ndarray, mask: RowPair | None, scale: float, log: bool) -> np.ndarray:
    """softmax (or log_softmax) of scale * x per row; masked elements 0 (log: -inf)."""
    y = np.empty_like(x)
    nseg = _segments(*x.shape, "softmax")
    if nseg > 1:
        row_state = _row_state(x, mask, scale, nseg, False)
        with _row_launch(x, "softmax", nseg, writes=True) as (variant, work):
            _softmax_segments[variant](x, mask, scale, log, nseg, row_state, y, work)
    elif x.shape[1] <= _SHORT_ROW:
        with _row_launch(x, "short", writes=True) as (variant, work):
            _short_softmax[variant](x, mask, scale, log, y, work)
    else:
        with _row_launch(x, "softmax", writes=True) as (variant, work):
            _softmax_rows[variant](x, mask, scale, log, y, work)
    return y


def _prob_grad(x, mask, scale, dout, index_weighted):
    dx = np.empty_like(x)
    dout = dout.astype(np.float64)
    nseg = _segments(*x.shape, "prob_grad")
    if nseg > 1:
        row_state = _row_state(x, mask, scale, nseg, index_weighted)
        with _row_launch(x, "prob_grad", nseg, writes=True) as (variant, work):
            _prob_grad_segments[variant](x, mask, scale, dout, index_weighted, nseg, row_state,
                                         dx, work)
    elif x.shape[1] <= _SHORT_ROW:
        with _row_launch(x, "short", writes=True) as (variant, work):
            _short_prob_grad[variant](x, mask, scale, dout, index_weighted, dx, work)
    else:
        with _row_launch(x, "prob_grad", writes=True) as (variant, work):
            _prob_grad_rows[variant](x, mask, scale, dout, index_weighted, dx, work)
    return dx


def smooth_max_backward(x: np.ndarray, mask: RowPair | None, scale: float,
                        dout: np.ndarray) -> np.ndarray:
    """dout * softmax(scale * x) per row."""
    return _prob_grad(x, mask, scale, dout, False)


def soft_argmax_backward(x: np.ndarray, mask: RowPair | None, scale: float,
                         dout: np.ndarray) -> np.ndarray:
    """dout * scale * p * (j - soft_argmax) per row."""
    return _prob_grad(x, mask, scale, dout, True)


def lse_backward(x: np.ndarray, b: RowPair | None, mask: RowPair | None,
                 out: np.ndarray, dout: np.ndarray) -> np.ndarray:
    """dout * b * exp(x - out); 0 where masked, b == 0, x == -inf or out == -inf."""
    dx = np.empty_like(x)
    with _row_launch(x, "backward", writes=True) as (variant, work):
        work_dtype = _work_dtype(x)
        _lse_backward_rows[variant](x, b, mask, out.astype(work_dtype), dout.astype(work_dtype),
                                    dx, work)
    return dx


def softmax_backward(y: np.ndarray, dy: np.ndarray, mask: RowPair | None, scale: float,
                     log: bool) -> np.ndarray:
    """Gradient of softmax (log=False) or log_softmax (log=True) given the output y."""
    dx = np.empty_like(y)
    with _row_launch(y, "backward", writes=True) as (variant, work):
        _softmax_backward_rows[variant](y, dy, mask, scale, log, dx, work)
    return dx
