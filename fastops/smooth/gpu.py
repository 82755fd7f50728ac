"""CuPy launchers of the smooth family: the CUDA C kernels of ``kernels.cu``.

The functions implement ``BACKEND_INTERFACE.md`` for CuPy arrays: the caller
(``fastops/smooth/__init__.py``) has validated and canonicalised everything, so every array is a
C-contiguous ``(rows, n)`` (or ``(rows,)``) array on one device with ``rows >= 1``, ``n >= 1``.
float16 input is read natively and accumulated in float32; per-element results are float16,
per-row results float32.

Compilation: one ``cupy.RawModule`` per (device, op, dtype), built by NVRTC on the first call
(CuPy also caches the binary on disk) and kept in a module-level cache. Compiling per op keeps
the first call of an op to that op's two or three kernels instead of all 69.

Launch shapes, chosen from the row length ``n`` and the row count (see ``_launch``):

- ``n <= 1024``: a warp or sub-warp per row, several rows per 256-thread block;
- longer rows: a block per row (128 to 512 threads, about 8+ 16-byte vectors per thread);
- fewer rows than the GPU has resident block slots and long rows: each row is split over
  ``nsplit`` blocks that write partial (max, sum, ...) states, and a second launch
  (``..._combine`` for per-row results, ``..._apply`` for per-element results) merges them.

Everything runs on the current CuPy stream of the input's device; nothing here synchronises
with the host.

This module imports cupy at import time; only the cupy backend imports it.
"""

from __future__ import annotations

from pathlib import Path

import cupy
import numpy

from .._cupy import KernelSource, blocks_per_sm, device_info, kernel_name, pow2_ceil
from .._rows import RowPair

# Kernel families per op: fastops_<op>_<dtype> (rows kernel), fastops_<op>_partial_<dtype>
# (split rows, statistics) unless the op needs no row statistic, and the second kernel of the
# split path, fastops_<op>_<second>_<dtype>. tests/smooth/test_cuda_compile.py reads these
# literals to check that kernels.cu defines every kernel this module asks for.
_SECOND: dict[str, str] = {
    "lse": "combine",
    "lse_weighted": "combine",
    "soft_argmax": "combine",
    "softmax": "apply",
    "smooth_max_backward": "apply",
    "soft_argmax_backward": "apply",
    "softmax_backward": "apply",
    "lse_backward": "apply",
}
_STATELESS: tuple[str, ...] = ("lse_backward",)  # out and dout given: no partial kernel
# Ops that also have fastops_<op>_columns_<dtype>: x as (outer, n, inner), reduced over n where
# it lies (column_view), a FO_COL_TILE-column tile per block.
_COLUMNS: tuple[str, ...] = ("lse", "soft_argmax", "softmax")
_DTYPES: tuple[str, ...] = ("float16", "float32", "float64")
_STATE_SLOTS = 4  # FO_STATE_SLOTS in kernels.cu: accumulator slots per partial state
_VEC_BYTES = 16  # kernels load 16-byte vectors (float4 / double2 / 8 halves)
# Up to this length a warp (or fewer lanes) per row: a block per row would leave most of its
# threads idle and pay a block-wide barrier per row; 1024 is where a 32-lane warp has 8 float32
# vectors per lane, enough work to hide the shuffle reduction.
_WARP_MAX_N = 1024
_WARP_ROWS_BLOCK = 256  # block size of the warp-per-row shape (256 / tpr rows per block)
# Block per row: about 8 vectors per thread, within [128, 512] threads (512 is FO_MAX_THREADS).
_ROW_BLOCK_MIN, _ROW_BLOCK_MAX, _ROW_VECS_PER_THREAD = 128, 512, 8
_SPLIT_BLOCK = 512
# Split a row only if every thread still gets >= 8 vectors, so that the partial states and the
# second launch stay a small fraction of the work.
_SPLIT_VECS_PER_THREAD = 8
_COMBINE_BLOCK = 128  # per-row ops: one block merges a row's nsplit states
# Grid cap of the rows kernel (it grid-strides): plenty of blocks for every SM, but no
# launch of millions of tiny blocks for millions of short rows.
_GRID_BLOCKS_PER_SM = 32

# Column kernels: FO_COL_TILE in kernels.cu (the columns a block's warp reads side by side), and
# the threads splitting each column's reduced axis (blockDim.y): FO_COL_TILE x 16 = 512 threads,
# FO_MAX_THREADS; fewer for short columns, so that each thread still has >= 4 elements.
_COL_TILE = 32
_COL_SPLIT_MAX = 16
_COL_MIN_PER_THREAD = 4

