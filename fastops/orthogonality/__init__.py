"""Orthogonality family: Gram-matrix penalties with their gradients, the SOM penalty, spectral norm.

From Su Jianlin's post "Self-Orthogonality Module" (kexue.fm/archives/7169), BigGAN's
orthogonal regularisation (Brock et al. 2018), SRIP (Bansal et al. 2018) and Miyato et al.'s
spectral normalisation (2018). The math and gradients are docs/formulas.md
("orthogonality"); bad input is docs/semantics.md ("orthogonality").

Shapes: ``W`` is ``(..., d, k)`` with the k columns the filters of a dense layer ``y = x W``;
leading dims are a batch of same-shaped kernels. A conv kernel stored as ``(out, in, kh, kw)``
(PyTorch) is passed as ``w.reshape(out, -1).T``, its ``(in·kh·kw, out)`` view; one stored as
``(kh, kw, in, out)`` (Keras) as ``w.reshape(-1, out)``.

How it is fast: the GEMMs go to BLAS (NumPy's OpenBLAS/MKL on the CPU, cuBLAS through CuPy on
the GPU) batched over the leading dims in one call, always from the smaller Gram side
(``WᵀW`` when d >= k, ``WWᵀ`` when d < k: ``||WᵀW||_F = ||WWᵀ||_F`` and every gradient can be
written with ``WWᵀ``), so the extra memory is O(min(d, k)²): W of shape (512, 65536) needs a
512 x 512 Gram, not the 17 GB of the 65536 x 65536 one. Everything else (the penalty sums, the
mask, the gradient's epilogue, SOM's normalisation and its backward) is a fused kernel of
``cpu.py`` / ``gpu.py`` (interface: ``BACKEND_INTERFACE.md``), and no m x m temporary is
written more than once. Sums are accumulated in float64.
"""

from __future__ import annotations

import contextlib
import importlib
import math
from typing import Any

import numpy as np

from .. import _checks, _threads
from .._dask import any_dask, dask_aware
from .._dispatch import array_module, resolve_backend
from .._rows import as_contiguous, as_dtype
from . import reference
from .reference import KINDS

__all__ = [
    "KINDS",
    "orthogonality_penalty",
    "orthogonality_penalty_and_grad",
    "orthogonality_penalties_and_grads",
    "som_penalty",
    "som_penalty_and_grad",
    "spectral_norm",
]

_F64 = np.float64


def _kernels(backend: str) -> Any:
    """The kernel module of a backend, imported on first use (cupy only when asked for)."""
    return importlib.import_module(f"{__name__}.{'gpu' if backend == 'cupy' else 'cpu'}")


def _swap(a: Any) -> Any:
    """The transposes of a (B, r, c) stack, as a view."""
    return a.swapaxes(1, 2)


def _blas(xp: Any, flops: float, dtype: Any) -> Any:
    """The context BLAS / LAPACK calls of ``flops`` flops run in: on the CPU the threads that
    :func:`fastops._threads.blas_threads` chooses (one for a call too small to wake BLAS's
    workers, at most ``fastops.get_num_threads()`` otherwise); nothing to do on the GPU."""
    if xp is not np:
        return contextlib.nullcontext()
    return _threads.blas_threads(flops, np.dtype(dtype).itemsize)


def _matmul(xp: Any, a: Any, b: Any) -> Any:
    """``xp.matmul`` of two (B, r, c) stacks, BLAS's threads chosen by :func:`_blas`."""
    with _blas(xp, 2.0 * a.shape[0] * a.shape[1] * a.shape[2] * b.shape[2], a.dtype):
        return xp.matmul(a, b)


