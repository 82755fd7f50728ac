"""Error-free transformations for the Numba kernels: exact products and sums, a compensated
dot product (:func:`grid_dot`), and the 2x2 determinant, in float64.

Where a kernel needs a result to a few ulp of its own magnitude although the plain float64
formula cancels (the rank-one family's ``e^s`` for s = yᵀx ≪ 0, docs/formulas.md
"Accuracy"), it computes the quantity that cancels with these (Rump, Ogita & Oishi,
"Accurate floating-point summation part I", SIAM J. Sci. Comput. 31, 2008; Kahan's 2x2
determinant with a fused multiply-add).

The helpers but :func:`grid_dot` are compiled **without any fast-math flag** and are not inlined at
Numba's IR level: the kernels that call them are compiled with ``reassoc``, which would let LLVM
fold ``(a + b) − a`` to ``b`` and so turn every error term here into 0. LLVM's fast-math flags sit
on each instruction, so these keep exact IEEE semantics even where LLVM inlines them into a
fast-math caller. Their exactness is tested (tests/test_exact.py) and through the kernels
(tests/rank_one/test_accuracy.py).

Importing this module compiles nothing.
"""

from __future__ import annotations

import math
from typing import Any

import numba
import numpy as np
from llvmlite import ir
from numba import types
from numba.extending import intrinsic, overload

from ._numba import inline

#: Exact IEEE arithmetic: no fast-math flag, a function of its own (see the module docstring).
#: What a fast-math kernel calls.
exact = numba.njit(cache=True, error_model="numpy")
#: The building blocks, inlined at Numba's IR level into the :data:`exact` functions that call
#: them (as separate cached functions they stayed calls, one per element). Never call these
#: from a fast-math function: inlined there, they would take its flags.
exact_inline = numba.njit(cache=True, error_model="numpy", inline="always")


@intrinsic
def fma(typingctx: Any, a: Any, b: Any, c: Any) -> Any:
    """a·b + c rounded once (LLVM ``llvm.fma.f64``: the FMA instruction, or libm's fma)."""
    if not all(isinstance(t, types.Float) for t in (a, b, c)):
        return None
    sig = types.float64(types.float64, types.float64, types.float64)

    def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
        double = ir.DoubleType()
        args = [context.cast(builder, v, t, types.float64)
                for v, t in zip(args, signature.args, strict=True)]
        fn = builder.module.declare_intrinsic(
            "llvm.fma", [double], ir.FunctionType(double, [double, double, double]))
        return builder.call(fn, args)

    return sig, codegen


def is_float64(x: Any) -> bool:
    """Whether array x holds float64, as a compile-time constant in Numba code (so that a
    float32 compilation drops the branches only float64 needs; ``x.itemsize`` is read at
    run time)."""
    return x.dtype == np.float64


@overload(is_float64, jit_options={"cache": True})
def _is_float64_overload(x):  # (no annotations: Numba compares the signatures)
    answer = isinstance(x, types.Array) and x.dtype == types.float64
    return lambda x: answer


@exact_inline
def two_sum(a: float, b: float) -> tuple[float, float]:  # pragma: no cover - compiled
    """(s, e) with s = fl(a + b) and s + e = a + b exactly (Knuth)."""
    s = a + b
    bb = s - a
    return s, (a - (s - bb)) + (b - bb)


@exact_inline
def two_prod(a: float, b: float) -> tuple[float, float]:  # pragma: no cover - compiled
    """(p, e) with p = fl(a·b) and p + e = a·b exactly (no underflow)."""
    p = a * b
    return p, fma(a, b, -p)


@exact_inline
def det2(a: float, b: float, c: float, d: float) -> float:  # pragma: no cover - compiled
    """a·d − b·c to within 1.5 ulp of its own magnitude (Kahan, with fused multiply-adds)."""
    w = b * c
    e = fma(-b, c, w)
    f = fma(a, d, -w)
    return f + e


@exact
def renormalize(a: float, b: float) -> tuple[float, float]:  # pragma: no cover - compiled
    """two_sum(a, b) as a function of its own: for fast-math callers (see the module
    docstring), which must not inline TwoSum."""
    return two_sum(a, b)


@inline
def grid_dot(xr, yr, m) -> tuple[float, float]:  # pragma: no cover - compiled
    """(hi, lo): Σ_t x_t y_t as hi + lo to about twice float64's precision, vectorised, for
    1-D x, y of any float dtype (m = Σ|x_t y_t|, finite and above 2^-900: the caller's first
    pass has it). Compiled with fastops' fast-math flags, which cannot break it:


    Each rounded product p_t = fl(x_t y_t) is split on the grid g = 2^(e − 61), m < 2^e: its
    multiple of g, q_t = trunc(p_t / g), is summed as an int64 (exact in any order: Σ|q_t| <
    2^61), and the rest r_t = p_t − q_t g (exact) plus the product's rounding error
    e_t = fma(x_t, y_t, −p_t) (exact) in float64 (|r_t + e_t| < 2g: that sum's error is below
    2^-100 m). Both sums vectorise, and fast-math cannot touch them (a conversion to integer
    and an fma are not reassociated); the final TwoSum is :func:`renormalize`, compiled
    without fast-math. Measured, one thread, against Ogita-Rump-Oishi Dot2 (scalar TwoSum
    chains, which it replaced; another job on the cores): k = 64 150 against 345 ns, k = 4096
    6.9 against 10.1 us (ExtractVector of Rump, Ogita & Oishi, "Accurate floating-point
    summation part I", SIAM J. Sci. Comput. 31, 2008, with an integer accumulator)."""
    e_m = math.frexp(m)[1]
    g = math.ldexp(1.0, e_m - 61)
    # 2^(61 − e) in two factors: one would overflow for m < 2^-962 (each factor is exact)
    inv = math.ldexp(1.0, -e_m)
    total = np.int64(0)
    rest = 0.0
    for t in range(xr.size):
        a = np.float64(xr[t])
        b = np.float64(yr[t])
        p = a * b
        q = np.int64((p * inv) * 2.305843009213694e18)  # 2^61
        total += q
        rest += (p - np.float64(q) * g) + fma(a, b, -p)
    hi = np.float64(total)
    rest += np.float64(total - np.int64(hi)) * g
    return renormalize(hi * g, rest)
