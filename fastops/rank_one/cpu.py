"""Numba (CPU) kernels of the rank_one family: exp(x yᵀ) dense, applied, chained, and backward.

The interface (names, arguments, results) is ``BACKEND_INTERFACE.md`` beside this file. Every
kernel works per batch entry b (the dense one per row of E) and finds the entry's x, y, v rows
through index maps (``ix[b]``; an empty map is the identity), so a broadcast operand (one x, y
for a batch of v) is never copied per entry. The entries follow the scheduling model of
``fastops/_numba.py``: the threads take chunks of them from an atomic counter
(``next_chunk``), and a launch whose estimated single-thread time (from the costs measured
below) is under ``PARALLEL_MIN_NS`` runs serially. Inside an entry:

- the dot products are fused: one loop over k reads x, y, v once and accumulates ``s = yᵀx``
  and ``a = yᵀv`` (and ``b = xᵀdz`` in the backward passes) in float64, a reduction LLVM
  vectorises (reassociation allowed by ``FASTMATH``, never nnan/ninf), and Σ|x_j y_j|, which
  decides whether s is recomputed by a compensated dot product (``_COMPENSATE_ABOVE``,
  fastops._exact, compiled without fast-math flags);
- the scalars (φ(s) = expm1(s)/s with libm's expm1, φ'(s) with its Taylor series for
  |s| < 1, the log-space coefficient where φ overflows) are computed once per entry;
- the accuracy forms of docs/formulas.md "Accuracy": the dense diagonal by ``_diagonal``, an
  applied entry rewritten by ``_apply_eigen_form`` where ``_eigen_form_pays``;
- a second loop writes ``z = v + c·x`` (a select keeps ``c·0 = 0`` for an infinite c) from the
  same rows, which are still in L1;
- a chain keeps the vector in a float64 buffer across its L factors (v read once, z written
  once); its backward stores each factor's input in a per-thread (L, k) float64 buffer during
  the recomputed forward, then walks the factors back;
- an operand passed as columns (``v_cols`` / ``dz_cols``: ``V.T`` of a C-contiguous V, read
  in place instead of copied) is gathered a tile of entries at a time into a per-thread
  buffer of rows, which the same loops then read: the bits of the row layout;
- the dense matrix is written row by row in one pass, parallel over the B·k rows (so one
  large matrix uses every core too), from a per-entry φ computed first.

Everything compiles lazily on the first call per dtype (``cache=True`` keeps the machine code on
disk); importing this module compiles nothing.
"""

from __future__ import annotations

import math

import numpy as np
from numba import prange

from .._exact import det2, exact, grid_dot, is_float64, renormalize, two_prod, two_sum
from .._numba import CHUNK_NS, WORKERS, Launch, inline, jit_pair, next_chunk
from . import reference

# The single-thread cost model of a launch (Launch's serial / parallel decision and chunk
# size): _NS_PER_ELEMENT per element of each k-vector an entry reads or writes, plus
# _NS_PER_FACTOR per factor whose scalars it computes.
#
# Memory-bound: measured (median of 25 calls, fastops.threads(1), 2-core VM, 2026-12-02) per
# element of k and per vector, float64 / float32: logdet (2 vectors) 0.36 / 0.21 on (65536, 64)
# and 0.21 / 0.14 on (512, 64); apply (4 vectors) 0.83 / 0.50 and, in cache, 0.24 / 0.29;
# apply_backward (7 vectors, 3 of them fresh outputs whose first touch faults pages in) 1.37 /
# 0.37 and 0.26 / 0.25; dense per element of E 0.42 / 0.28 on (512, 64), 0.68 / 0.68 on
# (4096, 16); a chain with shared factors 0.59 / 0.57 per element and layer on (65536, 32, 64).
_NS_PER_ELEMENT = 0.5
# The scalars of one factor of one entry (s, φ(s), the coefficient and their branches) and the
# set-up of its loops, measured as above with k = 1 or 2, float64: 33 ns (φ alone), 55 ns
# (apply), 99 ns (a chain factor). The backward kernels count 2 per factor (φ'(s) too:
# measured 126 ns for apply_backward, 218 ns per factor of chain_backward).
_NS_PER_FACTOR = 100.0
# The kernels dominated by writing their outputs pass their output bytes per item to Launch,
# which then takes at least a huge page of a large fresh output per chunk (fastops._numba's
# HUGE_PAGE_BYTES, measured on apply (65536, 64) float64: 9.4 ms with 100 us chunks against
# 8.5 ms).
#: Entries a chain task walks through shared factors together (their float64 vectors, 16·k·8
#: bytes, stay in L1 for k up to a few hundred). Per-entry factors go one entry at a time:
#: there the factors' reads are the cost, and 16 interleaved streams defeat the prefetcher
#: (measured 4.2 ms against 2.4 ms for 2048 entries of L = 32, k = 64).
_CHAIN_BLOCK = 16
#: |s| below which φ'(s) is its Taylor series, and its coefficients (reference.py says why).
_DPHI_TAYLOR_BELOW = reference.DPHI_TAYLOR_BELOW
_DPHI_COEFFS = np.array(reference.DPHI_COEFFS)
#: s = yᵀx is recomputed as a compensated dot product (fastops._exact.grid_dot: 150 ns for k =
#: 64, a second pass over the rows) where the plain float64 sum's error may pass 4 eps: e^s and
#: φ(s) carry the absolute error of s as a relative one (at s = 700 from k = 64 terms, hundreds
#: of ulp). The estimate is statistical, measured: the kernels' vectorised sum of k standard
#: normal products erred by at most 0.98, 0.53, 0.37, 0.32 eps·m (m = Σ|x_j y_j|) for k = 16, 64,
#: 256, 1024 over 20000 entries each, below eps·m·(0.3 + 3/√k) (the rigorous bound, k·eps·m, is
#: 16-3200 times looser and would compensate nearly every entry). Inputs with |s| of order 1 and
#: entries ~ N(0, 1/√k) (m ≈ 0.64√k) mostly skip it up to k ≈ 64. float32 input never needs it (its
#: products are exact in float64 and the sum's error is far below a float32 ulp).
_COMPENSATE_ABOVE = 4.0
#: An applied entry is recomputed in the form e^t v_i + σ φ(t) τ_i (reference._apply64) where
#: that form's estimated rounding bound is below 1/8 of v_i + c x_i's.
_EIGEN_FORM_GAIN = reference.EIGEN_FORM_GAIN
#: ... which it can only be for t < −1.5: with τ ≈ 0 (the case it exists for) its terms are
#: e^t |v| against |v| (1 + |e^t − 1|) for v + c x, a ratio of 8 at e^t = 2/9. The kernels
#: look (a second pass over the entry's rows) below t = −1, not at every entry; the backward
#: too, for its three gradients.
_EIGEN_FORM_T_BELOW = reference.EIGEN_FORM_T_BELOW

