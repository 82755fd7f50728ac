"""The smooth family on dask arrays (fastops.smooth.dask): lazy results equal to the float64
reference within the family tolerances whatever the chunking (chunks of 1, one chunk, chunks
that do not divide the axis, Hypothesis-chosen), reduced axes whole or chunked, masks and
weights as in-memory or dask arrays (a fully masked row spanning chunks, a NaN in one chunk),
the same errors as the in-memory call, laziness, and a 2-process distributed cluster."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import fastops

from ._support import BACKWARD, FORWARD, assert_close, make_case, random_values

da = pytest.importorskip("dask.array")

OPS = FORWARD + BACKWARD
SHAPE = (7, 9, 6)
# (id, chunks of SHAPE, dtypes): reduced axes chunked or whole (chunks that do not divide the
# axis), chunks of one, one chunk; float64 only with the first (the suite's time budget)
CHUNKINGS = [
    ("mixed", (3, 4, 6), (np.float32, np.float64)),
    ("ones", (1, 2, 1), (np.float32,)),
    ("single", (7, 9, 6), (np.float32,)),
]
AXES = [0, 1, -1, (0, 2)]


def _dask_args(case, chunks):
    """The case's arrays as dask arrays: x-shaped ones with x's chunks, per-row ones whole."""
    shape = case.args[0].shape
    return tuple(da.from_array(a, chunks=chunks if a.shape == shape else -1)
                 if isinstance(a, np.ndarray) and a.ndim > 0 else a for a in case.args)


def _check(case, got, err_msg):
    gots = got if isinstance(got, tuple) else (got,)
    refs = case.ref if isinstance(case.ref, tuple) else (case.ref,)
    for i, (g, r) in enumerate(zip(gots, refs, strict=True)):
        assert isinstance(g, da.Array), f"{err_msg}: {type(g).__name__} is not lazy"
        value = g.compute(scheduler="synchronous")
        assert value.dtype == case.dtype, f"{err_msg}: dtype {value.dtype}"
        assert value.shape == np.shape(r), f"{err_msg}: shape {value.shape} != {np.shape(r)}"
        assert_close(value, np.asarray(r), case.dtype, case.scale if i == 0 else 0.0,
                     f"{err_msg}[{i}]")


@pytest.mark.parametrize(("chunks", "dtype"),
                         [pytest.param(c, d, id=f"{i}-{np.dtype(d).name}")
                          for i, c, dts in CHUNKINGS for d in dts])
@pytest.mark.parametrize("axis", AXES, ids=str)
@pytest.mark.parametrize("op", OPS)
def test_against_the_reference(op, axis, chunks, dtype, rng):
    x = random_values(rng, SHAPE, dtype)
    kwargs = {} if op in ("logsumexp", "logsumexp_backward") else {"temperature": 0.6}
    case = make_case(op, x, axis, rng, **kwargs)
    got = getattr(fastops, op)(*_dask_args(case, chunks), **case.kwargs)
    _check(case, got, f"{op} axis={axis} chunks={chunks}")


@pytest.mark.parametrize("op", OPS)
def test_special_values_across_chunks(op, rng):
    """A row masked out in every chunk, a row of -inf, a NaN in one chunk, a +inf, ties at the
    maximum in different chunks; the mask a dask array broadcast along the kept axis."""
    x = random_values(rng, (6, 11), np.float64)
    mask = np.ones((6, 11), bool)
    mask[0] = False
    x[1] = -np.inf
    x[2, 7] = np.nan
    x[3, 2] = np.inf
    x[4, [1, 9]] = 40.0
    mask[5, 3:8] = False
    case = make_case(op, x, 1, rng, where=mask)
    args = _dask_args(case, (2, 3))
    kwargs = dict(case.kwargs, where=da.from_array(mask, chunks=(3, 4)))
    with np.errstate(invalid="ignore"):
        got = getattr(fastops, op)(*args, **kwargs)
        _check(case, got, op)


@pytest.mark.parametrize("return_sign", [False, True])
def test_logsumexp_with_weights(return_sign, rng):
    """b an in-memory array broadcast along the reduced axis, or a dask array; signed totals."""
    x = random_values(rng, (7, 10), np.float64)
    for b in (rng.standard_normal((7, 1)), da.from_array(rng.random((7, 10)), chunks=3)):
        b_host = np.asarray(b)
        case = make_case("logsumexp", x, 1, rng, b=b_host, return_sign=return_sign)
        for chunks in ((4, 3), (4, 10)):  # the reduced axis chunked, or whole
            got = fastops.logsumexp(da.from_array(x, chunks=chunks), axis=1, b=b,
                                    return_sign=return_sign)
            with np.errstate(invalid="ignore"):
                _check(case, got, f"b {type(b).__name__} chunks={chunks}")


@pytest.mark.parametrize("keepdims", [False, True])
@pytest.mark.parametrize("op", ["logsumexp", "smooth_max", "soft_argmax", "logsumexp_backward",
                                "smooth_max_backward", "soft_argmax_backward"])
def test_keepdims(op, keepdims, rng):
    x = random_values(rng, (5, 8), np.float32)
    case = make_case(op, x, 0, rng, keepdims=keepdims)
    _check(case, getattr(fastops, op)(*_dask_args(case, (2, 3)), **case.kwargs), op)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_chunking_never_changes_the_result(data):
    """Hypothesis-chosen chunks along both axes (sizes 1 up to the whole axis)."""
    op = data.draw(st.sampled_from(["logsumexp", "soft_argmax", "softmax", "softmax_backward"]))
    shape = (data.draw(st.integers(1, 9)), data.draw(st.integers(1, 12)))
    axis = data.draw(st.sampled_from([0, 1, (0, 1)]))
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    chunks = tuple(data.draw(st.integers(1, n)) for n in shape)
    x = random_values(rng, shape, np.float64)
    case = make_case(op, x, axis, rng)
    _check(case, getattr(fastops, op)(*_dask_args(case, chunks), **case.kwargs),
           f"{op} {shape} axis={axis} chunks={chunks}")


def test_calls_are_lazy():
    from dask.callbacks import Callback

    ran = []

    class Count(Callback):
        def _pretask(self, key, dask, state):
            ran.append(key)

    x = da.from_array(np.random.default_rng(0).standard_normal((20, 30)), chunks=(7, 8))
    with Count():
        results = [fastops.logsumexp(x, axis=1), fastops.softmax(x, axis=0),
                   fastops.soft_argmax(x, axis=(0, 1)), fastops.softmax_backward(x, x, axis=1),
                   fastops.logsumexp_backward(x, fastops.logsumexp(x, axis=0), 1.0, axis=0)]
        assert ran == []
        results[0].compute(scheduler="synchronous")
    assert ran


def test_bad_input_raises_at_the_call():
    x = da.zeros((4, 5), chunks=2)
    with pytest.raises(ValueError, match="softmax: .*axis"):
        fastops.softmax(x, axis=2)
    with pytest.raises(ValueError, match="smooth_max: .*temperature"):
        fastops.smooth_max(x, temperature=-1.0)
    with pytest.raises(ValueError, match="logsumexp: b of shape \\(3,\\)"):
        fastops.logsumexp(x, axis=1, b=np.ones(3))
    with pytest.raises(TypeError, match="logsumexp: .*where"):
        fastops.logsumexp(x, where=np.ones((4, 5)))
    with pytest.raises(ValueError, match="softmax_backward: dy must have the shape"):
        fastops.softmax_backward(x, np.ones((4, 4)))
    with pytest.raises(ValueError, match="logsumexp: backend"):
        fastops.logsumexp(x, backend="numpy")


def test_results_keep_cupy_like_meta_for_numpy_chunks():
    x = da.from_array(np.ones((4, 6), np.float32), chunks=(2, 3))
    got = fastops.softmax(x, axis=1)
    assert isinstance(got._meta, np.ndarray) and got.dtype == np.float32
    assert got.chunks == x.chunks


def test_on_a_distributed_cluster(rng):
    """Two worker processes: every op's graph runs there (the functions pickle, the workers
    load the kernels from Numba's disk cache) with the results of the local scheduler."""
    distributed = pytest.importorskip("distributed")
    x = random_values(rng, (40, 50), np.float32)
    dx = da.from_array(x, chunks=(16, 20))
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        for op in OPS:
            case = make_case(op, x, 1, rng)
            got = getattr(fastops, op)(*_dask_args(case, (16, 20)), **case.kwargs)
            local = got.compute(scheduler="synchronous")
            remote = client.compute(got).result()
            assert np.array_equal(local, remote, equal_nan=True), op
        assert client.compute(fastops.logsumexp(dx, axis=0)).result().shape == (50,)