class _Batch:
    """A validated stack of matrices ``(..., r, c)`` as a C-contiguous ``(B, r, c)`` array of
    the working dtype (float64 for bool/int, float32 for float16), never a writable alias of
    the caller's array that a kernel would write to (kernels only write their own outputs).

    With ``transposed_ok`` (callers that hand W only to BLAS), a CPU stack whose matrices are
    transposes of C-contiguous ones (F-ordered W, ``w.reshape(out, -1).T`` of a conv weight)
    is kept as that view instead of copied: NumPy's matmul passes it to BLAS as a transposed
    operand. Measured (2 threads, medians of 5 processes alternating with the copying code,
    2026-12-04): spectral_norm of W.T, W (2048, 2048) float32, 44.4 -> 1.74 ms (W itself:
    1.66 ms; the copy was 96% of the call), float64 60.2 -> 4.5 ms, 16 transposed (512, 512)
    float32 13.8 -> 1.8 ms; orthogonality_penalty_and_grad of a transposed (4608, 512)
    float32 W 208 -> 160 ms and (512, 4608) 244 -> 168 ms (contiguous: 152 / 160 ms). The
    Numba passes that read W itself (offdiag's small side, SOM) still take a copy."""

    def __init__(self, func: str, name: str, value: Any, xp: Any,
                 what: str = "(..., d, k)", transposed_ok: bool = False) -> None:
        arr = _checks.real_array(func, name, value, xp)
        _checks.matrix_stack(func, name, arr, what)
        self.xp = xp
        self.shape = tuple(arr.shape)
        self.out_dtype = _checks.result_dtype(func, name, arr.dtype)
        work = _checks.working_dtype(func, name, arr.dtype)
        rows, cols = self.shape[-2:]
        stack = arr.reshape(self.size, rows, cols)
        if transposed_ok and xp is np and stack.dtype == work and not stack.flags.c_contiguous \
                and _swap(stack).flags.c_contiguous:
            self.data = stack
        else:
            self.data = as_contiguous(xp, stack, work)

    @property
    def size(self) -> int:
        """B: the number of matrices in the stack."""
        return math.prod(self.shape[:-2])

    @property
    def empty(self) -> bool:
        return 0 in self.shape

    def values(self, per_matrix: Any) -> Any:
        """A (B,) result in the batch shape and the result dtype; a NumPy scalar for 0-d."""
        out = per_matrix.reshape(self.shape[:-2]).astype(self.out_dtype)
        return out[()] if (out.ndim == 0 and self.xp is np) else out

    def like_input(self, per_element: Any, shape: tuple[int, ...] | None = None) -> Any:
        """A (B, r, c) result in the caller's shape and the result dtype."""
        out = per_element.reshape(self.shape if shape is None else shape)
        return as_dtype(self.xp, out, self.out_dtype)


# --------------------------------------------------------------------------------------------
# Gram penalties
# --------------------------------------------------------------------------------------------


def _degenerate_penalty(xp: Any, W: Any, kind: str, with_grad: bool) -> tuple[Any, Any]:
    """Penalties of empty stacks or matrices (d = 0 or k = 0), without a kernel launch.

    With d = 0, WᵀW is the k x k zero matrix: frobenius ||−I||² = k, offdiag 0, spectral
    λ* = −1 (1 when k > 0); with k = 0 every penalty is 0. The gradient is all zeros.
    """
    B, d, k = W.shape
    value = 0.0
    if d == 0 and k > 0:
        value = float(k) if kind == "frobenius" else (1.0 if kind == "spectral" else 0.0)
    grad = xp.zeros(W.shape, W.dtype) if with_grad else None
    return xp.full(B, value, dtype=_F64), grad


