"""NumPy reference of the counter-based generator: the specification of ``STREAM_VERSION`` 1.

Everything here is plain NumPy, element for element the arithmetic the Numba and CUDA kernels
do, so that the kernels can be compared with it bit for bit:

- :func:`philox4x32`: the Philox4x32-10 block function of Random123 (Salmon et al., SC'11),
  checked against Random123's known-answer vectors (kat_vectors, inline in
  tests/rng/test_streams.py).
- The counter layout: the value at flat position ``i`` of a request ``(seed, stream)`` comes
  from the Philox block ``j = i // E`` (E values per block: 4 float32 values, 2 float64 values),
  with key ``(seed mod 2^32, seed >> 32)`` and counter
  ``(j mod 2^32, j >> 32, stream mod 2^32, stream >> 32)``. Nothing else (thread count, launch
  shape, how a request is split) enters.
- Uniforms in [0, 1): float32 from the top 24 bits of one word, ``(w >> 8) * 2^-24``; float64
  from 53 bits of two words, ``((w0 >> 5) * 2^26 + (w1 >> 6)) * 2^-53`` (block words 0, 1 for
  the even position, 2, 3 for the odd one). Both are exact: the same bits on every backend.
- Normals by Box-Muller: float32 positions 4j + 2p and 4j + 2p + 1 share words (2p, 2p + 1),
  float64 positions 2j and 2j + 1 share the whole block. With ``u1 = (k1 + 1) 2^-b`` in (0, 1]
  (k1 the top b = 24 / 53 bits) and ``k2`` the next b bits, ``r = sqrt(-2 ln u1)``,
  ``theta = 2 pi k2 2^-b``, the pair is ``(r cos theta, r sin theta)``. ``ln`` and
  ``sin``/``cos`` are the polynomials below (exact range reductions through the integer bits,
  Horner evaluation with every product and sum rounded separately: no fused multiply-add), and
  every backend evaluates them in this order, so normals agree bit for bit too. Their error is
  about 1 ulp of float32 / float64; the largest float32 normal is sqrt(48 ln 2) = 5.77 (the
  24-bit u1 truncates the tail beyond it, probability 8e-9).
"""

from __future__ import annotations

import math

import numpy as np

#: Version of the stream layout above: any change of a generated value is a new version.
STREAM_VERSION = 1

PHILOX_M0 = 0xD2511F53
PHILOX_M1 = 0xCD9E8D57
PHILOX_W0 = 0x9E3779B9
PHILOX_W1 = 0xBB67AE85
ROUNDS = 10
_MASK32 = np.uint64(0xFFFFFFFF)
_U64 = np.uint64

#: Values per Philox block for each dtype (uniform and normal alike).
PER_BLOCK = {np.dtype(np.float32): 4, np.dtype(np.float64): 2}

#: Positions are int64 counts of values: offset + size must stay below this.
POSITION_LIMIT = 1 << 63


def _horner_coefficients(terms: list[float], dtype: type) -> tuple:
    return tuple(dtype(t) for t in terms)


# ln m = 2 atanh(z) = 2z + z w P(w), z = (m - 1) / (m + 1), w = z^2,
# P(w) = sum_{n>=1} 2/(2n+1) w^(n-1);
# |z| <= 0.1716 for m in [sqrt(1/2), sqrt(2)): the last term kept is below 1e-9 (float32) and
# 3e-17 (float64) relative.
LOG_COEFFS_32 = _horner_coefficients([2.0 / (2 * n + 1) for n in range(1, 6)], np.float32)
LOG_COEFFS_64 = _horner_coefficients([2.0 / (2 * n + 1) for n in range(1, 11)], np.float64)
# sin(pi f / 2) = f S(f^2), cos(pi f / 2) = C(f^2) on f in [-1/2, 1/2] (angles up to pi/4): the
# Taylor series to the terms a^9/9!, a^10/10! (float32; next terms below 2e-9) and a^17/17!,
# a^18/18! (float64; next below 1e-19).
_HALF_PI = math.pi / 2


def _sin_terms(count: int) -> list[float]:
    return [(-1) ** n * _HALF_PI ** (2 * n + 1) / math.factorial(2 * n + 1) for n in range(count)]


def _cos_terms(count: int) -> list[float]:
    return [(-1) ** n * _HALF_PI ** (2 * n) / math.factorial(2 * n) for n in range(count)]