_NO_INDEX = np.empty(0, dtype=np.int64)
_NO_VALUES = np.empty(0, dtype=np.float64)
_NO_TABLE = np.empty((0, 0), dtype=np.float64)


# --------------------------------------------------------------------------------------------
# Scalars (once per batch entry)
# --------------------------------------------------------------------------------------------


@inline
def _at(idx, b):
    """Entry of the operand for batch entry b: idx[b], b for the identity (empty) map, or
    idx[0] for a one-entry map (an operand broadcast to every entry: no (B,) map is built)."""
    # int64 on every branch: an unsigned index (uint64 | int64) would unify to float64
    if idx.size == 0:
        return np.int64(b)
    return np.int64(idx[0]) if idx.size == 1 else np.int64(idx[b])


@inline
def _gather_columns(vt, iv, b0, nb, buf):
    """buf[i] = the vector of entry b0 + i, for i < nb, of an operand passed as columns (its
    (k, n) transpose, e.g. the C-contiguous V of ``V.T``): read a row of vt at a time, runs
    of nb neighbours, so that the entries' loops then read contiguous rows of buf exactly as
    they read an operand given as rows (the same loops, the same bits).

    (Tried: 8 x 8 blocks, 4.1 against 6.4 ms for a (64, 65536) float32 vt alone on one thread,
    but no faster inside apply, where the reads of the other operands share the bandwidth.)"""
    for j in range(vt.shape[0]):  # indexed directly: no view (an NRT incref) per row
        for i in range(nb):
            buf[i, j] = vt[j, _at(iv, b0 + i)]


@inline
def _tile_source(cols, arr, idx, b0, nb, buf):
    """Where the loops of a tile of entries b0 .. b0 + nb read an operand from: ``arr`` itself
    (rows), or, for an operand passed as columns, ``buf`` once that tile's vectors are gathered
    into it (see _gather_columns). Both are C-contiguous 2-D arrays of one dtype: one type."""
    if cols:
        _gather_columns(arr, idx, b0, nb, buf)
        return buf
    return arr


@inline
def _row(cols, idx, i, b):
    """The row of entry b (the i-th of its tile) in the operand's _tile_source."""
    return np.int64(i) if cols else _at(idx, b)


@inline
def _tile_span(bufs, lo, hi):
    """Entries per tile: the column buffers' length, or the whole chunk when no operand is
    passed as columns (the buffers are then empty)."""
    return bufs.shape[2] if bufs.shape[2] > 0 else hi - lo


@inline
def _phi(s):
    """φ(s) = expm1(s)/s, exactly 1 at s = 0 (libm expm1: < 1 ulp, fine for tiny s)."""
    return 1.0 if s == 0.0 else math.expm1(s) / s


@inline
def _dphi(s):
    """φ'(s) = (e^s − φ(s))/s; its Taylor series for |s| < 1 (cancellation)."""
    if abs(s) < _DPHI_TAYLOR_BELOW:
        t = 0.0
        for n in range(_DPHI_COEFFS.size - 1, -1, -1):
            t = _DPHI_COEFFS[n] + s * t
        return t
    return (math.exp(s) - _phi(s)) / s


@inline
def _phi2(s, s_lo):
    """φ(s + s_lo) to first order in s_lo (the low part of a compensated s)."""
    ph = _phi(s)
    # (where φ overflowed, inf + inf·s_lo would be NaN for a negative s_lo)
    return ph + _dphi(s) * s_lo if s_lo != 0.0 and math.isfinite(ph) else ph


@inline
def _dphi2(s, s_lo):
    """φ'(s + s_lo): the Taylor series for |s| < 1 (s_lo is below its precision there), else
    (e^s − φ(s))/s with both to first order in s_lo."""
    if s_lo == 0.0 or abs(s) < _DPHI_TAYLOR_BELOW:
        return _dphi(s)
    e = math.exp(s)
    if not math.isfinite(e):
        return _dphi(s)
    return (e + e * s_lo - _phi2(s, s_lo)) / s


@inline
def _grid_dot(x, i, y, j, m):
    """fastops._exact.grid_dot of rows x[i], y[j] (2-D, or 3-D with i, j tuples): the kernels pass
    arrays and indices, not row views: a view passed to a call keeps Numba from pruning its
    reference counting, an atomic increment and decrement per batch entry even where the call
    never runs (measured: logdet (65536, 64) float32 5.2 -> 7.0 ms, one thread, with a
    compensated dot of row views in a branch)."""
    return grid_dot(x[i], y[j], m)


@inline
def _needs_compensation(comp, m, k):
    """Whether s = yᵀx (m = Σ|x_j y_j|, k terms) is to be recomputed by _grid_dot
    (_COMPENSATE_ABOVE); comp = fastops._exact.is_float64 of the operands, a compile-time
    constant (a float32 compilation drops the branch: with a run-time flag, apply (65536, 64)
    float32 took 11.4-13.2 ms against 7.9-8.7 ms, one thread). Scalars only: the rows go to
    _grid_dot as arrays and indices, inside the branch."""
    # (m finite: _grid_dot's integer split needs it; an inf m means an inf s anyway)
    return comp and m * (0.3 + 3.0 / math.sqrt(k)) > _COMPENSATE_ABOVE and math.isfinite(m)


@inline
def _factor(s, s_lo, inverse):
    """(g(s), g'(s)) at s + s_lo: (φ(s), φ'(s)) for E, (−φ(−s), φ'(−s)) for E⁻¹."""
    if inverse:
        return -_phi2(-s, -s_lo), _dphi2(-s, -s_lo)
    return _phi2(s, s_lo), _dphi2(s, s_lo)


@inline
def _coef_t(t, ph, a, sign):
    """sign·φ(t)·a from t = ±s and ph = φ(t): 0 when a == 0 (unless ph is NaN), in log space
    where φ overflowed."""
    if a == 0.0 and not math.isnan(ph):
        return 0.0
    c = sign * ph * a
    if math.isinf(ph) and math.isfinite(t) and math.isfinite(a):
        log_c = t - math.log(t) + math.log1p(-math.exp(-t)) + math.log(abs(a))
        c = sign * math.copysign(math.exp(log_c), a)
    return c


@exact
def _diagonal(xi, yi, s, s_lo, ph, es):
    """E_ii = 1 + φ p_i (p_i = x_i y_i), or where its rounding bound is larger the same number
    as e^s − φ r_i with r_i = s − p_i in double-double (es = e^s): the entry that cancels to
    e^s ≪ 1 when x_i y_i is most of s < 0 (reference.expm_rank1)."""
    p, e = two_prod(xi, yi)
    if p == 0.0:
        return 1.0
    direct = 1.0 + ph * p
    r, r_e = two_sum(s, -p)
    r = r + (r_e + (s_lo - e))
    if es + ph * abs(r) < 1.0 + abs(ph * p):
        return es - ph * r
    return direct


