"""Parallel Numba copies behind :mod:`fastops._rows` on the CPU: the transposing copy into
``(rows, n)`` and the float16 <-> float32 conversions, which NumPy makes slowly.

Every input the kernels cannot read where it lies (a ``where`` mask over a non-trailing axis,
the backward ops over axis 0, float16) goes through ``RowLayout.to_rows``. NumPy's
``ascontiguousarray`` of a moved-axes view reads with the stride of a whole row: 275 ms for a
(4096, 4096) float32 array over axis 0, 8.8x a plain copy (31 ms), and float16 conversion is a
scalar loop (72 ms to float32 for 2^24 elements; 118 ms back, 542 ms for softmax outputs, whose
many float16 subnormals NumPy converts slowly). Here the transposing copy goes in tiles of
``_TILE`` x ``_TILE`` elements and the conversions through F16C (``fastops._vecmath``), both
parallel through :class:`fastops._numba.Launch`: the (4096, 4096) float32 transpose takes
38-46 ms on 2 threads, the float16 conversions 8 ms each way (into preallocated outputs).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numba import prange, types
from numba.extending import overload

from ._numba import FASTMATH, WORKERS, Launch, jit_pair, next_chunk
from ._rows import column_view, half_bits
from ._vecmath import float32_to_half, half_to_float32

#: Below this many elements NumPy's copies are left alone: they are then cache-resident and
#: fast (a (256, 256) float32 transpose takes about 60 us either way) and a Numba call costs a
#: few us of dispatch on its own.
MIN_ELEMENTS = 1 << 16

#: Tile edge of the transposing copy. Measured on one thread (2-core VM, 2026-12-03, float32
#: over axis 0, medians of 7; NumPy's copy in brackets): 64 x 64 tiles through a tile buffer
#: 72 ms for (4096, 4096) [292], 0.30 ms for (512, 512) [0.51], 0.088 ms for (256, 256)
#: [0.093]; 32 x 32 tiles written straight from the strided reads were as fast on the large
#: array but 0.66 and 0.16 ms on the small ones, 16 x 16 tiles 2.4x slower on the large one.
_TILE = 64

# Single-thread cost per element, for Launch's parallel-or-serial decision (2-core development
# VM, 2026-12-03, (4096, 4096) float32 and float16 into fresh outputs, medians of 7: 72 ms and
# 45 ms, the first touch of the output's pages included).
_NS_PER_ELEMENT = {"transpose": 4.0, "convert": 2.5}


def _element(value: Any, like: Any) -> Any:  # pragma: no cover - replaced when compiled
    return value


@overload(_element, jit_options={"fastmath": FASTMATH})
def _element_overload(value, like):
    """``value`` as an element of the array ``like``: float16 bits (uint16) widened to
    float32, float32 narrowed to float16 bits, any other value as it is."""
    if value == types.uint16 and like.dtype == types.float32:
        return lambda value, like: half_to_float32(value)
    if value == types.float32 and like.dtype == types.uint16:
        return lambda value, like: float32_to_half(value)
    return lambda value, like: value


def _transpose_impl(src, dst, work):
    """dst[o * inner + i, j] = src[o, j, i], tile by tile (a tile is an item of ``work``)."""
    outer, n, inner = src.shape
    tiles_n = -(-n // _TILE)
    tiles_i = -(-inner // _TILE)
    for _worker in prange(work[WORKERS]):
        tile = np.empty((_TILE, _TILE), dst.dtype)
        while True:
            lo, hi = next_chunk(work)
            if lo >= hi:
                break
            for item in range(lo, hi):
                o = item // (tiles_n * tiles_i)
                rest = item - o * tiles_n * tiles_i
                j0 = (rest // tiles_i) * _TILE
                i0 = (rest % tiles_i) * _TILE
                nj = min(_TILE, n - j0)
                ni = min(_TILE, inner - i0)
                # Read runs of src rows into the tile, then write dst rows out of its columns:
                # both streams of memory run contiguously, only the L1-resident tile is strided.
                for jj in range(nj):
                    srun = src[o, j0 + jj, i0:i0 + ni]
                    trow = tile[jj]
                    for ii in range(ni):
                        trow[ii] = _element(srun[ii], trow)
                for ii in range(ni):
                    drun = dst[o * inner + i0 + ii, j0:j0 + nj]
                    for jj in range(nj):
                        drun[jj] = tile[jj, ii]


def _convert_impl(src, dst, work):
    """dst[k] = src[k] converted (1-D arrays, an item of ``work`` is an element)."""
    for _worker in prange(work[WORKERS]):
        while True:
            lo, hi = next_chunk(work)
            if lo >= hi:
                break
            # 1-D views indexed from 0 (see fastops/smooth/cpu.py): dst[k] for k in
            # range(lo, hi) kept NumPy's negative-index check, which LLVM compiled to gathers
            # and scatters around 8-lane conversions: 1.5 ns per element in cache, 0.22 with
            # the views (float16 -> float32, 2^18 elements, one thread, 2026-12-03).
            src_run = src[lo:hi]
            dst_run = dst[lo:hi]
            for k in range(src_run.size):
                dst_run[k] = _element(src_run[k], dst_run)


_transpose = jit_pair(_transpose_impl)
_convert = jit_pair(_convert_impl)

_HALF_OK: bool | None = None


def _half_conversion_works() -> bool:
    """Whether the F16C conversions compile and give NumPy's bits here (checked once: a CPU
    without a hardware conversion would need compiler-rt helpers Numba may not link)."""
    global _HALF_OK
    if _HALF_OK is None:
        probe = np.array([0.0, -0.0, 1.0, -2.5, 65504.0, 65520.0, 1e-7, 6e-8, 3e-8, 1e-40,
                          np.inf, -np.inf, 1 / 3], np.float32)
        try:
            bits = np.empty(probe.size, np.uint16)
            _convert[1](probe, bits, Launch(probe.size, 0.0).work)
            back = np.empty(probe.size, np.float32)
            _convert[1](bits, back, Launch(probe.size, 0.0).work)
            with np.errstate(over="ignore"):
                expected = probe.astype(np.float16)
            _HALF_OK = bool(np.array_equal(bits, expected.view(np.uint16))
                            and np.array_equal(back, expected.astype(np.float32)))
        except Exception:  # noqa: BLE001 - any failure means: use NumPy's conversions
            _HALF_OK = False
    return _HALF_OK


def convert(arr: np.ndarray, dtype: Any) -> np.ndarray | None:
    """A C-contiguous native ``arr`` converted float16 <-> float32, or None when this is not
    such a conversion (or is small, see MIN_ELEMENTS); the caller then uses ``astype``."""
    dtype = np.dtype(dtype)
    if {arr.dtype, dtype} != {np.dtype(np.float16), np.dtype(np.float32)} or \
            arr.size < MIN_ELEMENTS or not arr.flags.c_contiguous or not arr.dtype.isnative \
            or not _half_conversion_works():
        return None
    return convert_into(arr, np.empty(arr.shape, dtype))


def convert_into(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """``dst[...] = src`` for C-contiguous arrays of one shape, float16 <-> float32 through
    F16C (the caller has checked _half_conversion_works); returns ``dst``."""
    with Launch(src.size, _NS_PER_ELEMENT["convert"], item_out_bytes=dst.itemsize) as \
            (variant, work):
        _convert[variant](half_bits(src).reshape(-1), half_bits(dst).reshape(-1), work)
    return dst


def rows_copy(arr: np.ndarray, axes: tuple[int, ...], rows: int, n: int, dtype: Any
              ) -> np.ndarray | None:
    """``arr`` as the C-contiguous ``(rows, n)`` array of ``dtype`` that
    ``RowLayout(arr.shape, axes).to_rows`` makes, or None where NumPy is left to make it.

    Taken: arrays that are a permutation of a contiguous array (C, F, transposed; see
    fastops._rows.column_view) whose kept axes are walked in increasing order (so that the rows
    come out in RowLayout's order), in the same dtype or float16 to float32. Not taken: small
    arrays, strided slices, other dtype changes, and cases that are a view or a plain copy
    already (NumPy's copy is then as fast).
    """
    dtype = np.dtype(dtype)
    half = arr.dtype == np.float16 and dtype == np.float32
    if arr.size < MIN_ELEMENTS or not (half or arr.dtype == dtype) or \
            (half and not _half_conversion_works()):
        return None
    if arr.flags.c_contiguous and axes == tuple(range(arr.ndim - len(axes), arr.ndim)):
        return convert(arr.reshape(rows, n), dtype) if half else None  # rows lie contiguous
    view = column_view(arr, axes, arr.dtype, min_inner=1)
    if view is None or [i for i in view.order if i not in axes] != \
            sorted(i for i in view.order if i not in axes):
        return None
    outer, n_view, inner = view.array.shape
    if inner == 1:  # the rows lie contiguous already: only a conversion can be needed
        return convert(view.rows, dtype) if half else None
    out = np.empty((rows, n), dtype)
    tiles = outer * -(-n_view // _TILE) * -(-inner // _TILE)
    with Launch(tiles, _TILE * _TILE * _NS_PER_ELEMENT["transpose"],
                item_out_bytes=_TILE * _TILE * dtype.itemsize) as (variant, work):
        _transpose[variant](half_bits(view.array), half_bits(out) if not half else out, work)
    return out
