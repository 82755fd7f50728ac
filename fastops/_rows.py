"""View an N-d array as contiguous ``(rows, n)`` along the reduced axes, and back.

Kernels only ever see C-contiguous 2-D arrays in native byte order whose last axis is the
reduction. ``RowLayout`` remembers how the input was permuted so results can be put back in the
caller's shape. When the reduced axes are already the trailing ones of a C-contiguous native
array, no copy is made.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class RowLayout:
    """How an array of ``shape`` maps onto ``(rows, n)`` rows along ``axes``."""

    shape: tuple[int, ...]
    axes: tuple[int, ...]

    @property
    def kept_axes(self) -> tuple[int, ...]:
        return tuple(i for i in range(len(self.shape)) if i not in self.axes)

    @property
    def moved_shape(self) -> tuple[int, ...]:
        """The shape after moving the reduced axes to the end."""
        return tuple(self.shape[i] for i in self.kept_axes + self.axes)

    @property
    def rows(self) -> int:
        return math.prod(self.shape[i] for i in self.kept_axes)

    @property
    def n(self) -> int:
        return math.prod(self.shape[i] for i in self.axes)

    def reduced_shape(self, keepdims: bool) -> tuple[int, ...]:
        """The shape of a per-row result (a reduction), with or without the reduced axes."""
        if keepdims:
            return tuple(1 if i in self.axes else s for i, s in enumerate(self.shape))
        return tuple(self.shape[i] for i in self.kept_axes)

    def to_rows(self, xp: Any, arr: Any, dtype: Any) -> Any:
        """``arr`` (of ``self.shape``) as a C-contiguous ``(rows, n)`` array of ``dtype``.

        The result is a new array or a read-only-safe view: kernels never write to it.
        """
        moved = xp.moveaxis(arr, self.axes, tuple(range(-len(self.axes), 0))) if self.axes \
            else arr
        return xp.ascontiguousarray(moved.reshape(self.rows, self.n), dtype=dtype)

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
        if not self.axes:
            return moved
        return xp.moveaxis(moved, tuple(range(-len(self.axes), 0)), self.axes)

    def from_row_values(self, rows1d: Any, keepdims: bool) -> Any:
        """A per-row result ``(rows,)`` in the reduced shape."""
        return rows1d.reshape(self.reduced_shape(keepdims))
