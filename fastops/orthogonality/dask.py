"""Orthogonality penalties of dask arrays (the mechanism: fastops._dask).

``orthogonality_penalty`` and ``orthogonality_penalty_and_grad`` take ``W`` (..., d, k) as a
``dask.array.Array`` (NumPy or CuPy chunks) and return lazy dask arrays:

- ``d`` and ``k`` whole in every chunk (a stack of kernels chunked along its batch dims): one
  in-memory call per block (``dask.array.apply_gufunc``, signature ``(d,k)->(),(d,k)``);
- ``W`` chunked along the long side (a tall kernel chunked along d, or a wide one along k):
  the Gram of the small side as a tree sum of the blocks' Grams, accumulated in float64
  (``WᵀW = Σ_c W_cᵀ W_c`` for d >= k, ``WWᵀ = Σ_c W_c W_cᵀ`` for d < k), the penalty from it
  (a min(d, k)² matrix per kernel), and the gradient blockwise, one GEMM per block
  (``4 W_c A`` or ``4 A W_c``, formulas.md). The small side is rechunked to one chunk when it
  is not already (it is the side the Gram is formed on; at most min(d, k) wide).

The special values are the in-memory call's: a NaN or inf in a kernel gives NaN for that
kernel only; an empty kernel the degenerate values (via the in-memory call on the block).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .._dask import as_dask, meta_like, namespace
from .reference import KINDS

__all__ = ["orthogonality_penalties_and_grads", "orthogonality_penalty",
           "orthogonality_penalty_and_grad"]

_F64 = np.float64


def _inmemory() -> Any:
    from .. import orthogonality

    return orthogonality


def _swap(a: Any) -> Any:
    return a.swapaxes(-1, -2)


def _penalty_of_gram(kind: str, small: bool, d: int, k: int) -> Any:
    """A function of a float64 Gram block (..., s, s) (s the small side) -> (penalty (...),
    A (..., s, s)): the gradient is 4 W A (d >= k) or 4 A W (d < k), except offdiag's small
    side, whose correction ``- 4 W diag(||w_j||²)`` the caller adds (``sq4``: Σ_j ||w_j||⁴)."""

    def penalty(G: Any, sq4: Any = None) -> tuple[Any, Any]:
        xp = namespace(G)
        eye = xp.eye(G.shape[-1], dtype=_F64)
        finite = xp.isfinite(G).all(axis=(-2, -1))
        if kind == "frobenius":
            A = G - eye
            value = (A * A).sum(axis=(-2, -1)) + (k - d if small else 0)
        elif kind == "offdiag":
            if small:  # ||WᵀW ⊙ (1 − I)||² = ||WWᵀ||² − Σ_j ||w_j||⁴
                A = G
                value = (G * G).sum(axis=(-2, -1)) - sq4
            else:
                A = G * (1.0 - eye)
                value = (A * A).sum(axis=(-2, -1))
        else:  # spectral: λ* of the largest magnitude, as _spectral_penalty
            evals, evecs = xp.linalg.eigh(xp.where(finite[..., None, None], G, 0.0))
            lam_top = evals[..., -1] - 1.0
            lam_bottom = xp.full_like(lam_top, -1.0) if small else evals[..., 0] - 1.0
            top = xp.abs(lam_top) >= xp.abs(lam_bottom)
            lam = xp.where(finite, xp.where(top, lam_top, lam_bottom), np.nan)
            value = lam * lam
            v = evecs[..., -1] if small else xp.where(top[..., None], evecs[..., -1],
                                                      evecs[..., 0])
            coef = xp.where(top | ~finite, lam, 0.0) if small else lam
            A = coef[..., None, None] * v[..., :, None] * v[..., None, :]
        value = xp.where(finite, value, np.nan)
        return value, xp.where(finite[..., None, None], A, np.nan)

    return penalty


def _check(func: str, W: Any, kind: str) -> tuple[Any, np.dtype]:
    """W as a dask array and the result dtype; the in-memory call's errors (on a sample)."""
    W = as_dask(W)
    got = getattr(_inmemory(), func)(np.ones((1,) * W.ndim, W.dtype), kind)
    return W, np.asarray(got[0] if isinstance(got, tuple) else got).dtype


