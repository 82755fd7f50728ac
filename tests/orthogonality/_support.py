"""Helpers of the orthogonality tests: inputs, float64 references and per-dtype comparisons.

Every comparison is against ``fastops.orthogonality.reference`` evaluated in float64 on the very
same input (cast to float64, which is exact). The results are sums over GEMMs, so they are
compared normwise per kernel: ``max |got - ref| <= rtol * scale`` with ``scale`` the magnitude
of the terms that were summed (the value of the same penalty on |entries|, or the largest
gradient entry), which is what a float32 GEMM's rounding error is proportional to.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from fastops.orthogonality import reference

F64 = np.float64
KINDS = reference.KINDS

#: normwise relative tolerance by result dtype. float32: the GEMMs' rounding, about
#: eps32 * sqrt(d) (d <= 64 here), with room; float16: one float16 rounding of each result
#: (2^-11) plus the float32 computation.
RTOL = {np.dtype(np.float64): 1e-11, np.dtype(np.float32): 2e-5, np.dtype(np.float16): 2e-3}


def result_dtype(dtype: Any) -> np.dtype:
    dt = np.dtype(dtype)
    return np.dtype(F64) if dt.kind in "biu" else np.dtype(dt.type)


def random_matrix(rng: np.random.Generator, shape: tuple[int, ...], dtype: Any) -> np.ndarray:
    """Columns of norm about 1 (the regime the penalties live in), in ``dtype``; integers in
    [-3, 3] (bool: random) so that integer input is exercised with exact values."""
    dt = np.dtype(dtype)
    if dt == np.bool_:
        return rng.random(shape) > 0.5
    if dt.kind in "iu":
        return rng.integers(-3, 4, size=shape).astype(dt)
    d = shape[-2] if len(shape) >= 2 else 1
    return (rng.standard_normal(shape) / np.sqrt(max(d, 1))).astype(dt)


def penalty_scale(W64: np.ndarray, kind: str) -> np.ndarray:
    """Per kernel, the magnitude of the terms the penalty sums: (||G||_F + sqrt(k))^2 for the
    Gram kinds (||G||_2 for spectral), so a float32 error relative to it is meaningful even
    where the penalty itself cancels to near 0."""
    k = W64.shape[-1]
    G = np.swapaxes(W64, -1, -2) @ W64
    if kind == "spectral":
        norm = np.linalg.norm(G, ord=2, axis=(-2, -1)) if k else np.zeros(G.shape[:-2])
        return (norm + 1.0) ** 2
    return (np.linalg.norm(G, axis=(-2, -1)) + np.sqrt(k)) ** 2


def grad_scale(W64: np.ndarray) -> np.ndarray:
    """Per kernel, a bound on the size of the gradient's terms: 4 ||W||_F (||WᵀW||_F + 1)."""
    G = np.swapaxes(W64, -1, -2) @ W64
    w = np.sqrt(np.sum(W64 * W64, axis=(-2, -1)))
    return 4.0 * w * (np.linalg.norm(G, axis=(-2, -1)) + 1.0)


def assert_close_per_kernel(got: Any, ref: Any, dtype: Any, scale: Any, what: str) -> None:
    """``got`` (host array of result dtype ``dtype``, shaped like ``ref``) against the float64
    ``ref``: NaN exactly where ref is NaN; elsewhere, per kernel (leading dims of ``scale``),
    ``max |got - ref| <= rtol * (scale + max |ref|)``."""
    got = np.asarray(got)
    ref = np.asarray(ref, F64)
    dtype = np.dtype(dtype)
    assert got.dtype == dtype, f"{what}: dtype {got.dtype} != {dtype}"
    assert got.shape == ref.shape, f"{what}: shape {got.shape} != {ref.shape}"
    g = got.astype(F64)
    assert np.array_equal(np.isnan(g), np.isnan(ref)), f"{what}: NaN pattern differs"
    # Results beyond the dtype's range (float16 gradients) must be inf of the right sign.
    over = np.abs(np.nan_to_num(ref, nan=0.0)) > np.finfo(dtype).max
    assert np.array_equal(g[over], np.sign(ref[over]) * np.inf), f"{what}: overflow differs"
    ref = np.where(over, 0.0, ref)
    g = np.where(over, 0.0, g)
    scale = np.asarray(scale, F64)
    lead = scale.ndim
    shape = ref.shape[:lead] + (int(np.prod(ref.shape[lead:], dtype=np.int64)),)
    err = np.nan_to_num(np.abs(g - ref), nan=0.0).reshape(shape).max(axis=-1, initial=0.0)
    size = np.nan_to_num(np.abs(ref), nan=0.0).reshape(shape).max(axis=-1, initial=0.0)
    tol = RTOL[dtype] * (np.nan_to_num(scale, nan=0.0) + size)
    bad = err > tol
    if bad.any():
        i = np.unravel_index(int(np.argmax(np.where(bad, err / np.maximum(tol, 1e-300), 0))),
                             bad.shape)
        raise AssertionError(
            f"{what}: {int(bad.sum())} of {bad.size} kernels differ (dtype {dtype}); worst at "
            f"{i}: max |err| {err[i]:.3g} > tol {tol[i]:.3g} (scale {scale[i]:.3g}, "
            f"max |ref| {size[i]:.3g})"
        )
