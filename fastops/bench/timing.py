"""Timing: warm-up first, then timed calls until their median settles or the budget is spent.

Host code is timed with ``time.perf_counter``. GPU code is timed with CUDA events recorded
on the stream the work is queued on (CuPy's current stream, or torch's for torch peers), so
the clock reads the device's own time and no host synchronisation sits inside the interval.

A timing reports its median and its spread, the interquartile range as a percentage of the
median; a spread over :data:`NOISY_SPREAD_PCT` marks a timing whose median should not be
trusted to better than that (another process took the cores, page faults, clock changes).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

#: A timing whose interquartile range exceeds this percentage of its median is flagged noisy.
NOISY_SPREAD_PCT = 20.0


@dataclass(frozen=True)
class Budget:
    """How long to spend on one implementation of one case.

    Timed calls go on until the median of all of them has *settled* (it moved by less than
    ``settle_tolerance``, relative, over the last ``settle_window`` calls) once at least
    ``min_repeats`` calls are in, or until ``max_time`` seconds of timing (timed calls plus
    idle gaps) have passed, or ``repeats`` calls were made, whichever comes first; never fewer
    than ``min_repeats``. The warm-up call (compilation, first-touch page faults, allocator
    growth) is never counted.
    """

    repeats: int = 20
    min_repeats: int = 3
    max_time: float = 2.0
    settle_tolerance: float = 0.02
    settle_window: int = 3


def median_settled(medians: Sequence[float], tolerance: float, window: int) -> bool:
    """Whether a sequence of running medians has settled: each of the last ``window`` earlier
    medians lies within ``tolerance`` (relative) of the latest one."""
    if window < 1 or len(medians) <= window:
        return False
    last = medians[-1]
    if not last > 0:
        return False
    return all(abs(m - last) <= tolerance * last for m in medians[-1 - window : -1])


@dataclass
class Timing:
    """The timed calls of one implementation, in seconds."""

    times: list[float] = field(default_factory=list)
    warmup: float = float("nan")
    #: the median settled before the budget ran out (False: stopped by the budget)
    settled: bool = False
    #: seconds of idle sleep before each timed call (0: back to back)
    idle_gap: float = 0.0

    @property
    def median(self) -> float:
        return statistics.median(self.times) if self.times else float("nan")

    @property
    def best(self) -> float:
        return min(self.times) if self.times else float("nan")

    @property
    def quartiles(self) -> tuple[float, float, float]:
        """(first quartile, median, third quartile); the quartiles need two calls or more."""
        if len(self.times) < 2:
            return float("nan"), self.median, float("nan")
        q1, q2, q3 = statistics.quantiles(self.times, n=4, method="inclusive")
        return q1, q2, q3

    @property
    def spread_pct(self) -> float | None:
        """Interquartile range as a percentage of the median (None below two calls)."""
        q1, median, q3 = self.quartiles
        if len(self.times) < 2 or not median > 0:
            return None
        return 100.0 * (q3 - q1) / median

    @property
    def noisy(self) -> bool:
        """The spread is over :data:`NOISY_SPREAD_PCT`."""
        spread = self.spread_pct
        return spread is not None and spread > NOISY_SPREAD_PCT

    def to_json(self) -> dict[str, Any]:
        q1, median, q3 = self.quartiles
        return {
            "median_s": median,
            "q1_s": q1,
            "q3_s": q3,
            "min_s": self.best,
            "spread_pct": self.spread_pct,
            "noisy": self.noisy,
            "settled": self.settled,
            "repeats": len(self.times),
            "idle_gap_s": self.idle_gap,
            "warmup_s": self.warmup,
        }


class Clock(Protocol):
    """Something that times one call of a zero-argument function, in seconds."""

    def time(self, fn: Callable[[], Any]) -> float: ...


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


def make_clock(clock: str) -> Clock:
    """The clock named by an implementation: "host", "cupy" or "torch"."""
    if clock == "cupy":
        return CupyEventClock()
    if clock == "torch":
        return TorchEventClock()
    return HostClock()


def measure(
    step: Callable[[], Any],
    clock: str | Clock = "host",
    budget: Budget | None = None,
    warmup: int = 1,
    idle_gap: float = 0.0,
    sleep: Callable[[float], Any] = time.sleep,
) -> Timing:
    """Time ``step`` (one call, on fresh inputs if it rotates them) as a :class:`Timing`.

    ``warmup`` untimed calls come first (the first one compiles). Then calls are timed until
    the median settles or the budget is spent (see :class:`Budget`), so slow peers such as
    the NumPy reference on large shapes get a few repeats and fast kernels as many as their
    median needs. ``idle_gap`` seconds of ``sleep`` precede each timed call, outside the
    timed interval: a small call in a real pipeline comes between other work, when threads
    that spin after a parallel region have gone back to sleep. ``clock`` is a clock name
    (:func:`make_clock`) or a :class:`Clock` (the tests pass a fake one).
    """
    budget = budget or Budget()
    timer = make_clock(clock) if isinstance(clock, str) else clock
    result = Timing(idle_gap=idle_gap)
    t0 = time.perf_counter()
    for _ in range(warmup):
        timer.time(step)
    result.warmup = time.perf_counter() - t0 if warmup else float("nan")
    medians: list[float] = []
    spent = 0.0
    while len(result.times) < budget.repeats:
        if idle_gap > 0:
            sleep(idle_gap)
        t = timer.time(step)
        result.times.append(t)
        medians.append(statistics.median(result.times))
        spent += t + idle_gap
        if len(result.times) < budget.min_repeats:
            continue
        if median_settled(medians, budget.settle_tolerance, budget.settle_window):
            result.settled = True
            break
        if spent >= budget.max_time:
            break
        # Do not start a call that would clearly overrun the budget (slow references).
        if spent + t + idle_gap > 1.5 * budget.max_time:
            break
    return result
