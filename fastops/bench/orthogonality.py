"""Benchmark cases of the orthogonality family: Gram penalties with their gradients (one
matrix, a batch, a whole model's list of kernels), the SOM penalty and the spectral norm.

These ops are GEMM-bound, so besides the bytes floor (``% copy``) every case carries a
``floor_impl``: the BLAS calls its method needs, with the same BLAS as fastops (``numpy.matmul``
on the CPU, ``cupy.matmul`` on the GPU), timed in the same run (``% GEMM`` = GEMM time /
fastops time):

- ``ortho_frobenius``, ``ortho_offdiag``, ``ortho_model``, ``som_penalty_and_grad``: the Gram
  from the smaller side (``WᵀW`` when d >= k, ``WWᵀ`` when d < k) and the gradient product
  (``W @ G`` or ``G @ W``); for the model, per group of same-shaped kernels stacked in setup;
- ``ortho_spectral``: the Gram and LAPACK / cuSOLVER ``eigh`` of it (O(min(d, k)³), so only
  on shapes with min(d, k) <= :data:`SPECTRAL_MAX_SIDE`);
- ``spectral_norm``: the two GEMVs of one power-iteration step (``Wᵀu``, ``W v``).

Targets (``performance.md``): value + gradient within 1.3x of the GEMMs on the CPU (>= 77%
GEMM), 1.25x on the GPU (>= 80%).

Peers compute the same result the way a user would otherwise write it:

- ``numpy``: the plain NumPy formulation BigGAN-PyTorch's ``ortho`` uses: the k x k Gram
  ``W.T @ W`` whatever the shape, a fresh identity / mask each call, value = sum of squares,
  gradient ``4 * W @ A``; for the list, a Python loop over the layers;
- ``torch``: the same formulation in torch (CPU, or CUDA through DLPack);
- ``torch_autograd``: torch autograd of the penalty (``requires_grad_``, ``backward()``); for
  SOM of its formula (formulas.md 4.1);
- ``numba`` (GPU cases): the fastops CPU backend on host copies.

A peer whose k x k Gram would exceed :data:`PEER_GRAM_LIMIT_BYTES` (e.g. W (512, 65536)
float32: 17 GB) is recorded as skipped with that reason. Peers (and torch) are built only when
a case's peers are asked for, never at import.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np

from .cases import Case, Impl, PeerSkipped, check_request, register_family
from .devices import BENCH_BACKENDS, array_module, random_array
from .peers import PEER_NAMES, host_copy_peer, numpy_peer, torch_peer, torch_usable

#: Gram penalties of one array W (..., d, k): value + gradient, by kind.
GRAM_OPS: dict[str, str] = {
    "ortho_frobenius": "frobenius",
    "ortho_offdiag": "offdiag",
    "ortho_spectral": "spectral",
}
OPS: tuple[str, ...] = (*GRAM_OPS, "ortho_model", "som_penalty_and_grad", "spectral_norm")
#: The kind of ``ortho_model``: BigGAN's whole-model regulariser.
MODEL_KIND = "offdiag"
#: ortho_spectral runs eigh on the min(d, k)² Gram, O(min(d, k)³): larger shapes are left out.
SPECTRAL_MAX_SIDE = 1024
#: A peer that would build a k x k Gram (or SOM's Θ) larger than this is skipped, not run.
PEER_GRAM_LIMIT_BYTES = 2 * 10**9

# --------------------------------------------------------------------------------------------
# The model-like list of kernels
# --------------------------------------------------------------------------------------------

#: ResNet-like stages (channels, blocks); each block has two 3x3 convs, each stage but the
#: first a 1x1 projection shortcut.
_STAGES: tuple[tuple[int, int], ...] = ((64, 3), (128, 4), (256, 9), (512, 4))
#: Dense layers after the convs, (d, k) with y = x W: two MLP blocks, a projection, a classifier.
_DENSE: tuple[tuple[int, int], ...] = (
    (512, 2048),
    (2048, 512),
    (512, 2048),
    (2048, 512),
    (512, 512),
    (512, 1000),
)


def model_shapes(width_divisor: int = 1) -> tuple[tuple[int, int], ...]:
    """The 50 kernels of a ResNet-like model as (d, k) matrices, channels divided by
    ``width_divisor``: a 7x7 stem, 40 3x3 convs and 3 1x1 shortcuts passed as their
    (in·kh·kw, out) views, then 6 dense layers. Many share a shape (fastops stacks those into
    one batched call); the shortcuts and some dense layers have d < k."""

    def c(ch: int) -> int:
        return max(1, ch // width_divisor)

    shapes = [(3 * 7 * 7, c(64))]
    cin = c(64)
    for channels, blocks in _STAGES:
        cout = c(channels)
        for _ in range(blocks):
            shapes += [(cin * 9, cout), (cout * 9, cout)]
            if cin != cout:
                shapes.append((cin, cout))
            cin = cout
    shapes += [(c(d), c(k)) for d, k in _DENSE]
    return tuple(shapes)


#: The model lists by label (the shape column of their rows).
MODELS: dict[str, tuple[tuple[int, int], ...]] = {
    "50 kernels": model_shapes(1),
    "50 kernels w/4": model_shapes(4),
    "50 kernels w/16": model_shapes(16),
}

# --------------------------------------------------------------------------------------------
# Shapes per device and size
# --------------------------------------------------------------------------------------------

Shape = tuple[int, ...]


@dataclass(frozen=True)
class _Grid:
    """Shapes of one (device, size): W for the Gram ops, the model list, Y for SOM, W for
    spectral_norm; the dtypes, and the ops run when none are named."""

    dtypes: tuple[str, ...]
    w: tuple[Shape, ...]
    model: str
    som: tuple[Shape, ...]
    spectral_norm: tuple[Shape, ...]
    ops: tuple[str, ...] = OPS


#: The issue's W shapes: square, tall (d >> k), wide (d << k: the Gram from the small side is
#: 512 x 512 instead of 17 GB) and a batch of small kernels.
_W_FULL: tuple[Shape, ...] = ((4096, 4096), (65536, 512), (512, 65536), (256, 64, 64))
#: --quick on the GPU: the Gram penalty (frobenius), the model list, SOM and spectral_norm,
#: float32. On the CPU, where every op is a Numba compilation of seconds, frobenius only.
_QUICK_OPS: tuple[str, ...] = (
    "ortho_frobenius",
    "ortho_model",
    "som_penalty_and_grad",
    "spectral_norm",
)
_TINY = {
    "w": ((67, 29), (23, 41), (5, 13, 9)),
    "model": "50 kernels w/16",
    "som": ((40, 12), (9, 30)),
    "spectral_norm": ((37, 21), (3, 11, 7)),
}

_GRIDS: dict[tuple[str, str], _Grid] = {
    ("cpu", "full"): _Grid(
        ("float32", "float64"),
        _W_FULL,
        "50 kernels",
        ((1024, 512), (256, 4096), (16, 1024, 256)),
        ((4096, 4096), (64, 256, 256)),
    ),
    # One tall W: the GEMM-bound regime; the small-call row below covers the fixed costs.
    ("cpu", "quick"): _Grid(
        ("float32",),
        ((4096, 256),),
        "50 kernels w/4",
        ((1024, 256),),
        ((2048, 2048),),
        ("ortho_frobenius",),
    ),
    ("cpu", "tiny"): _Grid(("float64",), **_TINY),  # type: ignore[arg-type]
    ("cuda", "full"): _Grid(
        ("float32",),
        _W_FULL,
        "50 kernels",
        ((1024, 512), (256, 4096), (64, 1024, 256)),
        ((4096, 4096), (64, 256, 256)),
    ),
    ("cuda", "quick"): _Grid(
        ("float32",),
        ((4096, 4096), (256, 64, 64)),
        "50 kernels",
        ((1024, 512),),
        ((4096, 4096),),
        _QUICK_OPS,
    ),
    ("cuda", "tiny"): _Grid(("float32",), **_TINY),  # type: ignore[arg-type]
}


#: Small calls (CPU, every size, float32): the penalty and gradient of one (256, 64) layer,
#: tens of microseconds, as a training step calls it between the layers' other work.
SMALL_CALLS: tuple[tuple[str, Shape], ...] = (("ortho_frobenius", (256, 64)),)
SMALL_CALL_DTYPE = "float32"


def _batch(shape: Shape) -> int:
    return math.prod(shape[:-2])


def nbytes_floor(op: str, shape: Shape, itemsize: int, model: str | None = None) -> int:
    """Bytes the op must move: each input read once, each output written once.

    Gram ops and SOM: read W (Y), write the gradient and one value per matrix; the model list:
    every kernel read and its gradient written, one total; spectral_norm: read W and u, write
    sigma, u and v.
    """
    if op == "ortho_model":
        if model not in MODELS:
            raise ValueError(f"nbytes_floor: unknown model {model!r}")
        return sum(2 * d * k * itemsize for d, k in MODELS[model]) + itemsize
    size = math.prod(shape)
    B, m, n = _batch(shape), shape[-2], shape[-1]
    if op in GRAM_OPS or op == "som_penalty_and_grad":
        return 2 * size * itemsize + B * itemsize
    if op == "spectral_norm":
        return (size + B * m + B + B * m + B * n) * itemsize
    raise ValueError(f"nbytes_floor: unknown orthogonality op {op!r}")


# --------------------------------------------------------------------------------------------
# Inputs and the fastops calls
# --------------------------------------------------------------------------------------------


def _inputs(
    op: str, backend: str, shape: Shape, dtype: str, model: str | None
) -> Callable[[int], tuple]:
    """``make_inputs(seed)``: freshly initialised weights (variance 1/d) for the Gram ops and
    spectral_norm, standard normal layer outputs for SOM; distinct streams per array."""

    def make(seed: int) -> tuple:
        s = 64 * seed  # room for the 50 kernels of a model per input set
        if op == "ortho_model":
            return tuple(
                random_array(backend, w, dtype, s + i, "kernel")
                for i, w in enumerate(MODELS[str(model)])
            )
        if op == "som_penalty_and_grad":
            return (random_array(backend, shape, dtype, s),)
        W = random_array(backend, shape, dtype, s, "kernel")
        if op == "spectral_norm":
            return W, random_array(backend, shape[:-1], dtype, s + 1)
        return (W,)

    return make


def _fastops_call(op: str) -> Callable[..., Any]:
    import fastops

    if op in GRAM_OPS:
        return partial(fastops.orthogonality_penalty_and_grad, kind=GRAM_OPS[op])
    if op == "ortho_model":

        def ortho_model(*Ws: Any) -> Any:
            return fastops.orthogonality_penalties_and_grads(list(Ws), MODEL_KIND)

        return ortho_model
    if op == "som_penalty_and_grad":
        return fastops.som_penalty_and_grad
    return partial(fastops.spectral_norm, n_iter=1)


# --------------------------------------------------------------------------------------------
# The GEMM floor: the BLAS calls each method needs
# --------------------------------------------------------------------------------------------


def _mT(a: Any) -> Any:
    return a.swapaxes(-1, -2)


def _gram(xp: Any, W: Any) -> Any:
    """The Gram from the smaller side: WᵀW (k x k) when d >= k, else WWᵀ (d x d)."""
    return xp.matmul(_mT(W), W) if W.shape[-2] >= W.shape[-1] else xp.matmul(W, _mT(W))


def _gram_and_product(xp: Any, W: Any) -> Any:
    """The two GEMMs of a Gram penalty's value + gradient (or SOM's): G, then W G or G W."""
    G = _gram(xp, W)
    return xp.matmul(W, G) if W.shape[-2] >= W.shape[-1] else xp.matmul(G, W)


def _floor_impl(op: str, backend: str) -> Impl:
    device = BENCH_BACKENDS[backend]
    mod = "cupy" if device == "cuda" else "numpy"
    clock = "cupy" if device == "cuda" else "host"

    def xp() -> Any:
        return array_module(backend)

    if op == "ortho_spectral":

        def gram_eigh(W: Any) -> Any:
            m = xp()
            return m.linalg.eigh(_gram(m, W))

        return Impl(
            "gemm", f"{mod}.matmul Gram (smaller side) + {mod}.linalg.eigh", gram_eigh, clock=clock
        )
    if op == "spectral_norm":

        def gemvs(W: Any, u: Any) -> Any:
            m = xp()
            t = m.matmul(_mT(W), u[..., None])
            return m.matmul(W, t)

        return Impl("gemm", f"{mod}.matmul: W^T u and W v", gemvs, clock=clock)
    if op == "ortho_model":

        def stack_groups(Ws: tuple) -> tuple:
            # Same-shaped kernels as one stack, as fastops groups them (untimed: setup).
            groups: dict[tuple, list] = {}
            for W in Ws:
                groups.setdefault(tuple(W.shape), []).append(W)
            m = xp()
            return tuple(g[0] if len(g) == 1 else m.stack(g) for g in groups.values())

        def grouped(*stacks: Any) -> Any:
            m = xp()
            return [_gram_and_product(m, W) for W in stacks]

        return Impl(
            "gemm",
            f"{mod}.matmul per group of same-shaped kernels: Gram + gradient",
            grouped,
            prepare=stack_groups,
            clock=clock,
        )

    def gemms(W: Any) -> Any:
        return _gram_and_product(xp(), W)

    return Impl("gemm", f"{mod}.matmul: Gram (smaller side) + gradient product", gemms, clock=clock)


# --------------------------------------------------------------------------------------------
# Peers: the plain NumPy / torch formulations and torch autograd
# --------------------------------------------------------------------------------------------


def _pick_extreme(evals: Any, evecs: Any, where: Any) -> tuple[Any, Any]:
    """λ* (the eigenvalue of largest magnitude, the largest on a tie) and its eigenvector."""
    top = abs(evals[..., -1]) >= abs(evals[..., 0])
    lam = where(top, evals[..., -1], evals[..., 0])
    v = where(top[..., None], evecs[..., :, -1], evecs[..., :, 0])
    return lam, v


def np_gram_penalty(W: np.ndarray, kind: str) -> tuple[Any, np.ndarray]:
    """BigGAN-style NumPy: the k x k Gram whatever the shape, a fresh identity each call."""
    k = W.shape[-1]
    eye = np.eye(k, dtype=W.dtype)
    A = _mT(W) @ W - eye if kind != "offdiag" else (_mT(W) @ W) * (1 - eye)
    if kind == "spectral":
        lam, v = _pick_extreme(*np.linalg.eigh(A), np.where)
        lam = np.asarray(lam)
        return lam * lam, 4 * lam[..., None, None] * (W @ v[..., None]) * v[..., None, :]
    return (A * A).sum(axis=(-2, -1)), 4 * (W @ A)


def np_model(*Ws: np.ndarray, kind: str = MODEL_KIND) -> tuple[Any, list]:
    """BigGAN-PyTorch's ``ortho`` loop, in NumPy: one penalty and gradient per layer."""
    total: Any = 0.0
    grads = []
    for W in Ws:
        value, grad = np_gram_penalty(W, kind)
        total = total + value.sum()
        grads.append(grad)
    return total, grads


