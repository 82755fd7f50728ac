"""Benchmark cases of the smooth family: logsumexp, softmax, log_softmax, smooth_max,
soft_argmax and their backward functions, reduced along the last axis of a (rows, n) array.

Shapes follow ``performance.md``: a square matrix, many short rows and few very long rows on
the CPU; on the GPU the same three regimes at GPU scale plus wide attention-like rows.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

import numpy as np

from .cases import Case, Impl, check_request, register_family
from .devices import random_array
from .peers import peers_for

FORWARD_OPS: tuple[str, ...] = ("logsumexp", "softmax", "log_softmax", "smooth_max", "soft_argmax")
BACKWARD_OPS: tuple[str, ...] = (
    "softmax_backward",
    "log_softmax_backward",
    "logsumexp_backward",
    "smooth_max_backward",
    "soft_argmax_backward",
)
OPS: tuple[str, ...] = FORWARD_OPS + BACKWARD_OPS
#: --quick on the CPU: the ops of the README's headline targets. Each extra op or dtype costs a
#: Numba compilation of 1-3 s on two cores, which is most of a one-minute budget; smooth_max is
#: logsumexp's kernel, and soft_argmax and the backward ops are in the full run.
QUICK_OPS: tuple[str, ...] = ("logsumexp", "softmax", "log_softmax")
#: --quick on the GPU (NVRTC compiles in milliseconds): every forward op and two backward ones.
QUICK_OPS_GPU: tuple[str, ...] = FORWARD_OPS + ("softmax_backward", "log_softmax_backward")

#: (shapes, dtypes) per device and size. --quick times float32 only, the dtype of the small
#: calls below, so the two share their compilations; the GPU times float32 only, the dtype GPU
#: users run.
_SHAPES: dict[tuple[str, str], tuple[tuple[tuple[int, int], ...], tuple[str, ...]]] = {
    ("cpu", "full"): (((4096, 4096), (1048576, 16), (8, 2097152)), ("float32", "float64")),
    ("cpu", "quick"): (((4096, 4096),), ("float32",)),
    ("cpu", "tiny"): (((67, 129),), ("float64",)),
    ("cuda", "full"): (
        ((65536, 1024), (16777216, 16), (64, 1048576), (4096, 32768)),
        ("float32", "float64"),
    ),
    ("cuda", "quick"): (((65536, 1024),), ("float32",)),
    ("cuda", "tiny"): (((1031, 65),), ("float32",)),
}
#: --quick on the GPU also times the short-row and long-row regimes for the headline op.
_QUICK_EXTRA: dict[str, tuple[tuple[str, tuple[int, int]], ...]] = {
    "cpu": (),
    "cuda": (("logsumexp", (16777216, 16)), ("logsumexp", (64, 1048576))),
}
#: Small calls (CPU, every size, float32): an attention-like block of 64 rows of 128, tens of
#: microseconds per call, the size at which waking a sleeping thread pool costs more than the
#: work itself.
SMALL_CALLS: tuple[tuple[str, tuple[int, int]], ...] = (
    ("logsumexp", (64, 128)),
    ("softmax", (64, 128)),
)
SMALL_CALL_DTYPE = "float32"


def nbytes_floor(op: str, rows: int, n: int, itemsize: int) -> int:
    """Bytes the op must move: each input read once, each output written once."""
    full = rows * n * itemsize
    row = rows * itemsize
    if op in ("logsumexp", "smooth_max", "soft_argmax"):
        return full + row  # read x, write one value per row
    if op in ("softmax", "log_softmax"):
        return 2 * full  # read x, write y
    if op in ("softmax_backward", "log_softmax_backward"):
        return 3 * full  # read y and dy, write dx
    if op == "logsumexp_backward":
        return 2 * full + 2 * row  # read a, out, dout; write dx
    if op in ("smooth_max_backward", "soft_argmax_backward"):
        return 2 * full + row  # read x, dout; write dx
    raise ValueError(f"nbytes_floor: unknown smooth op {op!r}")


def _inputs(op: str, backend: str, shape: tuple[int, int], dtype: str) -> Callable[[int], tuple]:
    """``make_inputs(seed)`` for ``op``: realistic values (softmax outputs where the op
    expects them), distinct random streams per argument and per rotated set."""
    rows = (shape[0],)

    def make(seed: int) -> tuple:
        s = 16 * seed  # room for several arguments per input set

        def x(kind: str = "normal") -> Any:
            return random_array(backend, shape, dtype, s, kind)

        def dout() -> Any:
            return random_array(backend, rows, dtype, s + 1)

        if op in FORWARD_OPS:
            return (x(),)
        if op == "softmax_backward":
            return (x("simplex"), random_array(backend, shape, dtype, s + 2))
        if op == "log_softmax_backward":
            return (x("log_simplex"), random_array(backend, shape, dtype, s + 2))
        if op == "logsumexp_backward":
            import fastops

            a = x()
            return (a, fastops.logsumexp(a, axis=-1), dout())
        return (x(), dout())

    return make


def _axis_last(fn: Callable[..., Any]) -> Callable[..., Any]:
    def call(*args: Any) -> Any:
        return fn(*args, axis=-1)

    call.__name__ = getattr(fn, "__name__", "call")
    return call


def smooth_cases(
    size: str = "full", backend: str = "numba", ops: Sequence[str] | None = None
) -> list[Case]:
    """The smooth-family cases of ``size`` ("full", "quick", "tiny") on ``backend``.

    ``ops``: the ops to build (default: all ops, or :data:`QUICK_OPS` for "quick"); an op
    named explicitly is built at every shape of the size, even when "quick" would skip it.
    Rows are ordered by dtype, shape, op, so that consecutive cases share cached inputs; the
    small calls (:data:`SMALL_CALLS`, CPU only) come last.
    """
    device = check_request("smooth_cases", backend, ops, OPS)
    shapes, dtypes = _SHAPES[(device, size)]
    quick_ops = QUICK_OPS_GPU if device == "cuda" else QUICK_OPS
    selected = tuple(ops) if ops else (quick_ops if size == "quick" else OPS)
    grid: list[tuple[str, tuple[int, int]]] = [(op, shape) for shape in shapes for op in selected]
    if size == "quick":
        grid += [(op, shape) for op, shape in _QUICK_EXTRA[device] if op in selected]
    # --quick leaves out the NumPy reference (the executable spec, not what a user would call)
    # on the large shapes: with its warm-up, 2-4 s per row on two cores, a sixth of the minute.
    with_reference = size != "quick"
    cases = [
        _case(op, shape, dtype, backend, device, with_reference=with_reference)
        for dtype in dtypes
        for op, shape in grid
    ]
    if device == "cpu":
        cases += [
            _case(op, shape, SMALL_CALL_DTYPE, backend, device, small_call=True)
            for op, shape in SMALL_CALLS
            if op in selected
        ]
    return cases


def _case(
    op: str, shape: tuple[int, int], dtype: str, backend: str, device: str,
    small_call: bool = False, with_reference: bool = True,
) -> Case:
    import fastops
    from fastops.smooth import reference

    call = _axis_last(getattr(fastops, op))
    return Case(
        family="smooth",
        op=op,
        shape=shape,
        dtype=dtype,
        backend=backend,
        nbytes=nbytes_floor(op, shape[0], shape[1], np.dtype(dtype).itemsize),
        make_inputs=_inputs(op, backend, shape, dtype),
        impl=Impl(
            name="fastops",
            label=f"fastops.{op} ({backend})",
            call=call,
            clock="cupy" if device == "cuda" else "host",
        ),
        peer_fn=partial(peers_for, op, device, call,
                        _axis_last(getattr(reference, op)) if with_reference else None),
        small_call=small_call,
    )


register_family("smooth", smooth_cases, OPS)
