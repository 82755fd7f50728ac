"""Argument checks shared by every op family.

Each check raises before any kernel runs, with a message that names the function, the argument,
what was expected and what was given, so every backend raises the same error type and text.
"""

from __future__ import annotations

import math
import numbers
from typing import Any

import numpy as np
from numpy.exceptions import AxisError

try:  # NumPy >= 2.0
    from numpy.lib.array_utils import normalize_axis_tuple
except ImportError:  # pragma: no cover - NumPy 1.x
    from numpy.core.numeric import normalize_axis_tuple


def working_dtype(func: str, name: str, dtype: Any, *, keep_float16: bool = False,
                  allow_complex: bool = False) -> np.dtype:
    """The dtype a kernel computes in, for an input of ``dtype``.

    bool / int / uint -> float64 (as SciPy; never computed in the integer type), float16 ->
    float32 (unless ``keep_float16``: the GPU kernels read float16 natively), float32 / float64
    unchanged; complex64 / complex128 unchanged where ``allow_complex`` (logsumexp). Complex
    elsewhere, object, string, datetime and long double raise TypeError.
    """
    dt = np.dtype(dtype)
    if dt.kind in "biu":
        return np.dtype(np.float64)
    if dt.kind == "f":
        if dt.itemsize == 2:
            return np.dtype(np.float16) if keep_float16 else np.dtype(np.float32)
        if dt.itemsize in (4, 8):
            return np.dtype(dt.type)  # native byte order
    if allow_complex and dt.kind == "c" and dt.itemsize in (8, 16):
        return np.dtype(dt.type)
    what = "a real or complex" if allow_complex else "a real"
    raise TypeError(
        f"{func}: {name} must be {what} array (bool, integer, float16, float32 or float64"
        f"{', complex64 or complex128' if allow_complex else ''}); got dtype {dt}"
    )


def result_dtype(func: str, name: str, dtype: Any, *, allow_complex: bool = False
                 ) -> np.dtype:
    """The dtype results are returned in: the float (or, with ``allow_complex``, complex)
    input's dtype, float64 for bool/int."""
    dt = np.dtype(dtype)
    if dt.kind in "biu":
        return np.dtype(np.float64)
    working_dtype(func, name, dt, allow_complex=allow_complex)  # raises for unsupported dtypes
    return np.dtype(dt.type)


#: Python scalars: "weak" in NumPy's promotion (NEP 50), they take the dtype of the arrays
#: they meet, as in NumPy >= 2, SciPy and the Array API standard.
_PYTHON_SCALARS = (bool, int, float)


def promoted_dtype(func: str, named: list[tuple[str, Any]], *, allow_complex: bool = False
                   ) -> np.dtype:
    """The result dtype of an op whose inputs are ``named`` (``(name, value)`` pairs): NumPy's
    promotion of their dtypes, Python scalars weak (NEP 50: ``float32`` array with ``2.0``
    gives float32, with ``np.float64(2.0)`` float64), and a bool/integer result as float64
    (never an integer type). The one promotion rule of every family; each input's dtype is
    checked as in :func:`working_dtype` (TypeError naming it).

    >>> promoted_dtype("f", [("a", np.ones(2, np.float32)), ("b", np.ones(2, np.int64))])
    dtype('float64')
    >>> promoted_dtype("f", [("a", np.ones(2, np.float16)), ("b", 2.0)])
    dtype('float16')
    """
    operands = []
    for name, value in named:
        if isinstance(value, _PYTHON_SCALARS + (complex,) * allow_complex) and \
                not isinstance(value, np.generic):
            operands.append(value)
            continue
        dtype = np.dtype(value.dtype) if hasattr(value, "dtype") else np.asarray(value).dtype
        working_dtype(func, name, dtype, allow_complex=allow_complex)
        operands.append(dtype)
    dt = np.result_type(*operands)
    if dt.kind in "biu":
        return np.dtype(np.float64)
    return np.dtype(dt.type)  # native byte order


def normalize_axes(func: str, axis: Any, ndim: int, *, allow_none: bool = True) -> tuple[int, ...]:
    """``axis`` (None, int or tuple of ints) as a sorted tuple of non-negative axes.

    None means every axis. Out-of-range axes raise numpy.exceptions.AxisError, duplicates
    ValueError, other types TypeError.
    """
    if axis is None:
        if not allow_none:
            raise TypeError(f"{func}: axis must be an int or a tuple of ints; got None")
        return tuple(range(ndim))
    items = axis if isinstance(axis, tuple) else (axis,)
    for item in items:
        if isinstance(item, bool) or not isinstance(item, numbers.Integral):
            raise TypeError(
                f"{func}: axis must be None, an int or a tuple of ints; got {axis!r}"
            )
    try:
        axes = normalize_axis_tuple(tuple(int(i) for i in items), ndim)
    except AxisError as exc:
        raise AxisError(f"{func}: axis {axis!r} is out of bounds for an array of dimension "
                        f"{ndim}") from exc
    except ValueError as exc:
        raise ValueError(f"{func}: axis {axis!r} contains duplicate axes") from exc
    return tuple(sorted(axes))


