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
  vectorises (reassociation allowed by ``FASTMATH``, never nnan/ninf);
- the scalars (φ(s) = expm1(s)/s with libm's expm1, φ'(s) with its Taylor series for
  |s| < 1e-2, the log-space coefficient where φ overflows) are computed once per entry;
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

from .._numba import CHUNK_NS, WORKERS, Launch, inline, jit_pair, next_chunk

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
#: |s| below which φ'(s) is its Taylor series (float64 scalars; formulas.md 2.2).
_DPHI_TAYLOR_BELOW = 1e-2

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
    they read an operand given as rows (the same loops, the same bits)."""
    for j in range(vt.shape[0]):  # indexed directly: no view (an NRT incref) per row
        for i in range(nb):
            buf[i, j] = vt[j, _at(iv, b0 + i)]


@inline
def _phi(s):
    """φ(s) = expm1(s)/s, exactly 1 at s = 0 (libm expm1: < 1 ulp, fine for tiny s)."""
    return 1.0 if s == 0.0 else math.expm1(s) / s


@inline
def _dphi(s):
    """φ'(s) = (e^s − φ(s))/s; its Taylor series for |s| < 1e-2 (cancellation)."""
    if abs(s) < _DPHI_TAYLOR_BELOW:
        return 0.5 + s * (1.0 / 3.0 + s * (1.0 / 8.0 + s * (1.0 / 30.0 + s * (
            1.0 / 144.0 + s * (1.0 / 840.0)))))
    return (math.exp(s) - _phi(s)) / s


@inline
def _factor(s, inverse):
    """(g(s), g'(s)): (φ(s), φ'(s)) for E, (−φ(−s), φ'(−s)) for E⁻¹."""
    if inverse:
        return -_phi(-s), _dphi(-s)
    return _phi(s), _dphi(s)


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


@inline
def _coef(s, a, inverse):
    """g(s)·a: 0 when a == 0 (unless g is NaN), in log space where φ overflowed."""
    t = -s if inverse else s
    return _coef_t(t, _phi(t), a, -1.0 if inverse else 1.0)


# --------------------------------------------------------------------------------------------
# Kernels
# --------------------------------------------------------------------------------------------


def _logdet_impl(x, ix, y, iy, out, work):
    """out[b] = yᵀx (float64 sum, rounded once)."""
    for _worker in prange(work[WORKERS]):
        while True:
            lo, hi = next_chunk(work)
            if lo >= hi:
                break
            for b in range(lo, hi):
                xr = x[_at(ix, b)]
                yr = y[_at(iy, b)]
                s = 0.0
                for j in range(xr.size):
                    s += np.float64(xr[j]) * np.float64(yr[j])
                out[b] = s


def _phi_impl(x, ix, y, iy, out, work):
    """out[b] = φ(yᵀx) (float64)."""
    for _worker in prange(work[WORKERS]):
        while True:
            lo, hi = next_chunk(work)
            if lo >= hi:
                break
            for b in range(lo, hi):
                xr = x[_at(ix, b)]
                yr = y[_at(iy, b)]
                s = 0.0
                for j in range(xr.size):
                    s += np.float64(xr[j]) * np.float64(yr[j])
                out[b] = _phi(s)


def _dense_impl(x, ix, y, iy, phi, out, work):
    """out[b, i, :] = δ_i + φ_b x_i y (0 where x_i y_j == 0); the items are the B·k rows."""
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
                ph = phi[b]
                o = out[b, i]
                for j in range(k):
                    t = xi * np.float64(yr[j])
                    o[j] = ph * t if t != 0.0 else 0.0
                t = xi * np.float64(yr[i])
                o[i] = 1.0 + (ph * t if t != 0.0 else 0.0)