def np_som(
    Y: np.ndarray,
    gamma: float = 10.0,
    lambda1: float = 100.0,
    lambda2: float = 1.0,
    eps: float = 1e-12,
) -> tuple[Any, np.ndarray]:
    """The SOM penalty and its gradient (formulas.md 4.1, 4.3) in NumPy, k x k Θ."""
    k = Y.shape[-1]
    off = 1 - np.eye(k, dtype=Y.dtype)
    T = np.tanh(gamma * Y)
    norms = np.sqrt((T * T).sum(axis=-2, keepdims=True))
    Yh = T / np.maximum(norms, eps)
    Theta = _mT(Yh) @ Yh
    O = Theta * off  # noqa: E741
    S = O.sum(axis=(-2, -1))
    value = lambda1 * S * S + lambda2 * (O * O).sum(axis=(-2, -1))
    G = (2 * lambda1 * np.asarray(S)[..., None, None] + 2 * lambda2 * Theta) * off
    Yb = 2 * (Yh @ G)
    dot = (Yh * Yb).sum(axis=-2, keepdims=True)
    live = norms > eps
    Tb = np.where(live, (Yb - Yh * dot) / np.where(live, norms, 1), 0)
    return value, gamma * (1 - T * T) * Tb


def np_spectral_norm(
    W: np.ndarray, u: np.ndarray, eps: float = 1e-12
) -> tuple[Any, np.ndarray, np.ndarray]:
    """One power-iteration step as torch.nn.utils.spectral_norm runs it, in NumPy."""
    t = (_mT(W) @ u[..., None])[..., 0]
    v = t / np.maximum(np.linalg.norm(t, axis=-1, keepdims=True), eps)
    s = (W @ v[..., None])[..., 0]
    sigma = np.linalg.norm(s, axis=-1)
    return sigma, s / np.maximum(sigma[..., None], eps), v


