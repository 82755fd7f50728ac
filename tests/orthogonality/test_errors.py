"""Bad arguments of the orthogonality family: the error type, and a message naming the function,
the argument, what was expected and what was given; the same on every backend, raised before any
kernel runs. Also the dispatch rules (backend=, mixed devices) for these functions."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import assert_numpy_backend_runs_the_reference, cpu_backend_results

import fastops
import fastops.orthogonality as ortho

W = np.eye(4)[:, :3]
Y = np.ones((6, 3))


def _calls(xp):
    """(op, function, args, kwargs) of every public function with valid arguments."""
    w = xp.asarray(W)
    return {
        "orthogonality_penalty": ((w,), {}),
        "orthogonality_penalty_and_grad": ((w,), {}),
        "orthogonality_penalties_and_grads": (([w, w],), {}),
        "som_penalty": ((xp.asarray(Y),), {}),
        "som_penalty_and_grad": ((xp.asarray(Y),), {}),
        "spectral_norm": ((w, xp.ones(4)), {}),
    }


OPS = tuple(_calls(np))
BAD = [
    # (op, args, kwargs, exception, regex after "<op>: ")
    ("orthogonality_penalty", (W.astype(complex),), {}, TypeError,
     r"W must be a real array.*complex128"),
    ("orthogonality_penalty", (np.array([["a"]]),), {}, TypeError, r"W must be a real array.*<U1"),
    ("orthogonality_penalty_and_grad", (W,), {"kind": None}, ValueError, r"kind must be one of"),
    ("orthogonality_penalties_and_grads", (W,), {}, TypeError, r"Ws must be a list or tuple"),
    ("orthogonality_penalties_and_grads", ([W, "x"],), {}, TypeError, r"Ws\[1\] must be a real"),
    ("orthogonality_penalties_and_grads", ([W],), {"weights": [1.0, 2.0]}, ValueError,
     r"weights must have one number per kernel \(1\); got 2"),
    ("orthogonality_penalties_and_grads", ([W],), {"weights": 2.0}, TypeError,
     r"weights must be None or a sequence"),
    ("orthogonality_penalties_and_grads", ([W],), {"weights": ["a"]}, TypeError,
     r"weights\[0\] must be a real number"),
    ("orthogonality_penalties_and_grads", ([W],), {"weights": [np.inf]}, ValueError,
     r"weights\[0\] must be a finite number"),
    ("som_penalty", (Y,), {"gamma": 0.0}, ValueError, r"gamma must be a finite number > 0"),
    ("som_penalty", (Y,), {"gamma": "10"}, TypeError, r"gamma must be a real number"),
    ("som_penalty_and_grad", (Y,), {"lambda1": -1.0}, ValueError,
     r"lambda1 must be a finite number >= 0; got -1.0"),
    ("som_penalty_and_grad", (Y,), {"lambda2": np.nan}, ValueError, r"lambda2 must be a finite"),
    ("som_penalty_and_grad", (Y,), {"eps": 0}, ValueError, r"eps must be a finite number > 0"),
    ("som_penalty", (Y.astype(complex),), {}, TypeError, r"Y must be a real array"),
    ("spectral_norm", (W, np.ones(3)), {}, ValueError,
     r"u must have shape W.shape\[:-1\] = \(4,\) for W of shape \(4, 3\); got u of shape \(3,\)"),
    ("spectral_norm", (W, np.ones(4)), {"n_iter": 0}, ValueError, r"n_iter must be an int >= 1"),
    ("spectral_norm", (W, np.ones(4)), {"n_iter": 1.5}, TypeError, r"n_iter must be an int"),
    ("spectral_norm", (W, np.ones(4)), {"eps": -1.0}, ValueError, r"eps must be a finite"),
    ("spectral_norm", (W, np.ones(4, complex)), {}, TypeError, r"u must be a real array"),
]


@pytest.mark.parametrize(("op", "args", "kwargs", "exc", "message"), BAD,
                         ids=[f"{b[0]}-{i}" for i, b in enumerate(BAD)])
def test_bad_arguments(backend, op, args, kwargs, exc, message):
    # backend.call moves the arrays (list members too) unless one is a string array
    with pytest.raises(exc, match=rf"^{op}: {message}"):
        backend.call(op, *args, **kwargs)


@pytest.mark.parametrize("op", OPS)
def test_numpy_backend_runs_the_reference(op, monkeypatch):
    args, kwargs = _calls(np)[op]
    assert_numpy_backend_runs_the_reference(ortho, op, args, kwargs, monkeypatch)


@pytest.mark.parametrize("op", OPS)
def test_default_and_numba_backend_use_the_cpu_kernels(op, monkeypatch):
    args, kwargs = _calls(np)[op]
    cpu_backend_results(ortho, op, args, kwargs, monkeypatch)


@pytest.mark.parametrize("op", OPS)
@pytest.mark.parametrize("value", ["gpu", "Numba", ""])
def test_wrong_backend_string(op, value):
    args, kwargs = _calls(np)[op]
    with pytest.raises(ValueError, match=rf"{op}: backend must be None or one of"):
        getattr(fastops, op)(*args, backend=value, **kwargs)


@pytest.mark.parametrize("op", OPS)
def test_cupy_backend_with_numpy_arrays(op):
    args, kwargs = _calls(np)[op]
    with pytest.raises(TypeError, match=rf"{op}: backend='cupy' does not match"):
        getattr(fastops, op)(*args, backend="cupy", **kwargs)


@pytest.mark.gpu
@pytest.mark.skipif(not fastops.backends()["cupy"]["available"], reason="needs CuPy and a GPU")
@pytest.mark.parametrize("op", ["orthogonality_penalties_and_grads", "spectral_norm"])
def test_mixed_numpy_cupy_arguments(op):
    import cupy as cp

    with pytest.raises(TypeError, match=rf"{op}\b.*same device"):
        if op == "spectral_norm":
            fastops.spectral_norm(cp.asarray(W), np.ones(4))
        else:
            fastops.orthogonality_penalties_and_grads([cp.asarray(W), W])


@pytest.mark.gpu
@pytest.mark.skipif(not fastops.backends()["cupy"]["available"], reason="needs CuPy and a GPU")
@pytest.mark.parametrize("op", OPS)
def test_cupy_results_stay_on_device(op):
    import cupy as cp

    args, kwargs = _calls(cp)[op]
    out = getattr(fastops, op)(*args, **kwargs)
    flat = out[1] + [out[0]] if op.endswith("grads") else (out if isinstance(out, tuple)
                                                           else (out,))
    assert all(isinstance(o, cp.ndarray) for o in flat), [type(o) for o in flat]
