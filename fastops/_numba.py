"""Numba helpers shared by the CPU kernels of every op family: compilation, and the one
scheduling model every parallel kernel follows.

- :data:`FASTMATH`: the only fast-math flags fastops uses (reassociation and contraction, never
  ``nnan``/``ninf``, which would break the inf/NaN rules of semantics.md).
- :func:`jit_pair`: a kernel compiled twice, lazily (both cached on disk): parallel and serial.
- :class:`Launch`: decides, per call, whether the work is worth a parallel region, cuts it into
  chunks, and picks which compilation of the pair runs (never two parallel launches at once
  under Numba's workqueue layer, which would abort the process).
- :func:`next_chunk`: how a kernel's threads take those chunks, dynamically.
- :data:`inline`: the decorator of the small helpers kernels call.

The scheduling model (what a busy pipeline needs, measured on the 2-core development VM):

1. **Dynamic chunks.** A parallel kernel runs ``for _worker in prange(work[WORKERS])`` (one
   iteration per thread) and each thread then takes chunks of ``work[CHUNK]`` items from a
   shared atomic counter until none is left. A thread that lost its core to another process
   delays only the chunk it holds; the others take the rest. Numba's own ``prange`` splits the
   range statically into one piece per thread (and ``numba.set_parallel_chunksize`` does not
   change that under the omp layer: its chunks are still handed out by a static ``omp for``),
   so one descheduled thread used to stall the whole region for a scheduler slice: logsumexp
   of (4096, 4096) float32 took 20.8 ms with 2 threads against 17.3 ms with 1, next to one
   CPU-bound process.
2. **Serial below a measured size** (:data:`PARALLEL_MIN_NS`). Each family estimates a call's
   single-thread time from a measured cost per element; below the threshold the serial
   compilation runs and no worker thread is woken.
3. **The caller's thread count.** ``work[WORKERS]`` is ``numba.get_num_threads()``, so
   :func:`fastops.threads` (Numba's thread mask, per calling thread) is respected, and one
   thread means the serial compilation.

Importing this module imports Numba but compiles nothing; only the ``cpu.py`` modules import it.
"""

from __future__ import annotations

import threading
import types as types_module
from collections.abc import Callable
from typing import Any

import numba
import numpy as np
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

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
    """Compile ``func`` twice, lazily: parallel, and serial (below the parallel threshold, for
    one thread, and for the workqueue fallback). Both compilations are cached on disk.

    Index the pair with the variant :class:`Launch` yields. Numba names a cache entry after the
    function's qualified name and line, so the serial compilation is made from a copy of
    ``func`` named ``<name>_serial``: under one name the serial variant would load the parallel
    machine code (and abort under workqueue exactly as the fallback is meant to avoid), and left
    uncached it was compiled again in every process (about 40 s of a cold start for the whole
    library on the 2-core machine). ``fastmath=IEEE`` compiles without fast-math flags.
    """
    options = {**_OPTIONS, "fastmath": fastmath or False}
    return (numba.njit(parallel=True, cache=True, **options)(func),
            numba.njit(parallel=False, cache=True, **options)(_renamed(func, "_serial")))


def _renamed(func: Callable[..., Any], suffix: str) -> Callable[..., Any]:
    """A copy of ``func`` (same code, globals, defaults and closure) with ``suffix`` added to
    its name, so that Numba gives it cache files of its own."""
    copy = types_module.FunctionType(func.__code__, func.__globals__, func.__name__ + suffix,
                                     func.__defaults__, func.__closure__)
    copy.__qualname__ = func.__qualname__ + suffix
    copy.__module__ = func.__module__
    copy.__doc__ = func.__doc__
    copy.__kwdefaults__ = func.__kwdefaults__
    return copy


# --------------------------------------------------------------------------------------------
# Dynamic chunks
# --------------------------------------------------------------------------------------------

#: Slots of the int64 ``work`` array a :class:`Launch` hands to its kernel: the next chunk to
#: take (the atomic counter), the number of items, items per chunk, and threads (prange count).
NEXT, ITEMS, CHUNK, WORKERS = 0, 1, 2, 3


@intrinsic
def _fetch_add_next(typingctx: Any, work: Any) -> Any:
    """``work[NEXT] += 1`` atomically, returning the old value (LLVM ``atomicrmw add``)."""
    if not (isinstance(work, types.Array) and work.dtype == types.int64 and work.ndim == 1):
        return None
    sig = types.int64(work)

    def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
        array = context.make_array(signature.args[0])(context, builder, args[0])
        ptr = cgutils.get_item_pointer(context, builder, signature.args[0], array,
                                       [context.get_constant(types.intp, NEXT)])
        # monotonic: the counter only hands out distinct indices; the chunks' data are
        # published to the caller by the region's closing barrier.
        return builder.atomic_rmw("add", ptr, ir.Constant(ir.IntType(64), 1), "monotonic")

    return sig, codegen


@numba.njit(cache=True, inline="always")
def next_chunk(work):  # pragma: no cover - compiled
    """``(lo, hi)``: the next chunk of items this thread is to process; ``lo >= hi`` when all
    chunks are taken. The pattern of every parallel kernel (``work`` is :attr:`Launch.work`;
    the name ``sched`` is taken by Numba's parfor lowering, so do not call it that)::

        for _worker in prange(work[WORKERS]):
            while True:
                lo, hi = next_chunk(work)
                if lo >= hi:
                    break
                for item in range(lo, hi):
                    ...
    """
    lo = _fetch_add_next(work) * work[CHUNK]
    return lo, min(lo + work[CHUNK], work[ITEMS])


