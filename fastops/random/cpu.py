"""Numba kernels of the counter-based generator (the layout is reference.py's docstring).

The block function and the conversions are ``inline="always"`` helpers compiled without
fast-math flags (:data:`fastops._numba.IEEE`), so that every product and sum is rounded as in
the NumPy reference and the CUDA kernels: uniforms and normals are the same bits on every
backend. They are branch-free (selects, integer range reductions, polynomials), so LLVM
vectorises the loops over blocks; the fill kernels run the full blocks in dynamic chunks
(fastops._numba's scheduling model) and the at most two partial blocks at the ends (a request
that starts or ends inside a block) serially. fastops.langevin.cpu generates its noise with the
same helpers.

Importing this module compiles nothing.
"""

from __future__ import annotations

import numba
import numpy as np

from .._numba import IEEE, WORKERS, Launch, ieee_inline, jit_pair, next_chunk
from .._vecmath import _float32_as_int32, _float64_as_int64, _int32_as_float32, _int64_as_float64
from . import reference as ref

_U64 = np.uint64
_MASK32 = _U64(0xFFFFFFFF)
_S32 = _U64(32)
_M0 = _U64(ref.PHILOX_M0)
_M1 = _U64(ref.PHILOX_M1)
_W0 = _U64(ref.PHILOX_W0)
_W1 = _U64(ref.PHILOX_W1)

_F32 = np.float32
_LC32 = ref.LOG_COEFFS_32
_LC64 = ref.LOG_COEFFS_64
_SC32 = ref.SIN_COEFFS_32
_CC32 = ref.COS_COEFFS_32
_SC64 = ref.SIN_COEFFS_64
_CC64 = ref.COS_COEFFS_64
_LN2_HI_32 = ref.LN2_HI_32
_LN2_LO_32 = ref.LN2_LO_32
_LN2_HI_64 = ref.LN2_HI_64
_LN2_LO_64 = ref.LN2_LO_64
_SQRT2_32 = ref.SQRT2_32
_SQRT2_64 = ref.SQRT2_64
_ONE_32 = _F32(1.0)
_TWO_32 = _F32(2.0)
_HALF_32 = _F32(0.5)
_MINUS_TWO_32 = _F32(-2.0)
_TWO_M24 = _F32(2.0 ** -24)
_TWO_M22 = _F32(2.0 ** -22)
_TWO_M51 = 2.0 ** -51
_TWO_M53 = 2.0 ** -53


@ieee_inline
def _round(c0, c1, c2, c3, k0, k1):
    p0 = c0 * _M0
    p1 = c2 * _M1
    return (p1 >> _S32) ^ c1 ^ k0, p1 & _MASK32, (p0 >> _S32) ^ c3 ^ k1, p0 & _MASK32


@ieee_inline
def philox(c0, c1, c2, c3, k0, k1):
    """Philox4x32-10 of the counter (c0..c3) and key (k0, k1), all uint64 holding 32 bits.

    The ten rounds are written out: a loop inside the loop over blocks would keep LLVM from
    vectorising the latter (it vectorises innermost loops only).
    """
    c0, c1, c2, c3 = _round(c0, c1, c2, c3, k0, k1)
    k0, k1 = (k0 + _W0) & _MASK32, (k1 + _W1) & _MASK32
    c0, c1, c2, c3 = _round(c0, c1, c2, c3, k0, k1)
    k0, k1 = (k0 + _W0) & _MASK32, (k1 + _W1) & _MASK32
    c0, c1, c2, c3 = _round(c0, c1, c2, c3, k0, k1)
    k0, k1 = (k0 + _W0) & _MASK32, (k1 + _W1) & _MASK32
    c0, c1, c2, c3 = _round(c0, c1, c2, c3, k0, k1)
    k0, k1 = (k0 + _W0) & _MASK32, (k1 + _W1) & _MASK32
    c0, c1, c2, c3 = _round(c0, c1, c2, c3, k0, k1)
    k0, k1 = (k0 + _W0) & _MASK32, (k1 + _W1) & _MASK32
    c0, c1, c2, c3 = _round(c0, c1, c2, c3, k0, k1)
    k0, k1 = (k0 + _W0) & _MASK32, (k1 + _W1) & _MASK32
    c0, c1, c2, c3 = _round(c0, c1, c2, c3, k0, k1)
    k0, k1 = (k0 + _W0) & _MASK32, (k1 + _W1) & _MASK32
    c0, c1, c2, c3 = _round(c0, c1, c2, c3, k0, k1)
    k0, k1 = (k0 + _W0) & _MASK32, (k1 + _W1) & _MASK32
    c0, c1, c2, c3 = _round(c0, c1, c2, c3, k0, k1)
    k0, k1 = (k0 + _W0) & _MASK32, (k1 + _W1) & _MASK32
    return _round(c0, c1, c2, c3, k0, k1)


