"""SciPy's own test module for logsumexp, softmax and log_softmax, run against fastops.

``scipy/special/tests/test_logsumexp.py`` ships inside the SciPy wheel. It runs here in a
subprocess (``pytest --pyargs``, never copied into this repository) with its ``logsumexp``,
``softmax`` and ``log_softmax`` replaced by fastops' (``_scipy_suite_plugin.py``), and exactly
the documented deviations must fail: a test that starts passing or a new failure both fail
this test. The deviations are in docs/semantics.md ("SciPy's test suite").
"""

from __future__ import annotations

import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

scipy = pytest.importorskip("scipy")

#: SciPy versions whose test module this list of deviations was written against.
KNOWN_VERSIONS = ("1.17.",)

#: Tests expected to fail, by test id, with the reason (docs/semantics.md).
DEFAULT_AXIS = "softmax / log_softmax default to axis=-1 (JAX's and torch's), SciPy's to None"
DEVIATIONS = {
    "TestSoftmax::test_softmax_fixtures[numpy]": DEFAULT_AXIS,
    "TestLogSoftmax::test_log_softmax_noneaxis[numpy]": DEFAULT_AXIS,
}

def test_scipy_logsumexp_suite(tmp_path):
    if not scipy.__version__.startswith(KNOWN_VERSIONS):
        pytest.skip(f"SciPy {scipy.__version__}: its test module is not the one the deviation "
                    f"list was written for ({', '.join(KNOWN_VERSIONS)}x)")
    report = tmp_path / "scipy_suite.xml"
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(Path(__file__).parent),
                                                       env.get("PYTHONPATH")]))
    env.pop("SCIPY_ARRAY_API", None)  # NumPy only: fastops' functions take NumPy/CuPy arrays
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "_scipy_suite_plugin", "--pyargs",
         "scipy.special.tests.test_logsumexp", "-q", "--tb=line", "-p", "no:cacheprovider",
         f"--junitxml={report}"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert report.exists(), f"SciPy's suite did not run:\n{run.stdout[-3000:]}\n{run.stderr}"
    failed, passed = set(), set()
    for case in ET.parse(report).iter("testcase"):
        test_id = f"{case.get('classname').lstrip('.').split('.')[-1]}::{case.get('name')}"
        if any(child.tag in ("failure", "error") for child in case):
            failed.add(test_id)
        elif not any(child.tag == "skipped" for child in case):
            passed.add(test_id)
    assert len(failed | passed) > 300, f"too few tests ran:\n{run.stdout[-3000:]}"
    expected = set(DEVIATIONS)
    unexpected = sorted(failed - expected)
    fixed = sorted(expected - failed)
    assert not unexpected, f"SciPy tests failing beyond the documented deviations: {unexpected}"
    assert not fixed, f"documented deviations that now pass (update the list): {fixed}"