# --------------------------------------------------------------------------------------------
# When to go parallel, and how finely to cut
# --------------------------------------------------------------------------------------------

# Below this estimated single-thread time a call runs serially. The cost of opening a region
# is not the 2 us it takes back to back: a worker thread that has gone to sleep (libgomp
# sleeps after its spin count; any idle gap of tens of ms) has to be woken, and on the 2-core
# development VM that took 5.9 ms (median of 40, an empty 2-thread region after 50 ms idle;
# 7.9 ms with one CPU-bound process on the other core, where the woken worker waits for the
# scheduler's slice). Thanks to the dynamic chunks the calling thread does all the work
# meanwhile, so a call is never slower than serial once its work outlasts that wake-up, and a
# call below it could be up to wake-up / work times slower: 4 ms keeps that under 1.5x at the
# threshold, and makes every call a pipeline makes between other work ((64, 128) softmax,
# a (256, 64) penalty, a 4096-element Langevin step: 10-50 us) serial. (A quiet machine calling
# back to back would gain 2x on calls of 0.1-4 ms; a busy one would lose up to 100x.)
PARALLEL_MIN_NS = 4_000_000

# Work per chunk: 100 us. A late worker joins with many chunks left (a call at the threshold has
# 40), the end of a call waits for at most one chunk per other thread, and the atomic counter
# (tens of ns per chunk) is noise.
CHUNK_NS = 100_000

# Fresh outputs: NumPy backs allocations of 4 MiB and more with transparent huge pages
# (madvise), which the kernel's first write faults in and zeroes 2 MiB at a time; a thread
# touching a huge page another thread is zeroing waits for it. With 100 us chunks two threads
# write into most huge pages of the output. Measured (2 threads, fresh outputs, 2026-12-02):
# rank_one apply (65536, 64) float64 9.4 ms with 100 us chunks, 8.5 ms with one huge page of
# output per chunk; 2^25 float32 uniforms 33.1 against 27.3 ms; softmax (4096, 4096) float32
# 30.6 against 28.4 ms. So a call writing at least HUGE_PAGE_CHUNKS_MIN huge pages of fresh
# output takes at least one huge page of it per chunk (there are still >= 8 chunks to balance).
HUGE_PAGE_BYTES = 2 << 20
HUGE_PAGE_CHUNKS_MIN = 8


def num_threads() -> int:
    """Numba's thread count for the calling thread (its thread mask, see fastops.threads)."""
    return numba.get_num_threads()


def worth_parallel(ns: float) -> bool:
    """Whether a call whose single-thread time is estimated at ``ns`` nanoseconds should run in
    parallel: at least :data:`PARALLEL_MIN_NS` of work, and more than one thread allowed."""
    return ns >= PARALLEL_MIN_NS and num_threads() > 1


# Numba's workqueue threading layer aborts the process when two threads launch parallel kernels
# at once; where it is the active layer, a caller that finds another parallel launch in flight
# runs the serial compilation instead. tbb and omp are thread-safe and never take this path.
_PARALLEL_LOCK = threading.Lock()


class Launch:
    """The schedule of one kernel call over ``items`` independent items (rows, blocks, batch
    entries), each estimated to cost ``item_ns`` nanoseconds on one thread::

        with Launch(rows, n * _NS_PER_ELEMENT) as (variant, work):
            kernel[variant](..., work)

    ``variant`` indexes a :func:`jit_pair`: 0 parallel, 1 serial (too little work, one thread,
    or another parallel launch in flight under workqueue). ``work`` is the int64 array the
    kernel takes its chunks from with :func:`next_chunk`; in the serial variant the one
    iteration of ``prange`` takes them all. ``chunk=`` fixes the items per chunk (a kernel
    whose items are tiles, for instance); by default a chunk is :data:`CHUNK_NS` of work, and
    at least a huge page of output when each item writes ``item_out_bytes`` of a fresh output
    array and the call writes at least :data:`HUGE_PAGE_CHUNKS_MIN` huge pages.
    """

    def __init__(self, items: int, item_ns: float, chunk: int | None = None,
                 item_out_bytes: int = 0) -> None:
        items = max(int(items), 0)
        self.parallel = worth_parallel(items * item_ns)
        workers = num_threads() if self.parallel else 1
        if chunk is None:
            chunk = int(CHUNK_NS // item_ns) if item_ns > 0 else items
            if item_out_bytes > 0 and items * item_out_bytes >= \
                    HUGE_PAGE_CHUNKS_MIN * HUGE_PAGE_BYTES:
                chunk = max(chunk, -(-HUGE_PAGE_BYTES // item_out_bytes))
        self.work = np.array([0, items, max(1, min(int(chunk), max(items, 1))), workers],
                             np.int64)
        self.locked = False

    def __enter__(self) -> tuple[int, np.ndarray]:
        if not self.parallel:
            return 1, self.work
        # Until a parallel kernel has run the layer is unknown: be as careful as for workqueue.
        if active_layer() in (None, "workqueue"):
            self.locked = _PARALLEL_LOCK.acquire(blocking=False)
            if not self.locked:
                self.work[WORKERS] = 1
                return 1, self.work
        return 0, self.work

    def __exit__(self, *exc: object) -> None:
        if self.locked:
            _PARALLEL_LOCK.release()


def active_layer() -> str | None:
    """Numba's threading layer, or None before the first parallel kernel has run."""
    try:
        return numba.threading_layer()
    except ValueError:  # no parallel kernel has run yet: the layer is not chosen
        return None
