"""CuPy launchers of the Langevin family: the CUDA C kernels of ``kernels.cu``.

Implements ``BACKEND_INTERFACE.md`` for CuPy arrays (validated and laid out by
``__init__.py``). The module of each (op, dtype) is NVRTC-compiled on first use from the random
family's device library (the Philox generator and its conversions, the same bits as on the CPU)
followed by this family's kernels.cu. Launch shapes: see kernels.cu's header. Runs on the
current stream; never synchronises with the host. Imports cupy at import time: only the cupy
backend imports this module.
"""

from __future__ import annotations

from pathlib import Path

import cupy
import numpy

from .._cupy import KernelSource, blocks_per_sm, device_info, kernel_name, pow2_ceil
from ..random import gpu as random_gpu

# Kernels per op: fastops_<op>_<shape>_<dtype> (tests/langevin/test_cuda_compile.py reads these
# literals and checks kernels.cu against them).
_KERNELS: dict[str, tuple[str, ...]] = {
    "step": ("",),
    "mala_accept": ("",),
    "gmm_score": ("reg", "wide"),
}
_DTYPES: tuple[str, ...] = ("float32", "float64")
_THREADS = 256  # FO_THREADS in kernels.cu
_GMM_VPL = 16  # FO_GMM_VPL in kernels.cu: coordinates per lane held in registers
_PER_BLOCK = {"float32": 4, "float64": 2}

_SOURCE = KernelSource(Path(__file__).with_name("kernels.cu"),
                       library=random_gpu.SOURCE.path)


def _launch(dev: int, op: str, shape: str, dtype: str, items: int, args: tuple) -> None:
    """Launch fastops_<op>[_<shape>]_<dtype> with a grid sized for ``items`` threads' work."""
    kernel = _SOURCE.kernel(dev, op, shape, dtype)
    sms = device_info(dev)[0]
    resident = sms * blocks_per_sm(dev, kernel_name(op, shape, dtype), kernel, _THREADS)
    grid = max(1, min(resident, -(-items // _THREADS)))
    kernel((grid,), (_THREADS,), args)


def step(x: cupy.ndarray, score: cupy.ndarray, out: cupy.ndarray, c1: float, c2: float,
         seed: int, stream: int, offset: int = 0) -> None:
    """out = (x + c1 score) + c2 z on flat contiguous arrays, z[i] the normal at position
    offset + i of (seed, stream) (out may be x itself)."""
    n = x.size
    if n == 0:
        return
    dtype = x.dtype.name
    t = x.dtype.type
    per = _PER_BLOCK[dtype]
    blocks = (offset + n - 1) // per - offset // per + 1
    _launch(x.device.id, "step", "", dtype, blocks,
            (x, score, out, numpy.int64(n), numpy.int64(offset), t(c1), t(c2),
             *random_gpu.stream_words(seed, stream)))


def mala_accept(x: cupy.ndarray, y: cupy.ndarray, score_x: cupy.ndarray, score_y: cupy.ndarray,
                lp_x: cupy.ndarray, lp_y: cupy.ndarray, u: cupy.ndarray, step_size: float
                ) -> cupy.ndarray:
    """Metropolis decisions of the proposals y (n, d); rejected rows of y are overwritten with
    x's. lp_x, lp_y, u: float64 (n,). Returns accepted (n,) bool."""
    n, d = x.shape
    accepted = cupy.empty(n, numpy.bool_)
    if n:
        _launch(x.device.id, "mala_accept", "", x.dtype.name, n * 32,
                (x, y, score_x, score_y, lp_x, lp_y, u, numpy.float64(0.5 * step_size),
                 numpy.float64(1.0 / (2.0 * step_size)), accepted, numpy.int64(n),
                 numpy.int64(d)))
    return accepted


def gmm_score(x: cupy.ndarray, means: cupy.ndarray, log_weights: cupy.ndarray, var: float
              ) -> cupy.ndarray:
    """The mixture score at the rows of x (n, d); means (K, d) and log_weights (K,) in x's
    dtype, var = component_std^2 + sigma^2."""
    n, d = x.shape
    out = cupy.empty_like(x)
    if n == 0 or d == 0:
        return out
    lanes = min(32, pow2_ceil(-(-d // _GMM_VPL)))  # see kernels.cu: few lanes per point
    shape = "reg" if d <= lanes * _GMM_VPL else "wide"
    t = x.dtype.type
    _launch(x.device.id, "gmm_score", shape, x.dtype.name, n * lanes,
            (x, means, log_weights, t(0.5 / var), t(1.0 / var), numpy.int64(n), numpy.int32(d),
             numpy.int32(means.shape[0]), numpy.int32(lanes), out))
    return out
