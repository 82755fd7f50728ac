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
#: --quick leaves out the backward functions whose kernels resemble ones already timed
#: (each extra op costs a Numba compilation, which dominates a one-minute budget).
QUICK_OPS: tuple[str, ...] = FORWARD_OPS + ("softmax_backward", "log_softmax_backward")

#: (shapes, dtypes) per device and size. --quick on the CPU times float64 only, which is the
#: dtype of the performance.md headline (float32 doubles the compilations); the GPU times
#: float32 only, the dtype GPU users run.
_SHAPES: dict[tuple[str, str], tuple[tuple[tuple[int, int], ...], tuple[str, ...]]] = {
    ("cpu", "full"): (((4096, 4096), (1048576, 16), (8, 2097152)), ("float32", "float64")),
    ("cpu", "quick"): (((4096, 4096),), ("float64",)),
    ("cpu", "tiny"): (((67, 129),), ("float64",)),
    ("cuda", "full"): (
        ((65536, 1024), (16777216, 16), (64, 1048576), (4096, 32768)),
        ("float32", "float64"),
    ),
    ("cuda", "quick"): (((65536, 1024),), ("float32",)),
    ("cuda", "tiny"): (((1031, 65),), ("float32",)),
}
#: --quick also times the short-row and long-row regimes for the headline op only.
_QUICK_EXTRA: dict[str, tuple[tuple[str, tuple[int, int]], ...]] = {
    "cpu": (("logsumexp", (1048576, 16)), ("logsumexp", (8, 2097152))),
    "cuda": (("logsumexp", (16777216, 16)), ("logsumexp", (64, 1048576))),
}


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
    Rows are ordered by dtype, shape, op, so that consecutive cases share cached inputs.
    """
    import fastops
    from fastops.smooth import reference

    device = check_request("smooth_cases", backend, ops, OPS)
    shapes, dtypes = _SHAPES[(device, size)]
    selected = tuple(ops) if ops else (QUICK_OPS if size == "quick" else OPS)
    grid: list[tuple[str, tuple[int, int]]] = [(op, shape) for shape in shapes for op in selected]
    if size == "quick":
        grid += [(op, shape) for op, shape in _QUICK_EXTRA[device] if op in selected]
    cases = []
    for dtype in dtypes:
        itemsize = np.dtype(dtype).itemsize
        for op, shape in grid:
            call = _axis_last(getattr(fastops, op))
            cases.append(
                Case(
                    family="smooth",
                    op=op,
                    shape=shape,
                    dtype=dtype,
                    backend=backend,
                    nbytes=nbytes_floor(op, shape[0], shape[1], itemsize),
                    make_inputs=_inputs(op, backend, shape, dtype),
                    impl=Impl(
                        name="fastops",
                        label=f"fastops.{op} ({backend})",
                        call=call,
                        clock="cupy" if device == "cuda" else "host",
                    ),
                    peer_fn=partial(
                        peers_for, op, device, call, _axis_last(getattr(reference, op))
                    ),
                )
            )
    return cases


register_family("smooth", smooth_cases, OPS)