def _spectral_penalty(xp: Any, W: Any, scale: Any) -> tuple[Any, Any]:
    """SRIP's λ*² with λ* the eigenvalue of WᵀW − I of largest magnitude, and 4λ* W v vᵀ.

    Exact (LAPACK / cuSOLVER ``eigh`` of the smaller Gram, O(min(d, k)³)). For d < k the
    eigenvalues of WᵀW are those of WWᵀ plus k − d zeros, so λ* is σ_max² − 1 or −1; in the
    second case W v = 0 and the gradient is 0. On a tie the largest eigenvalue wins. A kernel
    whose Gram is not finite gets NaN (its Gram is replaced by 0 before ``eigh``, which would
    fail or return garbage on NaN).
    """
    d, k = W.shape[1], W.shape[2]
    small = d < k
    G = _matmul(xp, W, _swap(W)) if small else _matmul(xp, _swap(W), W)
    finite = xp.isfinite(G).all(axis=(1, 2))
    side = G.shape[1]
    # eigh with eigenvectors: about 9 n³ flops (Golub & Van Loan, "Matrix Computations", 8.3)
    with _blas(xp, 9.0 * G.shape[0] * side**3, G.dtype):
        evals, evecs = xp.linalg.eigh(xp.where(finite[:, None, None], G, 0))
    evals = evals.astype(_F64)
    lam_top = evals[:, -1] - 1.0
    lam_bottom = xp.full_like(lam_top, -1.0) if small else evals[:, 0] - 1.0
    top = xp.abs(lam_top) >= xp.abs(lam_bottom)
    lam = xp.where(finite, xp.where(top, lam_top, lam_bottom), np.nan)
    if scale is None:
        return lam * lam, None
    coef = 4.0 * scale * lam
    if small:  # W v vᵀ = u uᵀ W for the top pair (u the unit eigenvector of WWᵀ)
        coef = xp.where(top | ~finite, coef, 0.0)
        u = evecs[:, :, -1]
        left = (coef[:, None] * u).astype(W.dtype)
        grad = left[:, :, None] * _matmul(xp, u[:, None, :], W)
    else:
        v = xp.where(top[:, None], evecs[:, :, -1], evecs[:, :, 0])
        Wv = (coef[:, None, None] * _matmul(xp, W, v[:, :, None])).astype(W.dtype)
        grad = Wv * v[:, None, :]
    return lam * lam, grad


def _gram_penalty(kernels: Any, xp: Any, W: Any, kind: str, scale: Any) -> tuple[Any, Any]:
    """Penalty ``kind`` of every matrix of W (B, d, k), and with ``scale`` (a (B,) float64
    array) the gradient times scale[b]. Returns ((B,) float64, (B, d, k) or None)."""
    if 0 in W.shape:
        return _degenerate_penalty(xp, W, kind, scale is not None)
    if kind == "spectral":
        return _spectral_penalty(xp, W, scale)
    d, k = W.shape[1], W.shape[2]
    small = d < k
    G = _matmul(xp, W, _swap(W)) if small else _matmul(xp, _swap(W), W)
    if kind == "frobenius":
        diag = "minus_one"
    else:  # offdiag: on the small side the diagonal of WᵀW is subtracted separately, below
        diag = "keep" if small else "zero"
    scale4 = None if scale is None else 4.0 * scale
    value, _ = kernels.gram_reduce(G, diag, scale4)
    if kind == "frobenius" and small:
        value = value + (k - d)  # the k − d zero eigenvalues of WᵀW, each (0 − 1)²
    sqnorms = None
    if kind == "offdiag" and small:
        W = xp.ascontiguousarray(W)  # the two passes below read W's rows (a no-op unless a
        # transposed W was kept for BLAS, see _Batch)
        sqnorms = kernels.column_sqnorms(W)  # diag(WᵀW)
        value = value - (sqnorms * sqnorms).sum(axis=1)
    if scale is None:
        return value, None
    # G now holds 4·scale·A: the gradient 4 W A (d >= k) or 4 (WWᵀ − I) W (d < k) is one GEMM.
    grad = _matmul(xp, G, W) if small else _matmul(xp, W, G)
    if sqnorms is not None:  # 4 (WWᵀ W − W diag(WᵀW))
        kernels.offdiag_correct(grad, W, scale4[:, None] * sqnorms)
    return value, grad