@exact
def _eigen_scalars(xr, yr, inverse):
    """(t, φ(t), e^t) of the factor (xr, yr), t = ±yᵀx, from the compensated s (its low part
    to first order): the eigen forms' scalars, each to an ulp."""
    s = 0.0
    m = 0.0
    for j in range(xr.size):
        p = np.float64(xr[j]) * np.float64(yr[j])
        s += p
        m += abs(p)
    s_lo = 0.0
    if 2.0**-900 <= m < math.inf:  # (grid_dot's range; outside it s's error cannot matter)
        s, s_lo = grid_dot(xr, yr, m)
    t, t_lo = (-s, -s_lo) if inverse else (s, s_lo)
    ph = math.expm1(t) / t if t != 0.0 else 1.0
    es = math.exp(t)  # (finite: the callers checked φ)
    if t_lo != 0.0 and t != 0.0:
        ph += (es - ph) / t * t_lo
    es += es * t_lo
    return t, ph, es


@exact
def _apply_eigen_form(x, bx, y, by, v, bv, inverse, c, out, b):
    """Rewrite out[b] (the entry's E v, or E⁻¹ v, as v + c x; x[bx], y[by], v[bv] its rows)
    where the form e^t v_i + σ φ(t) τ_i,
    τ_i = Σ_l y_l (x_i v_l − x_l v_i), has the smaller rounding bound (reference._apply64):
    s compensated, each determinant to an ulp (O(k²): only for entries the kernel flagged)."""
    xr, yr, vr, o = x[bx], y[by], v[bv], out[b]  # (the rows: see _grid_dot for why not passed)
    t, ph, es = _eigen_scalars(xr, yr, inverse)
    sign = -1.0 if inverse else 1.0
    k = xr.size
    for i in range(k):
        xi = np.float64(xr[i])
        vi = np.float64(vr[i])
        tau = 0.0
        tau_bound = 0.0
        for l in range(k):
            if l != i:
                d = np.float64(yr[l]) * det2(xi, np.float64(xr[l]), vi, np.float64(vr[l]))
                tau += d
                tau_bound += abs(d)
        cx = c * xi if xi != 0.0 else 0.0
        if es * abs(vi) + abs(ph) * tau_bound < abs(vi) + abs(cx):
            o[i] = es * vi + sign * ph * tau


@inline
def _apply_careful(x, bx, y, by, v, bv, inverse, s, t, ph, a, c, out, b):
    """The second look an apply's entry gets where t < _EIGEN_FORM_T_BELOW: the norms
    _eigen_form_pays needs (one pass over the rows), then the eigen form where it pays.
    Arrays and row indices rather than row views (see _grid_dot)."""
    xr, vr = x[bx], v[bv]
    xx = 0.0
    vv = 0.0
    xv = 0.0
    for j in range(xr.size):
        xj = np.float64(xr[j])
        vj = np.float64(vr[j])
        xx += xj * xj
        vv += vj * vj
        xv += xj * vj
    if _eigen_form_pays(t, ph, c, a, s, xx, vv, xv):
        _apply_eigen_form(x, bx, y, by, v, bv, inverse, c, out, b)


@exact
def _backward_eigen_form(x, bx, y, by, v, bv, w, bw, inverse, a, bb, g, gp, dx, dy, dv, b):
    """Rewrite the entry's dx, dy, dv (written in the direct forms g a w + g' a b y,
    g b v + g' a b x, w + g b y) element by element where the forms of reference._apply_vjp,
    (a/t)(e^t b y − φ τ'), (b/t)(e^t a x − φ τ), e^t w + σ φ τ', have the smaller rounding
    bound: τ_i = Σ_l y_l (x_i v_l − x_l v_i), τ'_i = Σ_l x_l (y_i w_l − y_l w_i), each
    determinant to an ulp (O(k²): only for entries _backward_careful flagged)."""
    xr, yr, vr, wr = x[bx], y[by], v[bv], w[bw]
    t, ph, es = _eigen_scalars(xr, yr, inverse)
    sign = -1.0 if inverse else 1.0
    ga, gb, gpab = g * a, g * bb, gp * a * bb
    at, bt = a / t, bb / t
    ox, oy, ov = dx[b], dy[b], dv[b]
    k = xr.size
    for i in range(k):
        xi, yi = np.float64(xr[i]), np.float64(yr[i])
        vi, wi = np.float64(vr[i]), np.float64(wr[i])
        tau = 0.0
        tau_bound = 0.0
        taw = 0.0
        taw_bound = 0.0
        for l in range(k):
            if l != i:
                d = np.float64(yr[l]) * det2(xi, np.float64(xr[l]), vi, np.float64(vr[l]))
                tau += d
                tau_bound += abs(d)
                e = np.float64(xr[l]) * det2(yi, np.float64(yr[l]), wi, np.float64(wr[l]))
                taw += e
                taw_bound += abs(e)
        if abs(at) * (es * abs(bb * yi) + ph * taw_bound) < abs(ga * wi) + abs(gpab * yi):
            ox[i] = at * (es * bb * yi - ph * taw)
        if abs(bt) * (es * abs(a * xi) + ph * tau_bound) < abs(gb * vi) + abs(gpab * xi):
            oy[i] = bt * (es * a * xi - ph * tau)
        if es * abs(wi) + ph * taw_bound < abs(wi) + abs(gb * yi):
            ov[i] = es * wi + sign * ph * taw