def _torch_fns(op: str) -> tuple[Callable[..., Any] | None, Callable[..., Any] | None]:
    """(the plain torch formulation, torch autograd of the penalty) for ``op``."""
    import torch

    F = torch.nn.functional

    def eye(W: Any) -> Any:
        return torch.eye(W.shape[-1], dtype=W.dtype, device=W.device)

    def penalty(W: Any, kind: str) -> tuple[Any, Any]:
        """Per-matrix values and A (the k x k Gram minus I, or masked)."""
        A = W.mT @ W - eye(W) if kind != "offdiag" else (W.mT @ W) * (1 - eye(W))
        if kind == "spectral":
            evals = torch.linalg.eigvalsh(A)
            top = evals[..., -1].abs() >= evals[..., 0].abs()
            lam = torch.where(top, evals[..., -1], evals[..., 0])
            return lam * lam, A
        return (A * A).sum(dim=(-2, -1)), A

    def gram(W: Any, kind: str) -> tuple[Any, Any]:
        if kind == "spectral":
            A = W.mT @ W - eye(W)
            lam, v = _pick_extreme(*torch.linalg.eigh(A), torch.where)
            return lam * lam, 4 * lam[..., None, None] * (W @ v[..., None]) * v[..., None, :]
        value, A = penalty(W, kind)
        return value, 4 * (W @ A)

    def gram_autograd(W: Any, kind: str) -> tuple[Any, Any]:
        w = W.detach().requires_grad_()
        value, _ = penalty(w, kind)
        value.sum().backward()
        return value.detach(), w.grad

    def model(*Ws: Any) -> tuple[Any, list]:
        total: Any = 0.0
        grads = []
        for W in Ws:
            value, grad = gram(W, MODEL_KIND)
            total = total + value.sum()
            grads.append(grad)
        return total, grads

    def model_autograd(*Ws: Any) -> tuple[Any, list]:
        ws = [W.detach().requires_grad_() for W in Ws]
        total = sum(penalty(w, MODEL_KIND)[0].sum() for w in ws)
        total.backward()
        return total.detach(), [w.grad for w in ws]

    def som_value(
        Y: Any,
        gamma: float = 10.0,
        lambda1: float = 100.0,
        lambda2: float = 1.0,
        eps: float = 1e-12,
    ) -> tuple[Any, Any, Any, Any, Any]:
        T = torch.tanh(gamma * Y)
        Yh = F.normalize(T, dim=-2, eps=eps)  # T / max(||T[:, i]||, eps)
        off = 1 - eye(Y)
        Theta = Yh.mT @ Yh
        O = Theta * off  # noqa: E741
        S = O.sum(dim=(-2, -1))
        return lambda1 * S * S + lambda2 * (O * O).sum(dim=(-2, -1)), T, Yh, Theta, S

    def som(
        Y: Any,
        gamma: float = 10.0,
        lambda1: float = 100.0,
        lambda2: float = 1.0,
        eps: float = 1e-12,
    ) -> tuple[Any, Any]:
        value, T, Yh, Theta, S = som_value(Y, gamma, lambda1, lambda2, eps)
        G = (2 * lambda1 * S[..., None, None] + 2 * lambda2 * Theta) * (1 - eye(Y))
        Yb = 2 * (Yh @ G)
        dot = (Yh * Yb).sum(dim=-2, keepdim=True)
        norms = torch.linalg.vector_norm(T, dim=-2, keepdim=True)
        live = norms > eps
        Tb = torch.where(live, (Yb - Yh * dot) / torch.where(live, norms, 1), 0)
        return value, gamma * (1 - T * T) * Tb

    def som_autograd(Y: Any) -> tuple[Any, Any]:
        y = Y.detach().requires_grad_()
        value = som_value(y)[0]
        value.sum().backward()
        return value.detach(), y.grad

    def spectral_norm(W: Any, u: Any, eps: float = 1e-12) -> tuple[Any, Any, Any]:
        # torch.nn.utils.spectral_norm's power iteration (torch.mv for one matrix).
        with torch.no_grad():
            if W.ndim == 2:
                v = F.normalize(torch.mv(W.t(), u), dim=0, eps=eps)
                s = torch.mv(W, v)
            else:
                v = F.normalize((W.mT @ u[..., None])[..., 0], dim=-1, eps=eps)
                s = (W @ v[..., None])[..., 0]
            sigma = torch.linalg.vector_norm(s, dim=-1)
            return sigma, s / sigma.clamp(min=eps)[..., None], v

    if op in GRAM_OPS:
        kind = GRAM_OPS[op]
        return partial(gram, kind=kind), partial(gram_autograd, kind=kind)
    if op == "ortho_model":
        return model, model_autograd
    if op == "som_penalty_and_grad":
        return som, som_autograd
    if op == "spectral_norm":
        return spectral_norm, None
    return None, None