SIN_COEFFS_32 = _horner_coefficients(_sin_terms(5), np.float32)
COS_COEFFS_32 = _horner_coefficients(_cos_terms(6), np.float32)
SIN_COEFFS_64 = _horner_coefficients(_sin_terms(9), np.float64)
COS_COEFFS_64 = _horner_coefficients(_cos_terms(10), np.float64)
# ln 2 = HI + LO with HI's trailing bits zero, so that e * HI is exact for the exponents e here.
LN2_HI_32 = np.float32(0.693359375)
LN2_LO_32 = np.float32(-2.12194440e-4)
LN2_HI_64 = np.float64(6.93147180369123816490e-01)
LN2_LO_64 = np.float64(1.90821492927058770002e-10)
SQRT2_32 = np.float32(1.41421356)
SQRT2_64 = np.float64(1.4142135623730951)


def philox4x32(counter: np.ndarray, key: np.ndarray, rounds: int = ROUNDS) -> np.ndarray:
    """Philox4x32 (``rounds`` rounds) of uint32 ``counter`` (..., 4) and ``key`` (..., 2)."""
    c = np.asarray(counter, np.uint32)
    k = np.asarray(key, np.uint32)
    shape = np.broadcast_shapes(c.shape[:-1], k.shape[:-1])
    c0, c1, c2, c3 = (np.broadcast_to(c[..., i], shape).astype(_U64) for i in range(4))
    k0, k1 = (np.broadcast_to(k[..., i], shape).astype(_U64) for i in range(2))
    m0, m1 = _U64(PHILOX_M0), _U64(PHILOX_M1)
    for _ in range(rounds):
        p0 = c0 * m0  # exact: both factors < 2^32
        p1 = c2 * m1
        c0, c1, c2, c3 = ((p1 >> _U64(32)) ^ c1 ^ k0, p1 & _MASK32,
                          (p0 >> _U64(32)) ^ c3 ^ k1, p0 & _MASK32)
        k0 = (k0 + _U64(PHILOX_W0)) & _MASK32
        k1 = (k1 + _U64(PHILOX_W1)) & _MASK32
    return np.stack([c0, c1, c2, c3], axis=-1).astype(np.uint32)


def blocks(seed: int, stream: int, first: int, count: int) -> np.ndarray:
    """The ``count`` Philox blocks ``first, first + 1, ...`` of ``(seed, stream)``: (count, 4)."""
    j = np.arange(count, dtype=_U64) + _U64(first)
    counter = np.stack([j & _MASK32, j >> _U64(32),
                        np.full(count, stream & 0xFFFFFFFF, _U64),
                        np.full(count, stream >> 32, _U64)], axis=-1).astype(np.uint32)
    key = np.array([seed & 0xFFFFFFFF, seed >> 32], np.uint32)
    return philox4x32(counter, key)


def _words_for(size: int, per_block: int, offset: int, seed: int, stream: int) -> tuple:
    """Blocks covering positions [offset, offset + size), and the block / slot of each."""
    pos = np.arange(size, dtype=np.int64) + np.int64(offset)
    first = offset // per_block
    count = (offset + size - 1) // per_block - first + 1 if size else 0
    return blocks(seed, stream, first, count), pos // per_block - first, pos % per_block


def uniform_from_words(w: np.ndarray, dtype: np.dtype, slot: np.ndarray) -> np.ndarray:
    """Uniforms in [0, 1) of the given block words ``w`` (n, 4) and slots (see the layout)."""
    if dtype == np.float32:
        bits = np.take_along_axis(w, slot[:, None].astype(np.intp), axis=1)[:, 0]
        return (bits >> np.uint32(8)).astype(np.float32) * np.float32(2.0 ** -24)
    hi = np.take_along_axis(w, 2 * slot[:, None].astype(np.intp), axis=1)[:, 0]
    lo = np.take_along_axis(w, 2 * slot[:, None].astype(np.intp) + 1, axis=1)[:, 0]
    return (((hi >> np.uint32(5)).astype(np.float64) * 67108864.0
             + (lo >> np.uint32(6)).astype(np.float64)) * 2.0 ** -53)


def _horner(w: np.ndarray, coeffs: tuple) -> np.ndarray:
    """coeffs[0] + w (coeffs[1] + w (...)), each product and sum rounded (no FMA)."""
    p = np.full_like(w, coeffs[-1])
    for c in reversed(coeffs[:-1]):
        p = p * w + c
    return p


