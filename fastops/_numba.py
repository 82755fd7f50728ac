"""Numba helpers shared by the CPU kernels of every op family.

- :data:`FASTMATH`: the only fast-math flags fastops uses (reassociation and contraction, never
  ``nnan``/``ninf``, which would break the inf/NaN rules of semantics.md).
- :func:`jit_pair`: a kernel compiled twice, lazily: parallel (cached on disk) and serial.
- :class:`Launch`: picks which of the pair to run, so that concurrent callers never abort
  Numba's workqueue threading layer.
- :data:`inline`: the decorator of the small helpers kernels call.

Importing this module imports Numba but compiles nothing; only the ``cpu.py`` modules import it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import numba

# Reassociation and contraction only: enough for LLVM to vectorise reductions, while keeping
# IEEE inf/NaN semantics (no nnan/ninf). Tests compare against float64 references.
FASTMATH = {"reassoc", "contract"}

# error_model="numpy": x / 0 gives inf/NaN as in NumPy (the parallel compilation's default)
# instead of raising ZeroDivisionError in the serial one.
_OPTIONS = {"fastmath": FASTMATH, "nogil": True, "error_model": "numpy"}

inline = numba.njit(fastmath=FASTMATH, cache=True, error_model="numpy")

# No fast-math flag at all: every product and sum rounded on its own (LLVM forms no fused
# multiply-add without "contract"), for code that must give the same bits as the NumPy reference
# and the CUDA kernels (the random generator's conversions, the Langevin update).
IEEE: set[str] = set()

#: :data:`inline` without fast-math flags (see :data:`IEEE`); inlined into its callers' IR.
ieee_inline = numba.njit(cache=True, error_model="numpy", inline="always")


def jit_pair(func: Callable[..., Any], fastmath: set[str] = FASTMATH) -> tuple[Any, Any]:
    """Compile ``func`` twice, lazily: parallel, and serial (for the workqueue fallback).

    Index the pair with the variant :class:`Launch` yields. Only the parallel compilation is
    cached on disk: both would share one cache entry (same function), so the serial one would
    load the parallel machine code and abort under workqueue exactly as the fallback is meant
    to avoid. ``fastmath=IEEE`` compiles without fast-math flags.
    """
    options = {**_OPTIONS, "fastmath": fastmath or False}
    return (numba.njit(parallel=True, cache=True, **options)(func),
            numba.njit(parallel=False, cache=False, **options)(func))


# Numba's workqueue threading layer aborts the process when two threads launch parallel kernels
# at once; where it is the active layer, a caller that finds another parallel launch in flight
# runs the serial compilation instead. tbb and omp are thread-safe and never take this path.
_PARALLEL_LOCK = threading.Lock()


class Launch:
    """Context manager choosing the parallel (0) or serial (1) compilation of a kernel pair::

        with Launch() as variant:
            kernel[variant](...)

    ``parallel=False`` asks for the serial one: for passes too small to repay a parallel
    region where BLAS calls run right before and after (see :func:`worth_parallel`).
    """

    def __init__(self, parallel: bool = True) -> None:
        self.locked = False
        self.parallel = parallel

    def __enter__(self) -> int:
        if not self.parallel:
            return 1
        # Until a parallel kernel has run the layer is unknown: be as careful as for workqueue.
        if active_layer() in (None, "workqueue"):
            self.locked = _PARALLEL_LOCK.acquire(blocking=False)
            return 0 if self.locked else 1
        return 0

    def __exit__(self, *exc: object) -> None:
        if self.locked:
            _PARALLEL_LOCK.release()


def active_layer() -> str | None:
    """Numba's threading layer, or None before the first parallel kernel has run."""
    try:
        return numba.threading_layer()
    except ValueError:  # no parallel kernel has run yet: the layer is not chosen
        return None


# A parallel pass between BLAS calls pays for its region twice: Numba's OpenMP workers
# (libgomp, whose default wait policy spins ~300000 pause iterations, several ms on AMD Zen,
# after each region) compete with the BLAS threads that run next for the same cores, and the
# BLAS threads still spinning from the previous call compete with the region. Measured on the
# 2-core development machine, float32, with torch imported first (its libgomp is the one Numba
# then uses, with the default policy): spectral_norm of 2048 x 2048 took 16 ms with parallel
# normalisation passes and 0.54 ms with serial ones; the penalty and gradient of (8192, 256)
# 24 ms against 11.5 ms (its GEMMs alone: 11.5 ms). Serial passes are as fast there up to
# millions of elements, so passes adjacent to BLAS calls go parallel only from this size on,
# where a region saves more than it can lose.
PARALLEL_MIN_ELEMENTS = 1 << 23


def worth_parallel(elements: int) -> bool:
    """Whether a memory-bound pass over ``elements`` elements, adjacent to BLAS calls, should
    run in parallel (see PARALLEL_MIN_ELEMENTS)."""
    return elements >= PARALLEL_MIN_ELEMENTS

