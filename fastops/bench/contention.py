"""``fastops bench --contend N``: fastops' CPU kernels while other processes want the cores.

A kernel that splits its work over every core is fast on an idle machine and can be much
slower than a single thread when other processes hold the cores: each parallel region waits
for its slowest worker, and a worker that has been descheduled or has gone to sleep arrives
milliseconds late. The contention run measures, per fastops case and in one run:

1. quiet: no competitor, all threads;
2. 1 thread: no competitor, ``with fastops.threads(1):`` (and BLAS limited to one thread
   through threadpoolctl where it is installed, for the GEMM-bound orthogonality ops);
3. contended: N CPU-bound competitor processes started once for this phase, all threads.

The targets: contended within 1.3x of the quiet single-thread time (going parallel must never
lose much against staying serial), and small calls within 3x of their quiet time.

Competitors are ``python -c <busy loop>`` processes that exit by themselves after a deadline
or when their parent is gone, and the bench stops them in a ``finally`` (terminate, wait,
kill), so that neither an exception, Ctrl-C nor SIGTERM leaves one behind.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as _dt
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from types import FrameType
from typing import Any

from .cases import Case, get_cases
from .devices import clear_input_cache, installed
from .runner import Plan, StepFn, _error, run_header_json
from .timing import Timing, measure

#: Schema id of the contention JSON.
SCHEMA = "fastops-bench-contend/1"
#: Targets: contended / quiet single-thread, and contended / quiet for small calls.
TARGET_VS_SINGLE_THREAD = 1.3
TARGET_SMALL_VS_QUIET = 3.0
#: Seconds the competitors get to start (interpreter start-up) before the contended timings.
COMPETITOR_START_S = 0.3

#: The competitor: spins one core until its deadline (argv[1] seconds from its start) or until
#: its parent is gone (it is then re-parented, and getppid changes).
COMPETITOR_CODE = """\
import os, sys, time
deadline = time.monotonic() + float(sys.argv[1])
parent = os.getppid()
x = 0
while time.monotonic() < deadline and os.getppid() == parent:
    for _ in range(20000):
        x += 1
"""


class Competitors:
    """N busy competitor processes, as a context manager that always stops them::

        with Competitors(2, seconds=60) as competitors:
            ...  # competitors.pids are running

    ``seconds`` bounds their life by itself (a safety net; exiting the block stops them at
    once). While the block runs in the main thread, SIGTERM raises SystemExit, so that a
    terminated bench still runs its ``finally`` blocks.
    """

    def __init__(self, n: int, seconds: float) -> None:
        if n < 1:
            raise ValueError(f"Competitors: n must be >= 1, got {n}")
        self.n = n
        self.seconds = seconds
        self.procs: list[subprocess.Popen[bytes]] = []
        self._previous_sigterm: Any = None

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in self.procs]

    def running(self) -> int:
        """How many competitors are still running."""
        return sum(p.poll() is None for p in self.procs)

    def start(self) -> None:
        """Start the N processes (all or none: a failure stops those already started)."""
        try:
            for _ in range(self.n):
                self.procs.append(subprocess.Popen(
                    [sys.executable, "-c", COMPETITOR_CODE, repr(float(self.seconds))],
                    stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                ))
        except BaseException:
            self.stop()
            raise

    def stop(self, timeout: float = 2.0) -> None:
        """Terminate every competitor, wait for it (no zombie left), kill it if it lingers."""
        for p in self.procs:
            if p.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    p.terminate()
        for p in self.procs:
            try:
                p.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    p.kill()
                p.wait()

    def __enter__(self) -> Competitors:
        if threading.current_thread() is threading.main_thread():
            self._previous_sigterm = signal.signal(signal.SIGTERM, _raise_system_exit)
        try:
            self.start()
        except BaseException:
            self._restore_sigterm()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            self.stop()
        finally:
            self._restore_sigterm()

    def _restore_sigterm(self) -> None:
        if self._previous_sigterm is not None:
            signal.signal(signal.SIGTERM, self._previous_sigterm)
            self._previous_sigterm = None


def _raise_system_exit(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)


@contextlib.contextmanager
def single_thread() -> Iterator[None]:
    """fastops' kernels on one thread, and BLAS too where threadpoolctl can limit it."""
    import fastops

    with contextlib.ExitStack() as stack:
        stack.enter_context(fastops.threads(1))
        if installed("threadpoolctl"):
            from threadpoolctl import threadpool_limits

            stack.enter_context(threadpool_limits(limits=1, user_api="blas"))
        yield


@dataclass
class ContendedRow:
    """One case timed quiet, quiet on one thread, and contended."""

    case: Case
    quiet: Timing | None = None
    single_thread: Timing | None = None
    contended: Timing | None = None
    error: str | None = None

    @staticmethod
    def _median(t: Timing | None) -> float | None:
        return t.median if t is not None and t.times else None

    @property
    def vs_single_thread(self) -> float | None:
        """contended / quiet single-thread median (target <= 1.3)."""
        c, s = self._median(self.contended), self._median(self.single_thread)
        return c / s if c and s else None

    @property
    def vs_quiet(self) -> float | None:
        """contended / quiet median (small calls: target <= 3)."""
        c, q = self._median(self.contended), self._median(self.quiet)
        return c / q if c and q else None

    @property
    def misses_target(self) -> bool:
        """Over 1.3x the single thread, or (small calls) over 3x quiet."""
        r1, rq = self.vs_single_thread, self.vs_quiet
        if r1 is not None and r1 > TARGET_VS_SINGLE_THREAD:
            return True
        return self.case.small_call and rq is not None and rq > TARGET_SMALL_VS_QUIET

    def to_json(self) -> dict[str, Any]:
        c = self.case
        return {
            "family": c.family,
            "op": c.op,
            "shape": list(c.shape),
            "shape_str": c.shape_str,
            "dtype": c.dtype,
            "backend": c.backend,
            "small_call": c.small_call,
            "quiet": self.quiet.to_json() if self.quiet else None,
            "single_thread": self.single_thread.to_json() if self.single_thread else None,
            "contended": self.contended.to_json() if self.contended else None,
            "contended_vs_single_thread": self.vs_single_thread,
            "contended_vs_quiet": self.vs_quiet,
            "misses_target": self.misses_target,
            "error": self.error,
        }


