"""CuPy launchers of the rank_one family: the CUDA C kernels of ``kernels.cu``.

The functions implement ``BACKEND_INTERFACE.md`` for CuPy arrays: the caller
(``fastops/rank_one/__init__.py``) has validated and laid out everything, so every operand is a
C-contiguous ``(n, k)`` (chains: ``(n, L, k)``) array of one dtype (float32 or float64) on one
device, with an int64 ``(B,)`` index map or None (identity), and ``B >= 1``, ``k >= 1``.

Compilation: one ``cupy.RawModule`` per (device, op, dtype), built by NVRTC on the first call
(CuPy also caches the binary on disk); see ``fastops/_cupy.py``.

Launch shapes (the header of kernels.cu): ``tpr`` threads per batch entry. Up to
:data:`_SUB_MAX_K` elements a power-of-two sub-warp (``tpr`` <= 32, each lane about
:data:`_ELEMS_PER_LANE` elements, 256 / tpr entries per block: a (65536, 64) apply runs 16
lanes per vector); beyond it a 256-thread block per entry (a (1024, 4096) apply: 1024 blocks
of 16 elements per thread). Chains keep the vector in registers: shape ``sub`` (8 per lane,
k <= 8 * tpr), ``block`` (16 per thread, k <= 4096), else ``global`` (a float64 scratch row
per block). Grids are capped at the blocks resident on the GPU and grid-stride.

Everything runs on the current CuPy stream of the input's device; nothing here synchronises
with the host. This module imports cupy at import time; only the cupy backend imports it.
"""

from __future__ import annotations

from pathlib import Path

import cupy
import numpy

from .._cupy import KernelSource, blocks_per_sm, device_info, kernel_name, pow2_ceil

# Kernels per op: fastops_<op>_<shape>_<dtype>, or fastops_<op>_<dtype> for the shape "".
# tests/rank_one/test_cuda_compile.py reads these literals to check that kernels.cu defines
# exactly the kernels this module asks for.
_KERNELS: dict[str, tuple[str, ...]] = {
    "rank1_logdet": ("",),
    "rank1_dense": ("phi", ""),
    "rank1_apply": ("",),
    "rank1_apply_backward": ("",),
    "rank1_chain": ("sub", "block", "global"),
    "rank1_chain_backward": ("sub", "block", "global"),
}
_DTYPES: tuple[str, ...] = ("float32", "float64")
# Register-resident elements per thread of the chain shapes (FO_NPT_* in kernels.cu; the
# compile test checks that they agree).
_NPT: dict[str, int] = {"sub": 8, "block": 16}

_BLOCK = 256  # FO_MAX_THREADS in kernels.cu
_SUB_MAX_K = 1024  # up to this k a sub-warp per entry, beyond a block per entry
_ELEMS_PER_LANE = 4
_NULL = numpy.uint64(0)  # a null pointer argument (CuPy passes the 8 bytes by value)
_F64 = numpy.dtype(numpy.float64)

_SOURCE = KernelSource(Path(__file__).with_name("kernels.cu"))


def _kernel(dev: int, op: str, shape: str, dtype: str) -> tuple[str, cupy.RawKernel]:
    return kernel_name(op, shape, dtype), _SOURCE.kernel(dev, op, shape, dtype)


def _ptr(a: cupy.ndarray | None) -> cupy.ndarray | numpy.uint64:
    """An array argument, or a null pointer for None (an identity index map, no dlogdet)."""
    return _NULL if a is None else a


def _check(x: cupy.ndarray, *others: cupy.ndarray | None) -> None:
    """The dtype contract with kernels.cu: one element type (float32 or float64) for the
    operands, int64 index maps."""
    if x.dtype.name not in _DTYPES:
        raise TypeError(f"fastops.rank_one.gpu: unsupported dtype {x.dtype} (expected {_DTYPES})")
    for a in others:
        if a is not None and a.dtype != x.dtype and a.dtype != numpy.int64:
            raise TypeError(f"fastops.rank_one.gpu: operand dtype {a.dtype}, expected {x.dtype}")