@dask_aware(f"{__name__}.dask")
def orthogonality_penalty(W: Any, kind: str = "frobenius", *, backend: str | None = None) -> Any:
    """Orthogonality penalty of each kernel of ``W`` (..., d, k), shape ``W.shape[:-2]``.

    Kinds (``G = WᵀW``, k x k):

    - ``"frobenius"``: ``||G − I||²_F`` (orthonormal columns);
    - ``"offdiag"``: ``||G ⊙ (1 − I)||²_F = Σ_{i≠j} (w_iᵀ w_j)²`` (BigGAN: orthogonal columns
      of any norm);
    - ``"spectral"``: ``λ*²`` with λ* the eigenvalue of ``G − I`` of largest magnitude (SRIP),
      computed exactly with ``eigh`` of the smaller Gram (O(min(d, k)³)). For k > d, G has
      k − d zero eigenvalues, so λ* is at least 1 in magnitude.

    Computed from the smaller Gram side (``WWᵀ`` when d < k). Special values: k = 1 gives
    ``(||w||² − 1)²`` and offdiag 0; a zero column is fine; NaN or inf in one kernel of a
    batch gives NaN for that kernel only; bool/int input is computed in float64, float16 in
    float32 (returned as float16).

    >>> W = np.array([[1.0, 0.0], [0.0, 2.0]])
    >>> float(fastops.orthogonality_penalty(W))  # (4 − 1)²
    9.0
    >>> float(fastops.orthogonality_penalty(W, "offdiag"))
    0.0
    """
    func = "orthogonality_penalty"
    name = resolve_backend(func, (W,), backend)
    if name == "numpy":
        return reference.orthogonality_penalty(W, kind)
    batch = _Batch(func, "W", W, array_module(name), transposed_ok=True)
    _checks.one_of(func, "kind", kind, KINDS)
    value, _ = _gram_penalty(_kernels(name), batch.xp, batch.data, kind, None)
    return batch.values(value)


@dask_aware(f"{__name__}.dask")
def orthogonality_penalty_and_grad(W: Any, kind: str = "frobenius", *,
                                   backend: str | None = None) -> tuple[Any, Any]:
    """Penalty and its gradient with respect to ``W``: ``(value, dW)``.

    Gradients (formulas.md 4.3): frobenius ``4 W (WᵀW − I)``, offdiag ``4 W (WᵀW ⊙ (1 − I))``,
    spectral ``4 λ* W v vᵀ`` (v the unit eigenvector of λ*; valid where λ* is a simple
    eigenvalue). ``value`` has shape ``W.shape[:-2]``, ``dW`` the shape of W. Two GEMMs (one
    SYRK-like Gram, one product) and one fused pass over the min(d, k)² Gram; see
    :func:`orthogonality_penalty` for the kinds and special values.

    >>> W = np.array([[1.0, 0.0], [0.0, 2.0]])
    >>> value, dW = fastops.orthogonality_penalty_and_grad(W)
    >>> dW  # 4 W (WᵀW − I)
    array([[ 0.,  0.],
           [ 0., 24.]])
    """
    func = "orthogonality_penalty_and_grad"
    name = resolve_backend(func, (W,), backend)
    if name == "numpy":
        return reference.orthogonality_penalty_and_grad(W, kind)
    xp = array_module(name)
    batch = _Batch(func, "W", W, xp, transposed_ok=True)
    _checks.one_of(func, "kind", kind, KINDS)
    value, grad = _gram_penalty(_kernels(name), xp, batch.data, kind,
                                xp.ones(batch.size, dtype=_F64))
    return batch.values(value), batch.like_input(grad)


