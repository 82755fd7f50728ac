"""CuPy launchers of the random family: the CUDA C kernels of ``kernels.cu``.

Implements ``BACKEND_INTERFACE.md`` for CuPy arrays (validated by ``__init__.py``). A thread per
Philox block (4 float32 or 2 float64 values), grid-stride, as many resident blocks as the GPU
holds. Runs on the current stream; never synchronises with the host. Imports cupy at import
time: only the cupy backend imports this module.
"""

from __future__ import annotations

from pathlib import Path

import cupy
import numpy

from .._cupy import KernelSource, blocks_per_sm, device_info, kernel_name

# Kernels per module op: fastops_<op>_<shape>_<dtype> (tests/random/test_cuda_compile.py reads
# these literals and checks kernels.cu against them).
_KERNELS: dict[str, tuple[str, ...]] = {"fill": ("uniform", "normal"), "philox4x32": ("",)}
_DTYPES: dict[str, tuple[str, ...]] = {"fill": ("float32", "float64"), "philox4x32": ("uint32",)}
_THREADS = 256  # FO_MAX_THREADS in kernels.cu
_PER_BLOCK = {"float32": 4, "float64": 2}

SOURCE = KernelSource(Path(__file__).with_name("kernels.cu"))


def grid_for(dev: int, name: str, kernel: cupy.RawKernel, items: int) -> int:
    """Blocks of _THREADS threads for ``items`` grid-stride items: enough to fill the GPU once."""
    sms = device_info(dev)[0]
    resident = sms * blocks_per_sm(dev, name, kernel, _THREADS)
    return max(1, min(resident, -(-items // _THREADS)))


def stream_words(seed: int, stream: int) -> tuple[numpy.uint32, ...]:
    """(k0, k1, s0, s1): the key and the high counter words of (seed, stream)."""
    return tuple(numpy.uint32(v) for v in (seed & 0xFFFFFFFF, seed >> 32, stream & 0xFFFFFFFF,
                                           stream >> 32))


def fill(kind: str, out: cupy.ndarray, seed: int, stream: int, offset: int) -> None:
    """Write positions offset, offset + 1, ... of (seed, stream) into the 1-D contiguous out."""
    n = out.size
    if n == 0:
        return
    dev = out.device.id
    dtype = out.dtype.name
    kernel = SOURCE.kernel(dev, "fill", kind, dtype)
    per = _PER_BLOCK[dtype]
    blocks = (offset + n - 1) // per - offset // per + 1
    grid = grid_for(dev, kernel_name("fill", kind, dtype), kernel, blocks)
    kernel((grid,), (_THREADS,), (out, numpy.int64(n), numpy.int64(offset),
                                  *stream_words(seed, stream)))


def philox4x32(counter: cupy.ndarray, key: cupy.ndarray) -> cupy.ndarray:
    """Philox4x32-10 of C-contiguous uint32 ``counter`` (n, 4) and ``key`` (n, 2)."""
    n = counter.shape[0]
    out = cupy.empty((n, 4), numpy.uint32)
    if n:
        dev = out.device.id
        kernel = SOURCE.kernel(dev, "philox4x32", "", "uint32")
        grid = grid_for(dev, kernel_name("philox4x32", "", "uint32"), kernel, n)
        kernel((grid,), (_THREADS,), (counter, key, out, numpy.int64(n)))
    return out
