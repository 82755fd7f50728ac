"""Vectorisable elementary functions for Numba kernels: exp, log1p, tanh, maxnum, and the
float16 <-> float32 conversions.

pip's llvmlite has no SVML, so ``math.exp`` / ``np.exp`` / ``math.tanh`` inside a Numba loop are
scalar libm calls that keep the loop from vectorising. The functions here are branch-free
(range reduction, a polynomial, scaling through the exponent bits; selects instead of branches),
so LLVM vectorises the loops that call them. Measured on the 2-core development machine: a
float64 logsumexp over (4096, 4096) takes 10.8 ms with ``fast_exp`` against 64 ms for
torch.logsumexp. Their accuracy is proven by the families' tests against float64 references.

Importing this module compiles nothing.
"""

from __future__ import annotations

import numba
import numpy as np
from llvmlite import ir
from numba import types
from numba.extending import intrinsic, overload

from ._numba import FASTMATH


@intrinsic
def _int64_as_float64(typingctx, value):
    """Reinterpret the bits of an int64 as a float64 (no conversion)."""
    sig = types.float64(types.int64)

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.DoubleType())

    return sig, codegen


@intrinsic
def _int32_as_float32(typingctx, value):
    """Reinterpret the bits of an int32 as a float32 (no conversion)."""
    sig = types.float32(types.int32)

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.FloatType())

    return sig, codegen


@intrinsic
def half_to_float32(typingctx, bits):
    """The float16 whose bits are the uint16 ``bits``, as a float32 (LLVM ``fpext``: exact;
    signalling NaNs come back quiet, where NumPy keeps their bits).

    x86 CPUs with F16C (all since 2012) and AArch64 convert 8 or 16 lanes per instruction
    (vcvtph2ps); NumPy's scalar loop took 72 ms for 2^24 elements on the 2-core machine, this
    8.2 ms (2 threads). fastops._relayout checks once that the conversion works where it runs.
    """
    sig = types.float32(types.uint16)

    def codegen(context, builder, signature, args):
        return builder.fpext(builder.bitcast(args[0], ir.HalfType()), ir.FloatType())

    return sig, codegen


@intrinsic
def float32_to_half(typingctx, value):
    """The bits (uint16) of ``value`` rounded to float16, to nearest even as NumPy rounds
    (LLVM ``fptrunc``, vcvtps2ph): 7.5 ms for 2^24 elements against NumPy's 118 ms, and 542 ms
    when many results are float16 subnormals (softmax outputs), which NumPy converts slowly."""
    sig = types.uint16(types.float32)

    def codegen(context, builder, signature, args):
        return builder.bitcast(builder.fptrunc(args[0], ir.HalfType()), ir.IntType(16))

    return sig, codegen


# float64 constants: ln 2 split in a high part with trailing zero bits (so k * _LN2_HI_64 is exact
# for |k| < 2^11) and the rest (fdlibm's split).
_LOG2E_64 = 1.4426950408889634
_LN2_HI_64 = 6.93147180369123816490e-01
_LN2_LO_64 = 1.90821492927058770002e-10
# Below this exp underflows into subnormals; those contributions are flushed to 0 (relative to
# the row's dominant term 1 they are below 1e-308, far under float64 resolution).
_EXP_MIN_64 = -708.0
_EXP_MAX_64 = 709.782712893384

# float32 constants (Cephes expf: same split of ln 2, degree-6 polynomial, < 1 ulp in float32).
_LOG2E_32 = np.float32(1.44269504088896341)
_LN2_HI_32 = np.float32(0.693359375)
_LN2_LO_32 = np.float32(-2.12194440e-4)
_EXP_MIN_32 = np.float32(-87.3365)
_EXP_MAX_32 = np.float32(88.7228)
_P0_32 = np.float32(1.9875691500e-4)
_P1_32 = np.float32(1.3981999507e-3)
_P2_32 = np.float32(8.3334519073e-3)
_P3_32 = np.float32(4.1665795894e-2)
_P4_32 = np.float32(1.6666665459e-1)
_P5_32 = np.float32(5.0000001201e-1)
_ONE_32 = np.float32(1.0)
_HALF_32 = np.float32(0.5)
_ZERO_32 = np.float32(0.0)
_INF_32 = np.float32(np.inf)


@numba.njit(fastmath=FASTMATH, cache=True, error_model="numpy", inline="always")
def _expm1_taylor(r):
    """r + r^2/2! + ... + r^13/13! (Horner over 1/k!): exp's series on |r| <= ln2/2, less 1."""
    p = 1.0 / 6227020800.0
    p = p * r + 1.0 / 479001600.0
    p = p * r + 1.0 / 39916800.0
    p = p * r + 1.0 / 3628800.0
    p = p * r + 1.0 / 362880.0
    p = p * r + 1.0 / 40320.0
    p = p * r + 1.0 / 5040.0
    p = p * r + 1.0 / 720.0
    p = p * r + 1.0 / 120.0
    p = p * r + 1.0 / 24.0
    p = p * r + 1.0 / 6.0
    p = p * r + 0.5
    p = p * r + 1.0
    return r * p


