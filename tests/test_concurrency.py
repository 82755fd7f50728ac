"""Many threads calling fastops at once get exactly the serial results.

Numba's workqueue threading layer aborts the process when two threads launch parallel kernels
at the same time; fastops then runs the serial compilation of a kernel for the caller that
finds another launch in flight. The subprocess tests force that layer (where it is not the
default) and check that 8 threads x N calls neither abort nor change a single bit.

These test-sized calls would run serially (below fastops._numba.PARALLEL_MIN_NS), so the
threshold is set to 0 here: every call opens a parallel region, as a large one would.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

import fastops
import fastops._numba as scheduling

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
THREADS = 8


def workload():
    """A fixed mix of small calls: every op, float32/float64, masks, short and long rows."""
    rng = np.random.default_rng(99)
    calls = []
    for shape in [(7, 33), (130, 16), (5, 300), (3, 9)]:
        for dtype in (np.float32, np.float64):
            x = (rng.standard_normal(shape) * 3).astype(dtype)
            where = rng.random(shape) > 0.3
            rows = np.ones(shape[0], dtype)
            y = fastops.softmax(x)
            calls += [
                ("logsumexp", (x,), {"axis": -1}),
                ("logsumexp", (x,), {"axis": 0, "where": where}),
                ("softmax", (x,), {"where": where}),
                ("log_softmax", (x,), {"temperature": 0.5}),
                ("smooth_max", (x,), {"temperature": 2.0}),
                ("soft_argmax", (x,), {"where": where}),
                ("logsumexp_backward", (x, fastops.logsumexp(x, axis=-1), rows), {"axis": -1}),
                ("softmax_backward", (y, x), {}),
                ("log_softmax_backward", (np.log(y), x), {"where": where}),
                ("smooth_max_backward", (x, rows), {}),
                ("soft_argmax_backward", (x, rows), {"where": where}),
            ]
    calls.append(("logsumexp", (rng.standard_normal(20),),
                  {"b": rng.uniform(-1, 2, 20), "return_sign": True}))
    return calls


def _call(call):
    op, args, kwargs = call
    return getattr(fastops, op)(*args, **kwargs)


def _plan(ncalls, per_thread):
    """Which calls each thread makes, in which order (every thread a different order)."""
    return [[(t * 7 + 3 * k) % ncalls for k in range(per_thread)] for t in range(THREADS)]


def run_concurrently(calls, per_thread, serial=None):
    """Run the plan on THREADS threads started together; return the list of mismatches
    against ``serial`` (computed here, afterwards, when None)."""
    plan = _plan(len(calls), per_thread)
    results = [[None] * per_thread for _ in range(THREADS)]
    errors = []
    barrier = threading.Barrier(THREADS)

    def worker(t):
        try:
            barrier.wait()
            for k, i in enumerate(plan[t]):
                results[t][k] = _call(calls[i])
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(f"thread {t}: {exc!r}")

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(THREADS)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    if serial is None:
        serial = [_call(c) for c in calls]
    mismatches = list(errors)
    if errors:  # results of the failed threads are missing
        return mismatches
    for t in range(THREADS):
        for k, i in enumerate(plan[t]):
            got, want = results[t][k], serial[i]
            got = got if isinstance(got, tuple) else (got,)
            want = want if isinstance(want, tuple) else (want,)
            for g, w in zip(got, want, strict=True):
                if not (np.asarray(g).dtype == np.asarray(w).dtype
                        and np.array_equal(g, w, equal_nan=True)):
                    mismatches.append(f"thread {t} call {k}: {calls[i][0]} differs")
    return mismatches


@pytest.fixture(autouse=True)
def _every_call_parallel(monkeypatch):
    monkeypatch.setattr(scheduling, "PARALLEL_MIN_NS", 0)
    monkeypatch.setattr(scheduling, "CHUNK_NS", 1)


def force_parallel():
    """For the subprocesses: the same as the fixture above."""
    scheduling.PARALLEL_MIN_NS = 0
    scheduling.CHUNK_NS = 1


def test_threads_give_serial_results():
    calls = workload()
    serial = [_call(c) for c in calls]
    mismatches = run_concurrently(calls, per_thread=100, serial=serial)
    assert not mismatches, mismatches[:10]


def test_threads_give_serial_results_repeatedly():
    """Shorter bursts, several times (each burst races the first launches again)."""
    calls = workload()
    serial = [_call(c) for c in calls]
    for _ in range(3):
        mismatches = run_concurrently(calls, per_thread=20, serial=serial)
        assert not mismatches, mismatches[:10]


_SCRIPT = """
import sys
import numba
import test_concurrency as tc

tc.force_parallel()
warm = sys.argv[1] == "warm"
calls = tc.workload()
serial = [tc._call(c) for c in calls] if warm else None
mismatches = tc.run_concurrently(calls, per_thread={per_thread}, serial=serial)
layer = numba.threading_layer()
assert layer == "workqueue", layer
assert not mismatches, mismatches[:10]
print("ok", layer, len(calls))
"""


def _run_workqueue(mode, per_thread):
    env = dict(os.environ)
    env.setdefault("NUMBA_CACHE_DIR", "/tmp/numba-cache-tests")
    env["NUMBA_THREADING_LAYER"] = "workqueue"
    env["PYTHONPATH"] = os.pathsep.join([str(HERE), str(ROOT)])
    proc = subprocess.run(
        [sys.executable, "-c", _SCRIPT.format(per_thread=per_thread), mode],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600,
    )
    assert proc.returncode == 0, (
        f"exit code {proc.returncode} (negative: killed by a signal, e.g. Numba's abort on "
        f"concurrent workqueue launches)\nstdout: {proc.stdout[-2000:]}\n"
        f"stderr: {proc.stderr[-4000:]}"
    )
    assert proc.stdout.startswith("ok workqueue")


def test_workqueue_layer_threads_after_warmup():
    """Serial results first (the layer is then known to be workqueue), then 8 threads."""
    _run_workqueue("warm", per_thread=100)


def test_workqueue_layer_threads_from_cold_start():
    """8 threads making the very first parallel launches of the process at once."""
    _run_workqueue("cold", per_thread=40)
