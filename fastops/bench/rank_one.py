"""Benchmark cases of the rank_one family: exp(x yᵀ) dense, applied, and chained.

Every op is memory-bound, so the floor is the bytes it must move at the copy bandwidth:

- ``expm_rank1`` (dense): read x, y (2·B·k), write E (B·k²): the write dominates;
- ``expm_rank1_apply``: read x, y, v, write z (4·B·k);
- ``expm_rank1_chain_apply``: shared factors xs, ys (L, k) read once, v read and z written
  once, logdet written (2·L·k + 2·B·k + B), whatever L.

Targets (``performance.md``): dense >= 20x scipy.linalg.expm and torch.matrix_exp on the CPU,
apply and chain within 2x of their floor on the CPU (>= 50% of copy bandwidth); on the GPU
dense >= 70% of its floor and >= 5x torch's closed form, apply and chain >= 80%.

Peers compute the same result the way a user would otherwise write it:

- ``numpy``: the closed form written naively: ``s = (x * y).sum(-1)``,
  ``E = I + (expm1(s)/s) x yᵀ`` through an outer product; ``v + φ(s)(yᵀv) x``; the chain as a
  Python loop over the L factors;
- ``scipy``: ``scipy.linalg.expm`` of the stack of ``x yᵀ`` (one batched call, which SciPy
  loops over; dense only, CPU only; the outer product is part of the timed call, as a user
  would write it);
- ``torch``: dense: ``torch.linalg.matrix_exp`` of the batch of outer products on the CPU and
  torch's closed form on the GPU (the peers the targets name); apply and chain: the closed
  form in torch (CPU, or CUDA through DLPack);
- ``numba`` (GPU cases): the fastops CPU backend on host copies.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

import numpy as np

from .cases import Case, Impl, check_request, register_family
from .devices import installed, random_array
from .peers import PEER_NAMES, host_copy_peer, numpy_peer, torch_peer, torch_usable

OPS: tuple[str, ...] = ("expm_rank1", "expm_rank1_apply", "expm_rank1_chain_apply")
#: Factors of the chain cases.
CHAIN_L = 32

Shape = tuple[int, ...]

#: The ops --quick times when none are named, per device. On the CPU the apply only: the dense
#: matrix's scipy.linalg.expm peer and the chain's torch loop take seconds per call there, and
#: every op is a Numba compilation of seconds.
QUICK_OPS: dict[str, tuple[str, ...]] = {"cpu": ("expm_rank1_apply",), "cuda": OPS}

#: (dense (B, k), apply (B, k), chain (B, k)), dtypes, per (device, size). Dense shapes are
#: (B, k) with E of shape (B, k, k).
_GRIDS: dict[tuple[str, str], tuple[dict[str, tuple[Shape, ...]], tuple[str, ...]]] = {
    ("cpu", "full"): (
        {
            "expm_rank1": ((512, 64), (4096, 64), (256, 512)),
            "expm_rank1_apply": ((65536, 64), (1024, 4096)),
            "expm_rank1_chain_apply": ((65536, 64),),
        },
        ("float32", "float64"),
    ),
    # --quick times expm_rank1_apply only (QUICK_OPS); the others at these shapes when named.
    ("cpu", "quick"): (
        {
            "expm_rank1": ((512, 64),),
            "expm_rank1_apply": ((65536, 64),),
            "expm_rank1_chain_apply": ((65536, 64),),
        },
        ("float64",),
    ),
    ("cpu", "tiny"): (
        {
            "expm_rank1": ((7, 9),),
            "expm_rank1_apply": ((33, 17),),
            "expm_rank1_chain_apply": ((21, 11),),
        },
        ("float64",),
    ),
    ("cuda", "full"): (
        {
            "expm_rank1": ((512, 64), (4096, 64), (256, 512)),
            "expm_rank1_apply": ((65536, 64), (1024, 4096), (1048576, 64)),
            "expm_rank1_chain_apply": ((65536, 64), (1048576, 64)),
        },
        ("float32", "float64"),
    ),
    ("cuda", "quick"): (
        {
            "expm_rank1": ((4096, 64),),
            "expm_rank1_apply": ((1048576, 64), (1024, 4096)),
            "expm_rank1_chain_apply": ((1048576, 64),),
        },
        ("float32",),
    ),
    ("cuda", "tiny"): (
        {
            "expm_rank1": ((7, 9),),
            "expm_rank1_apply": ((33, 17),),
            "expm_rank1_chain_apply": ((21, 11),),
        },
        ("float32",),
    ),
}


def nbytes_floor(op: str, shape: Shape, itemsize: int, L: int = CHAIN_L) -> int:
    """Bytes the op must move: each input read once, each output written once."""
    B, k = shape
    if op == "expm_rank1":
        return (2 * B * k + B * k * k) * itemsize
    if op == "expm_rank1_apply":
        return 4 * B * k * itemsize
    if op == "expm_rank1_chain_apply":
        return (2 * L * k + 2 * B * k + B) * itemsize
    raise ValueError(f"nbytes_floor: unknown rank_one op {op!r}")


def _inputs(op: str, backend: str, shape: Shape, dtype: str) -> Callable[[int], tuple]:
    """``make_inputs(seed)``: x, y with entries ~ N(0, 1/sqrt(k)) (|s| of order 1), v normal;
    the chain's factors scaled by 1/2."""
    B, k = shape

    def make(seed: int) -> tuple:
        s = 8 * seed
        if op == "expm_rank1_chain_apply":
            xs = random_array(backend, (CHAIN_L, k), dtype, s, "kernel")
            ys = random_array(backend, (CHAIN_L, k), dtype, s + 1, "kernel")
            return xs, ys, random_array(backend, (B, k), dtype, s + 2)
        x = random_array(backend, (k, B), dtype, s, "kernel").T  # entries ~ N(0, 1/k)
        y = random_array(backend, (k, B), dtype, s + 1, "kernel").T
        scale = np.dtype(dtype).type(k ** 0.25)
        # C-contiguous (B, k), entries ~ N(0, 1/sqrt(k)): ``x * scale`` alone keeps the
        # transpose's Fortran order, and every timed call then paid a transposing copy of x
        # and y (the apply cases measured 47-87 ms instead of about 7 ms on the 2-core machine)
        x, y = (x * scale).copy(order="C"), (y * scale).copy(order="C")
        if op == "expm_rank1":
            return x, y
        return x, y, random_array(backend, (B, k), dtype, s + 2)

    return make


