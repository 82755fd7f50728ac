"""Peers: what a user would call instead of fastops, for each op and device.

Every peer computes the same result as the fastops call of its case from the same input set.
Peers are looked up only for modules that are installed (``importlib.util.find_spec``), and
their modules are imported when a case's peers are built, never at ``import fastops.bench``.

Peer names (the columns of the report):

- ``numpy``: smooth: the NumPy reference ``fastops.smooth.reference`` (the executable spec);
  orthogonality: the plain NumPy formulation (``fastops/bench/orthogonality.py``);
- ``scipy``: ``scipy.special`` (CPU cases only);
- ``torch``: PyTorch on the case's device (CPU tensors sharing memory with the NumPy input,
  or CUDA tensors sharing memory with the CuPy input through DLPack); backward peers use
  torch's own backward kernels (``torch._softmax_backward_data``) or the explicit formula
  autograd would evaluate, without building a graph;
- ``torch_autograd``: torch autograd of the same formula (``loss.backward()``), where fastops
  returns a gradient (orthogonality family);
- ``cupyx``: ``cupyx.scipy.special`` (GPU cases only);
- ``cupy``: CuPy eager code (``cupy.random``, elementwise passes), where no cupyx function
  computes the op (Langevin family; GPU cases only);
- ``numba``: the fastops CPU backend on a host copy of a GPU case's input, so the speed-up
  in that column is "GPU over CPU".

The building blocks (:func:`numpy_peer`, :func:`torch_peer`, :func:`host_copy_peer`,
:func:`torch_usable`) are shared by the families; :func:`peers_for` is the smooth family's:
its peers reduce over the case's ``axis`` (default -1), on the case's own arrays, so an
F-ordered input reaches them F-ordered (``torch.from_numpy`` keeps the strides).
A peer that cannot run a case by design (e.g. it would need a 17 GB temporary) raises
:class:`~fastops.bench.cases.PeerSkipped`, which the runner records as "skip", not "error".
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from functools import cache
from typing import Any

import numpy as np

from .cases import Impl
from .devices import installed, to_host

PEER_NAMES: tuple[str, ...] = ("numpy", "scipy", "torch", "torch_autograd", "cupyx", "cupy",
                               "numba", "dask")

#: The module each peer needs, and how to install it.
PEER_MODULES: dict[str, str] = {
    "numpy": "numpy",
    "scipy": "scipy",
    "torch": "torch",
    "torch_autograd": "torch",
    "cupyx": "cupy",
    "cupy": "cupy",
    "numba": "numba",
    "dask": "dask",
}
INSTALL_HINTS: dict[str, str] = {
    "numpy": "pip install numpy",
    "scipy": "pip install scipy",
    "torch": "pip install torch",
    "cupy": "pip install cupy-cuda12x, or cupy-cuda13x for CUDA 13",
    "numba": "pip install numba",
    "dask": "pip install 'dask[array]'",
}
#: The peers that time cases of each device (the others never apply there).
DEVICE_PEERS: dict[str, tuple[str, ...]] = {
    "cpu": ("numpy", "scipy", "torch", "torch_autograd"),
    "cuda": ("numpy", "torch", "torch_autograd", "cupyx", "cupy", "numba"),
}


def check_peer_names(names: Sequence[str]) -> None:
    """Raise ValueError naming the valid peers when ``names`` holds an unknown one, or
    ImportError with an install hint when a named peer's module is not installed."""
    unknown = [n for n in names if n not in PEER_NAMES]
    if unknown:
        raise ValueError(
            f"unknown peer(s) {', '.join(unknown)}; choose from {', '.join(PEER_NAMES)} "
            "(comma-separated), or none"
        )
    for name in names:
        module = PEER_MODULES[name]
        if not installed(module):
            raise ImportError(
                f"peer {name} needs {module}, which is not installed ({INSTALL_HINTS[module]})"
            )


