"""asv benchmarks of the smooth family: thin wrappers over ``fastops.bench`` cases.

One class per op (``Logsumexp``, ``SoftmaxBackward``, ...), parametrised by case id
``backend:dtype:shape``; the cases, shapes and input generation are those of
``fastops bench`` (``fastops/bench/smooth.py``). ``setup`` builds the inputs and makes the
warm-up call, so Numba / NVRTC compilation never lands in the timed body; the timed body
synchronises the GPU so that asv's wall clock covers the kernel.

Environment: ``FASTOPS_BENCH_SIZE`` = ``full`` (default), ``quick`` or ``tiny`` (the test
suite runs every benchmark once at ``tiny``). The cupy cases appear only where CuPy sees a
GPU; nothing here imports cupy or torch otherwise.
"""

from __future__ import annotations

import os as _os

from fastops.bench.cases import Case as _Case
from fastops.bench.cases import get_cases as _get_cases
from fastops.bench.devices import resolve_backends as _resolve_backends

_SIZE = _os.environ.get("FASTOPS_BENCH_SIZE", "full")
_BACKENDS = _resolve_backends("all")[0]


def _case_id(case: _Case) -> str:
    return f"{case.backend}:{case.dtype}:{case.shape_str}"


class _SmoothBench:
    """Shared body of the generated classes; subclasses set ``op`` and ``params``."""

    op = ""
    param_names = ["case"]
    params: list[list[str]] = [[]]
    # Full-size GPU cases allocate gigabytes and compile on first use.
    timeout = 600

    def setup(self, case_id: str) -> None:
        cases = {_case_id(c): c for c in _get_cases(_SIZE, _BACKENDS, ops=[self.op])}
        if case_id not in cases:  # a case recorded on another machine (e.g. a GPU one)
            raise NotImplementedError(f"case {case_id} is not available here")
        self.case = cases[case_id]
        self.case.setup()  # inputs + warm-up call (compilation)

    def time_op(self, case_id: str) -> None:
        self.case.run()
        self.case.sync()

    def teardown(self, case_id: str) -> None:
        self.case.teardown()


def _class_name(op: str) -> str:
    return "".join(part.capitalize() for part in op.split("_"))


def _make_classes() -> dict[str, type]:
    by_op: dict[str, list[str]] = {}
    for case in _get_cases(_SIZE, _BACKENDS, families=["smooth"]):
        by_op.setdefault(case.op, []).append(_case_id(case))
    return {
        _class_name(op): type(
            _class_name(op),
            (_SmoothBench,),
            {"op": op, "params": [ids], "__module__": __name__, "__doc__": f"fastops.{op}"},
        )
        for op, ids in by_op.items()
    }


globals().update(_make_classes())
