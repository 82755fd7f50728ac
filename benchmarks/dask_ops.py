"""asv benchmarks of fastops on dask arrays: logsumexp and softmax over the chunked axis.

One class per op, parametrised by case id ``backend:dtype:shape``; the cases are those of
``fastops bench --family dask`` (``fastops/bench/dask_ops.py``), the class machinery is
``_suite.py``. Needs dask installed (no cases otherwise). Not named ``dask`` so that it cannot
shadow the real package on asv's path.

Environment: ``FASTOPS_BENCH_SIZE`` = ``full`` (default), ``quick`` or ``tiny``.
"""

from __future__ import annotations

from ._suite import make_classes as _make_classes

globals().update(_make_classes("dask", __name__))
