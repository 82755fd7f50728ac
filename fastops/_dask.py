"""Dask arrays: the one mechanism every family's ``dask.py`` builds on.

A public function that is given a ``dask.array.Array`` for any of its array arguments returns a
lazy dask array (nothing is computed inside the call) with the result of the in-memory call on
the whole array; its chunks may be NumPy or CuPy arrays, and each task calls the in-memory
fastops function on its blocks, so the chunk's array type picks the backend as usual.

- :func:`dask_aware` routes a call with a dask argument to the same-named function of the
  family's ``dask`` module (imported only then: dask is an optional dependency);
- :func:`aligned` gives the other array arguments (weights, masks) the input's shape and chunks
  without materialising a broadcast (its blocks stay ``broadcast_to`` views, stride 0);
- :func:`state_reduction` reduces over chunked axes without rechunking: a blockwise pass
  writes each block's partial state (a few float64 fields per kept element), then
  ``dask.array.reduction`` merges the states in a tree (``split_every``) and a last blockwise
  pass finishes them.
"""

from __future__ import annotations

import functools
import importlib
import itertools
import math
import os
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

__all__ = ["aligned", "any_dask", "as_dask", "block_states", "dask_aware", "flat_runs",
           "is_dask", "merge_states", "meta_like", "namespace", "serial_tasks",
           "state_reduction", "task"]


def is_dask(a: Any) -> bool:
    """Whether ``a`` is a dask collection (checked by module, so dask is never imported)."""
    return type(a).__module__.split(".")[0] == "dask"


def any_dask(*values: Any) -> bool:
    return any(is_dask(v) for v in values)


