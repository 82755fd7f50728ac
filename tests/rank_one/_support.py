"""Helpers of the rank_one tests: inputs, float64 references and per-dtype comparisons.

Every comparison is against ``fastops.rank_one.reference`` evaluated in float64 on the very same
input (cast to float64, which is exact). The kernels compute every scalar in float64 and round
each result once, so results are compared elementwise against ``rtol`` times the largest
magnitude of the result over its batch entry (the last axis, or the last two for matrices):
cancellation inside one entry is measured against that entry's scale.
"""

from __future__ import annotations

from typing import Any

import numpy as np

F64 = np.float64

#: relative tolerance by result dtype: float64 a few hundred ulp (chains of dozens of factors
#: and the inverse's conditioning), float32 a few float32 roundings (scalars are float64),
#: float16 one float16 rounding plus the float32 computation.
RTOL = {np.dtype(np.float64): 1e-12, np.dtype(np.float32): 1e-6, np.dtype(np.float16): 2e-3}


def result_dtype(*dtypes: Any) -> np.dtype:
    out = [np.dtype(F64) if np.dtype(d).kind in "biu" else np.dtype(d) for d in dtypes]
    return np.dtype(np.result_type(*out))


def random_vectors(rng: np.random.Generator, shape: tuple[int, ...], dtype: Any,
                   scale: float = 1.0) -> np.ndarray:
    """Entries of size ~ scale / k^(1/4), so that s = yᵀx is ~ scale² (|s| of order 1: the
    regime where φ and φ' matter); integers in [-1, 1] (bool: random)."""
    dt = np.dtype(dtype)
    if dt == np.bool_:
        return rng.random(shape) > 0.5
    if dt.kind in "iu":
        return rng.integers(-1, 2, size=shape).astype(dt)
    k = shape[-1] if shape else 1
    return (scale * rng.standard_normal(shape) / max(k, 1) ** 0.25).astype(dt)


def assert_close(got: Any, ref: Any, dtype: Any, what: str, entry_axes: int = 1,
                 rtol: float | None = None) -> None:
    """``got`` (host array of result dtype ``dtype``) against the float64 ``ref``: same shape
    and dtype, NaN exactly where ref is NaN, inf of the same sign where ref overflows the dtype,
    and elsewhere ``|got - ref| <= rtol * max |ref|`` over each entry (the last
    ``entry_axes`` axes) plus ``rtol * 1e-3`` times the array's largest magnitude."""
    got = np.asarray(got)
    ref = np.asarray(ref, F64)
    dtype = np.dtype(dtype)
    assert got.dtype == dtype, f"{what}: dtype {got.dtype} != {dtype}"
    assert got.shape == ref.shape, f"{what}: shape {got.shape} != {ref.shape}"
    g = got.astype(F64)
    assert np.array_equal(np.isnan(g), np.isnan(ref)), f"{what}: NaN pattern differs"
    over = np.abs(np.nan_to_num(ref, nan=0.0, posinf=np.inf, neginf=-np.inf)) > np.finfo(dtype).max
    assert np.array_equal(g[over], np.sign(ref[over]) * np.inf), f"{what}: overflow differs"
    assert not np.isinf(g[~over & ~np.isnan(ref)]).any(), f"{what}: unexpected inf"
    fin = ~over & ~np.isnan(ref)
    g = np.where(fin, g, 0.0)
    r = np.where(fin, ref, 0.0)
    tol = RTOL[dtype] if rtol is None else rtol
    if r.size == 0:
        return
    axes = tuple(range(r.ndim - entry_axes, r.ndim)) if r.ndim else ()
    size = np.abs(r).max(axis=axes, keepdims=True) if axes else np.abs(r)
    bound = tol * (size + 1e-3 * np.abs(r).max()) + np.finfo(F64).tiny
    err = np.abs(g - r)
    bound = np.broadcast_to(bound, err.shape)
    bad = err > bound
    if bad.any():
        i = np.unravel_index(int(np.argmax(err / bound)), err.shape)
        raise AssertionError(
            f"{what}: {int(bad.sum())} of {bad.size} values differ (dtype {dtype}); worst at {i}: "
            f"got {g[i]!r}, ref {r[i]!r}, |err| {err[i]:.3g} > bound {bound[i]:.3g}"
        )