@pytest.mark.parametrize("op", ["softmax", "log_softmax", "smooth_max_backward"])
def test_large_logits_keep_float32_accuracy(op, rng):
    """Logits near 600 in float32: the second pass takes x - L, so L must not be rounded to
    float32 (|L| x 6e-8 = 4e-5 relative error, 20x the tolerance): the block states are
    float64 (fastops.smooth._smooth_max_float64)."""
    x = (rng.standard_normal((8, 40)) * 3 + 600).astype(np.float32)
    case = make_case(op, x, 1, rng)
    _check(case, getattr(fastops, op)(*_dask_args(case, (4, 7)), **case.kwargs), op)


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64], ids=["f16", "f32", "f64"])
@pytest.mark.parametrize(("shape", "axis"), [((30, 7), 1), ((30, 7), 0), ((4, 9, 20), (0, 2))])
def test_float64_smooth_max_of_any_layout(shape, axis, dtype, rng):
    from fastops.smooth import _smooth_max_float64, reference

    x = (random_values(rng, shape, np.float32) + 300).astype(dtype)
    mask = rng.random(shape) < 0.8
    got = _smooth_max_float64(x, axis, temperature=0.7, where=mask)
    ref = reference.smooth_max(x.astype(np.float64), axis, temperature=0.7, where=mask)
    assert got.dtype == np.float64
    # float32 kernels sum exponentials of float32 differences: an absolute error of a few
    # float32 eps in L, never one proportional to |L| (300 x 6e-8 = 2e-5 when rounded)
    np.testing.assert_allclose(got, ref, rtol=1e-14, atol=0.0 if dtype == np.float64 else 1e-6)


def test_tasks_run_serially_when_blocks_fill_the_cores(monkeypatch):
    """With at least a block per core, each task's kernels run on one thread (dask's threads
    fill the cores); with fewer blocks, on the caller's thread count."""
    import os

    import fastops.smooth as smooth

    seen = []
    real = smooth.logsumexp

    def recording(*args, **kwargs):
        seen.append(fastops.get_num_threads())
        return real(*args, **kwargs)

    monkeypatch.setattr(smooth, "logsumexp", recording)
    x = np.random.default_rng(0).standard_normal((8 * (os.cpu_count() or 1), 5))
    lazy = fastops.logsumexp(da.from_array(x, chunks=(1, 5)), axis=1)
    seen.clear()  # the argument check's sample call ran in the caller
    lazy.compute(scheduler="synchronous")
    assert seen and set(seen) == {1}
    with fastops.threads(min(2, fastops.get_num_threads())):
        expected = fastops.get_num_threads()
        lazy = fastops.logsumexp(da.from_array(x, chunks=-1), axis=1)
        seen.clear()
        lazy.compute(scheduler="synchronous")
    assert seen and set(seen) == {expected}
