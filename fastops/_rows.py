"""View an N-d array as contiguous ``(rows, n)`` along the reduced axes, and back.

Kernels only ever see C-contiguous 2-D arrays in native byte order whose last axis is the
reduction. ``RowLayout`` remembers how the input was permuted so results can be put back in the
caller's shape. When the reduced axes are already the trailing ones of a C-contiguous native
array, no copy is made.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np

#: A per-element argument as (distinct rows (k, n), row index (rows,)): row r is
#: ``pair[0][pair[1][r]]``. See RowLayout.broadcast_rows.
RowPair = tuple[Any, Any]


@dataclass(frozen=True)
class RowLayout:
    """How an array of ``shape`` maps onto ``(rows, n)`` rows along ``axes``."""

    shape: tuple[int, ...]
    axes: tuple[int, ...]

    # Cached (a layout is computed once per call and read several times): the properties and
    # the moveaxis calls they replace were a quarter of a small call's Python time.
    @cached_property
    def kept_axes(self) -> tuple[int, ...]:
        return tuple(i for i in range(len(self.shape)) if i not in self.axes)

    @cached_property
    def trailing(self) -> bool:
        """Whether the reduced axes are the last ones, in order (no axis needs moving)."""
        ndim = len(self.shape)
        return self.axes == tuple(range(ndim - len(self.axes), ndim))

    @cached_property
    def moved_shape(self) -> tuple[int, ...]:
        """The shape after moving the reduced axes to the end."""
        return tuple(self.shape[i] for i in self.kept_axes + self.axes)

    @cached_property
    def rows(self) -> int:
        return math.prod(self.shape[i] for i in self.kept_axes)

    @cached_property
    def n(self) -> int:
        return math.prod(self.shape[i] for i in self.axes)

    def reduced_shape(self, keepdims: bool) -> tuple[int, ...]:
        """The shape of a per-row result (a reduction), with or without the reduced axes."""
        if keepdims:
            return tuple(1 if i in self.axes else s for i, s in enumerate(self.shape))
        return tuple(self.shape[i] for i in self.kept_axes)

    def to_rows(self, xp: Any, arr: Any, dtype: Any) -> Any:
        """``arr`` (of ``self.shape``) as a C-contiguous ``(rows, n)`` array of ``dtype``.

        The result is a new array or a read-only-safe view: kernels never write to it. On the
        CPU the transposing copies and float16 conversions NumPy makes slowly are made by
        fastops._relayout instead.
        """
        if xp is np:
            from . import _relayout  # Numba: imported on the first CPU copy, not with fastops

            fast = _relayout.rows_copy(arr, self.axes, self.rows, self.n, dtype)
            if fast is not None:
                return fast
        moved = arr if self.trailing else \
            xp.moveaxis(arr, self.axes, tuple(range(-len(self.axes), 0)))
        return xp.ascontiguousarray(moved.reshape(self.rows, self.n), dtype=dtype)

    def broadcast_rows(self, xp: Any, arr: Any, dtype: Any) -> RowPair:
        """A per-element argument (a mask, weights) broadcastable to ``self.shape``, as its
        distinct rows and an index: ``(rows2d, index)`` with ``rows2d`` a C-contiguous
        ``(k, n)`` array of ``dtype`` and ``index`` an ``(rows,)`` intp array such that row
        ``r`` of the broadcast argument is ``rows2d[index[r]]``.

        Only the kept axes along which ``arr`` really varies are copied: a key mask
        ``(B, 1, 1, T)`` for scores ``(B, H, Q, T)`` becomes ``B`` rows, not ``B * H * Q``.
        Broadcasting along the reduced axes is still materialised, once per distinct row.
        An argument that varies along every kept axis costs the ``(rows, n)`` copy
        :meth:`to_rows` makes, plus an identity index of 8 bytes per row.
        """
        full = xp.broadcast_to(arr, self.shape)
        varying = {ax for ax in self.kept_axes if full.shape[ax] > 1 and full.strides[ax] != 0}
        distinct = full[tuple(slice(None) if (ax in self.axes or ax in varying) else
                              slice(0, 1) for ax in range(len(self.shape)))]
        rows2d = RowLayout(tuple(distinct.shape), self.axes).to_rows(xp, distinct, dtype)
        index_shape = tuple(self.shape[ax] if ax in varying else 1 for ax in self.kept_axes)
        kept_shape = tuple(self.shape[ax] for ax in self.kept_axes)
        index = xp.arange(rows2d.shape[0], dtype=np.intp).reshape(index_shape)
        return rows2d, xp.ascontiguousarray(xp.broadcast_to(index, kept_shape).reshape(-1))

    def row_values(self, xp: Any, value: Any, keepdims: bool, dtype: Any) -> Any:
        """A per-row argument (``out``, ``dout``), given in the reduced shape, as ``(rows,)``."""
        target = self.reduced_shape(keepdims)
        arr = xp.broadcast_to(xp.asarray(value), target)
        if keepdims:
            arr = arr.reshape(self.reduced_shape(False))
        return xp.ascontiguousarray(arr.reshape(self.rows), dtype=dtype)

    def from_rows(self, xp: Any, rows2d: Any) -> Any:
        """A per-element result ``(rows, n)`` back in the input's shape and axis order."""
        moved = rows2d.reshape(self.moved_shape)
        if self.trailing:
            return moved
        return xp.moveaxis(moved, tuple(range(-len(self.axes), 0)), self.axes)

    def from_row_values(self, rows1d: Any, keepdims: bool) -> Any:
        """A per-row result ``(rows,)`` in the reduced shape."""
        return rows1d.reshape(self.reduced_shape(keepdims))


