"""Benchmark cases of the ``torch`` family: fastops.torch in a training step, against torch.

Each case is one forward and one backward (autograd) of a smooth op on a (rows, n) float32
tensor, reduced over the last axis: ``softmax_fwd_bwd``, ``log_softmax_fwd_bwd`` and
``logsumexp_fwd_bwd``. fastops' side is ``fastops.torch.<op>`` (the custom op, its fused
backward kernel, the zero-copy conversions); the peers compute the same forward and gradient
with ``torch.<op>`` and ``backward()`` (``torch``) and with the NumPy reference forward and
backward functions (``numpy``). Every call returns ``(y, dx)``.

The floor is the bytes the two ops must move: softmax / log_softmax read x and write y, then
read y and dy and write dx (5 arrays); logsumexp reads x and writes a row value, then reads
x, out and dout and writes dx (3 arrays and 3 row vectors).

CPU only (the ``numba`` backend): the CUDA path of fastops.torch has not been run on a GPU
yet. Not part of ``--quick`` (torch's import alone is seconds of its one-minute budget);
``fastops bench --family torch`` runs it. Building the cases never imports torch.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial
from typing import Any

import numpy as np

from .cases import Case, Impl, check_request, register_family
from .devices import installed, random_array
from .peers import PEER_NAMES, numpy_peer, torch_peer, torch_usable

OPS: tuple[str, ...] = ("softmax_fwd_bwd", "log_softmax_fwd_bwd", "logsumexp_fwd_bwd")
_SHAPES: dict[str, tuple[tuple[tuple[int, int], ...], tuple[str, ...]]] = {
    "full": (((4096, 4096),), ("float32",)),
    "quick": ((), ()),
    "tiny": (((67, 129),), ("float64",)),
}


def _base(op: str) -> str:
    return op.removesuffix("_fwd_bwd")


def nbytes_floor(op: str, rows: int, n: int, itemsize: int) -> int:
    """Bytes a forward + backward must move (see the module docstring)."""
    full, row = rows * n * itemsize, rows * itemsize
    if op in ("softmax_fwd_bwd", "log_softmax_fwd_bwd"):
        return 5 * full
    if op == "logsumexp_fwd_bwd":
        return 3 * full + 3 * row
    raise ValueError(f"nbytes_floor: unknown torch-family op {op!r}")


def _inputs(op: str, backend: str, shape: tuple[int, int], dtype: str):
    def make(seed: int) -> tuple:
        s = 16 * seed
        x = random_array(backend, shape, dtype, s)
        grad_shape = shape[:-1] if op == "logsumexp_fwd_bwd" else shape
        return x, random_array(backend, grad_shape, dtype, s + 1)

    return make


def _fastops_torch_call(op: str):
    """fastops.torch forward + autograd backward on zero-copy views of the case's arrays."""

    def call(x: np.ndarray, g: np.ndarray) -> tuple:
        import torch

        import fastops.torch as ft

        xt = torch.from_numpy(x).requires_grad_()
        if op == "logsumexp_fwd_bwd":
            y = ft.logsumexp(xt, axis=-1)
        else:
            y = getattr(ft, _base(op))(xt, axis=-1)
        y.backward(torch.from_numpy(g))
        return y.detach(), xt.grad

    return call


def _torch_call(op: str):
    def call(x: Any, g: Any) -> tuple:
        import torch

        xt = x.detach().requires_grad_()
        y = getattr(torch, _base(op))(xt, -1)
        y.backward(g)
        return y.detach(), xt.grad

    return call


def _reference_call(op: str):
    from fastops.smooth import reference

    def call(x: np.ndarray, g: np.ndarray) -> tuple:
        base = _base(op)
        y = getattr(reference, base)(x, axis=-1)
        if base == "logsumexp":
            return y, reference.logsumexp_backward(x, y, g, axis=-1)
        return y, getattr(reference, f"{base}_backward")(y, g, axis=-1)

    return call


def _peers(op: str, wanted: Sequence[str] | None) -> tuple[Impl, ...]:
    wanted = PEER_NAMES if wanted is None else tuple(wanted)
    peers = []
    if "numpy" in wanted:
        peers.append(numpy_peer(_reference_call(op), "fastops.smooth.reference (NumPy), "
                                "forward + backward", "cpu"))
    if "torch" in wanted and torch_usable("cpu"):
        peers.append(torch_peer("torch", f"torch.{_base(op)} + backward()", _torch_call(op),
                                "cpu"))
    return tuple(peers)


def torch_cases(size: str = "full", backend: str = "numba",
                ops: Sequence[str] | None = None) -> list[Case]:
    """The torch-family cases of ``size`` on ``backend`` (CPU only: none for "cupy", and none
    where torch is not installed)."""
    device = check_request("torch_cases", backend, ops, OPS)
    if device != "cpu" or not installed("torch"):
        return []
    shapes, dtypes = _SHAPES[size]
    selected = tuple(ops) if ops else OPS
    if size == "quick" and ops:  # named explicitly: built at the full shape
        shapes, dtypes = _SHAPES["full"]
    cases = []
    for dtype in dtypes:
        for shape in shapes:
            for op in selected:
                cases.append(Case(
                    family="torch",
                    op=op,
                    shape=shape,
                    dtype=dtype,
                    backend=backend,
                    nbytes=nbytes_floor(op, shape[0], shape[1], np.dtype(dtype).itemsize),
                    make_inputs=_inputs(op, backend, shape, dtype),
                    impl=Impl(name="fastops", label=f"fastops.torch.{_base(op)} + backward()",
                              call=_fastops_torch_call(op)),
                    peer_fn=partial(_peers, op),
                ))
    return cases


register_family("torch", torch_cases, OPS)
