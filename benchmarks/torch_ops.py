"""asv benchmarks of the torch family: fastops.torch forward + backward against torch.

One class per op (``SoftmaxFwdBwd``, ...), parametrised by case id ``backend:dtype:shape``;
the cases are those of ``fastops bench --family torch`` (``fastops/bench/torch_ops.py``),
the class machinery is ``_suite.py``. Needs torch installed (no cases otherwise). The module
is not named ``torch`` so that it cannot shadow the real package on asv's path.

Environment: ``FASTOPS_BENCH_SIZE`` = ``full`` (default), ``quick`` or ``tiny``.
"""

from __future__ import annotations

from ._suite import make_classes as _make_classes

globals().update(_make_classes("torch", __name__))
