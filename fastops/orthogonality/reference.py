"""NumPy reference of the orthogonality family: the executable specification.

A direct transcription of docs/formulas.md ("orthogonality", and its spectral norm),
clear rather than fast: it builds the k x k Gram WᵀW whatever the shape (the kernels work from
the smaller side), computes in float64 whatever the input dtype and casts the results to the
result dtype (float64 for bool/int input, else the input's). Validation is shared with the
public API (``fastops.orthogonality``), so the reference raises exactly the same errors.

Shapes: W is ``(..., d, k)``, its k columns are the filters of a dense layer ``y = x W``;
leading dims are a batch of same-shaped kernels. A conv kernel ``(out, in, kh, kw)`` is passed
as its ``(in·kh·kw, out)`` view. Y (SOM) is ``(..., b, k)``: b rows of a batch of the layer's
pre-activation outputs.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from .. import _checks

KINDS: tuple[str, ...] = ("frobenius", "offdiag", "spectral")
_F64 = np.float64


def _matrix(func: str, name: str, value: Any, what: str = "(..., d, k)") -> tuple[Any, Any]:
    """``value`` as a float64 array with at least two dimensions, and its result dtype."""
    arr = np.asarray(value)
    out_dtype = _checks.result_dtype(func, name, arr.dtype)
    _checks.matrix_stack(func, name, arr, what)
    return arr.astype(_F64), out_dtype


def _finish(value: np.ndarray, dtype: np.dtype) -> Any:
    """Cast to the result dtype; a NumPy scalar for 0-d results (as NumPy reductions)."""
    out = np.asarray(value).astype(dtype)
    return out[()] if out.ndim == 0 else out


def _mT(a: np.ndarray) -> np.ndarray:
    return np.swapaxes(a, -1, -2)


def _spectral(W: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(λ*, v) of A = WᵀW − I: the eigenvalue of largest magnitude (the largest one on a tie)
    and a unit eigenvector. Kernels with a non-finite Gram get λ* = NaN."""
    k = W.shape[-1]
    A = _mT(W) @ W - np.eye(k)
    bad = ~np.isfinite(A).all(axis=(-2, -1))
    if k == 0:
        return np.zeros(A.shape[:-2]), np.zeros(A.shape[:-1])
    evals, evecs = np.linalg.eigh(np.where(bad[..., None, None], 0.0, A))
    top = np.abs(evals[..., -1]) >= np.abs(evals[..., 0])
    lam = np.where(top, evals[..., -1], evals[..., 0])
    v = np.where(top[..., None], evecs[..., :, -1], evecs[..., :, 0])
    return np.where(bad, np.nan, lam), v


def _penalty(W: np.ndarray, kind: str, with_grad: bool) -> tuple[np.ndarray, Any]:
    """Value (and gradient) of penalty ``kind`` for float64 W, from the k x k Gram."""
    k = W.shape[-1]
    if kind == "spectral":
        lam, v = _spectral(W)
        grad = None
        if with_grad:
            Wv = W @ v[..., :, None]
            grad = 4.0 * lam[..., None, None] * Wv * v[..., None, :]
        return lam * lam, grad
    G = _mT(W) @ W
    if kind == "frobenius":
        A = G - np.eye(k)
    else:  # offdiag: BigGAN's ||WᵀW ⊙ (1 − I)||², the −I vanishes under the mask (a select,
        # not a product with the mask: an inf on the diagonal must not become inf * 0 = NaN)
        A = np.where(np.eye(k, dtype=bool), 0.0, G)
    value = np.sum(A * A, axis=(-2, -1))
    return value, (4.0 * (W @ A) if with_grad else None)


def orthogonality_penalty(W: Any, kind: str = "frobenius") -> Any:
    """Reference of :func:`fastops.orthogonality_penalty`."""
    func = "orthogonality_penalty"
    W64, dtype = _matrix(func, "W", W)
    _checks.one_of(func, "kind", kind, KINDS)
    return _finish(_penalty(W64, kind, False)[0], dtype)


