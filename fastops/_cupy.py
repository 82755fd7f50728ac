"""CuPy helpers shared by the GPU backends (the ``gpu.py`` of each op family).

- :class:`KernelSource`: a family's ``kernels.cu``, compiled by NVRTC into one ``RawModule``
  per (device, op, dtype) on first use, with :data:`SELECT` prepended so that a module holds
  only that op's kernels (the first call of an op pays for its own few kernels, not all).
- :func:`device_info`, :func:`blocks_per_sm`: what launch shapes are sized from.

Imports cupy at import time: only the cupy backends import this module.
"""

from __future__ import annotations

import functools
from pathlib import Path

import cupy

#: Prepended to a kernels.cu to build one (op, dtype): see "Selection" at the end of each
#: kernels.cu. The nvcc tests read this literal (tests/_nvcc.py).
SELECT: str = (
    "#define FASTOPS_SELECT 1\n#define FASTOPS_DTYPE_{dtype} 1\n#define FASTOPS_OP_{op} 1\n"
)
#: How a family's kernels.cu is preceded by another family's device library (the langevin kernels
#: use the random family's generator): that file compiles only its device functions when
#: FO_LIBRARY_ONLY is defined.
LIBRARY_ONLY: tuple[str, str] = ("#define FO_LIBRARY_ONLY 1\n", "\n#undef FO_LIBRARY_ONLY\n")
#: NVRTC options. Never --use_fast_math: the inf / NaN rules need IEEE exp, tanh, compares and
#: adds, and the accuracy targets need the accurate libm functions.
OPTIONS: tuple[str, ...] = ("-std=c++17",)


def kernel_name(op: str, shape: str, dtype: str) -> str:
    """``fastops_<op>_<shape>_<dtype>``, or ``fastops_<op>_<dtype>`` for the shape ""."""
    return f"fastops_{op}_{shape}_{dtype}" if shape else f"fastops_{op}_{dtype}"


class KernelSource:
    """The kernels of one ``kernels.cu``, compiled per (device, op, dtype) and cached."""

    def __init__(self, path: Path, library: Path | None = None) -> None:
        self.path = path
        self.library = library
        self._modules: dict[tuple[int, str, str], cupy.RawModule] = {}
        self._kernels: dict[tuple[int, str], cupy.RawKernel] = {}

    @functools.cached_property
    def code(self) -> str:
        """The source: ``library``'s device functions (its kernels left out by
        :data:`LIBRARY_ONLY`), then the family's own kernels.cu."""
        own = self.path.read_text(encoding="utf-8")
        if self.library is None:
            return own
        head, tail = LIBRARY_ONLY
        return head + self.library.read_text(encoding="utf-8") + tail + own

    def kernel(self, dev: int, op: str, shape: str, dtype: str) -> cupy.RawKernel:
        """The kernel ``kernel_name(op, shape, dtype)`` on device ``dev`` (the current one),
        compiling the (op, dtype) module on first use (CuPy also caches the binary on disk)."""
        name = kernel_name(op, shape, dtype)
        kernel = self._kernels.get((dev, name))
        if kernel is None:
            module = self._modules.get((dev, op, dtype))
            if module is None:
                code = SELECT.format(dtype=dtype.upper(), op=op.upper()) + self.code
                module = cupy.RawModule(code=code, options=OPTIONS)
                self._modules[(dev, op, dtype)] = module
            kernel = module.get_function(name)
            self._kernels[(dev, name)] = kernel
        return kernel


@functools.cache
def device_info(dev: int) -> tuple[int, int, int]:
    """(SM count, max resident threads per SM, registers per SM) of device ``dev``."""
    props = cupy.cuda.runtime.getDeviceProperties(dev)
    return (
        int(props["multiProcessorCount"]),
        int(props["maxThreadsPerMultiProcessor"]),
        int(props["regsPerMultiprocessor"]),
    )


_blocks_per_sm: dict[tuple[int, str, int], int] = {}


def blocks_per_sm(dev: int, name: str, kernel: cupy.RawKernel, threads: int) -> int:
    """Blocks of ``threads`` threads of ``kernel`` (named ``name``) resident per SM, limited by
    threads and registers (the kernels use a few hundred bytes of shared memory per block:
    never the limit). Registers are allocated per warp in units of 256."""
    key = (dev, name, threads)
    blocks = _blocks_per_sm.get(key)
    if blocks is None:
        _, max_threads, regs_per_sm = device_info(dev)
        warps = -(-threads // 32)
        regs_per_warp = -(-max(1, kernel.num_regs) * 32 // 256) * 256
        by_regs = regs_per_sm // (regs_per_warp * warps)
        blocks = max(1, min(max_threads // (warps * 32), by_regs))
        _blocks_per_sm[key] = blocks
    return blocks


def pow2_ceil(v: int) -> int:
    """The smallest power of two >= v (1 for v <= 1)."""
    return 1 << max(0, v - 1).bit_length()
