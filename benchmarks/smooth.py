"""asv benchmarks of the smooth family: thin wrappers over ``fastops.bench`` cases.

One class per op (``Logsumexp``, ``SoftmaxBackward``, ...), parametrised by case id
``backend:dtype:shape``; the cases, shapes and input generation are those of
``fastops bench`` (``fastops/bench/smooth.py``), the class machinery is ``_suite.py``.

Environment: ``FASTOPS_BENCH_SIZE`` = ``full`` (default), ``quick`` or ``tiny``.
"""

from __future__ import annotations

from ._suite import make_classes as _make_classes

globals().update(_make_classes("smooth", __name__))
