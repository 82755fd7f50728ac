"""Run benchmark cases: bandwidth first, then every case, its GEMM floor and its peers, as rows.

The runner knows nothing about presentation; ``report.py`` turns a :class:`BenchResult` into
a table, JSON or a chart, and ``cli.py`` wires a progress bar to ``on_step``.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import gc
import re
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from .cases import Case, Impl, PeerSkipped, get_cases, rotating
from .devices import BENCH_BACKENDS, clear_input_cache, resolve_backends
from .peers import missing_peers
from .roofline import Bandwidth, measure_copy_bandwidth
from .timing import Budget, Timing, measure

#: Schema id written into the JSON; bump when a field changes meaning.
SCHEMA = "fastops-bench/1"


@dataclass(frozen=True)
class Plan:
    """What to run and how long to spend on it, per size ("full", "quick", "tiny")."""

    size: str
    fastops_budget: Budget
    peer_budget: Budget
    #: the NumPy reference and SciPy: hundreds of ms per call on the big shapes
    slow_peer_budget: Budget
    bandwidth_bytes: int
    #: small calls (``Case.small_call``): tens of microseconds each, so many repeats
    small_budget: Budget = Budget(200, 10, 1.0)
    small_peer_budget: Budget = Budget(100, 5, 0.5)
    #: seconds of idle sleep before each timed small call (0: back to back)
    idle_gap: float = 0.02

    @classmethod
    def for_size(cls, size: str) -> Plan:
        if size == "full":
            return cls(size, Budget(100, 5, 2.0), Budget(30, 3, 1.0), Budget(5, 1, 1.0),
                       256 << 20, Budget(400, 20, 2.0), Budget(200, 10, 1.0))
        if size == "quick":
            # Numba compilation dominates --quick (one minute on two cores): short budgets,
            # which settled medians mostly do not even use up.
            return cls(size, Budget(30, 5, 0.4), Budget(10, 3, 0.25), Budget(3, 1, 0.25),
                       128 << 20, Budget(100, 10, 0.4), Budget(50, 5, 0.2))
        if size == "tiny":
            return cls(size, Budget(3, 1, 0.02), Budget(2, 1, 0.02), Budget(1, 1, 0.02),
                       4 << 20, Budget(5, 2, 0.02), Budget(3, 1, 0.01), idle_gap=0.001)
        raise ValueError(f"Plan.for_size: size must be full, quick or tiny, got {size!r}")

    def budgets(self, case: Case) -> tuple[Budget, Budget, Budget]:
        """(fastops and its GEMM floor, peers, slow peers) for ``case``."""
        if case.small_call:
            return self.small_budget, self.small_peer_budget, self.small_peer_budget
        return self.fastops_budget, self.peer_budget, self.slow_peer_budget

    def gap(self, case: Case) -> float:
        """The idle gap before each timed call of ``case`` (small calls only)."""
        return self.idle_gap if case.small_call else 0.0


@dataclass
class PeerResult:
    """The timing of one other implementation of a case: a peer, or the GEMM floor."""

    name: str
    label: str
    timing: Timing | None = None
    error: str | None = None
    #: why the peer did not run (it raised PeerSkipped: not a failure)
    skipped: str | None = None

    @property
    def median(self) -> float | None:
        return self.timing.median if self.timing is not None and self.timing.times else None

    def speedup_over(self, fastops_s: float) -> float | None:
        """How many times faster fastops is than this peer (None when not measured)."""
        if self.timing is None or not self.timing.times or not fastops_s > 0:
            return None
        return self.timing.median / fastops_s

    def to_json(self, fastops_s: float) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "label": self.label}
        if self.timing is not None:
            out.update(self.timing.to_json())
        out["speedup"] = self.speedup_over(fastops_s)
        if self.error:
            out["error"] = self.error
        if self.skipped:
            out["skipped"] = self.skipped
        return out


@dataclass
class Row:
    """The result of one case: fastops' timing against the roofline(s) and the peers."""

    case: Case
    bandwidth: Bandwidth | None
    timing: Timing | None = None
    peers: list[PeerResult] = field(default_factory=list)
    error: str | None = None
    #: the case's ``floor_impl`` timed in the same run (GEMM-bound ops only)
    gemm: PeerResult | None = None

    @property
    def time_s(self) -> float | None:
        return self.timing.median if self.timing is not None and self.timing.times else None

    @property
    def spread_pct(self) -> float | None:
        """fastops' interquartile range as a % of its median (None when not measured)."""
        return self.timing.spread_pct if self.timing is not None else None

    @property
    def noisy(self) -> bool:
        """fastops' spread is over :data:`~fastops.bench.timing.NOISY_SPREAD_PCT`."""
        return self.timing is not None and self.timing.noisy

    @property
    def gbps(self) -> float | None:
        t = self.time_s
        return self.case.nbytes / t / 1e9 if t else None

    @property
    def floor_s(self) -> float | None:
        return self.bandwidth.floor_time(self.case.nbytes) if self.bandwidth else None

    @property
    def pct_of_copy(self) -> float | None:
        """floor / time, in percent of the measured copy bandwidth."""
        t, floor = self.time_s, self.floor_s
        return 100.0 * floor / t if t and floor else None

    @property
    def gemm_floor_s(self) -> float | None:
        """Median time of the BLAS calls the method needs (None without a floor_impl)."""
        return self.gemm.median if self.gemm is not None else None

    @property
    def pct_of_gemm_floor(self) -> float | None:
        """GEMM time / fastops time, in percent (100% = fastops costs only its GEMMs)."""
        t, floor = self.time_s, self.gemm_floor_s
        return 100.0 * floor / t if t and floor else None

    def speedup(self, peer: str) -> float | None:
        t = self.time_s
        for p in self.peers:
            if p.name == peer and t:
                return p.speedup_over(t)
        return None

    def to_json(self) -> dict[str, Any]:
        c = self.case
        out: dict[str, Any] = {
            "family": c.family,
            "op": c.op,
            "shape": list(c.shape),
            "shape_str": c.shape_str,
            "dtype": c.dtype,
            "backend": c.backend,
            "device": c.device,
            "bytes": c.nbytes,
            "small_call": c.small_call,
            "time_s": self.time_s,
            "spread_pct": self.spread_pct,
            "noisy": self.noisy,
            "GBps": self.gbps,
            "floor_s": self.floor_s,
            "pct_of_copy_bandwidth": self.pct_of_copy,
            "gemm_floor_s": self.gemm_floor_s,
            "pct_of_gemm_floor": self.pct_of_gemm_floor,
        }
        if self.timing is not None:
            out["timing"] = self.timing.to_json()
        t = self.time_s or float("nan")
        if self.gemm is not None:
            gemm = self.gemm.to_json(t)
            gemm.pop("speedup", None)
            out["gemm_floor"] = gemm
        out["peers"] = {p.name: p.to_json(t) for p in self.peers}
        out["error"] = self.error
        return out