#: The shortest contiguous run of kept elements after the reduced axis that the CPU column
#: kernels take: shorter inner loops do not vectorise well (the short-row tiles of
#: fastops/smooth/cpu.py were introduced for the same reason), so such inputs are copied into
#: rows instead.
COLUMN_MIN_INNER = 16


@dataclass(frozen=True)
class ColumnView:
    """An array viewed, without a copy, as a C-contiguous ``(outer, n, inner)`` array whose
    middle axis is the reduced axes merged: what the column kernels walk (and, when ``inner``
    is 1, a C-contiguous ``(rows, n)`` view for the row kernels).

    ``order`` lists the input's axes of length > 1 in the order the view walks them (the
    largest stride first); results come back in the caller's shape and axis order.
    """

    array: Any
    shape: tuple[int, ...]
    axes: tuple[int, ...]
    order: tuple[int, ...]

    @property
    def rows(self) -> Any:
        """The ``(outer, n)`` row view (only meaningful when ``inner`` is 1)."""
        return self.array.reshape(self.array.shape[0], self.array.shape[1])

    def reduction(self, out: Any, keepdims: bool) -> Any:
        """A per-column result, ``(outer, inner)`` or ``(outer,)``, in the reduced shape."""
        kept = [i for i in self.order if i not in self.axes]
        walked = out.reshape([self.shape[i] for i in kept])
        back = walked.transpose(sorted(range(len(kept)), key=kept.__getitem__))
        layout = RowLayout(self.shape, self.axes)
        return back.reshape(layout.reduced_shape(keepdims))

    def per_column(self, xp: Any, value: Any, keepdims: bool, dtype: Any) -> Any:
        """A per-output argument (a backward op's ``out``, ``dout``), given in the reduced
        shape (or broadcastable to it), as a C-contiguous ``(outer, inner)`` array in the
        order the view walks the kept axes (the inverse of :meth:`reduction`)."""
        layout = RowLayout(self.shape, self.axes)
        arr = xp.broadcast_to(xp.asarray(value), layout.reduced_shape(keepdims))
        kept = layout.kept_axes
        arr = arr.reshape([self.shape[i] for i in kept if self.shape[i] > 1])
        position = {axis: p for p, axis in enumerate(i for i in kept if self.shape[i] > 1)}
        arr = arr.transpose([position[i] for i in self.order if i not in self.axes])
        outer, _, inner = self.array.shape
        return xp.ascontiguousarray(arr, dtype=dtype).reshape(outer, inner)

    def walk(self, xp: Any, arr: Any, dtype: Any) -> Any:
        """Another per-element argument of the input's shape (softmax_backward's ``dy``) as the
        ``(outer, n, inner)`` array this view walks: a view when ``arr`` has the input's
        layout and ``dtype``, else a copy into it."""
        other = column_view(arr, self.axes, dtype, min_inner=1)
        if other is not None and other.order == self.order:
            return other.array
        squeezed = arr.reshape([s for s in self.shape if s > 1])
        position = {axis: p for p, axis in enumerate(i for i in range(len(self.shape))
                                                     if self.shape[i] > 1)}
        walked = squeezed.transpose([position[i] for i in self.order])
        return xp.ascontiguousarray(walked, dtype=dtype).reshape(self.array.shape)

    def walk_broadcast(self, xp: Any, arr: Any) -> Any | None:
        """``arr`` (broadcastable to the input's shape: a mask) as an ``(outer, n, inner)``
        view walked like the input, with stride 0 along the axes it is broadcast over; None
        when its strides do not merge into that view (the caller then copies)."""
        full = xp.broadcast_to(arr, self.shape)
        kept_big = [i for i in range(len(self.shape)) if self.shape[i] > 1]
        position = {axis: p for p, axis in enumerate(kept_big)}
        walked = full.reshape([self.shape[i] for i in kept_big]).transpose(
            [position[i] for i in self.order])
        first = next(p for p, i in enumerate(self.order) if i in self.axes)
        last = first + sum(1 for i in self.order if i in self.axes)
        strides = []
        for lo, hi in ((0, first), (first, last), (last, len(self.order))):
            stride = 0
            for p in range(lo, hi):  # merge axes p: each stride must span the axes after it
                if p + 1 < hi and walked.strides[p] != walked.strides[p + 1] * walked.shape[p + 1]:
                    return None
                stride = walked.strides[p]
            strides.append(stride)
        return xp.lib.stride_tricks.as_strided(walked, shape=self.array.shape,
                                               strides=tuple(strides))

    def elementwise(self, y: Any) -> Any:
        """A per-element result ``(outer, n, inner)`` in the input's shape (and layout)."""
        walked = y.reshape([self.shape[i] for i in self.order])
        back = walked.transpose(sorted(range(len(self.order)), key=self.order.__getitem__))
        return back.reshape(self.shape)