@inline
def _backward_careful(x, bx, y, by, v, bv, w, bw, inverse, s, t, a, bb, g, gp, dx, dy, dv, b):
    """The second look a backward entry gets where t < _EIGEN_FORM_T_BELOW (as
    _apply_careful): the norms of x, y, v, w and xᵀv, yᵀw (one pass over the rows), then
    _backward_eigen_form where, norm-wise, one of the three gradients' other forms has terms
    _EIGEN_FORM_GAIN times below the direct form's (reference._apply_vjp's rule)."""
    if not (math.isfinite(g) and math.isfinite(gp) and math.isfinite(a)
            and math.isfinite(bb)):
        return
    xr, yr, vr, wr = x[bx], y[by], v[bv], w[bw]
    xx = yy = vv = ww = xv = yw = 0.0
    for j in range(xr.size):
        xj, yj = np.float64(xr[j]), np.float64(yr[j])
        vj, wj = np.float64(vr[j]), np.float64(wr[j])
        xx += xj * xj
        yy += yj * yj
        vv += vj * vj
        ww += wj * wj
        xv += xj * vj
        yw += yj * wj
    nx, ny, nv, nw = math.sqrt(xx), math.sqrt(yy), math.sqrt(vv), math.sqrt(ww)
    tau_n = math.sqrt(max(a * a * xx - 2.0 * a * s * xv + s * s * vv, 0.0))
    taw_n = math.sqrt(max(bb * bb * yy - 2.0 * bb * s * yw + s * s * ww, 0.0))
    ph = math.expm1(t) / t  # (estimates: t < −1, no low parts needed)
    es = math.exp(t)
    gpab = abs(gp * a * bb)
    if (_EIGEN_FORM_GAIN * (es * nw + ph * taw_n) < nw + abs(g * bb) * ny
            or _EIGEN_FORM_GAIN * abs(a / t) * (es * abs(bb) * ny + ph * taw_n)
            < abs(g * a) * nw + gpab * ny
            or _EIGEN_FORM_GAIN * abs(bb / t) * (es * abs(a) * nx + ph * tau_n)
            < abs(g * bb) * nv + gpab * nx):
        _backward_eigen_form(x, bx, y, by, v, bv, w, bw, inverse, a, bb, g, gp, dx, dy, dv, b)


@inline
def _eigen_form_pays(t, ph, c, a, s, xx, vv, xv):
    """Whether an entry's E v is to be rewritten by _apply_eigen_form: the norm-wise estimate
    of that form's terms, e^t |v| + |φ(t)| |τ| with |τ|² = a²|x|² − 2as xᵀv + s²|v|², is
    _EIGEN_FORM_GAIN times below |v| + |c| |x|, the terms of v + c x (v along x, k = 1: the
    cases it exists for). Norms from sums the dot-product loop accumulates anyway: no second
    pass, no libm call (e^t = 1 + t φ(t) is close enough for an estimate)."""
    if not (math.isfinite(c) and math.isfinite(ph)):
        return False
    tau2 = a * a * xx - 2.0 * a * s * xv + s * s * vv
    nv = math.sqrt(vv)
    # every term divided by 1 + |φ|, which keeps them finite at s ≈ 709
    scale = 1.0 / (1.0 + abs(ph))
    w = abs(ph) * scale
    estimate = abs(scale + t * w) * nv + w * math.sqrt(max(tau2, 0.0))
    return _EIGEN_FORM_GAIN * estimate < nv * scale + w * abs(a) * math.sqrt(xx)


@inline
def _coef(s, s_lo, a, inverse):
    """g(s)·a at s + s_lo: 0 when a == 0 (unless g is NaN), in log space where φ
    overflowed."""
    t, t_lo = (-s, -s_lo) if inverse else (s, s_lo)
    return _coef_t(t, _phi2(t, t_lo), a, -1.0 if inverse else 1.0)


# --------------------------------------------------------------------------------------------
# Kernels
# --------------------------------------------------------------------------------------------


@inline
def _dot_s(xr, yr):
    """(s, s_lo) of yᵀx: the float64 sum (one vectorised loop, also summing |x_j y_j| for its
    error estimate), compensated where that estimate calls for it (_needs_compensation). For
    the kernels whose items are few (one per dense matrix, one per shared chain factor)."""
    s = 0.0
    m = 0.0
    for j in range(xr.size):
        p = np.float64(xr[j]) * np.float64(yr[j])
        s += p
        m += abs(p)
    if _needs_compensation(is_float64(xr), m, xr.size):
        return grid_dot(xr, yr, m)
    return s, 0.0


def _logdet_impl(x, ix, y, iy, cols, bufs, out, work):
    """out[b] = yᵀx: the float64 sum, compensated where its error may pass 2 eps
    (_needs_compensation), rounded once. cols = (x_cols, y_cols): an operand passed as
    columns is gathered a tile at a time into bufs[_worker, slot] (see _apply_impl)."""
    x_cols, y_cols = cols
    for _worker in prange(work[WORKERS]):
        while True:
            lo, hi = next_chunk(work)
            if lo >= hi:
                break
            span = _tile_span(bufs, lo, hi)
            for b0 in range(lo, hi, span):
                nb = min(span, hi - b0)
                xs = _tile_source(x_cols, x, ix, b0, nb, bufs[_worker, 0])
                ys = _tile_source(y_cols, y, iy, b0, nb, bufs[_worker, 1])
                for i in range(nb):
                    b = b0 + i
                    bx = _row(x_cols, ix, i, b)
                    by = _row(y_cols, iy, i, b)
                    # (_dot_s's loop written out: a call with row views, once per entry, costs
                    # their reference counting, see _grid_dot; _dot_s serves the few-item
                    # kernels. A _dot_s taking arrays and indices instead: logdet (65536, 64)
                    # float32 2.8 -> 3.2 ms, one thread, thread_time medians of 31 in 2
                    # alternating runs, 2026-12-03)
                    xr = xs[bx]
                    yr = ys[by]
                    s = 0.0
                    m = 0.0
                    for j in range(xr.size):
                        p = np.float64(xr[j]) * np.float64(yr[j])
                        s += p
                        m += abs(p)
                    if _needs_compensation(is_float64(x), m, xr.size):
                        s = _grid_dot(xs, bx, ys, by, m)[0]
                    out[b] = s


def _scalars_impl(x, ix, y, iy, out, work):
    """out[b] = (φ(s), s, s_lo, e^s) of s = yᵀx (float64; s + s_lo compensated where
    needed), the dense kernel's per-entry scalars."""
    for _worker in prange(work[WORKERS]):
        while True:
            lo, hi = next_chunk(work)
            if lo >= hi:
                break
            for b in range(lo, hi):
                s, s_lo = _dot_s(x[_at(ix, b)], y[_at(iy, b)])
                es = math.exp(s)
                out[b, 0] = _phi2(s, s_lo)
                out[b, 1] = s
                out[b, 2] = s_lo
                out[b, 3] = es + es * s_lo if math.isfinite(es) else es


def _dense_impl(x, ix, y, iy, scalars, out, work):
    """out[b, i, :] = δ_i + φ_b x_i y (0 where x_i y_j == 0), the diagonal entry by
    _diagonal; the items are the B·k rows."""
    k = out.shape[1]
    for _worker in prange(work[WORKERS]):
        while True:
            lo, hi = next_chunk(work)
            if lo >= hi:
                break
            for r in range(lo, hi):
                b = r // k
                i = r - b * k
                xi = np.float64(x[_at(ix, b), i])
                yr = y[_at(iy, b)]
                ph = scalars[b, 0]
                o = out[b, i]
                for j in range(k):
                    t = xi * np.float64(yr[j])
                    o[j] = ph * t if t != 0.0 else 0.0
                o[i] = _diagonal(xi, np.float64(yr[i]), scalars[b, 1], scalars[b, 2], ph,
                                 scalars[b, 3])