def _apply_impl(x, ix, y, iy, v, iv, v_cols, vbufs, inverse, out, work):
    """out[b] = v + g(s)(yᵀv) x: one loop for both dot products, one for the write. With
    v_cols, v is (k, n), its columns the vectors: tiles of them are gathered into rows first,
    into the thread's vbufs[_worker] (tile, k) (allocated by the caller: an allocation in the
    kernel made its first compilation 0.3 s longer, measured)."""
    for _worker in prange(work[WORKERS]):
        vbuf = vbufs[_worker]
        while True:
            lo, hi = next_chunk(work)
            if lo >= hi:
                break
            span = vbuf.shape[0] if v_cols else hi - lo
            for b0 in range(lo, hi, span):
                nb = min(span, hi - b0)
                if v_cols:
                    _gather_columns(v, iv, b0, nb, vbuf)
                for i in range(nb):
                    b = b0 + i
                    xr = x[_at(ix, b)]
                    yr = y[_at(iy, b)]
                    vr = vbuf[i] if v_cols else v[_at(iv, b)]
                    s = 0.0
                    a = 0.0
                    for j in range(xr.size):
                        yj = np.float64(yr[j])
                        s += np.float64(xr[j]) * yj
                        a += np.float64(vr[j]) * yj
                    c = _coef(s, a, inverse)
                    o = out[b]
                    for j in range(xr.size):
                        xj = np.float64(xr[j])
                        t = c * xj
                        o[j] = np.float64(vr[j]) + (t if xj != 0.0 else 0.0)


def _apply_backward_impl(x, ix, y, iy, v, iv, v_cols, vbufs, dz, idz, dz_cols, wbufs, inverse,
                         dx, dy, dv, work):
    """The VJP of one factor per entry (formulas.md 2.4 b, c); v_cols / dz_cols: that operand
    is passed as columns, gathered into vbufs / wbufs (see _apply_impl)."""
    for _worker in prange(work[WORKERS]):
        vbuf = vbufs[_worker]
        wbuf = wbufs[_worker]
        while True:
            lo, hi = next_chunk(work)
            if lo >= hi:
                break
            tile = max(vbuf.shape[0], wbuf.shape[0])
            span = tile if tile > 0 else hi - lo
            for b0 in range(lo, hi, span):
                nb = min(span, hi - b0)
                if v_cols:
                    _gather_columns(v, iv, b0, nb, vbuf)
                if dz_cols:
                    _gather_columns(dz, idz, b0, nb, wbuf)
                for i in range(nb):
                    b = b0 + i
                    xr = x[_at(ix, b)]
                    yr = y[_at(iy, b)]
                    vr = vbuf[i] if v_cols else v[_at(iv, b)]
                    wr = wbuf[i] if dz_cols else dz[_at(idz, b)]
                    s = 0.0
                    a = 0.0
                    bb = 0.0
                    for j in range(xr.size):
                        xj = np.float64(xr[j])
                        yj = np.float64(yr[j])
                        s += xj * yj
                        a += np.float64(vr[j]) * yj
                        bb += xj * np.float64(wr[j])
                    g, gp = _factor(s, inverse)
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


@inline
def _chain_step(xr, yr, z, inverse):
    """z <- E z (or E⁻¹ z) for the factor (xr, yr), z a float64 buffer; returns s."""
    s = 0.0
    a = 0.0
    for j in range(z.size):
        yj = np.float64(yr[j])
        s += np.float64(xr[j]) * yj
        a += z[j] * yj
    c = _coef(s, a, inverse)
    for j in range(z.size):
        xj = np.float64(xr[j])
        t = c * xj
        z[j] += t if xj != 0.0 else 0.0
    return s


def _chain_scalars_impl(xs, ys, inverse, ts, phs, work):
    """ts[p, l] = t = ±yᵀx of factor (p, l) (− for inverse), phs[p, l] = φ(t): the scalars of
    shared factors, computed once instead of once per batch entry. The items are the P·L
    factors."""
    L = ts.shape[1]
    k = xs.shape[2]
    for _worker in prange(work[WORKERS]):
        while True:
            lo, hi = next_chunk(work)
            if lo >= hi:
                break
            for r in range(lo, hi):
                p = r // L
                layer = r - p * L
                xr = xs[p, layer]
                yr = ys[p, layer]
                s = 0.0
                for j in range(k):
                    s += np.float64(xr[j]) * np.float64(yr[j])
                t = -s if inverse else s
                ts[p, layer] = t
                phs[p, layer] = _phi(t)


