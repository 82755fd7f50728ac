"""Shared machinery of the asv suites: one class per op of a ``fastops.bench`` family.

Each generated class is parametrised by case id ``backend:dtype:shape``; the cases, shapes and
input generation are those of ``fastops bench``. ``setup`` builds the inputs and makes the
warm-up call, so Numba / NVRTC compilation never lands in the timed body; the timed body
synchronises the GPU so that asv's wall clock covers the kernel. Ops whose cases carry a GEMM
floor (``Case.floor_impl``) also get a ``<Class>GemmFloor`` class timing those BLAS calls on the
same inputs, so that asv tracks the floor beside fastops.

Environment: ``FASTOPS_BENCH_SIZE`` = ``full`` (default), ``quick`` or ``tiny`` (the test
suite runs every benchmark once at ``tiny``). The cupy cases appear only where CuPy sees a
GPU; nothing here imports cupy or torch otherwise.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from fastops.bench.cases import Case, get_cases, rotating
from fastops.bench.devices import resolve_backends

SIZE = os.environ.get("FASTOPS_BENCH_SIZE", "full")


def case_id(case: Case) -> str:
    return f"{case.backend}:{case.dtype}:{case.shape_str}"


class _CaseBench:
    """Shared body of the generated classes; subclasses set ``family``, ``op`` and ``params``."""

    family = ""
    op = ""
    size = SIZE
    backends: list[str] = []
    param_names = ["case"]
    params: list[list[str]] = [[]]
    # Full-size GPU cases allocate gigabytes and compile on first use.
    timeout = 600

    def _case(self, case_id_: str) -> Case:
        cases = get_cases(self.size, self.backends, families=[self.family], ops=[self.op])
        by_id = {case_id(c): c for c in cases}
        if case_id_ not in by_id:  # a case recorded on another machine (e.g. a GPU one)
            raise NotImplementedError(f"case {case_id_} is not available here")
        return by_id[case_id_]

    def setup(self, case_id_: str) -> None:
        self.case = self._case(case_id_)
        self.case.setup()  # inputs + warm-up call (compilation)

    def time_op(self, case_id_: str) -> None:
        self.case.run()
        self.case.sync()

    def teardown(self, case_id_: str) -> None:
        self.case.teardown()


class _GemmFloorBench(_CaseBench):
    """The GEMM floor of a GEMM-bound op: its ``floor_impl`` on the case's inputs."""

    def setup(self, case_id_: str) -> None:
        self.case = self._case(case_id_)
        if self.case.floor_impl is None:
            raise NotImplementedError(f"case {case_id_} has no GEMM floor")
        self.case.setup(warmup=False)
        self.step: Callable[[], Any] = rotating(self.case.floor_impl, self.case.input_sets)
        self.step()  # warm-up (BLAS threads, allocator)
        self.case.sync()

    def time_op(self, case_id_: str) -> None:
        self.step()
        self.case.sync()


def class_name(op: str) -> str:
    return "".join(part.capitalize() for part in op.split("_"))


def make_classes(family: str, module: str, size: str | None = None) -> dict[str, type]:
    """The asv classes of ``family`` for ``module`` (its ``__name__``): one per op, plus a
    ``<Op>GemmFloor`` class per op whose cases have a GEMM floor."""
    size = size or SIZE
    backends = resolve_backends("all")[0]
    by_op: dict[str, list[Case]] = {}
    for case in get_cases(size, backends, families=[family]):
        by_op.setdefault(case.op, []).append(case)
    classes: dict[str, type] = {}
    for op, cases in by_op.items():
        attrs = {
            "family": family,
            "op": op,
            "size": size,
            "backends": backends,
            "__module__": module,
        }
        name = class_name(op)
        ids = [case_id(c) for c in cases]
        classes[name] = type(
            name, (_CaseBench,), {**attrs, "params": [ids], "__doc__": f"fastops.{op} ({family})"}
        )
        floored = [case_id(c) for c in cases if c.floor_impl is not None]
        if floored:
            classes[f"{name}GemmFloor"] = type(
                f"{name}GemmFloor",
                (_GemmFloorBench,),
                {**attrs, "params": [floored], "__doc__": f"the GEMMs fastops.{op} needs"},
            )
    return classes
