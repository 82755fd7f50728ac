"""Benchmark cases and the family registry shared by ``fastops bench``, asv and the tests.

A :class:`Case` is one op on one shape, dtype and backend: it knows the bytes the op must
move (its floor), how to build random inputs on the backend's device, how to call fastops,
and which peers (NumPy reference, SciPy, torch, cupyx, the CPU backend) compute the same
thing. A GEMM-bound op also carries ``floor_impl``, the BLAS calls its method needs, which the
runner times beside fastops (the "% GEMM" column). Each op family registers a function
producing its cases::

    from fastops.bench.cases import register_family
    register_family("orthogonality", orthogonality_cases, ops=("ortho_frobenius", ...))

where ``orthogonality_cases(size, backend, ops) -> list[Case]`` (see
:func:`register_family`). Built-in families are listed in ``_BUILTIN_FAMILIES`` and imported
on first use, so importing this module stays cheap. A new family adds a module beside
``fastops/bench/smooth.py`` (or ``orthogonality.py``) and one line to ``_BUILTIN_FAMILIES``.
"""

from __future__ import annotations

import importlib
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from .devices import BENCH_BACKENDS, synchronize

#: "full": every shape, dtype and op; "quick": the subset that fits in a minute on a two-core
#: laptop, compilation included (:mod:`fastops.bench.quick` says what it leaves out); "tiny":
#: small arrays so that tests can run every case in seconds.
SIZES: tuple[str, ...] = ("full", "quick", "tiny")

#: Inputs smaller than this are rotated through several copies so that repeats do not
#: time a cache-resident array (most L2/L3 caches, and the H100's 50 MB L2, are below it).
ROTATE_BELOW_BYTES = 64 << 20
MAX_INPUT_SETS = 8


class PeerSkipped(Exception):
    """Raised by a peer (in ``prepare`` or ``call``) that cannot run a case by design, e.g.
    because it would allocate a 17 GB temporary; the runner records it as skipped, with the
    message as the reason, instead of as an error."""


@dataclass(frozen=True)
class Impl:
    """One way to compute a case: fastops itself or a peer.

    ``prepare`` turns one input set of the case (arrays on the case's device) into the
    arguments ``call`` takes (e.g. torch tensors, or host copies for a CPU peer of a GPU
    case); it runs in setup and is never timed. ``clock`` names how a call is timed:
    "host" (perf_counter; the call is synchronous), "cupy" or "torch" (CUDA events).
    """

    name: str
    label: str
    call: Callable[..., Any]
    prepare: Callable[[tuple], tuple] = lambda args: args
    clock: str = "host"
    #: slow references (NumPy, SciPy) get the short peer budget
    slow: bool = False
    #: untimed calls before timing; 0 for a host reference on GPU-sized arrays, where one
    #: call takes seconds and there is nothing to compile or warm
    warmup: int = 1


@dataclass
class Case:
    """One op on one shape, dtype and backend, with its peers.

    Lifecycle (asv and ``fastops bench`` alike): :meth:`setup` builds the inputs and makes
    one warm-up call (Numba/NVRTC compilation happens here, never in the timed body);
    :meth:`run` is the timed body: one call on the next input set; :meth:`teardown` frees
    the inputs.
    """

    family: str
    op: str
    shape: tuple[int, ...]
    dtype: str
    backend: str
    #: bytes floor: every input read once + every output written once
    nbytes: int
    #: ``make_inputs(seed)`` -> one input set (a tuple of arrays on the backend's device)
    make_inputs: Callable[[int], tuple]
    impl: Impl
    #: ``peer_fn(wanted)`` -> the installed peers (a function, so that building cases for asv
    #: or the tests never imports torch or scipy)
    peer_fn: Callable[[Sequence[str] | None], tuple[Impl, ...]] | None = None
    #: GEMM-bound ops: the BLAS calls the method needs (e.g. the Gram from the smaller side and
    #: the gradient product, numpy.matmul / cupy.matmul), timed in the same run as fastops;
    #: None for memory-bound ops, whose floor is ``nbytes`` at the copy bandwidth
    floor_impl: Impl | None = None
    #: replaces the shape in tables and ids when the input is not one array (e.g. a list of
    #: kernels: "50 kernels")
    shape_label: str = ""
    #: the op draws random numbers: its peers compute the same distribution from other
    #: generators, so they agree with fastops in shape and dtype, not in values
    stochastic: bool = False
    #: a call of tens of microseconds, as a pipeline makes between other work: timed with many
    #: repeats, each after an idle gap (``fastops bench --idle-gap``), outside the timed interval
    small_call: bool = False
    _sets: list[tuple] = field(default_factory=list, init=False, repr=False)
    _next: int = field(default=0, init=False, repr=False)

    @property
    def device(self) -> str:
        return BENCH_BACKENDS.get(self.backend, "cpu")

    @property
    def shape_str(self) -> str:
        return self.shape_label or "x".join(str(s) for s in self.shape)

    @property
    def name(self) -> str:
        """A stable id, e.g. ``smooth.logsumexp:numba:float64:4096x4096``."""
        return f"{self.family}.{self.op}:{self.backend}:{self.dtype}:{self.shape_str}"

    @property
    def input_sets(self) -> list[tuple]:
        return self._sets

    def peers(self, wanted: Sequence[str] | None = None) -> tuple[Impl, ...]:
        """The peers installed here, restricted to the names in ``wanted`` (default: all)."""
        return self.peer_fn(wanted) if self.peer_fn is not None else ()

    def n_input_sets(self, input_bytes: int) -> int:
        """How many input copies to rotate through so repeats miss the cache."""
        if input_bytes <= 0 or input_bytes >= ROTATE_BELOW_BYTES:
            return 1
        return min(MAX_INPUT_SETS, math.ceil(ROTATE_BELOW_BYTES / input_bytes))

    def setup(self, warmup: bool = True) -> None:
        """Build the input sets and (by default) make one untimed warm-up call."""
        first = self.make_inputs(0)
        in_bytes = sum(int(getattr(a, "nbytes", 0)) for a in first)
        self._sets = [first] + [self.make_inputs(s) for s in range(1, self.n_input_sets(in_bytes))]
        self._next = 0
        if warmup:
            self.impl.call(*first)
            self.sync()

    def run(self) -> Any:
        """The timed body: call fastops once on the next input set (no synchronisation)."""
        args = self._sets[self._next]
        self._next = (self._next + 1) % len(self._sets)
        return self.impl.call(*args)

    def sync(self) -> None:
        """Wait for the device (a no-op on the CPU)."""
        synchronize(self.device)

    def teardown(self) -> None:
        self._sets = []
        self._next = 0