@ieee_inline
def block(j, k0, k1, s0, s1):
    """The four words of block j (uint64) of the stream (s0, s1) under the key (k0, k1)."""
    return philox(j & _MASK32, j >> _S32, s0, s1, k0, k1)


@ieee_inline
def uniform32(w):
    return _F32(np.int32(w >> _U64(8))) * _TWO_M24  # via int32: vcvtdq2ps vectorises


@ieee_inline
def uniform64(hi, lo):
    return (np.float64(hi >> _U64(5)) * 67108864.0 + np.float64(lo >> _U64(6))) * _TWO_M53


@ieee_inline
def _horner(w, coeffs):
    """coeffs[0] + w (coeffs[1] + w (...)), each product and sum rounded on its own (the
    reference's _horner); the tuple is constant, so LLVM unrolls the loop."""
    p = coeffs[-1]
    for i in range(len(coeffs) - 2, -1, -1):
        p = p * w + coeffs[i]
    return p


@ieee_inline
def _log_count32(k):
    """ln(k 2^-24) for k in [1, 2^24] (reference.log_of_count, float32)."""
    bits = _float32_as_int32(_F32(k))
    e = (bits >> 23) - 127
    m = _int32_as_float32((bits & 0x7FFFFF) | 0x3F800000)
    big = m > _SQRT2_32
    m = m * _HALF_32 if big else m
    e = (e + 1 if big else e) - 24
    z = (m - _ONE_32) / (m + _ONE_32)
    w = z * z
    p = _horner(w, _LC32)
    lnm = z * _TWO_32 + z * (w * p)
    ef = _F32(e)
    return ef * _LN2_HI_32 + (ef * _LN2_LO_32 + lnm)


@ieee_inline
def _log_count64(k):
    """ln(k 2^-53) for k in [1, 2^53] (reference.log_of_count, float64)."""
    bits = _float64_as_int64(np.float64(k))
    e = (bits >> 52) - 1023
    m = _int64_as_float64((bits & 0xFFFFFFFFFFFFF) | 0x3FF0000000000000)
    big = m > _SQRT2_64
    m = m * 0.5 if big else m
    e = (e + 1 if big else e) - 53
    z = (m - 1.0) / (m + 1.0)
    w = z * z
    p = _horner(w, _LC64)
    lnm = z * 2.0 + z * (w * p)
    ef = np.float64(e)
    return ef * _LN2_HI_64 + (ef * _LN2_LO_64 + lnm)


@ieee_inline
def _quadrant(q, c, s):
    """(cos, sin) of a quarter-turn q (0..3) plus the angle whose (cos, sin) is (c, s):
    (c, s), (-s, c), (-c, -s), (s, -c). One select each and exact sign factors: nested
    conditionals kept the loops scalar."""
    odd = (q & 1) == 1
    cos_sign = np.float32(1 - 2 * ((q ^ (q >> 1)) & 1))
    sin_sign = np.float32(1 - 2 * ((q >> 1) & 1))
    return (s if odd else c) * cos_sign, (c if odd else s) * sin_sign


@ieee_inline
def _sincos_turns32(k):
    """(cos, sin) of 2 pi k 2^-24 for k in [0, 2^24) (reference.sincos_of_turns, float32)."""
    n = (k + np.int32(1 << 21)) >> np.int32(22)
    f = _F32(k - (n << np.int32(22))) * _TWO_M22
    w = f * f
    s = _horner(w, _SC32)
    s = f * s
    c = _horner(w, _CC32)
    return _quadrant(n & 3, c, s)


@ieee_inline
def _sincos_turns64(k):
    """(cos, sin) of 2 pi k 2^-53 for k in [0, 2^53) (reference.sincos_of_turns, float64)."""
    n = (k + (1 << 50)) >> 51
    f = np.float64(k - (n << 51)) * _TWO_M51
    w = f * f
    s = _horner(w, _SC64)
    s = f * s
    c = _horner(w, _CC64)
    return _quadrant(n & 3, c, s)


@ieee_inline
def box_muller32(a, b):
    """The two float32 normals of words a (radius) and b (angle)."""
    k1 = np.int32(a >> _U64(8)) + np.int32(1)
    k2 = np.int32(b >> _U64(8))
    r = np.sqrt(_log_count32(k1) * _MINUS_TWO_32)
    c, s = _sincos_turns32(k2)
    return r * c, r * s


@ieee_inline
def box_muller64(w0, w1, w2, w3):
    """The two float64 normals of a block's four words."""
    k1 = np.int64(w0 >> _U64(5)) * 67108864 + np.int64(w1 >> _U64(6)) + 1
    k2 = np.int64(w2 >> _U64(5)) * 67108864 + np.int64(w3 >> _U64(6))
    r = np.sqrt(_log_count64(k1) * -2.0)
    c, s = _sincos_turns64(k2)
    return r * c, r * s


