"""Counter-based random numbers (Philox4x32-10) that are the same on the CPU and the GPU.

The value at flat position ``i`` of a request depends only on ``(seed, stream, i)``: never on
the thread count, the GPU launch shape or how an array is split into calls (pass ``offset=`` to
continue a stream where the last call stopped). Uniforms are the same bits on every backend, and
so are normals (their conversion is the same IEEE arithmetic everywhere; the contract is within
4 ulp). The counter layout and the conversions are documented in
:mod:`fastops.random.reference` and versioned by :data:`STREAM_VERSION`: any change of a
generated value is a new version, and tests hold golden values.

>>> import numpy as np, fastops.random as fr
>>> fr.uniform(3, seed=42, dtype="float64").round(6).tolist() == \\
...     fr.uniform(3, seed=42, dtype="float64", backend="numpy").round(6).tolist()
True
>>> fr.normal((2, 2), seed=7).dtype
dtype('float32')
"""

from __future__ import annotations

import importlib
import math
import numbers
from typing import Any

import numpy as np

from .. import _checks
from .._dispatch import array_module, resolve_backend
from . import reference
from .reference import POSITION_LIMIT, STREAM_VERSION

__all__ = ["STREAM_VERSION", "normal", "philox4x32", "uniform"]

_U64_LIMIT = 1 << 64
_U32_LIMIT = 1 << 32
_DTYPES = ("float32", "float64")
_BACKENDS = ("numba", "cupy", "numpy")


def _kernels(backend: str) -> Any:
    return importlib.import_module(f"{__name__}.{'gpu' if backend == 'cupy' else 'cpu'}")


def check_uint64(func: str, name: str, value: Any) -> int:
    """``value`` as an int in [0, 2^64) (ValueError otherwise, whatever its type)."""
    if (isinstance(value, bool) or not isinstance(value, numbers.Integral)
            or not 0 <= int(value) < _U64_LIMIT):
        raise ValueError(f"{func}: {name} must be an int in [0, 2^64); got {value!r}")
    return int(value)


def check_offset(func: str, offset: Any, size: int) -> int:
    """``offset`` (the stream position of a request's first value) as an int >= 0 with
    offset + size <= 2^63 (ValueError otherwise)."""
    if (isinstance(offset, bool) or not isinstance(offset, numbers.Integral)
            or not 0 <= int(offset) <= POSITION_LIMIT - size):
        raise ValueError(f"{func}: offset must be an int >= 0 with offset + size <= 2^63; "
                         f"got offset {offset!r} for size {size}")
    return int(offset)


def _shape(func: str, shape: Any) -> tuple[int, ...]:
    dims = (shape,) if isinstance(shape, numbers.Integral) else shape
    try:
        dims = tuple(dims)
    except TypeError:
        raise TypeError(f"{func}: shape must be an int or a tuple of ints; got {shape!r}") from None
    for d in dims:
        if isinstance(d, bool) or not isinstance(d, numbers.Integral) or int(d) < 0:
            raise ValueError(f"{func}: shape must hold ints >= 0; got {shape!r}")
    return tuple(int(d) for d in dims)


def _request(func: str, shape: Any, seed: Any, stream: Any, dtype: Any, offset: Any,
             backend: Any) -> tuple[tuple[int, ...], int, int, np.dtype, int, str]:
    dims = _shape(func, shape)
    seed = check_uint64(func, "seed", seed)
    stream = check_uint64(func, "stream", stream)
    try:
        dt = np.dtype(dtype)
    except TypeError:
        dt = None
    if dt is None or dt.name not in _DTYPES:
        raise ValueError(f"{func}: dtype must be float32 or float64; got {dtype!r}")
    offset = check_offset(func, offset, math.prod(dims))
    backend = _checks.one_of(func, "backend", backend, _BACKENDS)
    return dims, seed, stream, dt, offset, backend


def _generate(kind: str, func: str, shape: Any, seed: Any, stream: Any, dtype: Any,
              offset: Any, backend: Any, chunks: Any = None) -> Any:
    dims, seed, stream, dt, offset, backend = _request(func, shape, seed, stream, dtype, offset,
                                                       backend)
    if chunks is not None:  # a lazy dask array, each block generated where it is computed
        from .dask import generate

        return generate(kind, dims, seed, stream, dt, offset, backend, chunks)
    if backend == "numpy":
        return getattr(reference, kind)(dims, seed, stream, dt, offset)
    xp = array_module(backend)
    out = xp.empty(math.prod(dims), dt)
    _kernels(backend).fill(kind, out, seed, stream, offset)
    return out.reshape(dims)


