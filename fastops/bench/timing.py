"""Timing: warm-up first, then the median of repeats, capped by a time budget.

Host code is timed with ``time.perf_counter``. GPU code is timed with CUDA events recorded
on the stream the work is queued on (CuPy's current stream, or torch's for torch peers), so
the clock reads the device's own time and no host synchronisation sits inside the interval.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Budget:
    """How long to spend on one implementation of one case.

    ``repeats`` is the most timed calls; fewer are made once ``max_time`` seconds of timed
    calls have passed, but never fewer than ``min_repeats``. The warm-up call (compilation,
    first-touch page faults, allocator growth) is never counted.
    """

    repeats: int = 20
    min_repeats: int = 3
    max_time: float = 2.0


@dataclass
class Timing:
    """The timed calls of one implementation, in seconds."""

    times: list[float] = field(default_factory=list)
    warmup: float = float("nan")

    @property
    def median(self) -> float:
        return statistics.median(self.times) if self.times else float("nan")

    @property
    def best(self) -> float:
        return min(self.times) if self.times else float("nan")

    def to_json(self) -> dict[str, Any]:
        return {
            "median_s": self.median,
            "min_s": self.best,
            "repeats": len(self.times),
            "warmup_s": self.warmup,
        }


class HostClock:
    """Wall-clock time of a host call (the call must not return before its work is done)."""

    def time(self, fn: Callable[[], Any]) -> float:
        t0 = time.perf_counter()
        fn()
        return time.perf_counter() - t0


class CupyEventClock:
    """Device time between two CUDA events on CuPy's current stream."""

    def __init__(self) -> None:
        import cupy

        self._cupy = cupy
        self._start = cupy.cuda.Event()
        self._stop = cupy.cuda.Event()

    def time(self, fn: Callable[[], Any]) -> float:
        self._start.record()
        fn()
        self._stop.record()
        self._stop.synchronize()
        return self._cupy.cuda.get_elapsed_time(self._start, self._stop) / 1e3


class TorchEventClock:
    """Device time between two CUDA events on torch's current stream."""

    def __init__(self) -> None:
        import torch

        self._start = torch.cuda.Event(enable_timing=True)
        self._stop = torch.cuda.Event(enable_timing=True)

    def time(self, fn: Callable[[], Any]) -> float:
        self._start.record()
        fn()
        self._stop.record()
        self._stop.synchronize()
        return self._start.elapsed_time(self._stop) / 1e3


def make_clock(clock: str) -> HostClock | CupyEventClock | TorchEventClock:
    """The clock named by an implementation: "host", "cupy" or "torch"."""
    if clock == "cupy":
        return CupyEventClock()
    if clock == "torch":
        return TorchEventClock()
    return HostClock()


def measure(
    step: Callable[[], Any],
    clock: str = "host",
    budget: Budget | None = None,
    warmup: int = 1,
) -> Timing:
    """Time ``step`` (one call, on fresh inputs if it rotates them) as a :class:`Timing`.

    ``warmup`` untimed calls come first (the first one compiles). Timed calls stop at
    ``budget.repeats``, or earlier once ``budget.max_time`` seconds have been spent timing
    (but not before ``budget.min_repeats``), so slow peers such as the NumPy reference on
    large shapes get a few repeats and fast kernels get many.
    """
    budget = budget or Budget()
    timer = make_clock(clock)
    result = Timing()
    t0 = time.perf_counter()
    for _ in range(warmup):
        timer.time(step)
    result.warmup = time.perf_counter() - t0 if warmup else float("nan")
    spent = 0.0
    while len(result.times) < budget.repeats:
        t = timer.time(step)
        result.times.append(t)
        spent += t
        if len(result.times) >= budget.min_repeats and spent >= budget.max_time:
            break
        # Do not start a call that would clearly overrun the budget (slow references).
        if len(result.times) >= budget.min_repeats and spent + t > 1.5 * budget.max_time:
            break
    return result