@dataclass
class ContentionResult:
    """Everything one ``fastops bench --contend N`` run measured."""

    size: str
    competitors: int
    threads: int
    rows: list[ContendedRow]
    started: str
    competitor_pids: list[int] = field(default_factory=list)
    #: competitors that had exited before the contended phase ended (should be 0)
    competitors_exited_early: int = 0
    elapsed_s: float = 0.0
    machine: dict[str, Any] = field(default_factory=dict)
    argv: list[str] = field(default_factory=list)
    idle_gap: float = 0.0
    skipped_backends: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            **run_header_json(self, SCHEMA),
            "competitors": self.competitors,
            "competitor_pids": self.competitor_pids,
            "competitors_exited_early": self.competitors_exited_early,
            "threads": self.threads,
            "idle_gap_s": self.idle_gap,
            "skipped_backends": self.skipped_backends,
            "machine": self.machine,
            "targets": {
                "contended_vs_single_thread": TARGET_VS_SINGLE_THREAD,
                "small_call_contended_vs_quiet": TARGET_SMALL_VS_QUIET,
            },
            "rows": [r.to_json() for r in self.rows],
        }


def _time_fastops(case: Case, plan: Plan) -> Timing:
    """One settled timing of fastops on ``case`` (inputs built here, freed after)."""
    budget = plan.budgets(case)[0]
    case.setup(warmup=False)
    try:
        return measure(case.run, clock=case.impl.clock, budget=budget, idle_gap=plan.gap(case))
    finally:
        case.teardown()


def run_contention(
    competitors: int,
    size: str = "quick",
    families: Sequence[str] | None = None,
    ops: Sequence[str] | None = None,
    dtypes: Sequence[str] | None = None,
    on_start: Callable[[int], None] | None = None,
    on_step: StepFn | None = None,
    on_competitors: Callable[[list[int]], None] | None = None,
    idle_gap: float | None = None,
    shapes: Sequence[str] | None = None,
) -> ContentionResult:
    """Time every selected CPU case quiet, quiet on one thread, then with ``competitors``
    busy processes running (started once, after the quiet phases), all in this run.

    ``on_start(total)`` gets the number of timings (three per case); ``on_step`` is the
    progress callback of :func:`~fastops.bench.runner.run_bench`; ``on_competitors(pids)`` is
    called once the competitors run. They are stopped before this returns or raises.
    """
    import fastops

    from .devices import resolve_backends
    from .info import machine_info

    if competitors < 1:
        raise ValueError(f"--contend needs at least 1 competitor, got {competitors}")
    t0 = time.perf_counter()
    started = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    plan = Plan.for_size(size)
    if idle_gap is not None:
        plan = dataclasses.replace(plan, idle_gap=idle_gap)
    run_backends, skipped = resolve_backends("numba")
    if not run_backends:
        raise ValueError(f"--contend times the CPU backend, which is not usable: {skipped}")
    cases = get_cases(size, run_backends, families=families, ops=ops, dtypes=dtypes,
                      shapes=shapes)
    rows = [ContendedRow(case) for case in cases]
    if on_start:
        on_start(3 * len(rows))

    def timed(row: ContendedRow, phase: str, attribute: str) -> float:
        """Time one phase of a row into ``attribute``; returns the wall seconds it took."""
        t = time.perf_counter()
        if on_step:
            on_step(f"{row.case.name}: {phase}", False)
        if row.error is None:
            try:
                setattr(row, attribute, _time_fastops(row.case, plan))
            except Exception as exc:
                row.error = _error(exc)
        if on_step:
            on_step(f"{row.case.name}: {phase}", True)
        return time.perf_counter() - t

    quiet_s = 0.0
    for row in rows:
        quiet_s += timed(row, "quiet", "quiet")
        with single_thread():
            quiet_s += timed(row, "1 thread", "single_thread")
    # The competitors' own deadline is only the safety net for a bench killed without running
    # its finally (SIGKILL); it must outlast the contended phase, which times each case once
    # where the quiet phases timed it twice and compiled it, even if contention slows it a lot.
    deadline = 120.0 + 5.0 * quiet_s
    pids: list[int] = []
    exited_early = 0
    with Competitors(competitors, deadline) as procs:
        pids = procs.pids
        if on_competitors:
            on_competitors(pids)
        time.sleep(COMPETITOR_START_S)
        for row in rows:
            timed(row, "contended", "contended")
        exited_early = competitors - procs.running()
    clear_input_cache()
    return ContentionResult(
        size=size,
        competitors=competitors,
        threads=fastops.get_num_threads(),
        rows=rows,
        started=started,
        competitor_pids=pids,
        competitors_exited_early=exited_early,
        elapsed_s=time.perf_counter() - t0,
        machine=machine_info(run_backends),
        idle_gap=plan.idle_gap,
        skipped_backends=dict(skipped),
    )