def _exp64(x):
    """exp(x) for float64, vectorisable: < 1 ulp for |x| <= 708, exact 0 / inf beyond."""
    xc = min(max(x, _EXP_MIN_64), _EXP_MAX_64)
    kf = np.floor(xc * _LOG2E_64 + 0.5)
    r = (xc - kf * _LN2_HI_64) - kf * _LN2_LO_64
    # Taylor series to r^13 on |r| <= ln2/2: truncation error 2.6e-17 relative.
    p = 1.0 + _expm1_taylor(r)
    # 2^k as two factors so that k = 1024 (x near the overflow limit) stays representable.
    k = np.int64(kf)
    half = k >> 1
    scale_a = _int64_as_float64((half + 1023) << 52)
    scale_b = _int64_as_float64((k - half + 1023) << 52)
    res = p * scale_a * scale_b
    res = res if x >= _EXP_MIN_64 else 0.0
    res = res if x <= _EXP_MAX_64 else np.inf
    return res if x == x else x


def _exp32(x):
    """exp(x) for float32, vectorisable (Cephes expf polynomial), exact 0 / inf out of range."""
    xc = min(max(x, _EXP_MIN_32), _EXP_MAX_32)
    kf = np.floor(xc * _LOG2E_32 + _HALF_32)
    r = (xc - kf * _LN2_HI_32) - kf * _LN2_LO_32
    z = r * r
    p = ((((_P0_32 * r + _P1_32) * r + _P2_32) * r + _P3_32) * r + _P4_32) * r + _P5_32
    p = p * z + r + _ONE_32
    k = np.int32(kf)
    half = k >> 1
    scale_a = _int32_as_float32((half + 127) << 23)
    scale_b = _int32_as_float32((k - half + 127) << 23)
    res = p * scale_a * scale_b
    res = res if x >= _EXP_MIN_32 else _ZERO_32
    res = res if x <= _EXP_MAX_32 else _INF_32
    return res if x == x else x


@intrinsic
def _float32_as_int32(typingctx, value):
    """Reinterpret the bits of a float32 as an int32 (no conversion)."""
    sig = types.int32(types.float32)

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.IntType(32))

    return sig, codegen


@intrinsic
def _float64_as_int64(typingctx, value):
    """Reinterpret the bits of a float64 as an int64 (no conversion)."""
    sig = types.int64(types.float64)

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.IntType(64))

    return sig, codegen


_SQRT2 = 1.4142135623730951
_LN2 = 0.6931471805599453
_MANTISSA_MASK = (1 << 52) - 1
_EXPONENT_ONE = 1023 << 52


@numba.njit(fastmath=FASTMATH, cache=True, error_model="numpy")
def fast_log1p(t):
    """log1p(t) for float64 t >= -1, vectorisable (the per-row finish of the short-row path).

    log(u) of u = 1 + t from its exponent and an atanh series of the mantissa (|s| <= 0.172,
    11 terms: truncation below 1e-17), then Goldberg's correction ``log(u) * t / (u - 1)``,
    which restores the bits of t lost in rounding 1 + t (a few ulp overall). t = -1 gives -inf,
    +inf gives +inf, NaN gives NaN.
    """
    u = 1.0 + t
    bits = _float64_as_int64(u)
    e = np.float64((bits >> 52) - 1023)
    f = _int64_as_float64((bits & _MANTISSA_MASK) | _EXPONENT_ONE)  # mantissa in [1, 2)
    big = f > _SQRT2
    f = f * 0.5 if big else f
    e = e + 1.0 if big else e
    sr = (f - 1.0) / (f + 1.0)
    z = sr * sr
    series = 1.0 / 23.0
    series = series * z + 1.0 / 21.0
    series = series * z + 1.0 / 19.0
    series = series * z + 1.0 / 17.0
    series = series * z + 1.0 / 15.0
    series = series * z + 1.0 / 13.0
    series = series * z + 1.0 / 11.0
    series = series * z + 1.0 / 9.0
    series = series * z + 1.0 / 7.0
    series = series * z + 1.0 / 5.0
    series = series * z + 1.0 / 3.0
    series = series * z + 1.0
    log_u = e * _LN2 + 2.0 * sr * series
    res = log_u * (t / (u - 1.0)) if u != 1.0 else t
    res = res if u > 0.0 else -np.inf
    res = res if u < np.inf else u
    return res if t == t else t


@intrinsic
def maxnum(typingctx, a, b):
    """llvm.maxnum: the larger of a and b, ignoring a NaN operand.

    A ``v if v > m else m`` reduction does not vectorise without ``nnan`` (measured: 0.56 ns
    per element, scalar); llvm.maxnum does (0.05 ns per float32 element, AVX-512), and NaNs are
    accounted for separately by the exp sums.
    """
    sig = a(a, b)

    def codegen(context, builder, signature, args):
        ty = args[0].type
        fn = builder.module.declare_intrinsic("llvm.maxnum", [ty], ir.FunctionType(ty, [ty, ty]))
        return builder.call(fn, args)

    return sig, codegen


