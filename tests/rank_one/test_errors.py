"""Bad arguments of the rank_one family: the error type, and a message naming the function,
the argument, what was expected and what was given; the same on every backend, raised before
any kernel runs. Also the dispatch rules (backend=, mixed devices, results on the input's
device) for these functions."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import (
    assert_numpy_backend_runs_the_reference,
    cpu_backend_results,
    cupy_available,
)

import fastops
import fastops.rank_one as rank_one

V3 = np.ones(3)
XS = np.ones((2, 3))


def _valid(xp):
    """op -> (args, kwargs): every public function with valid arguments."""
    v = xp.asarray(V3)
    xs = xp.asarray(XS)
    return {
        "expm_rank1": ((v, v), {}),
        "expm_rank1_logdet": ((v, v), {}),
        "expm_rank1_apply": ((v, v, v), {}),
        "expm_rank1_apply_backward": ((v, v, v, v), {}),
        "expm_rank1_chain_apply": ((xs, xs, v), {}),
        "expm_rank1_chain_apply_backward": ((xs, xs, v, v, 1.0), {}),
    }


OPS = tuple(_valid(np))
BAD = [
    # (op, args, kwargs, exception, regex after "<op>: ")
    ("expm_rank1", (V3.astype(complex), V3), {}, TypeError, r"x must be a real array.*complex128"),
    ("expm_rank1", (V3, np.array(["a", "b", "c"])), {}, TypeError, r"y must be a real array.*<U1"),
    ("expm_rank1", (np.float64(1.0), V3), {}, ValueError,
     r"x must have at least 1 dimension, shape \(\.\.\., k\); got shape \(\)"),
    ("expm_rank1_logdet", (V3, V3.astype(object)), {}, TypeError, r"y must be a real array"),
    ("expm_rank1_apply", (V3, V3, V3), {"inverse": 1}, TypeError,
     r"inverse must be True or False; got 1"),
    ("expm_rank1_apply", (V3, V3, V3), {"inverse": "yes"}, TypeError, r"inverse must be True"),
    ("expm_rank1_apply", (V3, V3, np.ones((2, 2))), {}, ValueError,
     r"x and v must have the same last dimension k; got x of shape \(3,\) and v of shape "
     r"\(2, 2\)"),
    ("expm_rank1_apply", (np.ones((2, 3)), V3, np.ones((4, 3))), {}, ValueError,
     r"the leading \(batch\) dims must broadcast; got x \(2,\), y \(\), v \(4,\)"),
    ("expm_rank1_apply_backward", (V3, V3, V3, V3.astype(complex)), {}, TypeError,
     r"dz must be a real array"),
    ("expm_rank1_apply_backward", (V3, V3, V3, np.ones((2, 3))), {}, ValueError,
     r"dz must broadcast to the result's shape \(3,\); got dz of shape \(2, 3\)"),
    ("expm_rank1_chain_apply", (V3, V3, V3), {}, ValueError,
     r"xs must have at least 2 dimensions, shape \(\.\.\., L, k\); got shape \(3,\)"),
    ("expm_rank1_chain_apply", (XS, np.ones((3, 3)), V3), {}, ValueError,
     r"xs and ys must have the same last two dimensions \(L, k\); got xs of shape \(2, 3\) and "
     r"ys of shape \(3, 3\)"),
    ("expm_rank1_chain_apply", (XS, XS, np.ones(2)), {}, ValueError,
     r"v must have shape \(\.\.\., k\) with the k of xs; got xs of shape \(2, 3\) and v of "
     r"shape \(2,\)"),
    ("expm_rank1_chain_apply", (np.ones((4, 2, 3)), XS, np.ones((5, 3))), {}, ValueError,
     r"the leading \(batch\) dims must broadcast; got xs \(4,\), ys \(\), v \(5,\)"),
    ("expm_rank1_chain_apply", (XS, XS, V3), {"inverse": None}, TypeError, r"inverse must be"),
    ("expm_rank1_chain_apply_backward", (XS, XS, V3, V3, np.ones(2)), {}, ValueError,
     r"dlogdet must broadcast to the result's shape \(\); got dlogdet of shape \(2,\)"),
    ("expm_rank1_chain_apply_backward", (XS, XS, V3, V3, "a"), {}, TypeError,
     r"dlogdet must be a real array"),
]


@pytest.mark.parametrize(("op", "args", "kwargs", "exc", "message"), BAD,
                         ids=[f"{b[0]}-{i}" for i, b in enumerate(BAD)])
def test_bad_arguments(backend, op, args, kwargs, exc, message):
    with pytest.raises(exc, match=rf"^{op}: {message}"):
        backend.call(op, *args, **kwargs)


@pytest.mark.parametrize("op", OPS)
def test_numpy_backend_runs_the_reference(op, monkeypatch):
    args, kwargs = _valid(np)[op]
    assert_numpy_backend_runs_the_reference(rank_one, op, args, kwargs, monkeypatch)


@pytest.mark.parametrize("op", OPS)
def test_default_backend_uses_the_cpu_kernels(op, monkeypatch):
    args, kwargs = _valid(np)[op]
    a, b = cpu_backend_results(rank_one, op, args, kwargs, monkeypatch)
    for p, q in zip(a if isinstance(a, tuple) else (a,), b if isinstance(b, tuple) else (b,),
                    strict=True):
        np.testing.assert_array_equal(p, q)


@pytest.mark.parametrize("op", OPS)
@pytest.mark.parametrize("value", ["gpu", "torch", ""])
def test_wrong_backend_string(op, value):
    args, kwargs = _valid(np)[op]
    with pytest.raises(ValueError, match=rf"^{op}: backend must be None or one of"):
        getattr(fastops, op)(*args, backend=value, **kwargs)


@pytest.mark.parametrize("op", OPS)
def test_cupy_backend_with_numpy_arrays(op):
    args, kwargs = _valid(np)[op]
    with pytest.raises(TypeError, match=rf"^{op}: backend='cupy' does not match"):
        getattr(fastops, op)(*args, backend="cupy", **kwargs)


def test_lists_and_read_only_inputs():
    """Lists resolve to the CPU; read-only, big-endian and broadcast (stride 0) inputs give
    the same result as native contiguous copies."""
    x = np.array([0.5, -1.0, 2.0])
    y = np.array([1.0, 0.25, -0.5])
    v = np.array([1.0, 2.0, 3.0])
    want = fastops.expm_rank1_apply(x, y, v)
    np.testing.assert_array_equal(fastops.expm_rank1_apply(list(x), list(y), list(v)), want)
    ro = x.copy()
    ro.flags.writeable = False
    np.testing.assert_array_equal(fastops.expm_rank1_apply(ro, y, v), want)
    np.testing.assert_array_equal(fastops.expm_rank1_apply(x.astype(">f8"), y, v), want)
    many = np.broadcast_to(v, (4, 3))
    np.testing.assert_array_equal(fastops.expm_rank1_apply(x, y, many), np.tile(want, (4, 1)))


# --- GPU: mixed devices, results on the device -------------------------------------------------

NO_GPU = pytest.mark.skipif(not cupy_available(), reason="cupy backend not available")


@pytest.mark.gpu
@NO_GPU
@pytest.mark.parametrize("op", OPS)
def test_mixed_numpy_cupy_arguments(op):
    import cupy as cp

    args, kwargs = _valid(cp)[op]
    mixed = (cp.asnumpy(args[0]),) + args[1:]
    with pytest.raises(TypeError, match=rf"^{op}: all array arguments must be on the same"):
        getattr(fastops, op)(*mixed, **kwargs)


@pytest.mark.gpu
@NO_GPU
@pytest.mark.parametrize("op", OPS)
def test_cupy_results_stay_on_device(op):
    import cupy as cp

    args, kwargs = _valid(cp)[op]
    out = getattr(fastops, op)(*args, **kwargs)
    for o in out if isinstance(out, tuple) else (out,):
        assert isinstance(o, cp.ndarray), op
        assert o.device.id == args[0].device.id


@pytest.mark.gpu
@NO_GPU
def test_cupy_on_another_device():
    import cupy as cp

    if cp.cuda.runtime.getDeviceCount() < 2:
        pytest.skip("one GPU")
    with cp.cuda.Device(1):
        x = cp.asarray(np.ones((4, 3)))
        v = cp.asarray(np.ones(3))
    with cp.cuda.Device(0):
        z = fastops.expm_rank1_apply(x, x, v)
        dxs, dys, dv = fastops.expm_rank1_chain_apply_backward(x, x, v, v, 1.0)
    assert z.device.id == 1 and dxs.device.id == 1 and dv.device.id == 1
