"""asv benchmarks of the rank_one family: thin wrappers over ``fastops.bench`` cases.

One class per op (``ExpmRank1``, ``ExpmRank1Apply``, ``ExpmRank1ChainApply``), parametrised
by case id ``backend:dtype:shape``; the cases are those of ``fastops bench``
(``fastops/bench/rank_one.py``), the class machinery is ``_suite.py``.

Environment: ``FASTOPS_BENCH_SIZE`` = ``full`` (default), ``quick`` or ``tiny``.
"""

from __future__ import annotations

from ._suite import make_classes as _make_classes

globals().update(_make_classes("rank_one", __name__))