def _chain_impl(xs, ixs, ys, iys, v, iv, v_cols, vbufs, ts, phs, inverse, block, out, logdet,
                work):
    """z = the product of the L factors applied to v; logdet = ±Σ s_l.

    The threads take the entries in chunks (a multiple of ``block`` entries, see ``chain``),
    and a chunk in blocks of ``block`` entries whose vectors sit in a float64 (block, k)
    buffer. A block walks the factors layer by layer, so the block's entries are independent
    work between a dot product and the update that needs it, and one loop per entry and layer
    both writes ``z + c·x`` and accumulates the next layer's ``yᵀz``. ts, phs: the scalars of
    shared factors (``_chain_scalars_impl``, indexed like ixs, which then equals iys), or
    empty: computed per entry and layer. The loops index the arrays directly, never through
    row views: a view costs an NRT incref and decref (atomics on a refcount the threads
    share), per entry and layer more than the arithmetic.
    Where c is finite the update is ``z + c·x`` (a zero x_i adds ±0); else the select keeps
    ``c·0 = 0``. With v_cols, v is (k, n), its columns the vectors: tiles of whole blocks of
    them are gathered into rows of vbufs[_worker] first (see _apply_impl)."""
    k = out.shape[1]
    L = xs.shape[1]
    sign = -1.0 if inverse else 1.0
    table = ts.shape[0] > 0
    for _worker in prange(work[WORKERS]):
        zbuf = np.empty((block, k))
        a = np.empty(block)
        ld = np.empty(block)
        c = np.empty(block)
        vbuf = vbufs[_worker]
        while True:
            lo, hi = next_chunk(work)
            if lo >= hi:
                break
            span = vbuf.shape[0] if v_cols else hi - lo
            for t0 in range(lo, hi, span):
                nt = min(span, hi - t0)
                if v_cols:
                    _gather_columns(v, iv, t0, nt, vbuf)
                for b0 in range(t0, t0 + nt, block):
                    nb = min(block, t0 + nt - b0)
                    first = L - 1 if inverse else 0
                    # the entries' vectors: rows of v, or of the gathered tile
                    vsrc = vbuf if v_cols else v
                    for i in range(nb):
                        bv = b0 - t0 + i if v_cols else _at(iv, b0 + i)
                        by = _at(iys, b0 + i)
                        acc = 0.0
                        for j in range(k):
                            vj = np.float64(vsrc[bv, j])
                            zbuf[i, j] = vj
                            if L > 0:
                                acc += vj * np.float64(ys[by, first, j])
                        a[i] = acc
                        ld[i] = 0.0
                    for step in range(L):
                        layer = L - 1 - step if inverse else step
                        # the next layer's y (the last layer's dot product is unused)
                        nxt = layer if step == L - 1 else (layer - 1 if inverse else layer + 1)
                        for i in range(nb):
                            bx = _at(ixs, b0 + i)
                            if table:
                                t = ts[bx, layer]
                                ph = phs[bx, layer]
                            else:
                                by = _at(iys, b0 + i)
                                s = 0.0
                                for j in range(k):
                                    s += (np.float64(xs[bx, layer, j])
                                          * np.float64(ys[by, layer, j]))
                                t = sign * s
                                ph = _phi(t)
                            ld[i] += t
                            c[i] = _coef_t(t, ph, a[i], sign)
                        for i in range(nb):
                            bx = _at(ixs, b0 + i)
                            by = _at(iys, b0 + i)
                            ci = c[i]
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
                            a[i] = acc
                    for i in range(nb):
                        for j in range(k):
                            out[b0 + i, j] = zbuf[i, j]
                        logdet[b0 + i] = ld[i]