def peer_gram_bytes(op: str, shape: Shape, itemsize: int, model: str | None = None) -> int:
    """Bytes of the largest k x k temporary the numpy / torch peers build (0: none)."""
    if op == "ortho_model":
        return max(k * k for _, k in MODELS[str(model)]) * itemsize
    if op in GRAM_OPS or op == "som_penalty_and_grad":
        return _batch(shape) * shape[-1] ** 2 * itemsize
    return 0


def _skip_reason(op: str, shape: Shape, dtype: str, model: str | None) -> str | None:
    itemsize = np.dtype(dtype).itemsize
    need = peer_gram_bytes(op, shape, itemsize, model)
    if need <= PEER_GRAM_LIMIT_BYTES:
        return None
    k = shape[-1]
    small = min(shape[-2:])
    what = "Θ = ŶᵀŶ of Y" if op == "som_penalty_and_grad" else "Gram WᵀW of W"
    return (
        f"its k x k {what} {'x'.join(map(str, shape))} {dtype} ({k} x {k}) would need "
        f"{need / 1e9:.1f} GB, over the {PEER_GRAM_LIMIT_BYTES / 1e9:.0f} GB limit for peers "
        f"(fastops works from the smaller side: {small} x {small})"
    )


def _skipping(impl: Impl, reason: str) -> Impl:
    def refuse(args: tuple) -> tuple:
        raise PeerSkipped(reason)

    return dataclasses.replace(impl, prepare=refuse)