def missing_peers(devices: Sequence[str] | set[str]) -> dict[str, str]:
    """The peers of ``devices`` ("cpu", "cuda") not usable here, each with how to get it."""
    missing: dict[str, str] = {}
    for device in sorted(devices):
        for name in DEVICE_PEERS.get(device, ()):
            module = PEER_MODULES[name]
            if name in missing:
                continue
            if not installed(module):
                missing[name] = INSTALL_HINTS[module]
            elif module == "torch" and device == "cuda" and not _torch_cuda():
                missing[name] = "this torch has no CUDA: pip install torch with a CUDA build"
    return missing

#: The ops whose scipy.special / cupyx.scipy.special function has the same meaning.
#: smooth_max at temperature 1 *is* logsumexp, which is what a SciPy user would call.
_SCIPY_NAMES: dict[str, str] = {
    "logsumexp": "logsumexp",
    "smooth_max": "logsumexp",
    "softmax": "softmax",
    "log_softmax": "log_softmax",
}


def _host_args(args: tuple) -> tuple:
    return tuple(to_host(a) for a in args)


@cache
def _torch_cuda() -> bool:
    if not installed("torch"):
        return False
    import torch

    return bool(torch.cuda.is_available())


def _torch_forward(op: str, axis: int = -1) -> Callable[..., Any] | None:
    """torch's call for forward ``op`` reduced over dim ``axis`` (soft_argmax: the softmax
    over ``axis``, moved last, times the index vector ``j``; a no-op move for -1)."""
    import torch

    if op in ("logsumexp", "smooth_max"):
        return lambda x: torch.logsumexp(x, dim=axis)
    if op == "softmax":
        return lambda x: torch.softmax(x, dim=axis)
    if op == "log_softmax":
        return lambda x: torch.log_softmax(x, dim=axis)
    if op == "soft_argmax":
        return lambda x, j: torch.movedim(torch.softmax(x, dim=axis), axis, -1) @ j
    return None


def _torch_backward(op: str, axis: int = -1) -> Callable[..., Any] | None:
    """torch's backward of ``op`` over dim ``axis``; a per-row argument (``out``, ``dout``:
    the reduced shape) is broadcast back with ``unsqueeze(axis)``."""
    import torch

    if op == "logsumexp_backward":
        return lambda a, out, dout: dout.unsqueeze(axis) * torch.exp(a - out.unsqueeze(axis))
    if op == "softmax_backward":
        if hasattr(torch, "_softmax_backward_data"):
            return lambda y, dy: torch._softmax_backward_data(dy, y, axis, y.dtype)
        return lambda y, dy: y * (dy - (y * dy).sum(axis, keepdim=True))
    if op == "log_softmax_backward":
        if hasattr(torch, "_log_softmax_backward_data"):
            return lambda y, dy: torch._log_softmax_backward_data(dy, y, axis, y.dtype)
        return lambda y, dy: dy - torch.exp(y) * dy.sum(axis, keepdim=True)
    if op == "smooth_max_backward":
        return lambda x, dout: dout.unsqueeze(axis) * torch.softmax(x, dim=axis)
    if op == "soft_argmax_backward":

        def soft_argmax_backward(x: Any, dout: Any, j: Any) -> Any:
            p = torch.movedim(torch.softmax(x, dim=axis), axis, -1)
            y = p @ j
            return torch.movedim(dout.unsqueeze(-1) * p * (j - y.unsqueeze(-1)), -1, axis)

        return soft_argmax_backward
    return None


def torch_usable(device: str) -> bool:
    """Whether torch is installed and, for "cuda", sees a GPU (imports torch only if installed)."""
    return installed("torch") and (device != "cuda" or _torch_cuda())


def torch_tensors(args: tuple, device: str) -> tuple:
    """Zero-copy torch views of a case's arrays (DLPack on the GPU); other values pass through."""
    import torch

    def view(a: Any) -> Any:
        if device == "cuda" and hasattr(a, "__cuda_array_interface__"):
            return torch.from_dlpack(a)
        if isinstance(a, np.ndarray):
            return torch.from_numpy(a)
        return a

    return tuple(view(a) for a in args)