def _chain_backward_impl(xs, ixs, ys, iys, v, iv, v_cols, vbufs, dz, idz, dz_cols, wbufs, dl,
                         inverse, dxs, dys, dv, work):
    """The VJP of a chain per entry: the forward recomputed, each factor's input kept in a
    float64 (L, k) buffer, then the factors walked back (formulas.md 2.4 b-d). v_cols /
    dz_cols: that operand is passed as columns, gathered into vbufs / wbufs (see
    _apply_impl)."""
    L, k = dxs.shape[1], dxs.shape[2]
    for _worker in prange(work[WORKERS]):
        traj = np.empty((L, k))
        w = np.empty(k)
        vbuf = vbufs[_worker]
        wbuf = wbufs[_worker]
        while True:
            lo, hi = next_chunk(work)
            if lo >= hi:
                break
            tile = max(vbuf.shape[0], wbuf.shape[0])
            span = tile if tile > 0 else hi - lo
            for t0 in range(lo, hi, span):
                nt = min(span, hi - t0)
                if v_cols:
                    _gather_columns(v, iv, t0, nt, vbuf)
                if dz_cols:
                    _gather_columns(dz, idz, t0, nt, wbuf)
                for b in range(t0, t0 + nt):
                    bx = _at(ixs, b)
                    by = _at(iys, b)
                    vr = vbuf[b - t0] if v_cols else v[_at(iv, b)]
                    for j in range(k):
                        w[j] = np.float64(vr[j])
                    for step in range(L):
                        layer = L - 1 - step if inverse else step
                        traj[layer, :] = w
                        _chain_step(xs[bx, layer], ys[by, layer], w, inverse)
                    wr = wbuf[b - t0] if dz_cols else dz[_at(idz, b)]
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
                        a = 0.0
                        bb = 0.0
                        for j in range(k):
                            xj = np.float64(xr[j])
                            yj = np.float64(yr[j])
                            s += xj * yj
                            a += zin[j] * yj
                            bb += xj * w[j]
                        g, gp = _factor(s, inverse)
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
_phi_entries = jit_pair(_phi_impl)
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


def _column_buffers(cols: bool, work: np.ndarray, tile: int, k: int, dtype: np.dtype
                    ) -> np.ndarray:
    """The per-thread (tile, k) buffers of an operand passed as columns, one per thread of the
    launch; (1, 0, k) when the operand is passed as rows (the kernel's one signature)."""
    return np.empty((int(work[WORKERS]), tile, k) if cols else (1, 0, k), dtype)


def logdet(x: np.ndarray, ix: np.ndarray | None, y: np.ndarray, iy: np.ndarray | None,
           B: int) -> np.ndarray:
    """s[b] = yᵀx, (B,) of x's dtype."""
    out = np.empty(B, dtype=x.dtype)
    with Launch(B, 2 * x.shape[1] * _NS_PER_ELEMENT) as (variant, work):
        _logdet[variant](x, _index(ix), y, _index(iy), out, work)
    return out


def dense(x: np.ndarray, ix: np.ndarray | None, y: np.ndarray, iy: np.ndarray | None,
          B: int) -> np.ndarray:
    """E[b] = I + φ(s_b) x yᵀ, (B, k, k) of x's dtype."""
    k = x.shape[1]
    phi = np.empty(B)
    out = np.empty((B, k, k), dtype=x.dtype)
    with Launch(B, 2 * k * _NS_PER_ELEMENT + _NS_PER_FACTOR) as (variant, work):
        _phi_entries[variant](x, _index(ix), y, _index(iy), phi, work)
    row_ns = k * _NS_PER_ELEMENT  # the items are the rows of E
    with Launch(B * k, row_ns, item_out_bytes=k * out.itemsize) as (variant, work):
        _dense[variant](x, _index(ix), y, _index(iy), phi, out, work)
    return out