@dataclass
class BenchResult:
    """Everything one ``fastops bench`` run measured."""

    size: str
    backends: list[str]
    skipped_backends: dict[str, str]
    bandwidth: dict[str, Bandwidth]
    rows: list[Row]
    started: str
    elapsed_s: float = 0.0
    machine: dict[str, Any] = field(default_factory=dict)
    argv: list[str] = field(default_factory=list)
    #: peers not installed here that the run would have timed, with how to install them
    missing_peers: dict[str, str] = field(default_factory=dict)
    #: the idle gap before each timed small call, in seconds
    idle_gap: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            **run_header_json(self),
            "missing_peers": self.missing_peers,
            "idle_gap_s": self.idle_gap,
            "backends": self.backends,
            "skipped_backends": self.skipped_backends,
            "machine": self.machine,
            "bandwidth": {dev: bw.to_json() for dev, bw in self.bandwidth.items()},
            "rows": [r.to_json() for r in self.rows],
        }


StepFn = Callable[[str, bool], None]


_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def run_header_json(result: Any, schema: str = SCHEMA) -> dict[str, Any]:
    """The fields every bench result's JSON starts with (plain runs and --contend alike)."""
    return {
        "schema": schema,
        "started": result.started,
        "elapsed_s": result.elapsed_s,
        "argv": result.argv,
        "size": result.size,
    }


def _error(exc: BaseException) -> str:
    """``Type: message`` without the terminal colours Numba puts in its errors."""
    return _ANSI.sub("", f"{type(exc).__name__}: {exc}").strip()


def _free_device(device: str) -> None:
    """Return cached GPU memory to the driver (host memory is freed by reference counting)."""
    if device == "cuda":
        import cupy

        gc.collect()  # drop cycles still holding device arrays before emptying the pool
        cupy.get_default_memory_pool().free_all_blocks()
        cupy.get_default_pinned_memory_pool().free_all_blocks()
        torch = sys.modules.get("torch")  # only if a torch peer already imported it
        if torch is not None and torch.cuda.is_initialized():
            torch.cuda.empty_cache()


def _time_other(
    impl: Impl, case: Case, budget: Budget, on_step: StepFn | None, what: str,
    idle_gap: float = 0.0,
) -> PeerResult:
    """Time a peer or the GEMM floor on the case's input sets; errors and skips recorded."""
    result = PeerResult(impl.name, impl.label)
    if on_step:
        on_step(f"{case.name}: {what}", False)
    try:
        result.timing = measure(
            rotating(impl, case.input_sets), clock=impl.clock, budget=budget,
            warmup=impl.warmup, idle_gap=idle_gap,
        )
    except PeerSkipped as exc:
        result.skipped = str(exc)
    except Exception as exc:
        result.error = _error(exc)
    return result


