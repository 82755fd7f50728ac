"""How many threads fastops' CPU kernels may use: a thin layer over Numba's thread mask.

``fastops.set_num_threads(n)`` / ``with fastops.threads(n):`` cap the threads of fastops' Numba
kernels for the calling thread (Numba's mask is per thread: a data-loader thread can run
fastops on one core while the main thread uses all of them). They do not limit BLAS (the
GEMMs of the orthogonality family), torch's intra-op pool or any other library; and
``threadpoolctl.threadpool_limits`` does not limit fastops (Numba passes its thread count to
every parallel region itself). Use both together to cap a whole pipeline stage.

Importing this module imports nothing heavy: Numba is imported on the first call.
"""

from __future__ import annotations

import operator
from collections.abc import Iterator
from contextlib import contextmanager


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