def orthogonality_penalty_and_grad(W: Any, kind: str = "frobenius") -> tuple[Any, Any]:
    """Reference of :func:`fastops.orthogonality_penalty_and_grad`."""
    func = "orthogonality_penalty_and_grad"
    W64, dtype = _matrix(func, "W", W)
    _checks.one_of(func, "kind", kind, KINDS)
    value, grad = _penalty(W64, kind, True)
    return _finish(value, dtype), grad.astype(dtype)


def kernel_list(func: str, Ws: Any, weights: Any, xp: Any = np) -> tuple[list, list[float]]:
    """Validate the list API's arguments: ``Ws`` a list or tuple of arrays with at least two
    dimensions, ``weights`` None or one finite real per kernel. Returns the arrays (as arrays of
    the module ``xp``) and the weights as floats."""
    if not isinstance(Ws, Sequence) or isinstance(Ws, str | bytes):
        raise TypeError(f"{func}: Ws must be a list or tuple of arrays; got {type(Ws).__name__}")
    arrays = []
    for i, W in enumerate(Ws):
        arr = _checks.real_array(func, f"Ws[{i}]", W, xp)
        _checks.matrix_stack(func, f"Ws[{i}]", arr)
        arrays.append(arr)
    if weights is None:
        return arrays, [1.0] * len(arrays)
    if isinstance(weights, str | bytes) or not hasattr(weights, "__len__"):
        raise TypeError(f"{func}: weights must be None or a sequence of numbers; got {weights!r}")
    if len(weights) != len(arrays):
        raise ValueError(
            f"{func}: weights must have one number per kernel ({len(arrays)}); "
            f"got {len(weights)}"
        )
    return arrays, [_checks.real_number(func, f"weights[{i}]", w) for i, w in enumerate(weights)]


def orthogonality_penalties_and_grads(Ws: Any, kind: str = "frobenius", *,
                                      weights: Any = None) -> tuple[Any, list]:
    """Reference of :func:`fastops.orthogonality_penalties_and_grads`: a loop over the list."""
    func = "orthogonality_penalties_and_grads"
    arrays, ws = kernel_list(func, Ws, weights)
    _checks.one_of(func, "kind", kind, KINDS)
    total = 0.0
    grads = []
    dtypes = []
    for W, w in zip(arrays, ws, strict=True):
        value, grad = _penalty(W.astype(_F64), kind, True)
        dtype = _checks.result_dtype(func, "W", W.dtype)
        total += w * float(np.sum(value))
        grads.append((w * grad).astype(dtype))
        dtypes.append(dtype)
    return np.result_type(*dtypes).type(total) if dtypes else _F64(total), grads


def som_parameters(func: str, gamma: Any, lambda1: Any, lambda2: Any, eps: Any
                   ) -> tuple[float, float, float, float]:
    """SOM's scalars: gamma > 0, lambda1 >= 0, lambda2 >= 0, eps > 0 (all finite)."""
    return (
        _checks.real_number(func, "gamma", gamma, positive=True),
        _checks.real_number(func, "lambda1", lambda1, nonnegative=True),
        _checks.real_number(func, "lambda2", lambda2, nonnegative=True),
        _checks.real_number(func, "eps", eps, positive=True),
    )