def _tpr(k: int) -> int:
    """Threads per entry: a power-of-two sub-warp giving each lane ~4 elements, or a block."""
    if k <= _SUB_MAX_K:
        return min(32, pow2_ceil(-(-k // _ELEMS_PER_LANE)))
    return _BLOCK


def _launch(dev: int, name: str, kernel: cupy.RawKernel, n: int, tpr: int) -> int:
    """Blocks for n groups of tpr threads: every group busy, capped at one resident wave."""
    per_block = _BLOCK // tpr
    want = -(-n // per_block)
    resident = device_info(dev)[0] * blocks_per_sm(dev, name, kernel, _BLOCK)
    return max(1, min(want, resident))


def logdet(x: cupy.ndarray, ix: cupy.ndarray | None, y: cupy.ndarray, iy: cupy.ndarray | None,
           B: int) -> cupy.ndarray:
    """s[b] = yᵀx, (B,) of x's dtype (double accumulation, rounded once)."""
    _check(x, y, ix, iy)
    k = x.shape[1]
    with x.device:
        dev = x.device.id
        name, kernel = _kernel(dev, "rank1_logdet", "", x.dtype.name)
        tpr = _tpr(k)
        out = cupy.empty(B, dtype=x.dtype)
        args = (x, _ptr(ix), y, _ptr(iy), numpy.int64(B), numpy.int64(k), numpy.int32(tpr), out)
        kernel((_launch(dev, name, kernel, B, tpr),), (_BLOCK,), args)
    return out


def dense(x: cupy.ndarray, ix: cupy.ndarray | None, y: cupy.ndarray, iy: cupy.ndarray | None,
          B: int) -> cupy.ndarray:
    """E[b] = I + φ(s_b) x yᵀ, (B, k, k): the scalars per entry, then one write pass over the
    B·k rows."""
    _check(x, y, ix, iy)
    k = x.shape[1]
    with x.device:
        dev = x.device.id
        dt = x.dtype.name
        name, kernel = _kernel(dev, "rank1_dense", "phi", dt)
        tpr = _tpr(k)
        phi = cupy.empty((B, 4), dtype=_F64)  # (φ(s), s, s_lo, e^s) per entry
        shape_args = (numpy.int64(B), numpy.int64(k), numpy.int32(tpr))
        kernel((_launch(dev, name, kernel, B, tpr),), (_BLOCK,),
               (x, _ptr(ix), y, _ptr(iy), *shape_args, phi))
        name, kernel = _kernel(dev, "rank1_dense", "", dt)
        out = cupy.empty((B, k, k), dtype=x.dtype)
        kernel((_launch(dev, name, kernel, B * k, tpr),), (_BLOCK,),
               (x, _ptr(ix), y, _ptr(iy), phi, *shape_args, out))
    return out


def apply(x: cupy.ndarray, ix: cupy.ndarray | None, y: cupy.ndarray, iy: cupy.ndarray | None,
          v: cupy.ndarray, iv: cupy.ndarray | None, B: int, inverse: bool) -> cupy.ndarray:
    """z[b] = E v (or E⁻¹ v), (B, k)."""
    _check(x, y, v, ix, iy, iv)
    k = x.shape[1]
    with x.device:
        dev = x.device.id
        name, kernel = _kernel(dev, "rank1_apply", "", x.dtype.name)
        tpr = _tpr(k)
        out = cupy.empty((B, k), dtype=x.dtype)
        args = (x, _ptr(ix), y, _ptr(iy), v, _ptr(iv), numpy.int64(B), numpy.int64(k),
                numpy.int32(tpr), numpy.int32(bool(inverse)), out)
        kernel((_launch(dev, name, kernel, B, tpr),), (_BLOCK,), args)
    return out


def apply_backward(x: cupy.ndarray, ix: cupy.ndarray | None, y: cupy.ndarray,
                   iy: cupy.ndarray | None, v: cupy.ndarray, iv: cupy.ndarray | None,
                   dz: cupy.ndarray, idz: cupy.ndarray | None, B: int, inverse: bool
                   ) -> tuple[cupy.ndarray, cupy.ndarray, cupy.ndarray]:
    """(dx, dy, dv) per batch entry, each (B, k)."""
    _check(x, y, v, dz, ix, iy, iv, idz)
    k = x.shape[1]
    with x.device:
        dev = x.device.id
        name, kernel = _kernel(dev, "rank1_apply_backward", "", x.dtype.name)
        tpr = _tpr(k)
        dx, dy, dv = (cupy.empty((B, k), dtype=x.dtype) for _ in range(3))
        args = (x, _ptr(ix), y, _ptr(iy), v, _ptr(iv), dz, _ptr(idz), numpy.int64(B),
                numpy.int64(k), numpy.int32(tpr), numpy.int32(bool(inverse)), dx, dy, dv)
        kernel((_launch(dev, name, kernel, B, tpr),), (_BLOCK,), args)
    return dx, dy, dv


def _chain_shape(k: int) -> tuple[str, int]:
    """(shape, tpr) of the chain kernels for vectors of length k."""
    tpr = _tpr(k)
    if tpr <= 32 and k <= _NPT["sub"] * tpr:
        return "sub", tpr
    if k <= _NPT["block"] * _BLOCK:
        return "block", _BLOCK
    return "global", _BLOCK


def _chain_launch(dev: int, op: str, dtype: str, B: int, k: int
                  ) -> tuple[cupy.RawKernel, int, int, cupy.ndarray | numpy.uint64]:
    """(kernel, blocks, tpr, scratch) of a chain op; shape "global" gets a float64 scratch row
    per block."""
    shape, tpr = _chain_shape(k)
    name, kernel = _kernel(dev, op, shape, dtype)
    blocks = _launch(dev, name, kernel, B, tpr)
    scratch = cupy.empty((blocks, k), dtype=_F64) if shape == "global" else _NULL
    return kernel, blocks, tpr, scratch


def chain(xs: cupy.ndarray, ixs: cupy.ndarray | None, ys: cupy.ndarray, iys: cupy.ndarray | None,
          v: cupy.ndarray, iv: cupy.ndarray | None, B: int, inverse: bool
          ) -> tuple[cupy.ndarray, cupy.ndarray]:
    """(z (B, k), logdet (B,) float64) of the chain of factors xs, ys (n, L, k)."""
    _check(xs, ys, v, ixs, iys, iv)
    L, k = xs.shape[1], xs.shape[2]
    with xs.device:
        kernel, blocks, tpr, scratch = _chain_launch(xs.device.id, "rank1_chain",
                                                     xs.dtype.name, B, k)
        out = cupy.empty((B, k), dtype=xs.dtype)
        ld = cupy.empty(B, dtype=_F64)
        args = (xs, _ptr(ixs), ys, _ptr(iys), v, _ptr(iv), numpy.int64(B), numpy.int64(L),
                numpy.int64(k), numpy.int32(tpr), numpy.int32(bool(inverse)), out, ld, scratch)
        kernel((blocks,), (_BLOCK,), args)
    return out, ld


def chain_backward(xs: cupy.ndarray, ixs: cupy.ndarray | None, ys: cupy.ndarray,
                   iys: cupy.ndarray | None, v: cupy.ndarray, iv: cupy.ndarray | None,
                   dz: cupy.ndarray, idz: cupy.ndarray | None, dl: cupy.ndarray | None, B: int,
                   inverse: bool) -> tuple[cupy.ndarray, cupy.ndarray, cupy.ndarray]:
    """(dxs (B, L, k), dys (B, L, k), dv (B, k)) per batch entry; ``dl`` (B,) float64 or None."""
    _check(xs, ys, v, dz, ixs, iys, iv, idz)
    if dl is not None and dl.dtype != _F64:
        raise TypeError(f"fastops.rank_one.gpu: dl has dtype {dl.dtype}, expected float64")
    L, k = xs.shape[1], xs.shape[2]
    with xs.device:
        kernel, blocks, tpr, scratch = _chain_launch(xs.device.id, "rank1_chain_backward",
                                                     xs.dtype.name, B, k)
        dxs = cupy.empty((B, L, k), dtype=xs.dtype)
        dys = cupy.empty((B, L, k), dtype=xs.dtype)
        dv = cupy.empty((B, k), dtype=xs.dtype)
        args = (xs, _ptr(ixs), ys, _ptr(iys), v, _ptr(iv), dz, _ptr(idz), _ptr(dl),
                numpy.int64(B), numpy.int64(L), numpy.int64(k), numpy.int32(tpr),
                numpy.int32(bool(inverse)), dxs, dys, dv, scratch)
        kernel((blocks,), (_BLOCK,), args)
    return dxs, dys, dv
