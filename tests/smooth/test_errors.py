"""Bad arguments: the error type of semantics.md, and a message naming the function and the
argument (and, for dtypes, the dtype). Every backend raises the same errors, before any kernel
runs."""

from __future__ import annotations

import re

import numpy as np
import pytest
from numpy.exceptions import AxisError

from ._support import BACKWARD, FORWARD, OPS, TEMPERATURE_OPS

# Name of each op's first (array) argument, as in its signature.
FIRST_ARG = {
    "logsumexp": "a",
    "softmax": "x",
    "log_softmax": "x",
    "smooth_max": "x",
    "soft_argmax": "x",
    "logsumexp_backward": "a",
    "softmax_backward": "y",
    "log_softmax_backward": "y",
    "smooth_max_backward": "x",
    "soft_argmax_backward": "x",
}


def names(func: str, arg: str, *also: str) -> str:
    """A regex that needs ``func`` (as a whole word) and the argument ``arg`` in the message.

    One-letter argument names (a, b, x, y) must stand as the argument, not as an article or a
    word of the text: quoted, or followed by "=", " must", " of", " is", " has" or " should".
    """
    if len(arg) == 1:
        arg_re = rf"(?:['`\"]{arg}['`\"]|\b{arg}=|(?<![\w.-]){arg} (?:must|of|is|has|should))"
    else:
        arg_re = rf"\b{re.escape(arg)}\b"
    extra = "".join(rf"(?=.*{re.escape(a)})" for a in also)
    return rf"(?s)^(?=.*(?<![\w.]){re.escape(func)}(?![\w]))(?=.*{arg_re}){extra}"


def test_names_regex():
    """The helper itself: it must not accept the article 'a' for the argument a."""
    assert re.search(names("logsumexp", "a"), "logsumexp: a must be a real array")
    assert not re.search(names("logsumexp", "a"), "logsumexp: x must be a real array")
    assert not re.search(names("logsumexp", "x"), "logsumexp_backward: x must be real")
    assert re.search(names("softmax", "where"), "softmax: where of shape (3,) ...")


def _good_args(op: str, x: np.ndarray):
    """Valid arguments of op around x (2-D, reduction over the last axis)."""
    rows = x.shape[:-1]
    if op == "logsumexp_backward":
        return [x, np.zeros(rows), np.ones(rows)], {"axis": -1}
    if op in ("softmax_backward", "log_softmax_backward"):
        return [x, np.ones(x.shape)], {"axis": -1}
    if op in ("smooth_max_backward", "soft_argmax_backward"):
        return [x, np.ones(rows)], {"axis": -1}
    return [x], {"axis": -1}


def _raises(backend, exc, pattern, op, args, kwargs):
    with pytest.raises(exc, match=pattern) as info:
        backend.call(op, *args, **kwargs)
    return info


BAD_DTYPES_CPU = [
    np.complex64, np.complex128, object, "U3", "S3", "datetime64[ns]", "timedelta64[s]",
]
if np.dtype(np.longdouble).itemsize > 8:  # where long double is wider than float64
    BAD_DTYPES_CPU.append(np.longdouble)


def _bad_array(dtype, shape=(2, 3)):
    dt = np.dtype(dtype)
    if dt.kind in "US":
        return np.full(shape, "ab", dtype=dt)
    if dt.kind == "O":
        return np.full(shape, 1.0, dtype=object)
    if dt.kind in "mM":
        return np.zeros(shape, dtype=dt)
    return np.ones(shape, dtype=dt)


#: ops that take complex input (SciPy's complex logsumexp; tests/smooth/test_complex.py)
COMPLEX_OK = {"logsumexp", "logsumexp_backward"}


