"""asv benchmarks of the Langevin and random families: thin wrappers over ``fastops.bench``
cases.

One class per op (``LangevinStep``, ``RandomNormal``, ``GmmScore``, ``AnnealedLangevin``),
parametrised by case id ``backend:dtype:shape``; the cases are those of ``fastops bench``
(``fastops/bench/langevin.py``), the class machinery is ``_suite.py``.

Environment: ``FASTOPS_BENCH_SIZE`` = ``full`` (default), ``quick`` or ``tiny``.
"""

from __future__ import annotations

from ._suite import make_classes as _make_classes

globals().update(_make_classes("langevin", __name__))