def log_of_count(k: np.ndarray, bits: int, dtype: type) -> np.ndarray:
    """ln(k 2^-bits) for integers k in [1, 2^bits] (exact in ``dtype``)."""
    f32 = dtype == np.float32
    kf = k.astype(dtype)
    ib = kf.view(np.int32 if f32 else np.int64)
    mant_bits, bias = (23, 127) if f32 else (52, 1023)
    e = (ib >> mant_bits) - bias
    one_bits = np.int32(0x3F800000) if f32 else np.int64(0x3FF0000000000000)
    mant_mask = (1 << mant_bits) - 1
    m = ((ib & mant_mask) | one_bits).view(dtype)
    big = m > (SQRT2_32 if f32 else SQRT2_64)
    m = np.where(big, m * dtype(0.5), m)
    e = np.where(big, e + 1, e) - bits
    z = (m - dtype(1.0)) / (m + dtype(1.0))
    w = z * z
    lnm = z * dtype(2.0) + z * (w * _horner(w, LOG_COEFFS_32 if f32 else LOG_COEFFS_64))
    ef = e.astype(dtype)
    hi, lo = (LN2_HI_32, LN2_LO_32) if f32 else (LN2_HI_64, LN2_LO_64)
    return ef * hi + (ef * lo + lnm)


def sincos_of_turns(k: np.ndarray, bits: int, dtype: type) -> tuple[np.ndarray, np.ndarray]:
    """(cos, sin) of 2 pi k 2^-bits for integers k in [0, 2^bits)."""
    f32 = dtype == np.float32
    k = k.astype(np.int64)
    n = (k + (1 << (bits - 3))) >> (bits - 2)  # the nearest quarter turn (halves round up)
    f = (k - (n << (bits - 2))).astype(dtype) * dtype(2.0 ** (2 - bits))  # in [-1/2, 1/2)
    w = f * f
    s = f * _horner(w, SIN_COEFFS_32 if f32 else SIN_COEFFS_64)
    c = _horner(w, COS_COEFFS_32 if f32 else COS_COEFFS_64)
    q = n & 3
    cos_t = np.where(q == 0, c, np.where(q == 1, -s, np.where(q == 2, -c, s)))
    sin_t = np.where(q == 0, s, np.where(q == 1, c, np.where(q == 2, -s, -c)))
    return cos_t, sin_t


def normal_from_words(w: np.ndarray, dtype: np.dtype, slot: np.ndarray) -> np.ndarray:
    """Standard normals of block words ``w`` (n, 4) at the given slots (see the layout)."""
    slot = slot.astype(np.intp)
    if dtype == np.float32:
        pair = 2 * (slot // 2)
        a = np.take_along_axis(w, pair[:, None], axis=1)[:, 0]
        b = np.take_along_axis(w, pair[:, None] + 1, axis=1)[:, 0]
        k1 = (a >> np.uint32(8)).astype(np.int64) + 1
        k2 = (b >> np.uint32(8)).astype(np.int64)
        bits, t = 24, np.float32
    else:
        k1 = (w[:, 0] >> np.uint32(5)).astype(np.int64) * (1 << 26) + (w[:, 1] >> np.uint32(6)) + 1
        k2 = (w[:, 2] >> np.uint32(5)).astype(np.int64) * (1 << 26) + (w[:, 3] >> np.uint32(6))
        bits, t = 53, np.float64
    r = np.sqrt(log_of_count(k1, bits, t) * t(-2.0))
    cos_t, sin_t = sincos_of_turns(k2, bits, t)
    return np.where(slot % 2 == 0, r * cos_t, r * sin_t)


def _generate(convert, shape: tuple[int, ...], seed: int, stream: int, dtype: type,
              offset: int) -> np.ndarray:
    dt = np.dtype(dtype)
    size = math.prod(shape)
    if not size:
        return np.empty(shape, dt)
    w, j, slot = _words_for(size, PER_BLOCK[dt], offset, seed, stream)
    return convert(w[j], dt, slot).reshape(shape)


def uniform(shape: tuple[int, ...], seed: int, stream: int = 0, dtype: type = np.float32,
            offset: int = 0) -> np.ndarray:
    """Uniforms in [0, 1) at positions offset, offset + 1, ... of (seed, stream), C order."""
    return _generate(uniform_from_words, shape, seed, stream, dtype, offset)


def normal(shape: tuple[int, ...], seed: int, stream: int = 0, dtype: type = np.float32,
           offset: int = 0) -> np.ndarray:
    """Standard normals at positions offset, offset + 1, ... of (seed, stream), C order."""
    return _generate(normal_from_words, shape, seed, stream, dtype, offset)
