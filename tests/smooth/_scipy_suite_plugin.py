"""pytest plugin for test_scipy_suite.py: SciPy's logsumexp tests with fastops' functions.

SciPy's test module binds ``logsumexp``, ``softmax`` and ``log_softmax`` at import, and its
class decorators key a table on SciPy's own functions; so the names are replaced in the
collected module's namespace, after import and decoration, before any test runs.
"""

from __future__ import annotations

import fastops


def pytest_collection_modifyitems(session, config, items):  # noqa: ARG001 - pytest's hook
    for item in items:
        module = item.module
        module.logsumexp = fastops.logsumexp
        module.softmax = fastops.softmax
        module.log_softmax = fastops.log_softmax
