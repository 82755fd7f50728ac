"""The roofline: measured copy bandwidth, and an op's floor time from the bytes it must move.

Every smooth op is memory-bound, so the yardstick is ``floor = bytes / bandwidth`` with
``bytes`` = each input read once + each output written once, and ``bandwidth`` = the
read + write rate of a plain copy measured on this machine in the same run
(``performance.md``). ``floor / time`` is the fraction of the limit a kernel reaches.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np

from .devices import BENCH_BACKENDS
from .timing import Budget, measure


@dataclass(frozen=True)
class Bandwidth:
    """A measured copy bandwidth, in bytes per second (read + write counted)."""

    device: str
    bytes_per_s: float
    array_bytes: int
    method: str
    #: every method tried, e.g. {"numpy.copyto": 2.1e10, "numpy.copyto on 2 threads": 2.6e10}
    candidates: dict[str, float]

    @property
    def gbps(self) -> float:
        return self.bytes_per_s / 1e9

    def floor_time(self, nbytes: int) -> float:
        """Seconds a perfect kernel moving ``nbytes`` would take at this bandwidth."""
        return nbytes / self.bytes_per_s

    def to_json(self) -> dict[str, Any]:
        return {
            "device": self.device,
            "GBps": self.gbps,
            "array_bytes": self.array_bytes,
            "method": self.method,
            "candidates_GBps": {k: v / 1e9 for k, v in self.candidates.items()},
        }


def _threaded_copy(
    dst: np.ndarray, src: np.ndarray, pool: ThreadPoolExecutor, threads: int
) -> None:
    """``numpy.copyto`` of one contiguous slice per thread (NumPy releases the GIL).

    One thread cannot saturate the memory system of a many-core host, while the Numba
    kernels use every core; slices keep glibc's memcpy (non-temporal stores for large
    copies), which a hand-written copy loop would not get.
    """
    n = src.size
    bounds = [(i * n // threads, (i + 1) * n // threads) for i in range(threads)]
    list(pool.map(lambda b: np.copyto(dst[b[0] : b[1]], src[b[0] : b[1]]), bounds))


def measure_copy_bandwidth(
    backend: str,
    nbytes: int = 256 << 20,
    budget: Budget | None = None,
) -> Bandwidth:
    """Median read + write bandwidth of copying one ``nbytes`` array into another.

    CPU: ``numpy.copyto`` on one thread and on one slice per CPU; GPU: CuPy's copy kernel
    and a device-to-device ``cudaMemcpyAsync``, timed with CUDA events. The faster wins.
    Arrays are random (never zeros) and the warm-up copy touches the destination, so page
    faults are not measured.
    """
    budget = budget or Budget(repeats=9, min_repeats=3, max_time=1.0)
    device = BENCH_BACKENDS.get(backend, "cpu")
    n = max(1, nbytes // 8)
    candidates: dict[str, float] = {}
    if device == "cuda":
        import cupy

        src = cupy.random.standard_normal(n, dtype=cupy.float64)
        dst = cupy.empty_like(src)
        t = measure(lambda: cupy.copyto(dst, src), clock="cupy", budget=budget)
        candidates["cupy.copyto (copy kernel)"] = 2 * src.nbytes / t.median
        stream = cupy.cuda.get_current_stream()
        t = measure(
            lambda: dst.data.copy_from_device_async(src.data, src.nbytes, stream),
            clock="cupy",
            budget=budget,
        )
        candidates["cudaMemcpyAsync device to device"] = 2 * src.nbytes / t.median
        del src, dst
        cupy.get_default_memory_pool().free_all_blocks()
    else:
        src = np.random.default_rng(0).standard_normal(n)
        dst = np.empty_like(src)
        t = measure(lambda: np.copyto(dst, src), budget=budget)
        candidates["numpy.copyto"] = 2 * src.nbytes / t.median
        threads = os.cpu_count() or 1
        if threads > 1:
            with ThreadPoolExecutor(threads) as pool:
                t = measure(lambda: _threaded_copy(dst, src, pool, threads), budget=budget)
            candidates[f"numpy.copyto on {threads} threads"] = 2 * src.nbytes / t.median
    method = max(candidates, key=candidates.__getitem__)
    return Bandwidth(
        device=device,
        bytes_per_s=candidates[method],
        array_bytes=n * 8,
        method=method,
        candidates=candidates,
    )
