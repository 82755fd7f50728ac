"""CuPy launchers of the orthogonality family: the CUDA C kernels of ``kernels.cu``.

The functions implement ``BACKEND_INTERFACE.md`` for CuPy arrays: the caller
(``fastops/orthogonality/__init__.py``) has validated and laid out everything, so every array is
C-contiguous on one device, matrices are ``(B, r, c)`` and vector batches ``(B, c)`` with every
size >= 1, the element dtype is float32 or float64 (one for all matrix arguments) and the
coefficient arrays are float64. Every sum is accumulated in float64.

Compilation: one ``cupy.RawModule`` per (device, op, dtype), built by NVRTC on the first call
(CuPy also caches the binary on disk) and kept in a module-level cache; each module holds the
op's one or two kernels only.

Launch shapes (see the header of kernels.cu; all blocks have at most 256 threads):

- ``gram_reduce``: each matrix is one flat array walked in 16-byte vectors by ``nsplit``
  blocks; one block per matrix for many small matrices, ``nsplit`` up to the GPU's resident
  block count for one huge matrix.
- column passes over ``(B, R, K)``: a thread per column, ``col_blocks`` blocks across the
  columns of each batch entry, and the rows cut into ``rsplit`` chunks when the batch and the
  columns alone give too few blocks to fill the GPU.
- row passes (``som_normalize``'s second pass, ``normalize_rows``): a sub-warp / warp per short
  row, a block per long row, and a long row split over several blocks when rows are few.

Reductions are deterministic: fixed-order per-thread sums, shuffle butterflies and per-warp
partials in warp order inside a block, one float64 partial per block written to a buffer and
summed over the split axis with ``cupy.sum`` (a deterministic CuPy reduction). No atomics.

Everything runs on the current CuPy stream of the input's device; nothing here synchronises
with the host. This module imports cupy at import time; only the cupy backend imports it.
"""

from __future__ import annotations

from pathlib import Path

import cupy
import numpy

from .._cupy import KernelSource, blocks_per_sm, device_info, kernel_name, pow2_ceil

# Kernels per op: fastops_<op>_<shape>_<dtype>, or fastops_<op>_<dtype> for the shape "".
# tests/orthogonality/test_cuda_compile.py reads these literals to check that kernels.cu
# defines exactly the kernels this module asks for.
_KERNELS: dict[str, tuple[str, ...]] = {
    "gram_reduce": ("",),
    "column_sqnorms": ("",),
    "offdiag_correct": ("",),
    "som_normalize": ("colnorms", ""),
    "som_backward": ("dot", ""),
    "normalize_rows": ("", "apply"),
}
_DTYPES: tuple[str, ...] = ("float32", "float64")
# gram_reduce's diag strings as the kernel's int (FO_DIAG_* in kernels.cu; the test checks).
_DIAG: dict[str, int] = {"keep": 0, "zero": 1, "minus_one": 2}

_MAX_BLOCK = 256  # FO_MAX_THREADS in kernels.cu
_VEC_BYTES = 16  # gram_reduce loads 16-byte vectors (float4 / double2)
# gram_reduce: about 8 vectors per thread before a matrix is split over more blocks, so that the
# per-block partials and the final cupy.sum stay a small fraction of the work.
_GRAM_VECS_PER_THREAD = 8
# Column passes: a chunk keeps >= 32 rows, so the (B, rsplit, K) float64 partials are at most
# 2 / 32 of the bytes read (float32) and the loop has enough iterations to unroll by 4.
_MIN_CHUNK_ROWS = 32
# Row passes: up to this length a warp (or fewer lanes) per row, each lane about 4 elements;
# beyond it a block per row with about 8 elements per thread (128 to 256 threads), split over
# several blocks only if every thread keeps >= 8 elements.
_WARP_MAX_LEN = 1024
_ROW_BLOCK_MIN = 128
_ROW_ELEMS_PER_LANE = 4
_ROW_ELEMS_PER_THREAD = 8

_NULL = numpy.uint64(0)  # a null pointer argument (CuPy passes the 8 bytes by value)
_F64 = numpy.dtype(numpy.float64)

_SOURCE = KernelSource(Path(__file__).with_name("kernels.cu"))


def _kernel(dev: int, op: str, shape: str, dtype: str) -> tuple[str, cupy.RawKernel]:
    """``(name, kernel)`` of ``fastops_<op>[_<shape>]_<dtype>`` on device ``dev``."""
    return kernel_name(op, shape, dtype), _SOURCE.kernel(dev, op, shape, dtype)