def orthogonality_penalties_and_grads(Ws: Any, kind: str = "frobenius", *, weights: Any = None,
                                      backend: str | None = None) -> tuple[Any, list]:
    """Total penalty of a list of kernels (e.g. every layer of a model) and each gradient.

    Returns ``(total, [dW_0, dW_1, ...])`` with ``total = Σ_i weights[i] · sum(penalty(Ws[i]))``
    and ``dW_i = weights[i] · grad(Ws[i])`` (weights default to 1). Kernels may have different
    shapes and dtypes and leading batch dims; same-shaped kernels of one dtype are stacked
    and computed in one batched call (one GEMM launch per group instead of one per layer, the
    loop BigGAN-PyTorch's ``ortho`` runs in Python). ``total`` is a scalar of the promoted
    result dtype (a 0-d CuPy array on the GPU, so no host synchronisation happens).

    >>> Ws = [np.eye(3), 2 * np.eye(2), np.ones((4, 1))]
    >>> total, grads = fastops.orthogonality_penalties_and_grads(Ws, weights=[1.0, 0.5, 1.0])
    >>> float(total)  # 0 + 0.5 · 2 · 3² + (4 − 1)²
    18.0
    """
    func = "orthogonality_penalties_and_grads"
    arrays_in = tuple(Ws) if isinstance(Ws, list | tuple) else ()
    if any_dask(*arrays_in):  # a lazy total and lazy gradients (orthogonality/dask.py)
        from .dask import orthogonality_penalties_and_grads as lazy

        return lazy(Ws, kind, weights=weights, backend=backend)
    name = resolve_backend(func, arrays_in, backend)
    if name == "numpy":
        return reference.orthogonality_penalties_and_grads(Ws, kind, weights=weights)
    xp = array_module(name)
    arrays, ws = reference.kernel_list(func, Ws, weights, xp)
    _checks.one_of(func, "kind", kind, KINDS)
    batches = [_Batch(func, f"Ws[{i}]", W, xp, transposed_ok=True)
               for i, W in enumerate(arrays)]
    groups: dict[tuple, list[int]] = {}
    for i, b in enumerate(batches):
        groups.setdefault((b.data.shape[1:], b.data.dtype.str), []).append(i)
    kernels = _kernels(name)
    grads: list[Any] = [None] * len(batches)
    total = None
    for members in groups.values():
        parts = [batches[i].data for i in members]
        data = parts[0] if len(parts) == 1 else xp.concatenate(parts)
        scale = xp.concatenate([xp.full(batches[i].size, ws[i], dtype=_F64) for i in members])
        value, grad = _gram_penalty(kernels, xp, data, kind, scale)
        weighted = (scale * value).sum()
        total = weighted if total is None else total + weighted
        start = 0
        for i in members:
            stop = start + batches[i].size
            grads[i] = batches[i].like_input(grad[start:stop])
            start = stop
    dtype = np.result_type(*(b.out_dtype for b in batches)) if batches else np.dtype(_F64)
    if total is None:
        total = xp.zeros((), dtype=_F64)
    total = total.astype(dtype)
    return (total[()] if xp is np else total), grads


# --------------------------------------------------------------------------------------------
# Self-Orthogonality Module
# --------------------------------------------------------------------------------------------


def _som(kernels: Any, xp: Any, Y: Any, gamma: float, lambda1: float, lambda2: float,
         eps: float, with_grad: bool) -> tuple[Any, Any]:
    """SOM penalty of every (b, k) matrix of Y (B, b, k) and, with ``with_grad``, dY."""
    B, n, k = Y.shape
    if 0 in Y.shape:  # no rows: every column is dead (ϑ = 0); no columns: nothing to sum
        return xp.zeros(B, dtype=_F64), (xp.zeros(Y.shape, Y.dtype) if with_grad else None)
    Yhat, norms, rowsum = kernels.som_normalize(Y, gamma, eps)
    if n >= k:  # Θ = ŶᵀŶ (k x k): sums over its off-diagonal directly
        gram = _matmul(xp, _swap(Yhat), Yhat)
        # With the gradient, Θ's diagonal is zeroed in the same pass, so that P = Ŷ Θ_off
        # below needs no "− Ŷ diag Θ" (which would cancel against P's largest term).
        ones = xp.ones(B, dtype=_F64) if with_grad else None
        Q, S = kernels.gram_reduce(gram, "zero", ones)
        diag = xp.zeros((B, k), dtype=_F64)
    else:  # from K = ŶŶᵀ (b x b): ||Θ||² = ||K||², Σ_ij Θ_ij = ||Ŷ 1||², Θ_ii from the norms
        gram = _matmul(xp, Yhat, _swap(Yhat))
        sumsq, _ = kernels.gram_reduce(gram, "keep", None)
        diag = (norms / xp.maximum(norms, eps)) ** 2
        Q = sumsq - (diag * diag).sum(axis=1)
        S = (rowsum * rowsum).sum(axis=1) - diag.sum(axis=1)
    value = lambda1 * S * S + lambda2 * Q
    if not with_grad:
        return value, None
    # Ŷ̄ = 2 Ŷ ∂R/∂Θ = 4λ1 S (Ŷ 1 1ᵀ − Ŷ) + 4λ2 (ŶΘ − Ŷ diag Θ): one GEMM, the rest fused
    # (diag is 0 on the k side, whose Gram already lost its diagonal).
    P = _matmul(xp, Yhat, gram) if n >= k else _matmul(xp, gram, Yhat)
    c1 = 4.0 * lambda1 * S
    c2 = xp.full(B, 4.0 * lambda2, dtype=_F64)
    return value, kernels.som_backward(Yhat, P, rowsum, diag, norms, c1, c2, gamma, eps)