_NULL = numpy.uint64(0)  # a null pointer argument (CuPy passes the 8 bytes by value)
_Arg = cupy.ndarray | numpy.uint64  # an array argument, or the null pointer

_SOURCE = KernelSource(Path(__file__).with_name("kernels.cu"))


def _kernel(dev: int, op: str, shape: str, dtype: str) -> cupy.RawKernel:
    return _SOURCE.kernel(dev, op, shape, dtype)


def _launch(op: str, x: cupy.ndarray, args: tuple) -> None:
    """Run ``op`` over the rows of ``x`` (its first array argument); ``args`` are the op's own
    kernel arguments (see the FO_* argument lists in kernels.cu), the shape arguments follow.

    Called inside ``with x.device``; RawKernel launches go to the current CuPy stream of that
    device (CuPy's default when no stream is given), so they order with the caller's work."""
    rows, n = x.shape
    dtype = x.dtype.name
    dev = x.device.id
    sms = device_info(dev)[0]
    vecs = -(-n // (_VEC_BYTES // x.itemsize))  # 16-byte vectors per row
    stateless = op in _STATELESS

    # Few huge rows: a block per row would leave SMs idle (rows < 2 x SMs means at most two
    # blocks per SM, often one), so split each row over nsplit blocks. nsplit fills the GPU's
    # resident block slots in one wave (a second, partial wave would nearly double the time)
    # while keeping >= _SPLIT_VECS_PER_THREAD vectors per thread.
    by_work = vecs // (_SPLIT_BLOCK * _SPLIT_VECS_PER_THREAD)
    if rows < 2 * sms and by_work >= 2:
        shape = "apply" if stateless else "partial"
        first = _kernel(dev, op, shape, dtype)
        slots = sms * blocks_per_sm(dev, kernel_name(op, shape, dtype), first, _SPLIT_BLOCK)
        nsplit = min(by_work, slots // rows)
        if nsplit >= 2:
            i64n = numpy.int64(n)
            if stateless:
                first((nsplit, rows), (_SPLIT_BLOCK,), (*args, i64n, _NULL, numpy.int32(0)))
                return
            part = cupy.empty(rows * nsplit * _STATE_SLOTS, dtype=_acc_dtype(x.dtype))
            first((nsplit, rows), (_SPLIT_BLOCK,), (*args, i64n, part))
            second = _SECOND[op]
            if second == "combine":  # per-row result: one block per row merges
                grid, block = (1, rows), _COMBINE_BLOCK
            else:  # per-element result: every block merges, then writes its share of the row
                grid, block = (nsplit, rows), _SPLIT_BLOCK
            second_args = (*args, i64n, part, numpy.int32(nsplit))
            _kernel(dev, op, second, dtype)(grid, (block,), second_args)
            return

    if n <= _WARP_MAX_N:
        # Lanes per row: a power of two giving each lane about 2 vectors (n = 16 float32 -> 2
        # lanes, n >= 256 float32 -> 32): fewer lanes mean fewer shuffle merges per row.
        tpr = min(32, pow2_ceil(-(-vecs // 2)))
        block = _WARP_ROWS_BLOCK
    else:
        block = pow2_ceil(-(-vecs // _ROW_VECS_PER_THREAD))
        block = min(_ROW_BLOCK_MAX, max(_ROW_BLOCK_MIN, block))
        tpr = block
    rows_per_block = block // tpr
    grid = min(-(-rows // rows_per_block), sms * _GRID_BLOCKS_PER_SM)
    _kernel(dev, op, "", dtype)(
        (grid,), (block,), (*args, numpy.int64(rows), numpy.int64(n), numpy.int32(tpr))
    )


def _launch_columns(op: str, x: cupy.ndarray, args: tuple) -> None:
    """Run ``op``'s column kernel over x (outer, n, inner), reduced over n; grid-stride over
    the tiles of _COL_TILE columns, at most _GRID_BLOCKS_PER_SM blocks per SM."""
    outer, n, inner = x.shape
    dev = x.device.id
    sms = device_info(dev)[0]
    split = max(1, min(_COL_SPLIT_MAX, n // _COL_MIN_PER_THREAD))
    tiles = outer * -(-inner // _COL_TILE)
    grid = max(1, min(tiles, sms * _GRID_BLOCKS_PER_SM))
    _kernel(dev, op, "columns", x.dtype.name)(
        (grid,), (_COL_TILE, split),
        (*args, numpy.int64(outer), numpy.int64(n), numpy.int64(inner)))


def _acc_dtype(dtype: numpy.dtype) -> numpy.dtype:
    """Accumulation (and per-row result) dtype: float32 for float16, else the dtype itself."""
    return numpy.dtype(numpy.float32) if dtype == numpy.float16 else numpy.dtype(dtype)


def _check(x: cupy.ndarray, *others: tuple[str, cupy.ndarray | None]) -> None:
    """The dtype contract with kernels.cu: one element type for all (rows, n) arrays."""
    if x.dtype.name not in _DTYPES:
        raise TypeError(f"fastops.smooth.gpu: unsupported dtype {x.dtype} (expected {_DTYPES})")
    for name, a in others:
        a = a[0] if isinstance(a, tuple) else a  # a (distinct rows, row index) pair
        if a is not None and a.dtype != x.dtype:
            raise TypeError(
                f"fastops.smooth.gpu: {name} has dtype {a.dtype}, expected {x.dtype} (the input's)"
            )


def _pair(pair: RowPair | None) -> tuple[_Arg, _Arg]:
    """A mask or b, given as (distinct rows, row index) (RowLayout.broadcast_rows), as the two
    kernel arguments ``(rows, index)``: null pointers for none, and a null index where it is
    the identity (exactly when there are as many distinct rows as rows: broadcast_rows builds
    it so). The kernels read row r at ``rows + index[r] * n`` (fo_row_start): a mask broadcast
    over kept axes is read in place, never gathered to the input's size."""
    if pair is None:
        return _NULL, _NULL
    rows2d, index = pair
    if rows2d.shape[0] == index.shape[0]:
        return rows2d, _NULL
    return rows2d, index.astype(numpy.int64, copy=False)


def _scale(x: cupy.ndarray, scale: float) -> numpy.floating:
    return _acc_dtype(x.dtype).type(scale)


def _per_row(x: cupy.ndarray, v: cupy.ndarray) -> cupy.ndarray:
    """out / dout as the accumulation dtype the kernels read (a no-op when already right)."""
    return v.astype(_acc_dtype(x.dtype), copy=False)


def lse(x: cupy.ndarray, mask: RowPair | None, scale: float) -> cupy.ndarray:
    """Per-row ``(1/scale) * log(sum_j exp(scale * x_j))`` over the kept elements.

    Evaluated as ``(m + log1p(sum over the kept elements except one maximal one of
    exp(scale*x_j - m))) / scale`` with ``m`` the maximum. Nothing kept or all -inf: -inf;
    any kept +inf: +inf; any kept NaN: NaN. Returns ``(rows,)`` of the accumulation dtype.
    """
    _check(x)
    with x.device:
        out = cupy.empty(x.shape[0], dtype=_acc_dtype(x.dtype))
        _launch("lse", x, (x, *_pair(mask), _scale(x, scale), out))
    return out


def lse_columns(x: cupy.ndarray, scale: float) -> cupy.ndarray:
    """``lse`` over axis 1 of x (outer, n, inner), read where it lies: ``(outer, inner)`` of
    the accumulation dtype."""
    _check(x)
    with x.device:
        out = cupy.empty(x.shape[::2], dtype=_acc_dtype(x.dtype))
        _launch_columns("lse", x, (x, _scale(x, scale), out))
    return out


def soft_argmax_columns(x: cupy.ndarray, scale: float) -> cupy.ndarray:
    """``soft_argmax`` over axis 1 of x (outer, n, inner): ``(outer, inner)``."""
    _check(x)
    with x.device:
        out = cupy.empty(x.shape[::2], dtype=_acc_dtype(x.dtype))
        _launch_columns("soft_argmax", x, (x, _scale(x, scale), out))
    return out


def softmax_columns(x: cupy.ndarray, scale: float, log: bool) -> cupy.ndarray:
    """``softmax`` / log-softmax over axis 1 of x (outer, n, inner): y of x's shape."""
    _check(x)
    with x.device:
        y = cupy.empty(x.shape, dtype=x.dtype)
        _launch_columns("softmax", x, (x, _scale(x, scale), numpy.int32(1 if log else 0), y))
    return y


def lse_weighted(
    x: cupy.ndarray, b: RowPair, mask: RowPair | None
) -> tuple[cupy.ndarray, cupy.ndarray]:
    """Per-row SciPy ``logsumexp(x, b=b, return_sign=True)``; returns ``(out, sign)``.

    Elements with ``b == 0`` or masked out are skipped. See BACKEND_INTERFACE.md for the
    cancellation rule (``s_lt / b_eq > -0.5``), the +inf sign rule and the NaN rule.
    """
    _check(x, ("b", b))
    with x.device:
        acc = _acc_dtype(x.dtype)
        out = cupy.empty(x.shape[0], dtype=acc)
        sign = cupy.empty(x.shape[0], dtype=acc)
        _launch("lse_weighted", x, (x, *_pair(b), *_pair(mask), out, sign))
    return out, sign


def soft_argmax(x: cupy.ndarray, mask: RowPair | None, scale: float) -> cupy.ndarray:
    """Per-row ``sum_j j * softmax(scale * x)_j`` (0-based ``j``) over the kept elements.

    Nothing kept, all -inf, any kept +inf or NaN: NaN. Returns ``(rows,)``.
    """
    _check(x)
    with x.device:
        out = cupy.empty(x.shape[0], dtype=_acc_dtype(x.dtype))
        _launch("soft_argmax", x, (x, *_pair(mask), _scale(x, scale), out))
    return out


def softmax(x: cupy.ndarray, mask: RowPair | None, scale: float, log: bool) -> cupy.ndarray:
    """Row-wise softmax (``log=False``) or log-softmax (``log=True``) of ``scale * x``.

    Masked elements: 0 (log: -inf). Rows with nothing kept or all -inf: all 0 (log: all -inf).
    A kept +inf or NaN makes the row's kept elements NaN. Returns ``(rows, n)`` of x's dtype.
    """
    _check(x)
    with x.device:
        y = cupy.empty(x.shape, dtype=x.dtype)
        args = (x, *_pair(mask), _scale(x, scale), numpy.int32(1 if log else 0), y)
        _launch("softmax", x, args)
    return y


def lse_backward(
    x: cupy.ndarray,
    b: RowPair | None,
    mask: RowPair | None,
    out: cupy.ndarray,
    dout: cupy.ndarray,
) -> cupy.ndarray:
    """``dx_ij = dout_i * b_ij * exp(x_ij - out_i)`` (``b=None`` means 1).

    0 where masked, ``b == 0``, ``x == -inf`` or ``out_i == -inf``; NaN propagates otherwise.
    """
    _check(x, ("b", b))
    with x.device:
        dx = cupy.empty(x.shape, dtype=x.dtype)
        args = (x, *_pair(b), *_pair(mask), _per_row(x, out), _per_row(x, dout), dx)
        _launch("lse_backward", x, args)
    return dx


def softmax_backward(
    y: cupy.ndarray, dy: cupy.ndarray, mask: RowPair | None, scale: float, log: bool
) -> cupy.ndarray:
    """Gradient of (log-)softmax with respect to its input, given its output ``y``.

    ``log=False``: ``scale * y_j * (dy_j - sum_k y_k dy_k)``; ``log=True``:
    ``scale * (dy_j - exp(y_j) * sum_k dy_k)`` (k kept with ``y_k > -inf``). 0 at masked
    elements and (log mode) where ``y_j == -inf``.
    """
    _check(y, ("dy", dy))
    with y.device:
        dx = cupy.empty(y.shape, dtype=y.dtype)
        args = (y, dy, *_pair(mask), _scale(y, scale), numpy.int32(1 if log else 0), dx)
        _launch("softmax_backward", y, args)
    return dx


def smooth_max_backward(
    x: cupy.ndarray, mask: RowPair | None, scale: float, dout: cupy.ndarray
) -> cupy.ndarray:
    """``dx_ij = dout_i * softmax(scale * x_i)_j``; 0 at masked elements and in rows with nothing
    kept or all -inf; a kept +inf or NaN makes the row's kept elements NaN."""
    _check(x)
    with x.device:
        dx = cupy.empty(x.shape, dtype=x.dtype)
        args = (x, *_pair(mask), _scale(x, scale), _per_row(x, dout), dx)
        _launch("smooth_max_backward", x, args)
    return dx


def soft_argmax_backward(
    x: cupy.ndarray, mask: RowPair | None, scale: float, dout: cupy.ndarray
) -> cupy.ndarray:
    """``dx_ij = dout_i * scale * p_ij * (j - y_i)`` with ``p = softmax(scale * x_i)`` and
    ``y_i`` the soft argmax; 0 at masked elements and in rows with nothing kept or all -inf."""
    _check(x)
    with x.device:
        dx = cupy.empty(x.shape, dtype=x.dtype)
        args = (x, *_pair(mask), _scale(x, scale), _per_row(x, dout), dx)
        _launch("soft_argmax_backward", x, args)
    return dx
