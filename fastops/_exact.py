"""Error-free transformations for the Numba kernels: exact products and sums, compensated dot
products, and the 2x2 determinant, in float64.

Where a kernel needs a result to a few ulp of its own magnitude although the plain float64
formula cancels (the rank-one family's ``e^s`` for s = yᵀx ≪ 0, docs/formulas.md
"Accuracy"), it computes the quantity that cancels with these (Ogita, Rump & Oishi,
"Accurate sum and dot product", SIAM J. Sci. Comput. 26, 2005; Kahan's 2x2 determinant with
a fused multiply-add).

The helpers are compiled **without any fast-math flag** and are not inlined at Numba's IR
level: the kernels that call them are compiled with ``reassoc``, which would let LLVM fold
``(a + b) − a`` to ``b`` and so turn every error term here into 0. LLVM's fast-math flags sit on
each instruction, so these keep exact IEEE semantics even where LLVM inlines them into a
fast-math caller. Their exactness is tested (tests/test_exact.py) and through the kernels
(tests/rank_one/test_accuracy.py).

Importing this module compiles nothing.
"""

from __future__ import annotations

from typing import Any

import numba
import numpy as np
from llvmlite import ir
from numba import types
from numba.extending import intrinsic, overload

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


@exact
def dot2(x, y) -> tuple[float, float]:  # pragma: no cover - compiled
    """(hi, lo): Σ x_j y_j as an unevaluated sum hi + lo, as accurate as if computed in twice
    float64's precision and rounded (Ogita-Rump-Oishi Dot2; x, y 1-D of any float dtype).

    Four independent accumulators (j mod 4), merged exactly at the end, so that the TwoSum
    chains overlap (measured k = 64, one thread: 148 ns per call)."""
    s0 = s1 = s2 = s3 = 0.0
    c0 = c1 = c2 = c3 = 0.0
    n = x.size
    for j in range(0, n - 3, 4):
        p, ep = two_prod(np.float64(x[j]), np.float64(y[j]))
        s0, es = two_sum(s0, p)
        c0 += ep + es
        p, ep = two_prod(np.float64(x[j + 1]), np.float64(y[j + 1]))
        s1, es = two_sum(s1, p)
        c1 += ep + es
        p, ep = two_prod(np.float64(x[j + 2]), np.float64(y[j + 2]))
        s2, es = two_sum(s2, p)
        c2 += ep + es
        p, ep = two_prod(np.float64(x[j + 3]), np.float64(y[j + 3]))
        s3, es = two_sum(s3, p)
        c3 += ep + es
    for j in range(n - n % 4, n):
        p, ep = two_prod(np.float64(x[j]), np.float64(y[j]))
        s0, es = two_sum(s0, p)
        c0 += ep + es
    s01, e01 = two_sum(s0, s1)
    s23, e23 = two_sum(s2, s3)
    s, e = two_sum(s01, s23)
    return two_sum(s, ((e + e01) + e23) + ((c0 + c1) + (c2 + c3)))


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