def _som(Y: np.ndarray, gamma: float, lambda1: float, lambda2: float, eps: float,
         with_grad: bool) -> tuple[np.ndarray, Any]:
    """formulas.md 4.1 (forward) and 4.3 (backward) for float64 Y of shape (..., b, k)."""
    k = Y.shape[-1]
    off_diagonal = 1.0 - np.eye(k)
    T = np.tanh(gamma * Y)
    norms = np.sqrt(np.sum(T * T, axis=-2, keepdims=True))  # (..., 1, k)
    Yh = T / np.maximum(norms, eps)
    Theta = _mT(Yh) @ Yh  # ϑ_ij
    off = Theta * off_diagonal
    S = np.sum(off, axis=(-2, -1))
    Q = np.sum(off * off, axis=(-2, -1))
    value = lambda1 * S * S + lambda2 * Q
    if not with_grad:
        return value, None
    G = (2.0 * lambda1 * S[..., None, None] + 2.0 * lambda2 * Theta) * off_diagonal  # ∂R/∂Θ
    Yh_bar = 2.0 * (Yh @ G)
    dot = np.sum(Yh * Yh_bar, axis=-2, keepdims=True)
    live = norms > eps  # columns the eps guard leaves alone; dead columns get no gradient
    T_bar = np.where(live, (Yh_bar - Yh * dot) / np.where(live, norms, 1.0), 0.0)
    return value, gamma * (1.0 - T * T) * T_bar


def som_penalty(Y: Any, *, gamma: float = 10.0, lambda1: float = 100.0, lambda2: float = 1.0,
                eps: float = 1e-12) -> Any:
    """Reference of :func:`fastops.som_penalty`."""
    func = "som_penalty"
    Y64, dtype = _matrix(func, "Y", Y, "(..., b, k)")
    params = som_parameters(func, gamma, lambda1, lambda2, eps)
    return _finish(_som(Y64, *params, False)[0], dtype)


def som_penalty_and_grad(Y: Any, *, gamma: float = 10.0, lambda1: float = 100.0,
                         lambda2: float = 1.0, eps: float = 1e-12) -> tuple[Any, Any]:
    """Reference of :func:`fastops.som_penalty_and_grad`."""
    func = "som_penalty_and_grad"
    Y64, dtype = _matrix(func, "Y", Y, "(..., b, k)")
    params = som_parameters(func, gamma, lambda1, lambda2, eps)
    value, grad = _som(Y64, *params, True)
    return _finish(value, dtype), grad.astype(dtype)


def spectral_norm_arguments(func: str, W: Any, u: Any, n_iter: Any, eps: Any, xp: Any = np
                            ) -> tuple[Any, Any, int, float]:
    """Validate spectral_norm's arguments; returns (W, u, n_iter, eps) as arrays of ``xp``."""
    W = _checks.real_array(func, "W", W, xp)
    _checks.matrix_stack(func, "W", W, "(..., m, n)")
    u = _checks.real_array(func, "u", u, xp)
    if tuple(u.shape) != tuple(W.shape[:-1]):
        raise ValueError(
            f"{func}: u must have shape W.shape[:-1] = {tuple(W.shape[:-1])} for W of shape "
            f"{tuple(W.shape)}; got u of shape {tuple(u.shape)}"
        )
    return (W, u, _checks.positive_int(func, "n_iter", n_iter),
            _checks.real_number(func, "eps", eps, positive=True))


def spectral_norm(W: Any, u: Any, *, n_iter: int = 1, eps: float = 1e-12
                  ) -> tuple[Any, Any, Any]:
    """Reference of :func:`fastops.spectral_norm`: Miyato et al.'s power iteration."""
    func = "spectral_norm"
    W, u, n_iter, eps = spectral_norm_arguments(func, W, u, n_iter, eps)
    dtype = _checks.result_dtype(func, "W", W.dtype)
    W64 = W.astype(_F64)
    u64 = u.astype(_F64)
    v64 = np.zeros(W.shape[:-2] + W.shape[-1:])
    sigma = np.zeros(W.shape[:-2])
    for _ in range(n_iter):
        t = (_mT(W64) @ u64[..., None])[..., 0]
        v64 = t / np.maximum(np.linalg.norm(t, axis=-1, keepdims=True), eps)
        s = (W64 @ v64[..., None])[..., 0]
        sigma = np.linalg.norm(s, axis=-1)
        u64 = s / np.maximum(sigma[..., None], eps)
    return _finish(sigma, dtype), u64.astype(dtype), v64.astype(dtype)