def rotating(impl: Impl, sets: list[tuple]) -> Callable[[], Any]:
    """A zero-argument step calling ``impl`` on its prepared input sets in turn (``prepare``
    runs here, once per set, untimed)."""
    prepared = [impl.prepare(s) for s in sets]
    state = [0]

    def step() -> Any:
        args = prepared[state[0]]
        state[0] = (state[0] + 1) % len(prepared)
        return impl.call(*args)

    return step


CasesFn = Callable[[str, str, Sequence[str] | None], list[Case]]


@dataclass(frozen=True)
class Family:
    """A registered op family: its op names and the function that builds its cases."""

    name: str
    ops: tuple[str, ...]
    cases_fn: CasesFn


_FAMILIES: dict[str, Family] = {}
#: families shipped with fastops, imported lazily; each module calls register_family
_BUILTIN_FAMILIES: dict[str, str] = {
    "smooth": "fastops.bench.smooth",
    "orthogonality": "fastops.bench.orthogonality",
    "rank_one": "fastops.bench.rank_one",
    "langevin": "fastops.bench.langevin",
    "torch": "fastops.bench.torch_ops",
    "dask": "fastops.bench.dask_ops",
}


def check_request(func: str, backend: str, ops: Sequence[str] | None,
                  known: Sequence[str]) -> str:
    """The device of ``backend``, after checking it and the ``ops`` asked for (ValueError
    naming ``func`` otherwise): the common preamble of every family's cases function."""
    device = BENCH_BACKENDS.get(backend)
    if device is None:
        raise ValueError(f"{func}: unknown backend {backend!r}")
    bad = [op for op in ops or () if op not in known]
    if bad:
        raise ValueError(f"{func}: unknown op(s) {bad}; choose from {tuple(known)}")
    return device


def register_family(name: str, cases_fn: CasesFn, ops: Sequence[str]) -> None:
    """Register op family ``name``.

    ``cases_fn(size, backend, ops) -> list[Case]`` builds the cases of ``size`` (one of
    :data:`SIZES`) on ``backend``; ``ops`` is None for the family's default selection at that
    size (``quick`` may leave some ops out) or the op names asked for, all among ``ops``.
    Registering a name again replaces it.
    """
    if not callable(cases_fn):
        raise TypeError(f"register_family: cases_fn must be callable, got {cases_fn!r}")
    _FAMILIES[name] = Family(name, tuple(ops), cases_fn)


def family_names() -> list[str]:
    """Every registered family (built-in ones included)."""
    return sorted(set(_FAMILIES) | set(_BUILTIN_FAMILIES))


def get_family(name: str) -> Family:
    """The registered family ``name``, importing a built-in one on first use."""
    if name not in _FAMILIES and name in _BUILTIN_FAMILIES:
        importlib.import_module(_BUILTIN_FAMILIES[name])
    try:
        return _FAMILIES[name]
    except KeyError:
        raise ValueError(
            f"unknown benchmark family {name!r}; known: {', '.join(family_names())}"
        ) from None


def get_cases(
    size: str = "full",
    backends: Sequence[str] = ("numba",),
    families: Sequence[str] | None = None,
    ops: Sequence[str] | None = None,
    dtypes: Sequence[str] | None = None,
    shapes: Sequence[str] | None = None,
) -> list[Case]:
    """The cases of ``families`` (all by default) on ``backends``.

    ``ops`` selects ops by name across families (an op no family defines raises ValueError,
    so a typo on the command line is not a silent empty run); ``dtypes`` filters by dtype;
    ``shapes`` by :attr:`Case.shape_str`, the shape as the tables print it (e.g.
    "4096x4096", "4096x4096 ax0"; one that no selected case has raises ValueError).
    """
    if size not in SIZES:
        raise ValueError(f"get_cases: size must be one of {SIZES}, got {size!r}")
    fams = [get_family(f) for f in (families or family_names())]
    if ops:
        known = {op for fam in fams for op in fam.ops}
        unknown = [op for op in ops if op not in known]
        if unknown:
            raise ValueError(
                f"unknown op(s) {', '.join(unknown)}; choose from {', '.join(sorted(known))}"
            )
    cases: list[Case] = []
    for fam in fams:
        selected = [op for op in ops if op in fam.ops] if ops else None
        if ops and not selected:
            continue
        for backend in backends:
            cases.extend(fam.cases_fn(size, backend, selected))
    if dtypes:
        cases = [c for c in cases if c.dtype in dtypes]
    if shapes:
        known_shapes = list(dict.fromkeys(c.shape_str for c in cases))
        unknown = [s for s in shapes if s not in known_shapes]
        if unknown:
            raise ValueError(
                f"no selected case has shape(s) {', '.join(map(repr, unknown))}; choose from "
                f"{', '.join(known_shapes)}"
            )
        cases = [c for c in cases if c.shape_str in shapes]
    return cases