def _apply_impl(x, ix, y, iy, v, iv, cols, bufs, inverse, out, work):
    """out[b] = v + g(s)(yᵀv) x: one loop for the dot products (and the norms
    _eigen_form_pays needs), one for the write; _apply_eigen_form rewrites the rare entries
    whose other form is the more accurate one (v along x; k = 1).

    cols = (x_cols, y_cols, v_cols): an operand passed as columns is (k, n), its columns the
    vectors; tiles of them are gathered into rows first, into the thread's
    bufs[_worker, slot] (tile, k), slot its place in cols (allocated by the caller: an
    allocation in the kernel made its first compilation 0.3 s longer, measured), and every
    loop then reads the tile's rows (_tile_source, _row)."""
    x_cols, y_cols, v_cols = cols
    for _worker in prange(work[WORKERS]):
        while True:
            lo, hi = next_chunk(work)
            if lo >= hi:
                break
            span = _tile_span(bufs, lo, hi)
            for b0 in range(lo, hi, span):
                nb = min(span, hi - b0)
                xs = _tile_source(x_cols, x, ix, b0, nb, bufs[_worker, 0])
                ys = _tile_source(y_cols, y, iy, b0, nb, bufs[_worker, 1])
                vs = _tile_source(v_cols, v, iv, b0, nb, bufs[_worker, 2])
                for i in range(nb):
                    b = b0 + i
                    bx = _row(x_cols, ix, i, b)
                    by = _row(y_cols, iy, i, b)
                    bv = _row(v_cols, iv, i, b)
                    xr = xs[bx]
                    yr = ys[by]
                    vr = vs[bv]
                    s = 0.0
                    m = 0.0
                    a = 0.0
                    ma = 0.0
                    for j in range(xr.size):
                        yj = np.float64(yr[j])
                        p = np.float64(xr[j]) * yj
                        s += p
                        m += abs(p)
                        q = np.float64(vr[j]) * yj
                        a += q
                        ma += abs(q)
                    s_lo = 0.0
                    compensated = _needs_compensation(is_float64(x), m, xr.size)
                    if compensated:  # s, and a = yᵀv where it is as large a sum
                        s, s_lo = _grid_dot(xs, bx, ys, by, m)
                        if _needs_compensation(is_float64(x), ma, xr.size):
                            a = _grid_dot(ys, by, vs, bv, ma)[0]
                    t, sign = (-s, -1.0) if inverse else (s, 1.0)
                    # (φ2 only where s has a low part)
                    ph = _phi2(t, -s_lo if inverse else s_lo) if compensated else _phi(t)
                    c = _coef_t(t, ph, a, sign)
                    o = out[b]
                    for j in range(xr.size):
                        xj = np.float64(xr[j])
                        cx = c * xj
                        o[j] = np.float64(vr[j]) + (cx if xj != 0.0 else 0.0)
                    if t < _EIGEN_FORM_T_BELOW and math.isfinite(c) and math.isfinite(ph):
                        _apply_careful(xs, bx, ys, by, vs, bv, inverse, s, t, ph, a, c, out, b)


def _apply_backward_impl(x, ix, y, iy, v, iv, dz, idz, cols, bufs, inverse, dx, dy, dv, work):
    """The VJP of one factor per entry (formulas.md 2.4 b, c); cols = (x_cols, y_cols,
    v_cols, dz_cols): an operand passed as columns is gathered into bufs[_worker, slot] (see
    _apply_impl)."""
    x_cols, y_cols, v_cols, dz_cols = cols
    for _worker in prange(work[WORKERS]):
        while True:
            lo, hi = next_chunk(work)
            if lo >= hi:
                break
            span = _tile_span(bufs, lo, hi)
            for b0 in range(lo, hi, span):
                nb = min(span, hi - b0)
                xs = _tile_source(x_cols, x, ix, b0, nb, bufs[_worker, 0])
                ys = _tile_source(y_cols, y, iy, b0, nb, bufs[_worker, 1])
                vs = _tile_source(v_cols, v, iv, b0, nb, bufs[_worker, 2])
                ws = _tile_source(dz_cols, dz, idz, b0, nb, bufs[_worker, 3])
                for i in range(nb):
                    b = b0 + i
                    bx = _row(x_cols, ix, i, b)
                    by = _row(y_cols, iy, i, b)
                    xr = xs[bx]
                    yr = ys[by]
                    bv = _row(v_cols, iv, i, b)
                    bw = _row(dz_cols, idz, i, b)
                    vr = vs[bv]
                    wr = ws[bw]
                    s = 0.0
                    m = 0.0
                    a = 0.0
                    ma = 0.0
                    bb = 0.0
                    mb = 0.0
                    for j in range(xr.size):
                        xj = np.float64(xr[j])
                        yj = np.float64(yr[j])
                        p = xj * yj
                        s += p
                        m += abs(p)
                        q = np.float64(vr[j]) * yj
                        a += q
                        ma += abs(q)
                        r = xj * np.float64(wr[j])
                        bb += r
                        mb += abs(r)
                    s_lo = 0.0
                    if _needs_compensation(is_float64(x), m, xr.size):
                        s, s_lo = _grid_dot(xs, bx, ys, by, m)
                    # a = yᵀv and b = xᵀw too (each gradient is proportional to one of them)
                    if _needs_compensation(is_float64(x), ma, xr.size):
                        a = _grid_dot(ys, by, vs, bv, ma)[0]
                    if _needs_compensation(is_float64(x), mb, xr.size):
                        bb = _grid_dot(xs, bx, ws, bw, mb)[0]
                    g, gp = _factor(s, s_lo, inverse)
                    ga = g * a
                    gb = g * bb
                    gpab = gp * a * bb
                    ox = dx[b]
                    oy = dy[b]
                    ov = dv[b]
                    for j in range(xr.size):
                        xj = np.float64(xr[j])
                        yj = np.float64(yr[j])
                        wj = np.float64(wr[j])
                        ox[j] = ga * wj + gpab * yj
                        oy[j] = gb * np.float64(vr[j]) + gpab * xj
                        ov[j] = wj + gb * yj
                    t = -s if inverse else s
                    if t < _EIGEN_FORM_T_BELOW:
                        _backward_careful(xs, bx, ys, by, vs, bv, ws, bw, inverse, s, t, a, bb,
                                          g, gp, dx, dy, dv, b)