@ieee_inline
def normals32(j, k0, k1, s0, s1):
    """The four float32 normals of block j."""
    w0, w1, w2, w3 = block(j, k0, k1, s0, s1)
    z0, z1 = box_muller32(w0, w1)
    z2, z3 = box_muller32(w2, w3)
    return z0, z1, z2, z3


@ieee_inline
def normals64(j, k0, k1, s0, s1):
    """The two float64 normals of block j."""
    w0, w1, w2, w3 = block(j, k0, k1, s0, s1)
    return box_muller64(w0, w1, w2, w3)


@ieee_inline
def uniforms32(j, k0, k1, s0, s1):
    """The four float32 uniforms of block j."""
    w0, w1, w2, w3 = block(j, k0, k1, s0, s1)
    return uniform32(w0), uniform32(w1), uniform32(w2), uniform32(w3)


@ieee_inline
def uniforms64(j, k0, k1, s0, s1):
    """The two float64 uniforms of block j."""
    w0, w1, w2, w3 = block(j, k0, k1, s0, s1)
    return uniform64(w0, w1), uniform64(w2, w3)


# --------------------------------------------------------------------------------------------
# Fill kernels: out (1-D, contiguous) gets positions offset, offset + 1, ... of the stream.
# --------------------------------------------------------------------------------------------

# Estimated single-thread cost of one value, per (kind, dtype), for Launch (serial below
# fastops._numba.PARALLEL_MIN_NS of work, chunks of CHUNK_NS). Measured: fill() of 2^20
# values into a preallocated (cache-resident) array, fastops.threads(1), median of 15, lower
# of two runs, 2-core AVX2 development VM, 2026-12-02. A float64 uniform takes two words and
# a uint64 -> double conversion AVX2 has no instruction for, hence 3x a float32 one.
_NS_PER_VALUE = {
    ("uniform", "float32"): 0.96,
    ("uniform", "float64"): 3.0,
    ("normal", "float32"): 2.2,
    ("normal", "float64"): 7.4,
}


# Fresh output arrays (every generator call, an out-of-place Langevin step) are faulted in by
# the kernel itself, 2 MiB transparent huge pages at a time: the fills pass their output bytes
# per block to Launch, which then takes a huge page of a large output per chunk (fastops._numba's
# HUGE_PAGE_BYTES; measured here: 2^25 float32 uniforms into a fresh array on 2 threads 33.1 ms
# with 100 us chunks, 27.3 ms with one huge page per chunk, 28.6 ms under the old static split).