def _resident_blocks(dev: int, name: str, kernel: cupy.RawKernel, threads: int) -> int:
    """Blocks of ``threads`` threads of ``kernel`` that fit on the whole GPU at once. Grids are
    sized to this so that a grid-strided pass runs in one full wave."""
    return device_info(dev)[0] * blocks_per_sm(dev, name, kernel, threads)


def _cdiv(a: int, b: int) -> int:
    return -(-a // b)


def _columns(
    dev: int, op: str, shape: str, x: cupy.ndarray
) -> tuple[cupy.RawKernel, tuple[int, int], int, int, numpy.int64, numpy.int32]:
    """Kernel and launch shape of a column pass over ``x`` ``(B, R, K)``.

    Returns ``(kernel, grid, block, rsplit, chunk, col_blocks)``. Threads run across the columns
    (a warp reads 32 consecutive elements of a row: coalesced) and loop down the rows; the block
    has ``min(256, pow2ceil(K))`` threads (>= 32). ``B * col_blocks`` blocks may be too few to
    fill the GPU (one (512, 65536) matrix: 256 blocks), so the rows are cut into ``rsplit``
    chunks of ``chunk >= 32`` rows, ``rsplit`` at most the resident-block count over
    ``B * col_blocks`` (one wave)."""
    b, r, k = x.shape
    name, kernel = _kernel(dev, op, shape, x.dtype.name)
    block = min(_MAX_BLOCK, max(32, pow2_ceil(k)))
    col_blocks = _cdiv(k, block)
    base = b * col_blocks
    slots = _resident_blocks(dev, name, kernel, block)
    rsplit = max(1, min(_cdiv(r, _MIN_CHUNK_ROWS), slots // base))
    chunk = _cdiv(r, rsplit)
    rsplit = _cdiv(r, chunk)  # no empty chunk
    return kernel, (base, rsplit), block, rsplit, numpy.int64(chunk), numpy.int32(col_blocks)


def _rows(
    dev: int, op: str, shape: str, dtype: str, rows: int, length: int
) -> tuple[cupy.RawKernel, tuple[int, int], int, numpy.int32]:
    """Kernel and launch shape of a row pass over ``rows`` rows of ``length`` elements.

    Returns ``(kernel, grid, block, tpr)``; ``grid[1]`` is the number of splits per row.
    Short rows (``length <= 1024``): ``tpr`` lanes per row, a power of two <= 32 giving each
    lane about 4 elements (a block per row would idle most of its threads and pay a barrier
    per row), 256 / tpr rows per 256-thread block. Long rows: a block of 128-256 threads per
    row (about 8 elements per thread). With fewer row blocks than the GPU has resident
    blocks (one (1, 65536) row), each long row is split over up to resident / rows blocks,
    each thread keeping >= 8 elements. The row grid is capped at the resident block count and
    grid-strides."""
    name, kernel = _kernel(dev, op, shape, dtype)
    if length <= _WARP_MAX_LEN:
        tpr = min(32, pow2_ceil(_cdiv(length, _ROW_ELEMS_PER_LANE)))
        block = _MAX_BLOCK
    else:
        block = pow2_ceil(_cdiv(length, _ROW_ELEMS_PER_THREAD))
        block = min(_MAX_BLOCK, max(_ROW_BLOCK_MIN, block))
        tpr = block
    slots = _resident_blocks(dev, name, kernel, block)
    row_blocks = _cdiv(rows, block // tpr)
    nsplit = 1
    if tpr == block and row_blocks < slots:
        nsplit = max(1, min(length // (block * _ROW_ELEMS_PER_THREAD), slots // row_blocks))
    return kernel, (min(row_blocks, slots), nsplit), block, numpy.int32(tpr)


def _check(x: cupy.ndarray, *others: tuple[str, cupy.ndarray]) -> None:
    """The dtype contract with kernels.cu: one element type (float32 or float64) for all the
    matrix arguments."""
    if x.dtype.name not in _DTYPES:
        raise TypeError(
            f"fastops.orthogonality.gpu: unsupported dtype {x.dtype} (expected {_DTYPES})"
        )
    for name, a in others:
        if a.dtype != x.dtype:
            raise TypeError(
                f"fastops.orthogonality.gpu: {name} has dtype {a.dtype}, expected {x.dtype}"
            )


def _check_f64(*coefs: tuple[str, cupy.ndarray | None]) -> None:
    """The kernels read the per-batch / per-column coefficients as double."""
    for name, a in coefs:
        if a is not None and a.dtype != _F64:
            raise TypeError(
                f"fastops.orthogonality.gpu: {name} has dtype {a.dtype}, expected float64"
            )


def _finish(part: cupy.ndarray, axis: int) -> cupy.ndarray:
    """Sum the per-split partials over ``axis`` (a free reshape when there is one split)."""
    if part.shape[axis] == 1:
        return part.squeeze(axis)
    return part.sum(axis=axis)


def gram_reduce(
    G: cupy.ndarray, diag: str, scale: cupy.ndarray | None
) -> tuple[cupy.ndarray, cupy.ndarray]:
    """``(sumsq, total)`` ``(B,)`` float64: the sums of ``A[b]**2`` and of ``A[b]`` over each
    ``(m, m)`` matrix, ``A = G - I`` (``diag="minus_one"``), ``G`` with a zero diagonal
    (``"zero"``) or ``G`` (``"keep"``). With ``scale`` (``(B,)`` float64), ``G`` is overwritten
    in place with ``scale[b] * A[b]`` rounded once to ``G``'s dtype; with None it is only read.
    """
    _check(G)
    _check_f64(("scale", scale))
    if diag not in _DIAG:
        raise ValueError(f"fastops.orthogonality.gpu: diag must be one of {sorted(_DIAG)}")
    b, m, _ = G.shape
    with G.device:
        dev = G.device.id
        name, kernel = _kernel(dev, "gram_reduce", "", G.dtype.name)
        nvec = _cdiv(m * m, _VEC_BYTES // G.itemsize)
        # About 8 vectors per thread: small matrices get a small block (m = 64 float32: 1024
        # vectors, 128 threads), anything from 2048 vectors a 256-thread block.
        block = min(_MAX_BLOCK, max(32, pow2_ceil(_cdiv(nvec, _GRAM_VECS_PER_THREAD))))
        # Few big matrices: split each over nsplit blocks, up to one full wave of resident
        # blocks (m = 4096, B = 1 on an H100: ~500-1000 blocks); many matrices: one block each.
        by_work = _cdiv(nvec, block * _GRAM_VECS_PER_THREAD)
        nsplit = max(1, min(by_work, _resident_blocks(dev, name, kernel, block) // b))
        part = cupy.empty((2, b, nsplit), dtype=_F64)
        args = (
            G,
            numpy.int64(m),
            numpy.int32(_DIAG[diag]),
            _NULL if scale is None else scale,
            numpy.int32(nsplit),
            numpy.int64(b),
            part,
        )
        kernel((b * nsplit,), (block,), args)
        sums = _finish(part, 2)
    return sums[0], sums[1]


def column_sqnorms(W: cupy.ndarray) -> cupy.ndarray:
    """``c[b, i] = sum_r W[b, r, i]**2`` for ``W`` ``(B, d, k)``; returns ``(B, k)`` float64."""
    _check(W)
    with W.device:
        kernel, grid, block, rsplit, chunk, col_blocks = _columns(
            W.device.id, "column_sqnorms", "", W
        )
        b, d, k = W.shape
        part = cupy.empty((b, rsplit, k), dtype=_F64)
        kernel(grid, (block,), (W, numpy.int64(d), numpy.int64(k), chunk, col_blocks, part))
        return _finish(part, 1)


def offdiag_correct(grad: cupy.ndarray, W: cupy.ndarray, coef: cupy.ndarray) -> None:
    """In place ``grad[b, r, i] -= coef[b, i] * W[b, r, i]`` (``grad``, ``W`` ``(B, d, k)``,
    ``coef`` ``(B, k)`` float64), computed in float64 (one fma) and rounded once."""
    _check(grad, ("W", W))
    _check_f64(("coef", coef))
    with grad.device:
        kernel, grid, block, _, chunk, col_blocks = _columns(
            grad.device.id, "offdiag_correct", "", grad
        )
        _, d, k = grad.shape
        args = (grad, W, coef, numpy.int64(d), numpy.int64(k), chunk, col_blocks)
        kernel(grid, (block,), args)


def som_normalize(
    Y: cupy.ndarray, gamma: float, eps: float
) -> tuple[cupy.ndarray, cupy.ndarray, cupy.ndarray]:
    """``(Yhat, norms, rowsum)`` for ``Y`` ``(B, n, k)``: with ``T = tanh(gamma * Y)``,
    ``norms[b, i] = sqrt(sum_a T[b, a, i]**2)`` ``(B, k)`` float64,
    ``Yhat = T / max(norms, eps)`` (Y's dtype) and ``rowsum[b, a] = sum_i Yhat[b, a, i]``
    ``(B, n)`` float64, summed from the stored Yhat. Two passes: column sums of squares, then
    a row pass that recomputes ``T`` and writes Yhat and the row sums."""
    _check(Y)
    b, n, k = Y.shape
    with Y.device:
        dev = Y.device.id
        g = numpy.float64(gamma)
        kernel, grid, block, rsplit, chunk, col_blocks = _columns(
            dev, "som_normalize", "colnorms", Y
        )
        part = cupy.empty((b, rsplit, k), dtype=_F64)
        kernel(grid, (block,), (Y, g, numpy.int64(n), numpy.int64(k), chunk, col_blocks, part))
        norms = cupy.sqrt(_finish(part, 1))

        rows = b * n
        kernel, grid, block, tpr = _rows(dev, "som_normalize", "", Y.dtype.name, rows, k)
        yhat = cupy.empty(Y.shape, dtype=Y.dtype)
        rpart = cupy.empty((rows, grid[1]), dtype=_F64)
        args = (
            Y,
            g,
            norms,
            numpy.float64(eps),
            numpy.int64(rows),
            numpy.int64(n),
            numpy.int64(k),
            tpr,
            yhat,
            rpart,
        )
        kernel(grid, (block,), args)
        rowsum = _finish(rpart, 1).reshape(b, n)
    return yhat, norms, rowsum


def som_backward(
    Yhat: cupy.ndarray,
    P: cupy.ndarray,
    rowsum: cupy.ndarray,
    diag: cupy.ndarray,
    norms: cupy.ndarray,
    c1: cupy.ndarray,
    c2: cupy.ndarray,
    gamma: float,
    eps: float,
) -> cupy.ndarray:
    """``dY`` ``(B, n, k)`` of the SOM column normalisation (formula in BACKEND_INTERFACE.md):
    ``Ybar = c1 (rowsum - Yhat) + c2 (P - Yhat diag)``, ``dot = sum_a Yhat Ybar`` per column,
    ``dY = gamma (1 - (Yhat norms)**2) (Ybar - Yhat dot) / norms``, 0 where ``norms <= eps``.
    Pass 1 writes the column dots, pass 2 recomputes ``Ybar`` and writes ``dY`` into ``P``'s
    buffer, which is returned (the caller passes ``P`` as scratch)."""
    _check(Yhat, ("P", P))
    _check_f64(("rowsum", rowsum), ("diag", diag), ("norms", norms), ("c1", c1), ("c2", c2))
    b, n, k = Yhat.shape
    with Yhat.device:
        dev = Yhat.device.id
        shape_args = (numpy.int64(n), numpy.int64(k))
        kernel, grid, block, rsplit, chunk, col_blocks = _columns(dev, "som_backward", "dot", Yhat)
        part = cupy.empty((b, rsplit, k), dtype=_F64)
        args = (Yhat, P, rowsum, diag, c1, c2, *shape_args, chunk, col_blocks, part)
        kernel(grid, (block,), args)
        dot = _finish(part, 1)

        kernel, grid, block, _, chunk, col_blocks = _columns(dev, "som_backward", "", Yhat)
        args = (
            Yhat,
            P,
            rowsum,
            diag,
            norms,
            c1,
            c2,
            dot,
            numpy.float64(gamma),
            numpy.float64(eps),
            *shape_args,
            chunk,
            col_blocks,
        )
        kernel(grid, (block,), args)
    return P


def normalize_rows(V: cupy.ndarray, eps: float) -> tuple[cupy.ndarray, cupy.ndarray]:
    """``(Vn, norms)`` for ``V`` ``(B, c)``: ``norms[b] = sqrt(sum_j V[b, j]**2)`` ``(B,)``
    float64 and ``Vn = V / max(norms, eps)`` of V's dtype. One fused kernel per row group; a
    long row split over several blocks (few rows) takes a partial-sums pass, ``cupy.sum`` and
    an apply pass instead."""
    _check(V)
    rows, c = V.shape
    with V.device:
        dev = V.device.id
        kernel, grid, block, tpr = _rows(dev, "normalize_rows", "", V.dtype.name, rows, c)
        vn = cupy.empty(V.shape, dtype=V.dtype)
        norms = cupy.empty(rows, dtype=_F64)
        shape_args = (numpy.int64(rows), numpy.int64(c), tpr)
        e = numpy.float64(eps)
        if grid[1] == 1:
            kernel(grid, (block,), (V, e, *shape_args, norms, vn, _NULL))
            return vn, norms
        part = cupy.empty((rows, grid[1]), dtype=_F64)
        kernel(grid, (block,), (V, e, *shape_args, _NULL, _NULL, part))
        cupy.sqrt(part.sum(axis=1), out=norms)
        # The apply pass has no reduction: same shape (same block, same splits).
        _, apply = _kernel(dev, "normalize_rows", "apply", V.dtype.name)
        apply(grid, (block,), (V, e, norms, *shape_args, vn))
    return vn, norms