@inline
def _chain_step(xr, yr, z, inverse):
    """z <- E z (or E⁻¹ z) for the factor (xr, yr), z a float64 buffer; returns s."""
    s = 0.0
    m = 0.0
    a = 0.0
    for j in range(z.size):
        yj = np.float64(yr[j])
        p = np.float64(xr[j]) * yj
        s += p
        m += abs(p)
        a += z[j] * yj
    s_lo = 0.0
    if _needs_compensation(is_float64(xr), m, xr.size):
        s, s_lo = grid_dot(xr, yr, m)
    c = _coef(s, s_lo, a, inverse)
    for j in range(z.size):
        xj = np.float64(xr[j])
        t = c * xj
        z[j] += t if xj != 0.0 else 0.0
    return s


def _chain_scalars_impl(xs, ys, inverse, ts, tls, phs, work):
    """ts[p, l] + tls[p, l] = t = ±yᵀx of factor (p, l) (− for inverse; tls the low part of
    a compensated sum, else 0), phs[p, l] = φ(t): the scalars of shared factors, computed
    once instead of once per batch entry. The items are the P·L factors."""
    L = ts.shape[1]
    for _worker in prange(work[WORKERS]):
        while True:
            lo, hi = next_chunk(work)
            if lo >= hi:
                break
            for r in range(lo, hi):
                p = r // L
                layer = r - p * L
                s, s_lo = _dot_s(xs[p, layer], ys[p, layer])
                t, t_lo = (-s, -s_lo) if inverse else (s, s_lo)
                ts[p, layer] = t
                tls[p, layer] = t_lo
                phs[p, layer] = _phi2(t, t_lo)


def _chain_impl(xs, ixs, ys, iys, v, iv, cols, bufs, ts, tls, phs, inverse, block, out, logdet,
                work):
    """z = the product of the L factors applied to v; logdet = ±Σ s_l.

    The threads take the entries in chunks (a multiple of ``block`` entries, see ``chain``),
    and a chunk in blocks of ``block`` entries whose vectors sit in a float64 (block, k)
    buffer. A block walks the factors layer by layer, so the block's entries are independent
    work between a dot product and the update that needs it, and one loop per entry and layer
    both writes ``z + c·x`` and accumulates the next layer's ``yᵀz``. ts, phs: the scalars of
    shared factors (``_chain_scalars_impl``, with tls, indexed like ixs, which then equals
    iys), or empty: computed per entry and layer. The loops index the arrays directly, never through
    row views: a view costs an NRT incref and decref (atomics on a refcount the threads
    share), per entry and layer more than the arithmetic.
    Where c is finite the update is ``z + c·x`` (a zero x_i adds ±0); else the select keeps
    ``c·0 = 0``; a layer with t < _EIGEN_FORM_T_BELOW gets an apply's second look
    (_apply_careful on the layer's input, kept in zin), so a chain along an eigenvector at
    s ≪ 0 keeps its small entries. logdet is summed in double-double (each s_l with its low
    part) and rounded once: layers of s_l = ±hundreds that cancel to tens would otherwise
    keep the error of each rounded s_l, many ulp of the total (7 ulp in
    tests/rank_one/test_accuracy.py's chain).
    cols = (v_cols,): with v passed as columns, tiles of whole blocks of its
    vectors are gathered into rows of bufs[_worker, 0] first (see _apply_impl)."""
    (v_cols,) = cols
    k = out.shape[1]
    L = xs.shape[1]
    sign = -1.0 if inverse else 1.0
    table = ts.shape[0] > 0
    for _worker in prange(work[WORKERS]):
        zbuf = np.empty((block, k))
        a = np.empty(block)
        ld = np.empty(block)
        ld_lo = np.empty(block)
        c = np.empty(block)
        tt = np.empty(block)
        pp = np.empty(block)
        zin = np.empty((1, k))  # a layer's input, for the eigen form
        while True:
            lo, hi = next_chunk(work)
            if lo >= hi:
                break
            span = _tile_span(bufs, lo, hi)
            for t0 in range(lo, hi, span):
                nt = min(span, hi - t0)
                # the entries' vectors: rows of v, or of the gathered tile
                vsrc = _tile_source(v_cols, v, iv, t0, nt, bufs[_worker, 0])
                for b0 in range(t0, t0 + nt, block):
                    nb = min(block, t0 + nt - b0)
                    first = L - 1 if inverse else 0
                    for i in range(nb):
                        bv = _row(v_cols, iv, b0 - t0 + i, b0 + i)
                        by = _at(iys, b0 + i)
                        acc = 0.0
                        for j in range(k):
                            vj = np.float64(vsrc[bv, j])
                            zbuf[i, j] = vj
                            if L > 0:
                                acc += vj * np.float64(ys[by, first, j])
                        a[i] = acc
                        ld[i] = 0.0
                        ld_lo[i] = 0.0
                    for step in range(L):
                        layer = L - 1 - step if inverse else step
                        # the next layer's y (the last layer's dot product is unused)
                        nxt = layer if step == L - 1 else (layer - 1 if inverse else layer + 1)
                        for i in range(nb):
                            bx = _at(ixs, b0 + i)
                            if table:
                                t = ts[bx, layer]
                                t_lo = tls[bx, layer]
                                ph = phs[bx, layer]
                            else:
                                by = _at(iys, b0 + i)
                                s = 0.0
                                m = 0.0
                                for j in range(k):
                                    p = (np.float64(xs[bx, layer, j])
                                         * np.float64(ys[by, layer, j]))
                                    s += p
                                    m += abs(p)
                                s_lo = 0.0
                                if _needs_compensation(is_float64(xs), m, k):
                                    s, s_lo = _grid_dot(xs, (bx, layer), ys, (by, layer), m)
                                t, t_lo = sign * s, sign * s_lo
                                ph = _phi2(t, t_lo)
                            # (renormalize: a TwoSum compiled without fast-math, see _exact)
                            total, err = renormalize(ld[i], t)
                            ld[i] = total
                            ld_lo[i] += err + t_lo
                            c[i] = _coef_t(t, ph, a[i], sign)
                            tt[i] = t
                            pp[i] = ph
                        for i in range(nb):
                            bx = _at(ixs, b0 + i)
                            by = _at(iys, b0 + i)
                            ci = c[i]
                            careful = (tt[i] < _EIGEN_FORM_T_BELOW and math.isfinite(ci)
                                       and math.isfinite(pp[i]))
                            if careful:
                                for j in range(k):
                                    zin[0, j] = zbuf[i, j]
                            acc = 0.0
                            if math.isfinite(ci):
                                for j in range(k):
                                    zj = zbuf[i, j] + ci * np.float64(xs[bx, layer, j])
                                    zbuf[i, j] = zj
                                    acc += zj * np.float64(ys[by, nxt, j])
                            else:
                                for j in range(k):
                                    xj = np.float64(xs[bx, layer, j])
                                    tj = ci * xj
                                    zj = zbuf[i, j] + (tj if xj != 0.0 else 0.0)
                                    zbuf[i, j] = zj
                                    acc += zj * np.float64(ys[by, nxt, j])
                            if careful:  # the layer's eigen form where it pays, as an apply's
                                _apply_careful(xs, (bx, layer), ys, (by, layer), zin, 0, inverse,
                                               sign * tt[i], tt[i], pp[i], a[i], ci, zbuf, i)
                                acc = 0.0
                                for j in range(k):
                                    acc += zbuf[i, j] * np.float64(ys[by, nxt, j])
                            a[i] = acc
                    for i in range(nb):
                        for j in range(k):
                            out[b0 + i, j] = zbuf[i, j]
                        logdet[b0 + i] = ld[i] + ld_lo[i]


