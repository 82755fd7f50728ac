"""asv benchmarks of the orthogonality family: thin wrappers over ``fastops.bench`` cases.

One class per op (``OrthoFrobenius``, ``OrthoModel``, ``SomPenaltyAndGrad``, ...),
parametrised by case id ``backend:dtype:shape``, plus ``<Op>GemmFloor`` classes timing the
GEMMs each op needs (the floor of these GEMM-bound ops) on the same inputs; the cases are
those of ``fastops bench`` (``fastops/bench/orthogonality.py``), the class machinery is
``_suite.py``.

Environment: ``FASTOPS_BENCH_SIZE`` = ``full`` (default), ``quick`` or ``tiny``.
"""

from __future__ import annotations

from ._suite import make_classes as _make_classes

globals().update(_make_classes("orthogonality", __name__))