def dask_aware(module: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorate a public function: a call with a dask array among its arguments goes to the
    function of the same name in ``module`` (e.g. ``"fastops.smooth.dask"``)."""

    def decorate(fn: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(fn)
        def call(*args: Any, **kwargs: Any) -> Any:
            if any_dask(*args, *kwargs.values()):
                return getattr(importlib.import_module(module), fn.__name__)(*args, **kwargs)
            return fn(*args, **kwargs)

        return call

    return decorate


def aligned(func: str, name: str, value: Any, like: Any) -> Any:
    """``value`` (None, a scalar, an array or a dask array broadcastable to ``like``'s shape) as
    a dask array of ``like``'s shape and chunks; its blocks are views (stride 0 along broadcast
    axes), never broadcast copies. None stays None."""
    import dask.array as da

    if value is None:
        return None
    arr = value if is_dask(value) else as_dask(value)
    try:
        shape = np.broadcast_shapes(arr.shape, like.shape)
    except ValueError:
        shape = None
    if shape != like.shape:
        raise ValueError(f"{func}: {name} of shape {arr.shape} does not broadcast to the input's "
                         f"shape {like.shape}")
    return da.broadcast_to(arr, like.shape).rechunk(like.chunks)


def serial_tasks(x: Any) -> bool:
    """Whether the tasks over ``x``'s blocks should run fastops' kernels on one thread each:
    when there are at least as many blocks as cores, dask's own threads fill the cores, and a
    kernel parallel inside each of them would oversubscribe them (with Numba's omp layer each
    calling thread's parallel region starts a team of its own: n dask threads x n kernel
    threads on n cores). On the 2-core VM the two are within noise (logsumexp over the chunked
    axis 0 of (131072, 4096) float32 in 8 blocks, threaded scheduler: 0.537 s serial, 0.543 s
    parallel, medians of 5; 0.495 s in memory; 2026-12-03)."""
    return math.prod(x.numblocks) >= (os.cpu_count() or 1)


def task(fn: Callable[..., Any], serial: bool) -> Callable[..., Any]:
    """``fn`` as a dask task body: under ``fastops.threads(1)`` when ``serial``. (Numba's thread
    count is per thread, so this caps only the task's own kernels.)"""
    if not serial:
        return fn

    @functools.wraps(fn)  # keeps the signature: dask passes block_info only if fn takes it
    def run(*args: Any, **kwargs: Any) -> Any:
        from ._threads import threads

        with threads(1):
            return fn(*args, **kwargs)

    return run


def as_dask(value: Any) -> Any:
    """An in-memory array (NumPy, CuPy) or scalar as a one-chunk dask array, without hashing
    its bytes (``name=False``: dask would tokenize a large array by hashing it all)."""
    import dask.array as da

    if is_dask(value):
        return value
    return da.from_array(value if hasattr(value, "shape") else np.asarray(value), chunks=-1,
                         name=False)


def flat_runs(location: Sequence[tuple[int, int]], dims: tuple[int, ...]
              ) -> list[tuple[tuple[int, ...], int]]:
    """A block's elements as runs of consecutive flat (C-order) positions of the whole array:
    ``[(index of the block along its axes before m, the run's first flat position), ...]``
    with ``m`` the first axis after which the block spans the whole array (a block of whole
    trailing dims is one run; one split along the last axis has a run per row).
    ``block[index].reshape(-1)`` is the run's elements. ``location``: the block's (start,
    stop) per axis (map_blocks' block_info "array-location"); ``dims``: the array's shape."""
    ndim = len(dims)
    m = ndim - 1
    while m > 0 and tuple(location[m]) == (0, dims[m]):  # axes after m-1 whole: extend the run
        m -= 1
    strides = [math.prod(dims[j + 1:]) for j in range(ndim)]
    runs = []
    for lead in itertools.product(*(range(a, b) for a, b in location[:m])):
        start = sum(i * st for i, st in zip(lead, strides, strict=False)) \
            + location[m][0] * strides[m]
        runs.append((tuple(i - location[j][0] for j, i in enumerate(lead)), start))
    return runs


def namespace(block: Any) -> Any:
    """The array module of a block (numpy or cupy), by fastops' own dispatch."""
    from ._dispatch import array_module, resolve_backend

    return array_module(resolve_backend("fastops", (block,), None))


def meta_like(x: Any, ndim: int, dtype: Any) -> Any:
    """A 0-size array of ``ndim`` dimensions and ``dtype`` of x's chunk type (dask's meta)."""
    from dask.array.utils import meta_from_array

    return meta_from_array(x._meta, ndim=ndim, dtype=dtype)


def block_starts(block_info: dict | None, axes: Sequence[int]) -> tuple[int, ...]:
    """The block's first index along each of ``axes`` (from map_blocks' block_info)."""
    if block_info is None:  # dask's meta inference calls with no block_info
        return tuple(0 for _ in axes)
    location = block_info[0]["array-location"]
    return tuple(location[ax][0] for ax in axes)


def block_states(partial: Callable[..., Any], arrays: Sequence[Any], axes: tuple[int, ...],
                 fields: int, serial: bool = False) -> Any:
    """Each block's state: ``partial(*blocks, block_info=...)`` returns float64 of the block's
    shape with ``axes`` of length 1, plus a trailing axis of ``fields``. A dask array with one
    element per block along ``axes`` (block i of the input along an axis is element i there)."""
    import dask.array as da

    x = arrays[0]
    chunks = tuple((1,) * len(c) if i in axes else c for i, c in enumerate(x.chunks))
    return da.map_blocks(task(partial, serial), *arrays, chunks=chunks + ((fields,),),
                         new_axis=x.ndim, dtype=np.float64,
                         meta=meta_like(x, x.ndim + 1, np.float64))


def merge_states(states: Any, merge: Callable[..., Any], axes: tuple[int, ...],
                 serial: bool = False, split_every: Any = None) -> Any:
    """:func:`block_states` merged along ``axes`` in a tree (``dask.array.reduction``):
    ``merge(states, axes)`` merges states concatenated along ``axes`` into one (the same shape
    rule). The result has ``axes`` of length 1, one chunk there."""
    import dask.array as da

    def step(block: Any, axis: tuple[int, ...], keepdims: bool) -> Any:
        return merge(block, tuple(axis))

    step = task(step, serial)
    return da.reduction(states, chunk=step, combine=step, aggregate=step, axis=axes,
                        keepdims=True, dtype=np.float64, concatenate=True,
                        split_every=split_every, meta=states._meta)


def state_reduction(partial: Callable[..., Any], merge: Callable[..., Any],
                    arrays: Sequence[Any], axes: tuple[int, ...], fields: int,
                    serial: bool = False, split_every: Any = None) -> Any:
    """Reduce ``arrays`` (aligned dask arrays, the input first) over ``axes`` through states:
    :func:`block_states` then :func:`merge_states` (each task under :func:`task` with
    ``serial``). Returns the merged states, of the input's shape with ``axes`` of length 1
    (one chunk there) plus the trailing field axis; the caller's blockwise pass finishes them.
    Each block is read once and nothing is rechunked. The task functions must not capture
    dask arrays (see fastops.smooth.dask._Spec)."""
    return merge_states(block_states(partial, arrays, axes, fields, serial), merge, axes,
                        serial, split_every)