def _chain_backward_impl(xs, ixs, ys, iys, v, iv, dz, idz, cols, bufs, dl, inverse, dxs, dys,
                         dv, work):
    """The VJP of a chain per entry: the forward recomputed, each factor's input kept in a
    float64 (L, k) buffer, then the factors walked back (formulas.md 2.4 b-d). cols =
    (v_cols, dz_cols): an operand passed as columns is gathered into bufs[_worker, slot] (see
    _apply_impl)."""
    v_cols, dz_cols = cols
    L, k = dxs.shape[1], dxs.shape[2]
    for _worker in prange(work[WORKERS]):
        traj = np.empty((L, k))
        w = np.empty(k)
        while True:
            lo, hi = next_chunk(work)
            if lo >= hi:
                break
            span = _tile_span(bufs, lo, hi)
            for t0 in range(lo, hi, span):
                nt = min(span, hi - t0)
                vs = _tile_source(v_cols, v, iv, t0, nt, bufs[_worker, 0])
                ws = _tile_source(dz_cols, dz, idz, t0, nt, bufs[_worker, 1])
                for b in range(t0, t0 + nt):
                    bx = _at(ixs, b)
                    by = _at(iys, b)
                    vr = vs[_row(v_cols, iv, b - t0, b)]
                    for j in range(k):
                        w[j] = np.float64(vr[j])
                    for step in range(L):
                        layer = L - 1 - step if inverse else step
                        traj[layer, :] = w
                        _chain_step(xs[bx, layer], ys[by, layer], w, inverse)
                    wr = ws[_row(dz_cols, idz, b - t0, b)]
                    for j in range(k):
                        w[j] = np.float64(wr[j])
                    sdl = 0.0 if dl.size == 0 else dl[b]
                    if inverse:
                        sdl = -sdl
                    for step in range(L - 1, -1, -1):
                        layer = L - 1 - step if inverse else step
                        xr = xs[bx, layer]
                        yr = ys[by, layer]
                        zin = traj[layer]
                        s = 0.0
                        m = 0.0
                        a = 0.0
                        bb = 0.0
                        for j in range(k):
                            xj = np.float64(xr[j])
                            yj = np.float64(yr[j])
                            p = xj * yj
                            s += p
                            m += abs(p)
                            a += zin[j] * yj
                            bb += xj * w[j]
                        s_lo = 0.0
                        if _needs_compensation(is_float64(xs), m, xr.size):
                            s, s_lo = _grid_dot(xs, (bx, layer), ys, (by, layer), m)
                        g, gp = _factor(s, s_lo, inverse)
                        gb = g * bb
                        ga = g * a
                        gpab = gp * a * bb
                        ox = dxs[b, layer]
                        oy = dys[b, layer]
                        for j in range(k):
                            xj = np.float64(xr[j])
                            yj = np.float64(yr[j])
                            ox[j] = ga * w[j] + (gpab + sdl) * yj
                            oy[j] = gb * zin[j] + (gpab + sdl) * xj
                            w[j] += gb * yj
                    o = dv[b]
                    for j in range(k):
                        o[j] = w[j]


_logdet = jit_pair(_logdet_impl)
_scalars = jit_pair(_scalars_impl)
_dense = jit_pair(_dense_impl)
_apply = jit_pair(_apply_impl)
_apply_backward = jit_pair(_apply_backward_impl)
_chain_scalars = jit_pair(_chain_scalars_impl)
_chain = jit_pair(_chain_impl)
_chain_backward = jit_pair(_chain_backward_impl)


# --------------------------------------------------------------------------------------------
# The backend interface
# --------------------------------------------------------------------------------------------


def _index(idx: np.ndarray | None) -> np.ndarray:
    return _NO_INDEX if idx is None else idx