def _fastops_call(op: str) -> Callable[..., Any]:
    import fastops

    return getattr(fastops, op)


# --------------------------------------------------------------------------------------------
# Peers
# --------------------------------------------------------------------------------------------


def np_dense(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """The closed form, naively: φ(s) from expm1, the outer product, the identity added."""
    s = (x * y).sum(-1)
    phi = np.where(s == 0, 1, np.expm1(s) / np.where(s == 0, 1, s))
    return np.eye(x.shape[-1], dtype=x.dtype) + phi[..., None, None] * (x[..., :, None] *
                                                                       y[..., None, :])


def np_apply(x: np.ndarray, y: np.ndarray, v: np.ndarray) -> np.ndarray:
    s = (x * y).sum(-1)
    phi = np.where(s == 0, 1, np.expm1(s) / np.where(s == 0, 1, s))
    return v + (phi * (y * v).sum(-1))[..., None] * x


def np_chain(xs: np.ndarray, ys: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, Any]:
    z = v
    logdet = 0.0
    for layer in range(xs.shape[-2]):
        x, y = xs[..., layer, :], ys[..., layer, :]
        z = np_apply(x, y, z)
        logdet = logdet + (x * y).sum(-1)
    return z, np.broadcast_to(logdet, v.shape[:-1])


def scipy_dense(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """scipy.linalg.expm of the stack of outer products (SciPy loops over the batch)."""
    from scipy.linalg import expm

    return expm(x[..., :, None] * y[..., None, :])


def _torch_fns(op: str) -> tuple[Callable[..., Any], Callable[..., Any] | None]:
    """(closed form, matrix_exp or None) in torch."""
    import torch

    def phi(s: Any) -> Any:
        return torch.where(s == 0, torch.ones_like(s), torch.expm1(s) / torch.where(
            s == 0, torch.ones_like(s), s))

    def dense(x: Any, y: Any) -> Any:
        s = (x * y).sum(-1)
        eye = torch.eye(x.shape[-1], dtype=x.dtype, device=x.device)
        return eye + phi(s)[..., None, None] * (x[..., :, None] * y[..., None, :])

    def matrix_exp(x: Any, y: Any) -> Any:
        return torch.linalg.matrix_exp(x[..., :, None] * y[..., None, :])

    def apply(x: Any, y: Any, v: Any) -> Any:
        s = (x * y).sum(-1)
        return v + (phi(s) * (y * v).sum(-1))[..., None] * x

    def chain(xs: Any, ys: Any, v: Any) -> tuple[Any, Any]:
        z = v
        logdet = torch.zeros(v.shape[:-1], dtype=v.dtype, device=v.device)
        for layer in range(xs.shape[-2]):
            x, y = xs[..., layer, :], ys[..., layer, :]
            z = apply(x, y, z)
            logdet = logdet + (x * y).sum(-1)
        return z, logdet

    if op == "expm_rank1":
        return dense, matrix_exp
    if op == "expm_rank1_apply":
        return apply, None
    return chain, None


def rank_one_peers(op: str, device: str, fastops_call: Callable[..., Any],
                   wanted: Sequence[str] | None = None) -> tuple[Impl, ...]:
    """The peers of one rank_one case on ``device`` that are installed here."""
    wanted = PEER_NAMES if wanted is None else tuple(wanted)
    peers: list[Impl] = []
    if "numpy" in wanted:
        call, what = {
            "expm_rank1": (np_dense, "closed form, outer product"),
            "expm_rank1_apply": (np_apply, "closed form"),
            "expm_rank1_chain_apply": (np_chain, "closed form, loop over the factors"),
        }[op]
        peers.append(numpy_peer(call, f"NumPy (naive): {what}", device))
    if "scipy" in wanted and op == "expm_rank1" and device == "cpu" and installed("scipy"):
        peers.append(Impl("scipy", "scipy.linalg.expm of the stack of x yᵀ", scipy_dense,
                          slow=True))
    if "torch" in wanted and torch_usable(device):
        closed, matrix_exp = _torch_fns(op)
        # Dense: the targets compare with torch.linalg.matrix_exp on the CPU and with torch's
        # closed form on the GPU (performance.md), so the torch column is that peer there.
        if matrix_exp is not None and device == "cpu":
            peers.append(torch_peer("torch", "torch.linalg.matrix_exp", matrix_exp, device))
        else:
            peers.append(torch_peer("torch", "closed form", closed, device))
    if "numba" in wanted and device == "cuda":
        peers.append(host_copy_peer(fastops_call))
    return tuple(peers)


# --------------------------------------------------------------------------------------------
# The cases
# --------------------------------------------------------------------------------------------


def rank_one_cases(size: str = "full", backend: str = "numba",
                   ops: Sequence[str] | None = None) -> list[Case]:
    """The rank_one cases of ``size`` ("full", "quick", "tiny") on ``backend``."""
    device = check_request("rank_one_cases", backend, ops, OPS)
    shapes, dtypes = _GRIDS[(device, size)]
    default = QUICK_OPS[device] if size == "quick" else OPS
    selected = [op for op in OPS if op in (ops or default)]
    cases = []
    for dtype in dtypes:
        itemsize = np.dtype(dtype).itemsize
        for op in selected:
            for shape in shapes[op]:
                call = _fastops_call(op)
                label = (f"{shape[0]}x({shape[1]},{shape[1]})" if op == "expm_rank1" else
                         f"L{CHAIN_L}x{shape[0]}x{shape[1]}" if op == "expm_rank1_chain_apply"
                         else "")
                cases.append(
                    Case(
                        family="rank_one",
                        op=op,
                        shape=shape,
                        dtype=dtype,
                        backend=backend,
                        nbytes=nbytes_floor(op, shape, itemsize),
                        make_inputs=_inputs(op, backend, shape, dtype),
                        impl=Impl(
                            name="fastops",
                            label=f"fastops.{op} ({backend})",
                            call=call,
                            clock="cupy" if device == "cuda" else "host",
                        ),
                        peer_fn=partial(rank_one_peers, op, device, call),
                        shape_label=label,
                    )
                )
    return cases


register_family("rank_one", rank_one_cases, OPS)