def _som_call(func: str, Y: Any, gamma: Any, lambda1: Any, lambda2: Any, eps: Any,
              backend: str | None, with_grad: bool) -> Any:
    name = resolve_backend(func, (Y,), backend)
    if name == "numpy":
        ref = reference.som_penalty_and_grad if with_grad else reference.som_penalty
        return ref(Y, gamma=gamma, lambda1=lambda1, lambda2=lambda2, eps=eps)
    xp = array_module(name)
    batch = _Batch(func, "Y", Y, xp, "(..., b, k)")
    params = reference.som_parameters(func, gamma, lambda1, lambda2, eps)
    value, grad = _som(_kernels(name), xp, batch.data, *params, with_grad)
    return (batch.values(value), batch.like_input(grad)) if with_grad else batch.values(value)


def som_penalty(Y: Any, *, gamma: float = 10.0, lambda1: float = 100.0, lambda2: float = 1.0,
                eps: float = 1e-12, backend: str | None = None) -> Any:
    """The Self-Orthogonality Module penalty of a layer's outputs ``Y = X W`` (..., b, k).

    As Su transcribes Zhang et al. (formulas.md 4.1): ``T = tanh(γ Y)`` (a smooth sign),
    columns normalised over the b rows of the batch, ``Ŷ = T / max(||T_:,i||, eps)``,
    ``Θ = ŶᵀŶ`` (ϑ_ij estimates 1 − 2θ_ij/π for the angle θ_ij between filters i and j), and
    ``R = λ1 (Σ_{i≠j} Θ_ij)² + λ2 Σ_{i≠j} Θ_ij²`` (plain sums, as the post). Shape
    ``Y.shape[:-2]``. For a conv layer pass its output as (batch·H·W, out_channels).

    Special values: k = 1 gives 0; a column of zeros is orthogonal to all (ϑ = 0 for it,
    thanks to the eps guard); NaN in one matrix gives NaN for it only.

    >>> Y = np.array([[2.0, 0.0], [0.0, -1.0]])  # the filters respond to different inputs
    >>> float(fastops.som_penalty(Y))  # ϑ_12 = 0
    0.0
    >>> Y = np.array([[1.0, 1.0], [1.0, 1.0]])  # identical responses: ϑ_12 = ϑ_21 = 1
    >>> round(float(fastops.som_penalty(Y)), 9)  # 100 · 2² + 1 · 2
    402.0
    """
    return _som_call("som_penalty", Y, gamma, lambda1, lambda2, eps, backend, False)