def _gram_path(W: Any, kind: str, with_grad: bool, dtype: np.dtype) -> Any:
    import dask.array as da

    d, k = W.shape[-2:]
    small = d < k
    short_axis = W.ndim - 2 if small else W.ndim - 1  # the side the Gram is formed on
    if W.numblocks[short_axis] > 1:
        W = W.rechunk({short_axis: -1})
    long_axis = W.ndim - 1 if small else W.ndim - 2
    work = np.dtype(np.float32) if W.dtype == np.float16 else (
        W.dtype if W.dtype.kind == "f" else np.dtype(_F64))
    W = W.astype(work)
    s = min(d, k)

    def block_gram(w: Any) -> Any:
        g = (w @ _swap(w)) if small else (_swap(w) @ w)
        g = g.astype(_F64)
        return g[..., :, None, :] if small else g[..., None, :, :]

    batch_chunks = W.chunks[:-2]
    nblocks = W.numblocks[long_axis]
    chunks = batch_chunks + (((s,), (1,) * nblocks) if small else ((1,) * nblocks, (s,))) \
        + ((s,),)
    grams = da.map_blocks(block_gram, W, chunks=chunks, new_axis=W.ndim, dtype=_F64,
                          meta=meta_like(W, W.ndim + 1, _F64))
    G = grams.sum(axis=W.ndim - 1 if small else W.ndim - 2)  # (..., s, s), a tree sum
    sq = (W.astype(_F64) ** 2).sum(axis=-2) if (kind == "offdiag" and small) else None
    penalty = _penalty_of_gram(kind, small, d, k)
    args = (G,) if sq is None else (G, (sq * sq).sum(axis=-1))
    sig = "(s,s)->(),(s,s)" if sq is None else "(s,s),()->(),(s,s)"
    value, A = da.apply_gufunc(penalty, sig, *args, output_dtypes=(_F64, _F64))
    value = value.astype(dtype)
    if not with_grad:
        return value, None
    A = A.astype(work)
    grad = 4.0 * (da.matmul(A, W) if small else da.matmul(W, A))
    if sq is not None:  # 4 (WWᵀ W − W diag(WᵀW))
        grad = grad - 4.0 * W * sq.astype(work)[..., None, :]
    return value, grad.astype(dtype)


def _penalty(func: str, W: Any, kind: str, with_grad: bool, backend: str | None) -> Any:
    import dask.array as da

    if backend not in (None, "numba", "cupy"):
        raise ValueError(f"{func}: backend must be None for dask arrays (each chunk's array "
                         f"type picks it), got {backend!r}")
    W, dtype = _check(func, W, kind)
    if kind not in KINDS:  # pragma: no cover - the sample call has raised
        raise ValueError(f"{func}: kind must be one of {KINDS}, got {kind!r}")
    whole = W.numblocks[-2] == 1 and W.numblocks[-1] == 1
    if whole or 0 in W.shape[-2:]:
        W = W.rechunk({W.ndim - 2: -1, W.ndim - 1: -1}) if not whole else W
        fn = _inmemory().orthogonality_penalty_and_grad
        if not with_grad:
            value = da.apply_gufunc(lambda w: fn(w, kind)[0], "(d,k)->()", W,
                                    output_dtypes=dtype)
            return value, None
        return da.apply_gufunc(lambda w: fn(w, kind), "(d,k)->(),(d,k)", W,
                               output_dtypes=(dtype, dtype))
    return _gram_path(W, kind, with_grad, dtype)


def orthogonality_penalty(W: Any, kind: str = "frobenius", *, backend: str | None = None) -> Any:
    """:func:`fastops.orthogonality_penalty` of a dask array (lazy)."""
    return _penalty("orthogonality_penalty", W, kind, False, backend)[0]


def orthogonality_penalty_and_grad(W: Any, kind: str = "frobenius", *,
                                   backend: str | None = None) -> tuple[Any, Any]:
    """:func:`fastops.orthogonality_penalty_and_grad` of a dask array (lazy)."""
    return _penalty("orthogonality_penalty_and_grad", W, kind, True, backend)


def orthogonality_penalties_and_grads(Ws: Any, kind: str = "frobenius", *, weights: Any = None,
                                      backend: str | None = None) -> tuple[Any, list]:
    """:func:`fastops.orthogonality_penalties_and_grads` with dask kernels among ``Ws``
    (lazy): each kernel as :func:`orthogonality_penalty_and_grad` (in-memory ones become
    one-chunk dask arrays), the total a dask scalar ``Σ_i weights[i] · sum(penalty_i)``."""
    import dask.array as da

    func = "orthogonality_penalties_and_grads"
    if backend not in (None, "numba", "cupy"):
        raise ValueError(f"{func}: backend must be None for dask arrays (each chunk's array "
                         f"type picks it), got {backend!r}")
    if not isinstance(Ws, list | tuple):
        raise TypeError(f"{func}: Ws must be a list or tuple of arrays; got {type(Ws).__name__}")
    arrays = [as_dask(W) for W in Ws]
    # the in-memory call's errors (each kernel's dtype and rank, kind, weights) on samples
    total, _ = _inmemory().orthogonality_penalties_and_grads(
        [np.ones((1,) * W.ndim, W.dtype) for W in arrays], kind, weights=weights)
    ws = [1.0] * len(arrays) if weights is None else [float(w) for w in weights]
    parts, grads = [], []
    for W, w in zip(arrays, ws, strict=True):
        value, grad = _penalty("orthogonality_penalty_and_grad", W, kind, True, None)
        parts.append(w * value.astype(_F64).sum())
        grads.append(w * grad)
    dtype = np.asarray(total).dtype
    summed = da.stack(parts).sum() if parts else da.zeros((), dtype=_F64)
    return summed.astype(dtype), grads