def real_number(func: str, name: str, value: Any, *, positive: bool = False,
                nonnegative: bool = False) -> float:
    """``value`` as a finite float (TypeError if it is not a real number, ValueError if it is
    not finite, or not > 0 with ``positive``, or not >= 0 with ``nonnegative``)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real | np.floating | np.integer):
        raise TypeError(f"{func}: {name} must be a real number; got {value!r}")
    result = float(value)
    if positive and not (math.isfinite(result) and result > 0.0):
        raise ValueError(f"{func}: {name} must be a finite number > 0; got {value!r}")
    if nonnegative and not (math.isfinite(result) and result >= 0.0):
        raise ValueError(f"{func}: {name} must be a finite number >= 0; got {value!r}")
    if not math.isfinite(result):
        raise ValueError(f"{func}: {name} must be a finite number; got {value!r}")
    return result


def positive_temperature(func: str, temperature: Any) -> float:
    """``temperature`` as a float, which must be finite and > 0."""
    return real_number(func, "temperature", temperature, positive=True)


def positive_int(func: str, name: str, value: Any) -> int:
    """``value`` as an int >= 1 (TypeError for non-integers, ValueError for values < 1)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{func}: {name} must be an int >= 1; got {value!r}")
    if int(value) < 1:
        raise ValueError(f"{func}: {name} must be an int >= 1; got {value!r}")
    return int(value)


def one_of(func: str, name: str, value: Any, choices: tuple[str, ...]) -> str:
    """``value``, which must be one of the strings ``choices`` (ValueError listing them)."""
    if not isinstance(value, str) or value not in choices:
        listed = ", ".join(repr(c) for c in choices)
        raise ValueError(f"{func}: {name} must be one of {listed}; got {value!r}")
    return value


def matrix_stack(func: str, name: str, arr: Any, what: str = "(..., d, k)") -> None:
    """Raise ValueError unless ``arr`` has at least two dimensions (a stack of matrices)."""
    if arr.ndim < 2:
        raise ValueError(
            f"{func}: {name} must have at least 2 dimensions, shape {what}; "
            f"got shape {tuple(arr.shape)}"
        )


def broadcastable(func: str, name: str, shape: tuple[int, ...], target: tuple[int, ...]) -> None:
    """Raise ValueError unless an array of ``shape`` broadcasts to ``target``."""
    try:
        ok = np.broadcast_shapes(shape, target) == tuple(target)
    except ValueError:
        ok = False
    if not ok:
        raise ValueError(
            f"{func}: {name} of shape {tuple(shape)} does not broadcast to the input's shape "
            f"{tuple(target)}"
        )


def boolean_mask(func: str, where: Any, xp: Any, shape: tuple[int, ...]) -> Any:
    """``where`` as a boolean array of the module ``xp``, broadcast (as a view) to ``shape``."""
    mask = xp.asarray(where)
    if mask.dtype != np.bool_:
        raise TypeError(f"{func}: where must be a boolean array; got dtype {mask.dtype}")
    broadcastable(func, "where", mask.shape, shape)
    return xp.broadcast_to(mask, shape)


def real_array(func: str, name: str, value: Any, xp: Any, *, allow_complex: bool = False
               ) -> Any:
    """``value`` as an array of module ``xp``, checking that its dtype is real (or complex,
    where ``allow_complex``)."""
    arr = xp.asarray(value)
    working_dtype(func, name, arr.dtype, allow_complex=allow_complex)
    return arr


def broadcast_against(func: str, name: str, arr: Any, other_name: str, other: Any, xp: Any
                      ) -> Any:
    """``arr`` broadcast (a view) against ``other``'s shape, as SciPy's logsumexp broadcasts
    ``a`` with ``b``; ValueError naming both shapes when they do not broadcast together."""
    try:
        shape = np.broadcast_shapes(tuple(arr.shape), tuple(other.shape))
    except ValueError:
        raise ValueError(f"{func}: {name} of shape {tuple(arr.shape)} and {other_name} of shape "
                         f"{tuple(other.shape)} do not broadcast together") from None
    return arr if shape == tuple(arr.shape) else xp.broadcast_to(arr, shape)