def column_view(arr: Any, axes: tuple[int, ...], dtype: Any,
                min_inner: int = COLUMN_MIN_INNER) -> ColumnView | None:
    """``arr`` (a NumPy array) as a :class:`ColumnView` over ``axes``, or None when that needs a
    copy (the caller then uses :meth:`RowLayout.to_rows`).

    A view exists when ``arr`` already has ``dtype`` in native byte order, its axes sorted by
    stride make it C-contiguous (C and F order, transposes, any permutation of a contiguous
    array), and the reduced axes are adjacent in that order and in increasing order (so the
    merged axis enumerates them in C order, which soft_argmax's index relies on). Strided
    slices, negative and zero strides take the copy. ``inner`` (the kept elements after the
    reduced axis) must be 1 (a row view) or at least ``min_inner``.
    """
    if arr.dtype != dtype or not arr.dtype.isnative or arr.size == 0:
        return None
    if arr.flags.c_contiguous and axes == tuple(range(arr.ndim - len(axes), arr.ndim)):
        return None  # trailing axes of a C array: RowLayout.to_rows is a view already (and the
        # common case of small calls, which this early exit keeps at their old overhead)
    shape, strides = arr.shape, arr.strides
    order = tuple(sorted((i for i in range(arr.ndim) if shape[i] > 1),
                         key=lambda i: -strides[i]))
    expected = arr.itemsize
    for i in reversed(order):
        if strides[i] != expected:
            return None
        expected *= shape[i]
    reduced = [p for p, i in enumerate(order) if i in axes]
    if not reduced or reduced != list(range(reduced[0], reduced[-1] + 1)):
        return None
    if [order[p] for p in reduced] != sorted(order[p] for p in reduced):
        return None
    outer = math.prod(shape[i] for i in order[:reduced[0]])
    n = math.prod(shape[i] for i in order[reduced[0]:reduced[-1] + 1])
    inner = math.prod(shape[i] for i in order[reduced[-1] + 1:])
    if 1 < inner < min_inner:
        return None
    squeezed = arr.reshape([shape[i] for i in range(arr.ndim) if shape[i] > 1])
    position = {axis: p for p, axis in enumerate(i for i in range(arr.ndim) if shape[i] > 1)}
    walked = squeezed.transpose([position[i] for i in order]).reshape(outer, n, inner)
    return ColumnView(walked, tuple(shape), tuple(axes), order)


def half_bits(arr: Any) -> Any:
    """A float16 NumPy array as its uint16 bits, what the CPU kernels read and write (Numba has
    no float16 on the CPU; see fastops._vecmath.load / store); any other argument as it is."""
    return arr.view(np.uint16) if isinstance(arr, np.ndarray) and arr.dtype == np.float16 \
        else arr


def from_half_bits(arr: Any) -> Any:
    """The inverse of :func:`half_bits` for a kernel's result: uint16 bits as float16."""
    return arr.view(np.float16) if arr.dtype == np.uint16 else arr


def as_contiguous(xp: Any, arr: Any, dtype: Any) -> Any:
    """``xp.ascontiguousarray(arr, dtype=dtype)``, with the CPU's F16C conversion for
    C-contiguous float16 <-> float32 (see as_dtype): the one conversion of every family's
    inputs into their kernels' working dtype.

    On the CPU a transposed or F-ordered array (any permutation of a contiguous one) of at
    least fastops._relayout.MIN_ELEMENTS is copied by fastops._relayout's tiled transposing
    copy, at the speed of a plain copy: NumPy's copy of a transposed (65536, 64) float32 array
    took 15.7 ms, the tiled one 1.28 ms (a plain copy 1.27; 2-core VM, 2026-12-03)."""
    if arr.flags.c_contiguous:
        return as_dtype(xp, arr, dtype)
    if xp is np and arr.ndim >= 2:
        from . import _relayout

        n = arr.shape[-1]
        fast = _relayout.rows_copy(arr, (arr.ndim - 1,), arr.size // max(n, 1), n, dtype)
        if fast is not None:
            return fast.reshape(arr.shape)
    return xp.ascontiguousarray(arr, dtype=dtype)


def as_dtype(xp: Any, arr: Any, dtype: Any) -> Any:
    """``arr`` in ``dtype`` (itself when it has it already); on the CPU float16 <-> float32
    goes through fastops._relayout's F16C conversion instead of NumPy's scalar loop."""
    if arr.dtype == dtype:
        return arr
    if xp is np:
        from . import _relayout

        fast = _relayout.convert(arr, dtype)
        if fast is not None:
            return fast
    return arr.astype(dtype)
