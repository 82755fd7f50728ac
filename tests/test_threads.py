"""The scheduling model of the CPU kernels and the thread-control API.

- ``fastops.threads`` / ``set_num_threads`` / ``get_num_threads``: restore the previous count on
  exit and on an exception, act on the calling thread only, reject bad counts clearly.
- ``fastops._numba.Launch``: serial below the measured threshold and for one thread; the
  dynamic chunks hand every item out exactly once.
- ``fastops._threads.blas_threads``: the GEMMs fastops calls run on one BLAS thread below the
  threshold and on at most ``fastops.get_num_threads()`` above it; BLAS's own setting is back
  afterwards, also on an exception.
- Every family's kernels on their parallel path under each Numba threading layer (omp,
  workqueue, tbb where installed, omp with torch imported first) and 1-3 threads: reference
  results, and the same bits where the README promises bits (tests/_threading_workload.py).
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import threading
from pathlib import Path

import numba
import numpy as np
import pytest

import fastops
import fastops._numba as scheduling

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent


# --------------------------------------------------------------------------------------------
# The thread-control API
# --------------------------------------------------------------------------------------------


def test_threads_sets_and_restores():
    before = fastops.get_num_threads()
    with fastops.threads(1):
        assert fastops.get_num_threads() == 1
        assert numba.get_num_threads() == 1  # it is Numba's mask
    assert fastops.get_num_threads() == before


def test_threads_restores_on_exception():
    before = fastops.get_num_threads()
    with pytest.raises(RuntimeError, match="inside"), fastops.threads(1):
        raise RuntimeError("inside")
    assert fastops.get_num_threads() == before


def test_threads_nested_restore_in_order():
    before = fastops.get_num_threads()
    top = numba.config.NUMBA_NUM_THREADS
    with fastops.threads(top):
        with fastops.threads(1):
            assert fastops.get_num_threads() == 1
        assert fastops.get_num_threads() == top
    assert fastops.get_num_threads() == before


def test_set_num_threads_round_trip():
    before = fastops.get_num_threads()
    try:
        fastops.set_num_threads(1)
        assert fastops.get_num_threads() == 1
    finally:
        fastops.set_num_threads(before)


def test_threads_is_per_calling_thread():
    """Numba's mask is thread-local: a limit in one thread leaves another thread's alone."""
    seen = {}
    ready, done = threading.Event(), threading.Event()

    def other():
        ready.wait()
        seen["other"] = fastops.get_num_threads()
        done.set()

    t = threading.Thread(target=other)
    t.start()
    with fastops.threads(1):
        ready.set()
        done.wait(30)
        seen["main"] = fastops.get_num_threads()
    t.join()
    assert seen["main"] == 1
    assert seen["other"] == numba.config.NUMBA_NUM_THREADS


@pytest.mark.parametrize(
    ("value", "error", "message"),
    [
        (0, ValueError, r"fastops\.threads: n must be between 1 and \d+ .*got 0"),
        (10_000, ValueError, r"fastops\.threads: n must be between 1 and \d+ .*got 10000"),
        (-1, ValueError, r"got -1"),
        (2.0, TypeError, r"fastops\.threads: n must be an int, got float 2\.0"),
        (True, TypeError, r"n must be an int, got bool True"),
        ("2", TypeError, r"got str '2'"),
        (None, TypeError, r"got NoneType None"),
    ],
)
def test_threads_rejects_bad_counts(value, error, message):
    before = fastops.get_num_threads()
    with pytest.raises(error, match=message), fastops.threads(value):
        pass
    with pytest.raises(error, match=message.replace("threads", "set_num_threads", 1)
                       if "fastops" in message else message):
        fastops.set_num_threads(value)
    assert fastops.get_num_threads() == before


def test_threads_accepts_numpy_integers():
    with fastops.threads(np.int64(1)):
        assert fastops.get_num_threads() == 1


def test_threadpoolctl_limits_leave_fastops_alone():
    """What the README says: threadpoolctl's limits do not cap fastops' Numba threads."""
    threadpoolctl = pytest.importorskip("threadpoolctl")
    before = fastops.get_num_threads()
    with threadpoolctl.threadpool_limits(1):
        assert fastops.get_num_threads() == before


# --------------------------------------------------------------------------------------------
# Launch: serial or parallel, and the chunks
# --------------------------------------------------------------------------------------------


def test_launch_is_serial_below_the_threshold():
    with scheduling.Launch(64, 100.0) as (variant, work):  # 6.4 us of work
        assert variant == 1
        assert work[scheduling.WORKERS] == 1


@pytest.mark.skipif(numba.config.NUMBA_NUM_THREADS < 2, reason="needs 2 Numba threads")
def test_launch_is_parallel_above_the_threshold():
    items = 1 + scheduling.PARALLEL_MIN_NS // 1000
    with scheduling.Launch(items, 1000.0) as (variant, work):
        assert variant == 0 or scheduling.active_layer() in (None, "workqueue")
        assert work[scheduling.ITEMS] == items
        # a chunk is CHUNK_NS of work
        assert work[scheduling.CHUNK] == scheduling.CHUNK_NS // 1000
    with fastops.threads(1), scheduling.Launch(items, 1000.0) as (variant, work):
        assert variant == 1  # one thread: the serial compilation, no region at all


def test_launch_chunk_bounds():
    assert scheduling.Launch(0, 10.0).work[scheduling.CHUNK] == 1
    assert scheduling.Launch(5, 1e9).work[scheduling.CHUNK] == 1  # never 0
    assert scheduling.Launch(5, 0.001).work[scheduling.CHUNK] == 5  # never above the items
    assert scheduling.Launch(100, 1.0, chunk=7).work[scheduling.CHUNK] == 7


def _visit_impl(counts, work):
    for _worker in numba.prange(work[scheduling.WORKERS]):
        while True:
            start, stop = scheduling.next_chunk(work)
            if start >= stop:
                break
            for i in range(start, stop):
                counts[i] += 1


_visit = scheduling.jit_pair(_visit_impl)


@pytest.mark.parametrize("items", [0, 1, 7, 64, 1001])
@pytest.mark.parametrize("chunk", [1, 3, 64, 5000])
@pytest.mark.parametrize("variant", [0, 1])
def test_chunks_visit_every_item_once(items, chunk, variant):
    counts = np.zeros(max(items, 1), np.int64)
    work = np.array([0, items, chunk, 3 if variant == 0 else 1], np.int64)
    with fastops.threads(min(2, numba.config.NUMBA_NUM_THREADS)):
        _visit[variant](counts, work)
    assert (counts[:items] == 1).all()
    assert counts[items:].sum() == 0


# --------------------------------------------------------------------------------------------
# BLAS threads of fastops' own GEMMs
# --------------------------------------------------------------------------------------------


def _blas_or_skip():
    from fastops import _threads

    libraries = _threads._blas()
    if not libraries:
        pytest.skip("no BLAS library threadpoolctl can control is loaded")
    return libraries


def _blas_counts(libraries):
    return [library.get_num_threads() for library in libraries]


@pytest.fixture
def two_blas_threads():
    """BLAS on 2 threads for the test (so that lowering it is observable), restored after."""
    libraries = _blas_or_skip()
    before = _blas_counts(libraries)
    for library in libraries:
        library.set_num_threads(2)
    yield libraries
    for library, count in zip(libraries, before, strict=True):
        library.set_num_threads(count)


def _small_and_large_flops():
    """Flop counts whose float32 single-thread estimate is below / above the threshold."""
    from fastops import _threads

    per_flop = _threads.GEMM_NS_PER_FLOP[4]
    return (scheduling.PARALLEL_MIN_NS / per_flop / 10, scheduling.PARALLEL_MIN_NS / per_flop * 10)


def test_blas_threads_one_thread_below_the_threshold(two_blas_threads):
    from fastops import _threads

    small, large = _small_and_large_flops()
    with _threads.blas_threads(small, 4):
        assert set(_blas_counts(two_blas_threads)) == {1}
    assert set(_blas_counts(two_blas_threads)) == {2}
    with _threads.blas_threads(large, 4):
        assert set(_blas_counts(two_blas_threads)) == {min(2, fastops.get_num_threads())}
    assert set(_blas_counts(two_blas_threads)) == {2}


def test_blas_threads_follow_fastops_threads(two_blas_threads):
    from fastops import _threads

    _, large = _small_and_large_flops()
    with fastops.threads(1), _threads.blas_threads(large, 8):
        assert set(_blas_counts(two_blas_threads)) == {1}
    assert set(_blas_counts(two_blas_threads)) == {2}


def test_blas_threads_restore_on_exception(two_blas_threads):
    from fastops import _threads

    small, _ = _small_and_large_flops()
    with pytest.raises(RuntimeError, match="inside"), _threads.blas_threads(small, 4):
        assert set(_blas_counts(two_blas_threads)) == {1}
        raise RuntimeError("inside")
    assert set(_blas_counts(two_blas_threads)) == {2}


def test_orthogonality_gemms_leave_blas_as_they_found_it(two_blas_threads):
    W = np.random.default_rng(7).standard_normal((256, 64)).astype(np.float32)
    value, grad = fastops.orthogonality_penalty_and_grad(W)
    want_value, want_grad = fastops.orthogonality_penalty_and_grad(W, backend="numpy")
    np.testing.assert_allclose(value, want_value, rtol=1e-4)
    np.testing.assert_allclose(grad, want_grad, rtol=1e-4, atol=1e-3)
    fastops.orthogonality_penalty(W, "spectral")
    assert set(_blas_counts(two_blas_threads)) == {2}


# --------------------------------------------------------------------------------------------
# Every family on its parallel path, per threading layer and thread count
# --------------------------------------------------------------------------------------------


def _layer_cases():
    cases = [pytest.param("omp", (), id="omp"),
             pytest.param("workqueue", (), id="workqueue"),
             pytest.param("tbb", (), id="tbb",
                          marks=pytest.mark.skipif(importlib.util.find_spec("tbb") is None,
                                                   reason="tbb is not installed (pip install "
                                                   "tbb)"))]
    cases.append(pytest.param("omp", ("torch-first",), id="omp-torch-imported-first",
                              marks=pytest.mark.skipif(importlib.util.find_spec("torch") is None,
                                                       reason="torch is not installed")))
    return cases


@pytest.mark.parametrize(("layer", "extra"), _layer_cases())
def test_every_family_on_every_layer_and_thread_count(layer, extra):
    env = dict(os.environ)
    env.setdefault("NUMBA_CACHE_DIR", "/tmp/numba-cache-tests")
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    proc = subprocess.run(
        [sys.executable, str(HERE / "_threading_workload.py"), layer, *extra],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=900,
    )
    if proc.returncode == 77:
        pytest.skip(proc.stdout.strip())
    assert proc.returncode == 0, (
        f"exit code {proc.returncode}\nstdout: {proc.stdout[-2000:]}\n"
        f"stderr: {proc.stderr[-4000:]}"
    )
    assert proc.stdout.startswith(f"ok {layer}"), proc.stdout
