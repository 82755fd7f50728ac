"""How many threads fastops' CPU work may use: a thin layer over Numba's thread mask, and the
BLAS threads of the GEMMs fastops calls.

``fastops.set_num_threads(n)`` / ``with fastops.threads(n):`` cap the threads of fastops' Numba
kernels for the calling thread (Numba's mask is per thread: a data-loader thread can run
fastops on one core while the main thread uses all of them), and the BLAS threads of the GEMMs
fastops itself calls (the orthogonality family) for the duration of those GEMMs. They do not
limit BLAS when the caller uses it directly, torch's intra-op pool or any other library; and
``threadpoolctl.threadpool_limits`` does not limit fastops' Numba kernels (Numba passes its
thread count to every parallel region itself). Use both together to cap a whole pipeline stage.

:func:`blas_threads` is how fastops' own GEMMs run: on one BLAS thread when the GEMM is too
small to pay for waking BLAS's workers (the rule of ``fastops._numba.PARALLEL_MIN_NS``), and on
at most :func:`get_num_threads` threads otherwise.

Importing this module imports nothing heavy: Numba and threadpoolctl are imported on first use.
"""

from __future__ import annotations

import operator
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


def _max_threads() -> int:
    import numba

    return int(numba.config.NUMBA_NUM_THREADS)


def get_num_threads() -> int:
    """The number of threads fastops' CPU kernels may use in the calling thread.

    >>> with fastops.threads(1):
    ...     fastops.get_num_threads()
    1
    """
    import numba

    return int(numba.get_num_threads())


def set_num_threads(n: int) -> None:
    """Let fastops' CPU kernels use at most ``n`` threads in the calling thread.

    ``n`` is an int from 1 to the size of Numba's thread pool (``NUMBA_NUM_THREADS``, the
    number of CPUs by default); 1 runs every kernel serially, without waking a worker.
    It is Numba's thread mask: ``numba.set_num_threads`` sets the same value.

    >>> before = fastops.get_num_threads()
    >>> fastops.set_num_threads(1)
    >>> fastops.get_num_threads()
    1
    >>> fastops.set_num_threads(before)
    """
    n = _checked(n, "set_num_threads")
    import numba

    numba.set_num_threads(n)


@contextmanager
def threads(n: int) -> Iterator[None]:
    """Run the block with fastops' CPU kernels on at most ``n`` threads (calling thread only),
    restoring the previous count on exit, also when the block raises::

        with fastops.threads(1):   # next to a busy data loader or torch's own threads
            p = fastops.softmax(x)

    >>> with fastops.threads(1):
    ...     float(fastops.logsumexp(np.zeros(4)))
    1.3862943611198906
    """
    n = _checked(n, "threads")
    previous = get_num_threads()
    set_num_threads(n)
    try:
        yield
    finally:
        set_num_threads(previous)


def _checked(n: object, function: str) -> int:
    """``n`` as an int in [1, NUMBA_NUM_THREADS], or a clear error naming ``function``."""
    if isinstance(n, bool):
        raise TypeError(f"fastops.{function}: n must be an int, got bool {n!r}")
    try:
        value = operator.index(n)  # ints and NumPy integers, never floats
    except TypeError:
        raise TypeError(
            f"fastops.{function}: n must be an int, got {type(n).__name__} {n!r}"
        ) from None
    limit = _max_threads()
    if not 1 <= value <= limit:
        raise ValueError(
            f"fastops.{function}: n must be between 1 and {limit} (NUMBA_NUM_THREADS, the size "
            f"of Numba's thread pool), got {value}"
        )
    return value


# --------------------------------------------------------------------------------------------
# BLAS threads of fastops' own GEMMs
# --------------------------------------------------------------------------------------------

#: Single-thread GEMM cost in ns per flop (2·m·n·k flops), by dtype size in bytes. Measured with
#: OpenBLAS 0.3 (NumPy's wheel) on the 2-core development VM, 2026-12-02, threadpoolctl limiting
#: BLAS to one thread, medians of 15: float32 0.0145-0.0186 ns/flop over (64, 256, 64) to
#: (1024, 1024, 1024), float64 0.027-0.031. A (64, 256, 64) GEMM took 0.039 ms on one thread and
#: 0.042 ms on two, back to back; after an idle gap or next to a busy process, two threads waited
#: for a sleeping worker: ortho_frobenius of a (256, 64) W took 15.9 ms instead of 0.55 ms with
#: one CPU-bound competitor (fastops bench --contend 1).
GEMM_NS_PER_FLOP = {4: 0.016, 8: 0.03}

_blas_libraries: tuple[Any, ...] | None = None


def _blas() -> tuple[Any, ...]:
    """threadpoolctl's controllers of the loaded BLAS libraries (found once: finding them walks
    the loaded shared objects, about 0.6 ms); () without threadpoolctl."""
    global _blas_libraries
    if _blas_libraries is None:
        try:
            from threadpoolctl import ThreadpoolController
        except ImportError:  # a dependency of fastops; were it missing, BLAS keeps its threads
            _blas_libraries = ()
        else:
            import numpy  # noqa: F401  (loads NumPy's BLAS before the controller looks)

            _blas_libraries = tuple(
                ThreadpoolController().select(user_api="blas").lib_controllers)
    return _blas_libraries


@contextmanager
def blas_threads(flops: float, itemsize: int) -> Iterator[None]:
    """Run the block's BLAS calls (GEMMs of ``flops`` flops in all, elements of ``itemsize``
    bytes) on one thread when their estimated single-thread time is below the parallel
    threshold, else on at most :func:`get_num_threads` threads; BLAS's setting is restored on
    exit. Never raises the count above BLAS's own setting.

    BLAS's thread count is global to the process: a GEMM another Python thread runs at the same
    time also sees the lower count (it only runs on fewer threads). Costs about 5 µs per block.
    """
    from . import _numba

    libraries = _blas()
    ns = flops * GEMM_NS_PER_FLOP.get(itemsize, GEMM_NS_PER_FLOP[8])
    wanted = get_num_threads() if _numba.worth_parallel(ns) else 1
    lowered = []
    try:
        for library in libraries:
            current = library.get_num_threads()
            if current is not None and wanted < current:
                library.set_num_threads(wanted)
                lowered.append((library, current))
        yield
    finally:
        for library, current in lowered:
            library.set_num_threads(current)