def ortho_peers(
    op: str,
    device: str,
    shape: Shape,
    dtype: str,
    model: str | None,
    fastops_call: Callable[..., Any],
    wanted: Sequence[str] | None = None,
) -> tuple[Impl, ...]:
    """The peers of one orthogonality case on ``device`` that are installed here."""
    wanted = PEER_NAMES if wanted is None else tuple(wanted)
    peers: list[Impl] = []
    if "numpy" in wanted:
        call, what = {
            "ortho_model": (np_model, f"loop over layers, k x k Gram, {MODEL_KIND}"),
            "som_penalty_and_grad": (np_som, "SOM formula, k x k Θ"),
            "spectral_norm": (np_spectral_norm, "power iteration"),
        }.get(op, (partial(np_gram_penalty, kind=GRAM_OPS.get(op, "")), "k x k Gram, 4 W A"))
        peers.append(numpy_peer(call, f"NumPy (BigGAN formulation): {what}", device))
    if {"torch", "torch_autograd"} & set(wanted) and torch_usable(device):
        plain, autograd = _torch_fns(op)
        if "torch" in wanted and plain is not None:
            peers.append(torch_peer("torch", "same formulation", plain, device))
        if "torch_autograd" in wanted and autograd is not None:
            peers.append(torch_peer("torch_autograd", "autograd of the penalty", autograd, device))
    reason = _skip_reason(op, shape, dtype, model)
    if reason is not None:
        peers = [_skipping(p, reason) for p in peers]
    if "numba" in wanted and device == "cuda":
        peers.append(host_copy_peer(fastops_call))
    return tuple(peers)