def uniform(shape: int | tuple[int, ...], *, seed: int, stream: int = 0,
            dtype: Any = "float32", offset: int = 0, backend: str = "numba",
            chunks: Any = None) -> Any:
    """Uniform random numbers in [0, 1) of the given shape (C order).

    ``seed`` and ``stream`` are ints in [0, 2^64): each (seed, stream) is an independent stream
    (Langevin steps use the step index as the stream). ``offset`` is the stream position of the
    first value: ``uniform(n, offset=k)`` equals ``uniform(k + n)[k:]``. float32 values are
    multiples of 2^-24, float64 values multiples of 2^-53, so 0 can occur and 1 cannot.
    ``backend``: "numba" (NumPy array), "cupy" (CuPy array on the current device) or "numpy"
    (the reference). ``chunks`` (dask's chunk specification: an int, a tuple, "auto"): a lazy
    dask array instead, each block generated where it is computed from its elements' stream
    positions: the same values as the in-memory call, whatever the chunks
    (fastops/random/dask.py).
    """
    return _generate("uniform", "uniform", shape, seed, stream, dtype, offset, backend, chunks)


def normal(shape: int | tuple[int, ...], *, seed: int, stream: int = 0,
           dtype: Any = "float32", offset: int = 0, backend: str = "numba",
           chunks: Any = None) -> Any:
    """Standard normal random numbers of the given shape (C order), by Box-Muller.

    Arguments as :func:`uniform`. The float32 values are bounded by sqrt(48 ln 2) = 5.77 (the
    24-bit radius uniform), float64 values by 8.57.
    """
    return _generate("normal", "normal", shape, seed, stream, dtype, offset, backend, chunks)


def _words(func: str, name: str, value: Any, xp: Any, width: int) -> Any:
    arr = xp.asarray(value)
    if arr.dtype.kind not in "iu":
        raise TypeError(f"{func}: {name} must be an integer array; got dtype {arr.dtype}")
    if arr.ndim < 1 or arr.shape[-1] != width:
        raise ValueError(f"{func}: {name} must have shape (..., {width}); "
                         f"got shape {tuple(arr.shape)}")
    if arr.dtype != np.uint32 and arr.size:
        low, high = int(arr.min()), int(arr.max())  # a host sync for CuPy, only for non-uint32
        if low < 0 or high >= _U32_LIMIT:
            raise ValueError(f"{func}: {name} values must be in [0, 2^32); "
                             f"got values in [{low}, {high}]")
    return arr.astype(np.uint32, copy=False)


def philox4x32(counter: Any, key: Any, *, backend: str | None = None) -> Any:
    """The Philox4x32-10 block function: uint32 ``counter`` (..., 4), ``key`` (..., 2) ->
    uint32 (..., 4); leading dims broadcast. Random123's known-answer vectors hold.

    >>> import numpy as np, fastops.random as fr
    >>> [hex(v) for v in fr.philox4x32(np.zeros(4, np.uint32), np.zeros(2, np.uint32))]
    ['0x6627e8d5', '0xe169c58d', '0xbc57ac4c', '0x9b00dbd8']
    """
    func = "philox4x32"
    backend = resolve_backend(func, (counter, key), backend)
    xp = array_module(backend)
    c = _words(func, "counter", counter, xp, 4)
    k = _words(func, "key", key, xp, 2)
    try:
        lead = np.broadcast_shapes(c.shape[:-1], k.shape[:-1])
    except ValueError:
        raise ValueError(f"{func}: counter of shape {tuple(c.shape)} and key of shape "
                         f"{tuple(k.shape)} do not broadcast") from None
    if backend == "numpy":
        return reference.philox4x32(c, k)
    n = math.prod(lead)
    c2 = xp.ascontiguousarray(xp.broadcast_to(c, lead + (4,)).reshape(n, 4))
    k2 = xp.ascontiguousarray(xp.broadcast_to(k, lead + (2,)).reshape(n, 2))
    return _kernels(backend).philox4x32(c2, k2).reshape(lead + (4,))
