"""Benchmark cases of the smooth family: logsumexp, softmax, log_softmax, smooth_max,
soft_argmax and their backward functions, reduced along the last axis of a (rows, n) array
(the layouts cases below: other axes and memory orders).

Shapes follow ``performance.md``: a square matrix, many short rows and few very long rows on
the CPU; on the GPU the same three regimes at GPU scale plus wide attention-like rows.

The layouts cases (:data:`LAYOUTS`; the full run, not --quick; every op) time the same
ops over other axes and memory orders, beside the (4096, 4096) axis=-1 rows: on the CPU axis
0 of a C-contiguous (4096, 4096) array ("4096x4096 ax0"), axis -1 of a Fortran-ordered one
("F 4096x4096") and the middle axis of a (64, 4096, 64) array ("64x4096x64 ax1"), which the
CPU backend reduces where the input lies, without a copy; on the GPU only the axis-0 analogue
of the (65536, 1024) rows ("65536x1024 ax0"). Their peers reduce over the same axis of the
same arrays (F-ordered where fastops' is).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
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


@dataclass(frozen=True)
class Layout:
    """An input of a smooth case: its shape, memory order ("C" or "F") and reduced axis."""

    shape: tuple[int, ...]
    axis: int = -1
    order: str = "C"

    @property
    def n(self) -> int:
        """The reduced length."""
        return self.shape[self.axis]

    @property
    def rows(self) -> int:
        """The number of kept elements: one reduction each."""
        return math.prod(self.shape) // self.n

    @property
    def reduced_shape(self) -> tuple[int, ...]:
        """The shape of a per-row value (``dout`` of a reduction's backward)."""
        axis = self.axis % len(self.shape)
        return self.shape[:axis] + self.shape[axis + 1:]

    @property
    def label(self) -> str:
        """The case's ``shape_label``: "" for the plain C-ordered last-axis case (the table
        then prints the shape), else e.g. "4096x4096 ax0", "F 4096x4096", "64x4096x64 ax1"."""
        axis = self.axis % len(self.shape)
        if self.order == "C" and axis == len(self.shape) - 1:
            return ""
        prefix = "F " if self.order == "F" else ""
        suffix = "" if axis == len(self.shape) - 1 else f" ax{axis}"
        return prefix + "x".join(str(d) for d in self.shape) + suffix


#: The layouts cases per (device, size): the forward ops (:data:`LAYOUT_OPS`) over other axes
#: and memory orders, in both dtypes of the size; none in --quick (its one-minute budget).
LAYOUTS: dict[tuple[str, str], tuple[Layout, ...]] = {
    ("cpu", "full"): (
        Layout((4096, 4096), axis=0),
        Layout((4096, 4096), axis=-1, order="F"),
        Layout((64, 4096, 64), axis=1),
    ),
    ("cpu", "tiny"): (
        Layout((67, 129), axis=0),
        Layout((67, 129), axis=-1, order="F"),
        Layout((5, 67, 19), axis=1),
    ),
    ("cuda", "full"): (Layout((65536, 1024), axis=0),),
    ("cuda", "tiny"): (Layout((1031, 65), axis=0),),
}
LAYOUT_OPS: tuple[str, ...] = OPS  # the backward ops read their inputs where they lie too

#: float16 cases (CPU, full run): every op over the last axis and over axis 0 of (4096, 4096),
#: against the float32 rows of the same shapes (the target: within 1.2x of float32). On the
#: CPU the kernels read and write float16 and compute in float32 (README, "float16 on the
#: CPU"); the GPU reads float16 natively and is timed in float32 only, like the rest.
HALF_LAYOUTS: dict[tuple[str, str], tuple[Layout, ...]] = {
    ("cpu", "full"): (Layout((4096, 4096)), Layout((4096, 4096), axis=0)),
    ("cpu", "tiny"): (Layout((67, 129)), Layout((67, 129), axis=0)),
}


def nbytes_floor(op: str, rows: int, n: int, itemsize: int) -> int:
    """Bytes the op must move: each input read once, each output written once.

    ``rows``: the number of reductions (the kept elements: the product of the other axes),
    ``n``: the reduced length; the same for every axis and memory order."""
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


def _inputs(op: str, backend: str, layout: Layout, dtype: str) -> Callable[[int], tuple]:
    """``make_inputs(seed)`` for ``op``: realistic values (softmax outputs where the op
    expects them), distinct random streams per argument and per rotated set.

    An F-ordered input is the transpose of a C-ordered draw of the reversed shape (no copy). A
    simplex sums to one along the last axis of the draw, not along a layouts case's reduced
    axis: the backward layouts cases time the same arithmetic on values of the same range."""

    def array(seed: int, kind: str = "normal") -> Any:
        if layout.order == "F":
            return random_array(backend, layout.shape[::-1], dtype, seed, kind).T
        return random_array(backend, layout.shape, dtype, seed, kind)

    def make(seed: int) -> tuple:
        s = 16 * seed  # room for several arguments per input set

        def dout() -> Any:
            return random_array(backend, layout.reduced_shape, dtype, s + 1)

        if op in FORWARD_OPS:
            return (array(s),)
        if op == "softmax_backward":
            return (array(s, "simplex"), array(s + 2))
        if op == "log_softmax_backward":
            return (array(s, "log_simplex"), array(s + 2))
        if op == "logsumexp_backward":
            import fastops

            a = array(s)
            return (a, fastops.logsumexp(a, axis=layout.axis), dout())
        return (array(s), dout())

    return make


def _on_axis(fn: Callable[..., Any], axis: int) -> Callable[..., Any]:
    def call(*args: Any) -> Any:
        return fn(*args, axis=axis)

    call.__name__ = getattr(fn, "__name__", "call")
    return call


def smooth_cases(
    size: str = "full", backend: str = "numba", ops: Sequence[str] | None = None
) -> list[Case]:
    """The smooth-family cases of ``size`` ("full", "quick", "tiny") on ``backend``.

    ``ops``: the ops to build (default: all ops, or :data:`QUICK_OPS` for "quick"); an op
    named explicitly is built at every shape of the size, even when "quick" would skip it.
    Rows are ordered by dtype, shape, op, so that consecutive cases share cached inputs; the
    layouts cases (:data:`LAYOUTS`, the forward ops among ``ops``) end each dtype's rows; the
    small calls (:data:`SMALL_CALLS`, CPU only) come last.
    """
    device = check_request("smooth_cases", backend, ops, OPS)
    shapes, dtypes = _SHAPES[(device, size)]
    quick_ops = QUICK_OPS_GPU if device == "cuda" else QUICK_OPS
    selected = tuple(ops) if ops else (quick_ops if size == "quick" else OPS)
    grid: list[tuple[str, Layout]] = [(op, Layout(shape)) for shape in shapes for op in selected]
    if size == "quick":
        grid += [(op, Layout(shape)) for op, shape in _QUICK_EXTRA[device] if op in selected]
    grid += [(op, layout) for layout in LAYOUTS.get((device, size), ())
             for op in selected if op in LAYOUT_OPS]
    # --quick leaves out the NumPy reference (the executable spec, not what a user would call)
    # on the large shapes: with its warm-up, 2-4 s per row on two cores, a sixth of the minute.
    with_reference = size != "quick"
    cases = [
        _case(op, layout, dtype, backend, device, with_reference=with_reference)
        for dtype in dtypes
        for op, layout in grid
    ]
    cases += [
        _case(op, layout, "float16", backend, device, with_reference=with_reference)
        for layout in HALF_LAYOUTS.get((device, size), ())
        for op in selected
    ]
    if device == "cpu":
        cases += [
            _case(op, Layout(shape), SMALL_CALL_DTYPE, backend, device, small_call=True)
            for op, shape in SMALL_CALLS
            if op in selected
        ]
    return cases


def _case(
    op: str, layout: Layout, dtype: str, backend: str, device: str,
    small_call: bool = False, with_reference: bool = True,
) -> Case:
    import fastops
    from fastops.smooth import reference

    call = _on_axis(getattr(fastops, op), layout.axis)
    return Case(
        family="smooth",
        op=op,
        shape=layout.shape,
        dtype=dtype,
        backend=backend,
        nbytes=nbytes_floor(op, layout.rows, layout.n, np.dtype(dtype).itemsize),
        make_inputs=_inputs(op, backend, layout, dtype),
        impl=Impl(
            name="fastops",
            label=f"fastops.{op} ({backend})",
            call=call,
            clock="cupy" if device == "cuda" else "host",
        ),
        peer_fn=partial(peers_for, op, device, call,
                        _on_axis(getattr(reference, op), layout.axis) if with_reference else None,
                        axis=layout.axis),
        shape_label=layout.label,
        small_call=small_call,
    )


register_family("smooth", smooth_cases, OPS)