def torch_peer(
    name: str,
    what: str,
    fn: Callable[..., Any],
    device: str,
    prepare: Callable[[tuple], tuple] | None = None,
) -> Impl:
    """A torch peer calling ``fn`` on torch views of the case's arrays (``prepare`` may add
    to them); timed with CUDA events on the GPU. ``what`` completes the label."""
    import torch

    def to_torch(args: tuple) -> tuple:
        tensors = torch_tensors(args, device)
        return prepare(tensors) if prepare is not None else tensors

    where = "CUDA" if device == "cuda" else "CPU"
    return Impl(
        name=name,
        label=f"torch {torch.__version__} ({where}){': ' + what if what else ''}",
        call=fn,
        prepare=to_torch,
        clock="torch" if device == "cuda" else "host",
    )


def numpy_peer(call: Callable[..., Any], label: str, device: str) -> Impl:
    """A NumPy peer; on a GPU case it runs on host copies (made in setup, never timed)."""
    on_gpu = device == "cuda"
    return Impl(
        name="numpy",
        label=label,
        call=call,
        prepare=_host_args if on_gpu else (lambda args: args),
        slow=True,
        warmup=0 if on_gpu else 1,
    )


def host_copy_peer(fastops_call: Callable[..., Any]) -> Impl:
    """The ``numba`` peer of a GPU case: the fastops CPU backend on host copies."""
    return Impl(
        name="numba",
        label="fastops numba backend (CPU) on a host copy",
        call=fastops_call,
        prepare=_host_args,
    )


def _torch_peer(op: str, device: str, axis: int = -1) -> Impl | None:
    if not torch_usable(device):
        return None
    fn = _torch_forward(op, axis) or _torch_backward(op, axis)
    if fn is None:
        return None
    prepare = None
    if op.startswith("soft_argmax"):
        import torch

        def prepare(tensors: tuple) -> tuple:
            x = tensors[0]
            return tensors + (torch.arange(x.shape[axis], dtype=x.dtype, device=x.device),)

    return torch_peer("torch", "", fn, device, prepare)


def _scipy_peer(op: str, module: str, name: str, clock: str, axis: int = -1) -> Impl | None:
    fname = _SCIPY_NAMES.get(op)
    if fname is None or not installed(module.split(".")[0]):
        return None
    try:
        special = importlib.import_module(f"{module}.special")
    except ImportError:
        return None
    fn = getattr(special, fname, None)
    if fn is None:  # e.g. an older cupyx without softmax
        return None
    return Impl(
        name=name,
        label=f"{module}.special.{fname}",
        call=lambda x: fn(x, axis=axis),
        clock=clock,
        slow=name == "scipy",
    )


def peers_for(
    op: str,
    device: str,
    fastops_call: Callable[..., Any],
    reference_call: Callable[..., Any] | None,
    wanted: Sequence[str] | None = None,
    axis: int = -1,
) -> tuple[Impl, ...]:
    """The peers of one op on ``device`` ("cpu" or "cuda") that are installed here.

    ``fastops_call`` is the case's own call (reused on host copies as the ``numba`` peer of a
    GPU case); ``reference_call`` the NumPy reference taking the same arguments (both already
    reduce over ``axis``). ``wanted`` restricts the peers by name (default: all of
    :data:`PEER_NAMES`); ``axis`` is the axis the scipy, cupyx and torch peers reduce over.
    """
    wanted = PEER_NAMES if wanted is None else tuple(wanted)
    on_gpu = device == "cuda"
    peers: list[Impl | None] = []
    if "numpy" in wanted and reference_call is not None:
        peers.append(numpy_peer(reference_call, "fastops.smooth.reference (NumPy)", device))
    if "scipy" in wanted and not on_gpu:
        peers.append(_scipy_peer(op, "scipy", "scipy", "host", axis))
    if "torch" in wanted:
        peers.append(_torch_peer(op, device, axis))
    if "cupyx" in wanted and on_gpu:
        peers.append(_scipy_peer(op, "cupyx.scipy", "cupyx", "cupy", axis))
    if "numba" in wanted and on_gpu:
        peers.append(host_copy_peer(fastops_call))
    return tuple(p for p in peers if p is not None)