def som_penalty_and_grad(Y: Any, *, gamma: float = 10.0, lambda1: float = 100.0,
                         lambda2: float = 1.0, eps: float = 1e-12,
                         backend: str | None = None) -> tuple[Any, Any]:
    """SOM penalty and its gradient with respect to Y: ``(value, dY)`` (formulas.md 4.3).

    ``dY = γ (1 − T²) ⊙ T̄`` with ``T̄`` the column-normalisation backward of
    ``Ŷ̄ = 2 Ŷ ∂R/∂Θ``. Add ``dY`` to the layer's output gradient before its dense backward
    (``dW += Xᵀ dY``). Columns the eps guard caught (dead filters) get no gradient.
    Computed from the smaller Gram side (ŶŶᵀ when b < k).

    >>> Y = np.array([[1.0, 0.5], [1.0, 0.4]])
    >>> value, dY = fastops.som_penalty_and_grad(Y)
    >>> dY.shape
    (2, 2)
    """
    return _som_call("som_penalty_and_grad", Y, gamma, lambda1, lambda2, eps, backend, True)


# --------------------------------------------------------------------------------------------
# Spectral norm
# --------------------------------------------------------------------------------------------


def _power_iteration(kernels: Any, xp: Any, W: Any, u: Any, n_iter: int, eps: float
                     ) -> tuple[Any, Any, Any]:
    B, m, n = W.shape
    if 0 in W.shape:  # Wᵀu = 0 and W v = 0: sigma 0, both vectors 0 (as the reference)
        return xp.zeros(B, _F64), xp.zeros((B, m), W.dtype), xp.zeros((B, n), W.dtype)
    Wt = _swap(W)
    for _ in range(n_iter):
        v, _ = kernels.normalize_rows(xp.ascontiguousarray(_matmul(xp, Wt, u[:, :, None])[:, :, 0]),
                                      eps)
        u, sigma = kernels.normalize_rows(
            xp.ascontiguousarray(_matmul(xp, W, v[:, :, None])[:, :, 0]), eps)
    return sigma, u, v


def spectral_norm(W: Any, u: Any, *, n_iter: int = 1, eps: float = 1e-12,
                  backend: str | None = None) -> tuple[Any, Any, Any]:
    """Power-iteration estimate of the largest singular value of each ``W`` (..., m, n).

    Miyato et al. (2018), Algorithm 1, as ``torch.nn.utils.spectral_norm`` runs it: for
    ``n_iter`` steps ``v = normalise(Wᵀu)``, ``u = normalise(W v)``; ``sigma = ||W v||``
    (= ``uᵀ W v`` for the new u, without a third pass over W). ``normalise(x) =
    x / max(||x||, eps)``. ``u`` (..., m) is the persistent vector the caller keeps between
    training steps: pass the returned ``u_new`` next time. Returns ``(sigma, u_new, v_new)``
    with shapes ``W.shape[:-2]``, ``W.shape[:-1]`` and ``W.shape[:-2] + W.shape[-1:]``; the
    normalised weight is ``W / sigma[..., None, None]``. Inputs are never modified.

    Each step is two batched GEMVs (BLAS / cuBLAS) and two fused normalisation passes. A zero W
    (or u orthogonal to W's range) gives sigma 0 and zero vectors, not NaN.

    >>> W = np.diag([3.0, 1.0])
    >>> sigma, u, v = fastops.spectral_norm(W, np.array([1.0, 1.0]), n_iter=50)
    >>> round(float(sigma), 12)
    3.0
    """
    func = "spectral_norm"
    name = resolve_backend(func, (W, u), backend)
    if name == "numpy":
        return reference.spectral_norm(W, u, n_iter=n_iter, eps=eps)
    xp = array_module(name)
    W, u, n_iter, eps = reference.spectral_norm_arguments(func, W, u, n_iter, eps, xp)
    batch = _Batch(func, "W", W, xp, "(..., m, n)", transposed_ok=True)
    lead, (m, n) = batch.shape[:-2], batch.shape[-2:]
    u_rows = xp.ascontiguousarray(u.reshape(batch.size, m), dtype=batch.data.dtype)
    sigma, u_new, v_new = _power_iteration(_kernels(name), xp, batch.data, u_rows, n_iter, eps)
    return (batch.values(sigma), batch.like_input(u_new, lead + (m,)),
            batch.like_input(v_new, lead + (n,)))