def _column_tile(k: int, block: int = 1) -> int:
    """Entries per tile of an operand passed as columns: 64, or fewer so that the (tile, k)
    buffer stays within 32 KiB of float64; a multiple of ``block``."""
    tile = max(1, min(64, 4096 // max(k, 1)))
    return block * max(1, tile // block)


def _column_buffers(cols: tuple[bool, ...], work: np.ndarray, tile: int, k: int,
                    dtype: np.dtype) -> np.ndarray:
    """The per-thread (tile, k) buffers of the operands passed as columns, one slot per flag of
    ``cols`` (the kernels' ``bufs[_worker, slot]``), one set per thread of the launch;
    (1, len(cols), 0, k) when every operand is passed as rows (the kernels then take whole
    chunks: _tile_span)."""
    shape = (int(work[WORKERS]), len(cols), tile, k) if any(cols) else (1, len(cols), 0, k)
    return np.empty(shape, dtype)


def logdet(x: np.ndarray, ix: np.ndarray | None, y: np.ndarray, iy: np.ndarray | None,
           B: int, *, x_cols: bool = False, y_cols: bool = False) -> np.ndarray:
    """s[b] = yᵀx, (B,) of x's dtype; x_cols / y_cols as in :func:`apply`."""
    out = np.empty(B, dtype=x.dtype)
    k = x.shape[0] if x_cols else x.shape[1]
    cols = (x_cols, y_cols)
    with Launch(B, 2 * k * _NS_PER_ELEMENT) as (variant, work):
        bufs = _column_buffers(cols, work, _column_tile(k), k, x.dtype)
        _logdet[variant](x, _index(ix), y, _index(iy), cols, bufs, out, work)
    return out


def dense(x: np.ndarray, ix: np.ndarray | None, y: np.ndarray, iy: np.ndarray | None,
          B: int) -> np.ndarray:
    """E[b] = I + φ(s_b) x yᵀ, (B, k, k) of x's dtype."""
    k = x.shape[1]
    scalars = np.empty((B, 4))
    out = np.empty((B, k, k), dtype=x.dtype)
    with Launch(B, 2 * k * _NS_PER_ELEMENT + _NS_PER_FACTOR) as (variant, work):
        _scalars[variant](x, _index(ix), y, _index(iy), scalars, work)
    row_ns = k * _NS_PER_ELEMENT  # the items are the rows of E
    with Launch(B * k, row_ns, item_out_bytes=k * out.itemsize) as (variant, work):
        _dense[variant](x, _index(ix), y, _index(iy), scalars, out, work)
    return out


def apply(x: np.ndarray, ix: np.ndarray | None, y: np.ndarray, iy: np.ndarray | None,
          v: np.ndarray, iv: np.ndarray | None, B: int, inverse: bool, *,
          x_cols: bool = False, y_cols: bool = False, v_cols: bool = False) -> np.ndarray:
    """z[b] = E v (or E⁻¹ v), (B, k) of the operands' dtype. ``x_cols`` / ``y_cols`` /
    ``v_cols``: that operand is passed as its (k, n) transpose (the entries its columns),
    read in place (CPU only)."""
    k = v.shape[0] if v_cols else v.shape[1]
    out = np.empty((B, k), dtype=x.dtype)
    entry_ns = 4 * k * _NS_PER_ELEMENT + _NS_PER_FACTOR  # x, y, v read, z written
    cols = (x_cols, y_cols, v_cols)
    with Launch(B, entry_ns, item_out_bytes=k * out.itemsize) as (variant, work):
        bufs = _column_buffers(cols, work, _column_tile(k), k, x.dtype)
        _apply[variant](x, _index(ix), y, _index(iy), v, _index(iv), cols, bufs, inverse, out,
                        work)
    return out


def apply_backward(x: np.ndarray, ix: np.ndarray | None, y: np.ndarray, iy: np.ndarray | None,
                   v: np.ndarray, iv: np.ndarray | None, dz: np.ndarray,
                   idz: np.ndarray | None, B: int, inverse: bool, *, x_cols: bool = False,
                   y_cols: bool = False, v_cols: bool = False, dz_cols: bool = False
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(dx, dy, dv) per batch entry, each (B, k); the ``*_cols`` flags as in :func:`apply`."""
    k = dz.shape[0] if dz_cols else dz.shape[1]
    dx, dy, dv = (np.empty((B, k), dtype=x.dtype) for _ in range(3))
    # x, y, v, dz read, dx, dy, dv written; φ and φ'
    entry_ns = 7 * k * _NS_PER_ELEMENT + 2 * _NS_PER_FACTOR
    cols = (x_cols, y_cols, v_cols, dz_cols)
    # (item_out_bytes per output array: each of the three gets its own huge pages)
    with Launch(B, entry_ns, item_out_bytes=k * dx.itemsize) as (variant, work):
        bufs = _column_buffers(cols, work, _column_tile(k), k, x.dtype)
        _apply_backward[variant](x, _index(ix), y, _index(iy), v, _index(iv), dz, _index(idz),
                                 cols, bufs, inverse, dx, dy, dv, work)
    return dx, dy, dv


def _chain_chunk(entry_ns: float, block: int) -> int:
    """Entries per chunk of a chain: about CHUNK_NS of work, rounded to whole blocks (so that
    no chunk ends in a partial block but the last)."""
    blocks = max(1, round(CHUNK_NS / (entry_ns * block)))
    return blocks * block


def _shared_factors(ixs: np.ndarray | None, iys: np.ndarray | None) -> bool:
    """Whether entry b's factors are (xs[m], ys[m]) with one map m for both: then each
    factor's scalars are computed once (per m) rather than once per batch entry."""
    return (ixs is not None and iys is not None
            and (ixs is iys or bool(np.array_equal(ixs, iys))))


def chain(xs: np.ndarray, ixs: np.ndarray | None, ys: np.ndarray, iys: np.ndarray | None,
          v: np.ndarray, iv: np.ndarray | None, B: int, inverse: bool, *,
          v_cols: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """(z (B, k), logdet (B,)) of the chain of factors xs, ys (n, L, k); v_cols as in
    :func:`apply`."""
    L, k = xs.shape[1], xs.shape[2]
    out = np.empty((B, k), dtype=xs.dtype)
    ld = np.empty(B)
    ts = tls = phs = _NO_TABLE
    if L > 0 and _shared_factors(ixs, iys):
        P = min(xs.shape[0], ys.shape[0])
        ts, tls, phs = np.empty((P, L)), np.empty((P, L)), np.empty((P, L))
        with Launch(P * L, 2 * k * _NS_PER_ELEMENT + _NS_PER_FACTOR) as (variant, work):
            _chain_scalars[variant](xs, ys, inverse, ts, tls, phs, work)
    if ts.shape[0] > 0:  # per layer, z updated in L1 from factor rows in L1; scalars done
        block, entry_ns = _CHAIN_BLOCK, (L + 2) * k * _NS_PER_ELEMENT
    else:  # per layer, the entry's x and y rows read, and its scalars computed
        block, entry_ns = 1, (2 * L + 2) * k * _NS_PER_ELEMENT + L * _NS_PER_FACTOR
    with Launch(B, entry_ns, chunk=_chain_chunk(entry_ns, block)) as (variant, work):
        bufs = _column_buffers((v_cols,), work, _column_tile(k, block), k, xs.dtype)
        _chain[variant](xs, _index(ixs), ys, _index(iys), v, _index(iv), (v_cols,), bufs, ts,
                        tls, phs, inverse, block, out, ld, work)
    return out, ld


def chain_backward(xs: np.ndarray, ixs: np.ndarray | None, ys: np.ndarray,
                   iys: np.ndarray | None, v: np.ndarray, iv: np.ndarray | None,
                   dz: np.ndarray, idz: np.ndarray | None, dl: np.ndarray | None, B: int,
                   inverse: bool, *, v_cols: bool = False, dz_cols: bool = False
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(dxs (B, L, k), dys (B, L, k), dv (B, k)) per batch entry; v_cols / dz_cols as in
    :func:`apply`."""
    L, k = xs.shape[1], xs.shape[2]
    dxs = np.empty((B, L, k), dtype=xs.dtype)
    dys = np.empty((B, L, k), dtype=xs.dtype)
    dv = np.empty((B, k), dtype=xs.dtype)
    dl_arg = _NO_VALUES if dl is None else dl
    # per layer: x, y read twice (the forward recomputed, then the backward), dx, dy written;
    # the scalars twice (φ forward, φ and φ' backward); v, dz read and dv written once
    entry_ns = (6 * L + 3) * k * _NS_PER_ELEMENT + 2 * L * _NS_PER_FACTOR
    with Launch(B, entry_ns) as (variant, work):
        cols = (v_cols, dz_cols)
        bufs = _column_buffers(cols, work, _column_tile(k), k, xs.dtype)
        _chain_backward[variant](xs, _index(ixs), ys, _index(iys), v, _index(iv), dz,
                                 _index(idz), cols, bufs, dl_arg, inverse, dxs, dys, dv, work)
    return dxs, dys, dv