# --------------------------------------------------------------------------------------------
# The cases
# --------------------------------------------------------------------------------------------


def _op_shapes(op: str, grid: _Grid) -> list[Shape | str]:
    if op in GRAM_OPS:
        shapes = list(grid.w)
        if op == "ortho_spectral":
            shapes = [s for s in shapes if min(s[-2:]) <= SPECTRAL_MAX_SIDE]
        return shapes  # type: ignore[return-value]
    if op == "ortho_model":
        return [grid.model]
    if op == "som_penalty_and_grad":
        return list(grid.som)
    return list(grid.spectral_norm)


def orthogonality_cases(
    size: str = "full", backend: str = "numba", ops: Sequence[str] | None = None
) -> list[Case]:
    """The orthogonality cases of ``size`` ("full", "quick", "tiny") on ``backend``.

    ``ops``: the ops to build (default: all, or the quick subset for "quick"); an op named
    explicitly is built at every shape its kind of input has at that size. Rows are ordered
    by dtype, then op family (the Gram ops shape by shape, so that frobenius, offdiag and
    spectral of one W are side by side and share its cached input), then shape.
    """
    device = check_request("orthogonality_cases", backend, ops, OPS)
    grid = _GRIDS[(device, size)]
    selected = [op for op in OPS if op in (ops or grid.ops)]
    pairs: list[tuple[str, Shape | str]] = []
    for w in grid.w:  # the Gram ops, shape by shape
        pairs += [(op, w) for op in selected if op in GRAM_OPS and w in _op_shapes(op, grid)]
    for op in selected:
        if op not in GRAM_OPS:
            pairs += [(op, s) for s in _op_shapes(op, grid)]
    cases = [
        _case(op, spec, dtype, backend, device)
        for dtype in grid.dtypes
        for op, spec in pairs
    ]
    if device == "cpu":
        cases += [
            _case(op, shape, SMALL_CALL_DTYPE, backend, device, small_call=True)
            for op, shape in SMALL_CALLS
            if op in selected
        ]
    return cases


def _case(
    op: str, spec: Shape | str, dtype: str, backend: str, device: str, small_call: bool = False
) -> Case:
    """One case: ``spec`` is W's (Y's) shape, or a model's label for ``ortho_model``."""
    model = spec if isinstance(spec, str) else None
    shape: Shape = (len(MODELS[spec]),) if isinstance(spec, str) else spec
    call = _fastops_call(op)
    return Case(
        family="orthogonality",
        op=op,
        shape=shape,
        dtype=dtype,
        backend=backend,
        nbytes=nbytes_floor(op, shape, np.dtype(dtype).itemsize, model),
        make_inputs=_inputs(op, backend, shape, dtype, model),
        impl=Impl(
            name="fastops",
            label=f"fastops.{op} ({backend})",
            call=call,
            clock="cupy" if device == "cuda" else "host",
        ),
        peer_fn=partial(ortho_peers, op, device, shape, dtype, model, call),
        floor_impl=_floor_impl(op, backend),
        shape_label=model or "",
        small_call=small_call,
    )


register_family("orthogonality", orthogonality_cases, OPS)