@pytest.mark.parametrize("dtype", BAD_DTYPES_CPU, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("op", OPS)
def test_bad_dtype_cpu(cpu_backend, op, dtype):
    if op in COMPLEX_OK and np.dtype(dtype).kind == "c":
        pytest.skip("complex is valid input here")
    x = _bad_array(dtype)
    args, kwargs = _good_args(op, np.ones((2, 3)))
    args[0] = x
    pattern = names(op, FIRST_ARG[op], str(np.dtype(dtype)))
    _raises(cpu_backend, TypeError, pattern, op, args, kwargs)


@pytest.mark.parametrize("dtype", [np.complex64, np.complex128], ids=["complex64", "complex128"])
@pytest.mark.parametrize("op", OPS)
def test_bad_dtype(backend, op, dtype):
    """Complex input on every backend (CuPy arrays can be complex, not object or str)."""
    if op in COMPLEX_OK:
        pytest.skip("complex is valid input here")
    args, kwargs = _good_args(op, np.ones((2, 3)))
    args[0] = _bad_array(dtype)
    _raises(backend, TypeError, names(op, FIRST_ARG[op], str(np.dtype(dtype))), op, args,
            kwargs)


# The other array arguments: b, out, dout, dy
OTHER_ARGS = [
    ("logsumexp", "b"),
    ("logsumexp_backward", "out"),
    ("logsumexp_backward", "dout"),
    ("logsumexp_backward", "b"),
    ("softmax_backward", "dy"),
    ("log_softmax_backward", "dy"),
    ("smooth_max_backward", "dout"),
    ("soft_argmax_backward", "dout"),
]


def _with(op, name, value):
    args, kwargs = _good_args(op, np.ones((2, 3)))
    position = {"out": 1, "dout": 2 if op == "logsumexp_backward" else 1, "dy": 1}
    if name == "b":
        kwargs["b"] = value
    else:
        args[position[name]] = value
    return args, kwargs


@pytest.mark.parametrize(("op", "name"), OTHER_ARGS, ids=lambda v: str(v))
def test_other_argument_bad_dtype(backend, op, name):
    shape = (2, 3) if name in ("b", "dy") else (2,)
    bad = np.dtype(object if op in COMPLEX_OK else np.complex128)  # complex is valid there
    args, kwargs = _with(op, name, _bad_array(bad, shape))
    _raises(backend, TypeError, names(op, name, str(bad)), op, args, kwargs)


@pytest.mark.parametrize(("op", "name"), OTHER_ARGS, ids=lambda v: str(v))
def test_other_argument_bad_shape(backend, op, name):
    shape = (2, 4) if name in ("b", "dy") else (3,)
    args, kwargs = _with(op, name, np.ones(shape))
    _raises(backend, ValueError, names(op, name), op, args, kwargs)


@pytest.mark.parametrize("axis", [2, -3, (0, 2), (-3,)], ids=lambda a: f"axis={a}")
@pytest.mark.parametrize("op", OPS)
def test_axis_out_of_range(backend, op, axis):
    args, kwargs = _good_args(op, np.ones((2, 3)))
    kwargs["axis"] = axis
    _raises(backend, AxisError, names(op, "axis"), op, args, kwargs)


@pytest.mark.parametrize("axis", [(0, 0), (1, -1), (0, 1, 0)], ids=lambda a: f"axis={a}")
@pytest.mark.parametrize("op", OPS)
def test_duplicate_axes(backend, op, axis):
    args, kwargs = _good_args(op, np.ones((2, 3)))
    kwargs["axis"] = axis
    if op in ("logsumexp_backward", "smooth_max_backward", "soft_argmax_backward"):
        args[1:] = [np.ones(()) for _ in args[1:]]  # reduced shape of a full reduction
    _raises(backend, ValueError, names(op, "axis"), op, args, kwargs)


@pytest.mark.parametrize("axis", [1.0, "1", True], ids=["float", "str", "bool"])
@pytest.mark.parametrize("op", ["logsumexp", "softmax", "soft_argmax_backward"])
def test_axis_wrong_type(backend, op, axis):
    args, kwargs = _good_args(op, np.ones((2, 3)))
    kwargs["axis"] = axis
    _raises(backend, TypeError, names(op, "axis"), op, args, kwargs)


@pytest.mark.parametrize("temperature", [0.0, -1.0, float("nan"), float("inf"), -float("inf")],
                         ids=["0", "-1", "nan", "inf", "-inf"])
@pytest.mark.parametrize("op", TEMPERATURE_OPS)
def test_bad_temperature(backend, op, temperature):
    args, kwargs = _good_args(op, np.ones((2, 3)))
    kwargs["temperature"] = temperature
    _raises(backend, ValueError, names(op, "temperature"), op, args, kwargs)


@pytest.mark.parametrize("temperature", ["1.0", None, [1.0]], ids=["str", "None", "list"])
@pytest.mark.parametrize("op", ["softmax", "smooth_max_backward"])
def test_temperature_not_a_number(backend, op, temperature):
    args, kwargs = _good_args(op, np.ones((2, 3)))
    kwargs["temperature"] = temperature
    _raises(backend, TypeError, names(op, "temperature"), op, args, kwargs)


@pytest.mark.parametrize("where_dtype", [np.int64, np.uint8, np.float64],
                         ids=["int64", "uint8", "float64"])
@pytest.mark.parametrize("op", OPS)
def test_where_not_bool(backend, op, where_dtype):
    args, kwargs = _good_args(op, np.ones((2, 3)))
    kwargs["where"] = np.ones((2, 3), where_dtype)
    _raises(backend, TypeError, names(op, "where", np.dtype(where_dtype).name), op, args,
            kwargs)


@pytest.mark.parametrize("shape", [(2,), (2, 4), (3, 3), (2, 2, 3)],
                         ids=lambda s: str(s).replace(" ", ""))
@pytest.mark.parametrize("op", OPS)
def test_where_wrong_shape(backend, op, shape):
    args, kwargs = _good_args(op, np.ones((2, 3)))
    kwargs["where"] = np.ones(shape, bool)
    _raises(backend, ValueError, names(op, "where"), op, args, kwargs)


@pytest.mark.parametrize("op", FORWARD)
@pytest.mark.parametrize("value", ["cuda", "NUMBA", "", 1], ids=["cuda", "NUMBA", "empty", "1"])
def test_unknown_backend(op, value):
    with pytest.raises(ValueError, match=names(op, "backend")):
        getattr(__import__("fastops"), op)(np.ones(3), backend=value)


def test_backward_ops_take_no_backend_argument():
    """Backward ops dispatch on their arrays only (the reference is fastops.smooth.reference)."""
    import fastops

    for op in BACKWARD:
        with pytest.raises(TypeError):
            getattr(fastops, op)(np.ones(3), np.ones(3), backend="numpy")


def test_errors_identical_across_cpu_backends():
    """The numba path and the reference raise the same type with the same message."""
    import fastops
    from fastops.smooth import reference

    bad_calls = [
        ("softmax", (np.ones(3, np.complex64),), {}),
        ("logsumexp", (np.ones(3, object),), {}),
        ("softmax", (np.ones((2, 3)),), {"axis": 5}),
        ("softmax", (np.ones((2, 3)),), {"axis": (1, 1)}),
        ("smooth_max", (np.ones(3),), {"temperature": 0.0}),
        ("soft_argmax", (np.ones(3),), {"where": np.ones(3, int)}),
        ("log_softmax", (np.ones(3),), {"where": np.ones(4, bool)}),
        ("logsumexp", (np.ones(3),), {"b": np.ones(4)}),
    ]
    for op, args, kwargs in bad_calls:
        errors = []
        for fn in (getattr(fastops, op), getattr(reference, op)):
            with pytest.raises(Exception) as info:
                fn(*args, **kwargs)
            errors.append((type(info.value), str(info.value)))
        assert errors[0] == errors[1], f"{op}{kwargs}: {errors}"