# float16 storage in CPU kernels. Numba has no float16 arithmetic on the CPU, so float16 arrays
# reach the kernels as their uint16 bits (``arr.view(np.uint16)``) and are computed in
# float32: ``work_type(arr)`` is the type a kernel computes in, ``load(arr, i)`` reads element
# i in it, ``store(arr, i, value)`` writes it back in the array's own storage. For any other
# dtype they are the plain type, read and write, so one kernel body serves every dtype, and
# the conversion happens in registers (vcvtph2ps / vcvtps2ph, 16 lanes): no float32 copy of
# the input, no pass to convert the output.


def work_type(arr):  # pragma: no cover - replaced by the overload inside jitted code
    return np.float32 if arr.dtype == np.uint16 else arr.dtype.type


@overload(work_type, jit_options={"fastmath": FASTMATH})
def _work_type_overload(arr):
    if arr.dtype == types.uint16:
        return lambda arr: np.float32
    return lambda arr: arr.dtype.type


@intrinsic
def widen(typingctx, value):
    """``value`` read from a kernel's array: float16 bits (uint16) as float32, anything else
    as it is (no code)."""
    if value == types.uint16:
        def codegen(context, builder, signature, args):
            return builder.fpext(builder.bitcast(args[0], ir.HalfType()), ir.FloatType())

        return types.float32(types.uint16), codegen

    def same(context, builder, signature, args):
        return args[0]

    return value(value), same


@intrinsic
def narrow(typingctx, value, like):
    """``value`` to be written into the array ``like``: for float16 bits (uint16) rounded to
    float16 (through float32, as the float32 kernels' results always were), else as it is (the
    assignment converts)."""
    if like.dtype == types.uint16:
        def codegen(context, builder, signature, args):
            v = args[0]
            if signature.args[0] != types.float32:
                v = context.cast(builder, v, signature.args[0], types.float32)
            half = builder.fptrunc(v, ir.HalfType())
            return builder.bitcast(half, ir.IntType(16))

        return types.uint16(value, like), codegen

    def same(context, builder, signature, args):
        return args[0]

    return value(value, like), same


# IR-inlined (as fastops._numba.ieee_inline): an overload with inline="always" doing the same
# compiled _write_softmax_columns' stores wrong under Numba 0.68.1, and without IR inlining the
# calls stopped the loops from vectorising (float32 softmax over axis 0 of (4096, 4096): 30 ->
# 90 ms; 2026-12-03). Intrinsics inside plain inlined functions do neither.
@numba.njit(fastmath=FASTMATH, cache=True, error_model="numpy", inline="always")
def load(arr, i):
    return widen(arr[i])


@numba.njit(fastmath=FASTMATH, cache=True, error_model="numpy", inline="always")
def store(arr, i, value):
    arr[i] = narrow(value, arr)


def fast_exp(x):  # pragma: no cover - replaced by the overload inside jitted code
    """exp that vectorises inside Numba loops (float32 or float64); see _exp64 / _exp32."""
    return np.exp(x)


@overload(fast_exp, jit_options={"fastmath": FASTMATH})
def _fast_exp_overload(x):
    if x == types.float32:
        return _exp32
    if x == types.float64:
        return _exp64
    return None



# expm1 of y in (-ln2/2, 0] comes from its Taylor series (to y^13: the first omitted term,
# 0.347^14 / 14!, is 4e-18 relative), below from exp(y) - 1, where e^y <= 0.71 cancels at most
# 1.8 bits of 1 - e^y.
_EXPM1_SERIES_MIN = -0.34657359027997264


@numba.njit(fastmath=FASTMATH, cache=True, error_model="numpy", inline="always")
def _expm1_nonpositive(y):
    """expm1(y) for float64 y <= 0 (or -inf), vectorisable, within a few ulp."""
    series = _expm1_taylor(y)
    far = fast_exp(y) - 1.0
    return series if y > _EXPM1_SERIES_MIN else far


# inline="always": inlined in Numba's IR, so that the caller's loop vectorises (as a separately
# compiled function LLVM kept it a scalar call: 15 ns per element instead of about 1).
@numba.njit(fastmath=FASTMATH, cache=True, error_model="numpy", inline="always")
def fast_tanh(x):
    """tanh of a float64, vectorisable (no libm call): ``-m / (2 + m)`` with
    ``m = expm1(-2|x|)`` and the sign of x; a few ulp everywhere, exactly +-1 for |x| > 19.1,
    tanh(+-0) = +-0, +-inf -> +-1, NaN -> NaN."""
    m = _expm1_nonpositive(-2.0 * abs(x))
    t = -m / (2.0 + m)
    return t if x > 0.0 else (-t if x < 0.0 else x)  # x itself for +-0 and NaN