def apply(x: np.ndarray, ix: np.ndarray | None, y: np.ndarray, iy: np.ndarray | None,
          v: np.ndarray, iv: np.ndarray | None, B: int, inverse: bool, *,
          v_cols: bool = False) -> np.ndarray:
    """z[b] = E v (or E⁻¹ v), (B, k) of the operands' dtype. ``v_cols``: v is passed as its
    (k, n) transpose (the entries its columns), read in place (CPU only)."""
    out = np.empty((B, x.shape[1]), dtype=x.dtype)
    entry_ns = 4 * x.shape[1] * _NS_PER_ELEMENT + _NS_PER_FACTOR  # x, y, v read, z written
    k = x.shape[1]
    with Launch(B, entry_ns, item_out_bytes=k * out.itemsize) as (variant, work):
        vbufs = _column_buffers(v_cols, work, _column_tile(k), k, v.dtype)
        _apply[variant](x, _index(ix), y, _index(iy), v, _index(iv), v_cols, vbufs, inverse,
                        out, work)
    return out


def apply_backward(x: np.ndarray, ix: np.ndarray | None, y: np.ndarray, iy: np.ndarray | None,
                   v: np.ndarray, iv: np.ndarray | None, dz: np.ndarray,
                   idz: np.ndarray | None, B: int, inverse: bool, *, v_cols: bool = False,
                   dz_cols: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(dx, dy, dv) per batch entry, each (B, k); v_cols / dz_cols as in :func:`apply`."""
    shape = (B, x.shape[1])
    dx, dy, dv = (np.empty(shape, dtype=x.dtype) for _ in range(3))
    # x, y, v, dz read, dx, dy, dv written; φ and φ'
    entry_ns = 7 * x.shape[1] * _NS_PER_ELEMENT + 2 * _NS_PER_FACTOR
    # (item_out_bytes per output array: each of the three gets its own huge pages)
    with Launch(B, entry_ns, item_out_bytes=shape[1] * dx.itemsize) as (variant, work):
        tile, k = _column_tile(shape[1]), shape[1]
        _apply_backward[variant](x, _index(ix), y, _index(iy), v, _index(iv), v_cols,
                                 _column_buffers(v_cols, work, tile, k, v.dtype), dz,
                                 _index(idz), dz_cols,
                                 _column_buffers(dz_cols, work, tile, k, dz.dtype), inverse, dx,
                                 dy, dv, work)
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
    ts = phs = _NO_TABLE
    if L > 0 and _shared_factors(ixs, iys):
        P = min(xs.shape[0], ys.shape[0])
        ts, phs = np.empty((P, L)), np.empty((P, L))
        with Launch(P * L, 2 * k * _NS_PER_ELEMENT + _NS_PER_FACTOR) as (variant, work):
            _chain_scalars[variant](xs, ys, inverse, ts, phs, work)
    if ts.shape[0] > 0:  # per layer, z updated in L1 from factor rows in L1; scalars done
        block, entry_ns = _CHAIN_BLOCK, (L + 2) * k * _NS_PER_ELEMENT
    else:  # per layer, the entry's x and y rows read, and its scalars computed
        block, entry_ns = 1, (2 * L + 2) * k * _NS_PER_ELEMENT + L * _NS_PER_FACTOR
    with Launch(B, entry_ns, chunk=_chain_chunk(entry_ns, block)) as (variant, work):
        vbufs = _column_buffers(v_cols, work, _column_tile(k, block), k, v.dtype)
        _chain[variant](xs, _index(ixs), ys, _index(iys), v, _index(iv), v_cols, vbufs, ts, phs,
                        inverse, block, out, ld, work)
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
        tile = _column_tile(k)
        _chain_backward[variant](xs, _index(ixs), ys, _index(iys), v, _index(iv), v_cols,
                                 _column_buffers(v_cols, work, tile, k, v.dtype), dz,
                                 _index(idz), dz_cols,
                                 _column_buffers(dz_cols, work, tile, k, dz.dtype), dl_arg,
                                 inverse, dxs, dys, dv, work)
    return dxs, dys, dv