def full_blocks(offset: int, n: int, per_block: int) -> int:
    """How many whole blocks of ``per_block`` values stream positions offset .. offset + n - 1
    cover: the items of a fill (and of a Langevin step), the partial blocks at the ends apart."""
    return max((offset + n) // per_block - (offset + per_block - 1) // per_block, 0)


@ieee_inline
def _store4(out, t, vals):
    out[4 * t] = vals[0]
    out[4 * t + 1] = vals[1]
    out[4 * t + 2] = vals[2]
    out[4 * t + 3] = vals[3]


@ieee_inline
def _store2(out, t, vals):
    out[2 * t] = vals[0]
    out[2 * t + 1] = vals[1]


def _compiled_once(helper):
    """A separately compiled (not inlined) copy of an inline helper, for the scalar edge paths:
    inlining the Box-Muller code there too made the first compilation of a normal kernel 4.3 s
    instead of 3 s (serial, measured)."""
    return numba.njit(cache=True, error_model="numpy")(helper.py_func)


_uniforms32_call = _compiled_once(uniforms32)
_uniforms64_call = _compiled_once(uniforms64)
_normals32_call = _compiled_once(normals32)
_normals64_call = _compiled_once(normals64)


@ieee_inline
def _fill(out, offset, k0, k1, s0, s1, work, values, per_block, store, edge_values):
    """out[p] = value at stream position offset + p, ``values(j, k0, k1, s0, s1)`` giving the
    ``per_block`` values of block j (inlined into each fill kernel below).

    The full blocks (work[ITEMS] of them, :func:`full_blocks`) go in dynamic chunks over the
    threads (a prange loop's own body does not vectorise: measured 64 ms against 17 ms serial
    for 2^25 float32 uniforms); each chunk is stored through a view that starts at its first
    block, with indices ``per_block * t + lane`` of the plain loop counter t, so that LLVM
    sees non-negative, consecutive indices and vectorises (a signed index of unknown sign,
    such as one computed from the chunk counter, gets a wrap-around select per store, which
    kept the loop scalar).
    """
    n = out.size
    if n == 0:
        return
    first_full = (offset + per_block - 1) // per_block
    end_full = (offset + n) // per_block
    for _worker in numba.prange(work[WORKERS]):
        while True:
            lo, hi = next_chunk(work)
            if lo >= hi:
                break
            j0 = first_full + lo
            dst = out[j0 * per_block - offset:]
            for t in range(hi - lo):
                store(dst, t, values(_U64(j0 + t), k0, k1, s0, s1))
    # the partial blocks at the ends (at most two), element by element
    for j in (offset // per_block, (offset + n - 1) // per_block):
        if first_full <= j < end_full:
            continue
        vals = edge_values(_U64(j), k0, k1, s0, s1)
        for lane in range(per_block):
            pos = j * per_block + lane - offset
            if 0 <= pos < n:
                out[pos] = vals[lane]


# One module-level kernel per (kind, dtype), not closures of a factory: Numba's on-disk cache
# keys a closure by its pickled cells, which differ in every process for captured dispatchers,
# so closures were compiled again in every new process (measured: 6.4 s instead of 0.3 s).
def _fill_uniform32(out, offset, k0, k1, s0, s1, work):
    _fill(out, offset, k0, k1, s0, s1, work, uniforms32, 4, _store4, _uniforms32_call)


def _fill_uniform64(out, offset, k0, k1, s0, s1, work):
    _fill(out, offset, k0, k1, s0, s1, work, uniforms64, 2, _store2, _uniforms64_call)


def _fill_normal32(out, offset, k0, k1, s0, s1, work):
    _fill(out, offset, k0, k1, s0, s1, work, normals32, 4, _store4, _normals32_call)


def _fill_normal64(out, offset, k0, k1, s0, s1, work):
    _fill(out, offset, k0, k1, s0, s1, work, normals64, 2, _store2, _normals64_call)


_FILL = {
    ("uniform", "float32"): jit_pair(_fill_uniform32, IEEE),
    ("uniform", "float64"): jit_pair(_fill_uniform64, IEEE),
    ("normal", "float32"): jit_pair(_fill_normal32, IEEE),
    ("normal", "float64"): jit_pair(_fill_normal64, IEEE),
}


def _philox_impl(counter, key, out, work):
    for _worker in numba.prange(work[WORKERS]):
        while True:
            lo, hi = next_chunk(work)
            if lo >= hi:
                break
            # views from the chunk's first row, indexed by the plain loop counter: no
            # wrap-around select for a row index of unknown sign (see _fill)
            cs, ks, os = counter[lo:hi], key[lo:hi], out[lo:hi]
            for i in range(hi - lo):
                w0, w1, w2, w3 = philox(_U64(cs[i, 0]), _U64(cs[i, 1]), _U64(cs[i, 2]),
                                        _U64(cs[i, 3]), _U64(ks[i, 0]), _U64(ks[i, 1]))
                os[i, 0] = np.uint32(w0)
                os[i, 1] = np.uint32(w1)
                os[i, 2] = np.uint32(w2)
                os[i, 3] = np.uint32(w3)


# Estimated single-thread cost of one block of philox4x32 (uint32 counters and keys in, words
# out). Measured: 2^20 blocks, fastops.threads(1), median of 15, 2026-12-02 (as _NS_PER_VALUE).
_NS_PER_PHILOX_BLOCK = 16.0


_PHILOX = jit_pair(_philox_impl, IEEE)


# --------------------------------------------------------------------------------------------
# The backend interface (BACKEND_INTERFACE.md)
# --------------------------------------------------------------------------------------------


def stream_words(seed: int, stream: int) -> tuple[np.uint64, ...]:
    """(k0, k1, s0, s1): the key and the high counter words of (seed, stream)."""
    return (_U64(seed & 0xFFFFFFFF), _U64(seed >> 32), _U64(stream & 0xFFFFFFFF),
            _U64(stream >> 32))


def fill(kind: str, out: np.ndarray, seed: int, stream: int, offset: int) -> None:
    """Write positions offset, offset + 1, ... of (seed, stream) into the 1-D contiguous out."""
    key = (kind, out.dtype.name)
    per_block = 4 if key[1] == "float32" else 2
    blocks = full_blocks(offset, out.size, per_block)
    with Launch(blocks, per_block * _NS_PER_VALUE[key],
                item_out_bytes=per_block * out.itemsize) as (variant, work):
        _FILL[key][variant](out, np.int64(offset), *stream_words(seed, stream), work)


def philox4x32(counter: np.ndarray, key: np.ndarray) -> np.ndarray:
    """Philox4x32-10 of C-contiguous uint32 ``counter`` (n, 4) and ``key`` (n, 2)."""
    out = np.empty((counter.shape[0], 4), np.uint32)
    with Launch(counter.shape[0], _NS_PER_PHILOX_BLOCK) as (variant, work):
        _PHILOX[variant](counter, key, out, work)
    return out