def run_case(
    case: Case,
    plan: Plan,
    bandwidth: Bandwidth | None,
    peers: Sequence[str] | None = None,
    on_step: StepFn | None = None,
) -> Row:
    """Time one case (fastops, its GEMM floor if it has one, then each installed peer) and
    return its :class:`Row`.

    The GEMM floor gets fastops' own budget, right after fastops, on the same input sets.
    Errors are recorded in the row rather than raised, so that one failing op or peer (a
    missing function, GPU memory exhausted) does not lose the rest of a long run; a peer that
    raises :class:`~fastops.bench.cases.PeerSkipped` is recorded as skipped, with its reason.
    """
    row = Row(case=case, bandwidth=bandwidth)
    impls = case.peers(peers)
    own_budget, peer_budget, slow_budget = plan.budgets(case)
    gap = plan.gap(case)
    try:
        if on_step:
            on_step(f"{case.name}: inputs", False)
        case.setup(warmup=False)
        if on_step:
            on_step(f"{case.name}: fastops", False)
        # The warm-up call inside measure() compiles; its time is kept as "warmup_s".
        row.timing = measure(case.run, clock=case.impl.clock, budget=own_budget, idle_gap=gap)
    except Exception as exc:
        row.error = _error(exc)
    if row.error is None and case.floor_impl is not None:
        row.gemm = _time_other(case.floor_impl, case, own_budget, on_step, "GEMM floor", gap)
        _free_device(case.device)
    if row.error is None:
        for impl in impls:
            budget = slow_budget if impl.slow else peer_budget
            row.peers.append(_time_other(impl, case, budget, on_step, impl.name, gap))
            # Host copies and peer outputs of a GPU case can be gigabytes: free them now.
            _free_device(case.device)
    case.teardown()
    _free_device(case.device)
    if on_step:
        on_step(case.name, True)
    return row


def measure_bandwidths(
    run_backends: Sequence[str], plan: Plan, on_step: StepFn | None = None
) -> dict[str, Bandwidth]:
    """The copy bandwidth of each device the backends run on."""
    bandwidth: dict[str, Bandwidth] = {}
    for b in run_backends:
        device = BENCH_BACKENDS[b]
        if device not in bandwidth:
            if on_step:
                on_step(f"copy bandwidth ({device})", False)
            # The GPU copy runs at TB/s: a larger array keeps the event overhead negligible.
            nbytes = plan.bandwidth_bytes * (4 if device == "cuda" else 1)
            bandwidth[device] = measure_copy_bandwidth(b, nbytes=nbytes)
    return bandwidth


def run_bench(
    size: str = "quick",
    backend: str = "all",
    families: Sequence[str] | None = None,
    ops: Sequence[str] | None = None,
    dtypes: Sequence[str] | None = None,
    peers: Sequence[str] | None = None,
    on_start: Callable[[int], None] | None = None,
    on_step: StepFn | None = None,
    idle_gap: float | None = None,
    shapes: Sequence[str] | None = None,
) -> BenchResult:
    """Measure the copy bandwidth of each device, then run every selected case.

    ``backend`` is "numba", "cupy" or "all" (every available one). ``peers`` names the peers
    to time (None: every installed one; the result then lists the missing ones with how to
    install them); ``shapes`` keeps the cases of these shape labels (:func:`get_cases`).
    ``idle_gap`` overrides the plan's sleep before each timed small call.
    ``on_start(total)`` is called once the number of cases is known;
    ``on_step(description, case_done)`` before each timed implementation and after each case
    (for a progress bar).
    """
    from .info import machine_info

    t0 = time.perf_counter()
    started = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    plan = Plan.for_size(size)
    if idle_gap is not None:
        plan = dataclasses.replace(plan, idle_gap=idle_gap)
    run_backends, skipped = resolve_backends(backend)
    cases = get_cases(size, run_backends, families=families, ops=ops, dtypes=dtypes,
                      shapes=shapes)
    if on_start:
        on_start(len(cases))
    bandwidth = measure_bandwidths(run_backends, plan, on_step)
    rows = []
    for case in cases:
        rows.append(run_case(case, plan, bandwidth.get(case.device), peers, on_step))
    clear_input_cache()
    for device in bandwidth:
        _free_device(device)
    devices = {BENCH_BACKENDS[b] for b in run_backends}
    return BenchResult(
        size=size,
        backends=run_backends,
        skipped_backends=skipped,
        bandwidth=bandwidth,
        rows=rows,
        started=started,
        elapsed_s=time.perf_counter() - t0,
        machine=machine_info(run_backends),
        missing_peers=missing_peers(devices) if peers is None else {},
        idle_gap=plan.idle_gap,
    )
