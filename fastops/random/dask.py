"""``uniform`` / ``normal`` with ``chunks=``: a lazy dask array whose blocks are generated
where they are computed (on the workers), each from the stream positions of its elements, so
the values are the bits of the in-memory call whatever the chunking (the mechanism:
fastops._dask).

A block's elements are contiguous runs of flat (C-order) positions: along the first axis
``m`` after which the block spans the whole array, each index of the axes before ``m`` starts
one run of ``(stop_m - start_m) * prod(shape[m+1:])`` positions. A block of whole trailing
dims is one run (one kernel call); a block split along the last axis takes a run per row.
"""

from __future__ import annotations

import itertools
import math
from typing import Any

import numpy as np

from .._dask import task
from .._dispatch import array_module

__all__ = ["generate"]


def _runs(location: list[tuple[int, int]], dims: tuple[int, ...]
          ) -> list[tuple[tuple[int, ...], int]]:
    """[(the block's index along its axes before m, the run's first flat position), ...]."""
    ndim = len(dims)
    m = ndim - 1
    while m > 0 and location[m] == (0, dims[m]):  # axes after m-1 whole: extend the run
        m -= 1
    strides = [math.prod(dims[j + 1:]) for j in range(ndim)]
    runs = []
    for lead in itertools.product(*(range(a, b) for a, b in location[:m])):
        start = sum(i * st for i, st in zip(lead, strides, strict=False)) \
            + location[m][0] * strides[m]
        runs.append((tuple(i - location[j][0] for j, i in enumerate(lead)), start))
    return runs


def generate(kind: str, dims: tuple[int, ...], seed: int, stream: int, dtype: np.dtype,
             offset: int, backend: str, chunks: Any) -> Any:
    """The dask array of ``uniform`` / ``normal`` (arguments validated by the caller)."""
    import dask.array as da
    from dask.array.core import normalize_chunks

    if backend == "numpy":
        raise ValueError(f"{kind}: chunks= needs backend 'numba' or 'cupy' (the reference "
                         "generates in-memory arrays)")
    chunks = normalize_chunks(chunks, dims, dtype=dtype)

    def block(template: Any, block_info: Any = None) -> Any:
        from . import _kernels  # the generator kernels, as the in-memory call uses them

        xp = array_module(backend)
        shape = tuple(template.shape)
        out = xp.empty(shape, dtype)
        if out.size == 0:
            return out
        if not dims:
            _kernels(backend).fill(kind, out.reshape(1), seed, stream, offset)
            return out
        location = block_info[0]["array-location"]
        for lead, start in _runs(list(location), dims):
            _kernels(backend).fill(kind, out[lead].reshape(-1), seed, stream, offset + start)
        return out

    template = da.empty(dims, chunks=chunks, dtype=np.uint8)  # only its chunk structure is used
    meta = array_module(backend).empty((0,) * len(dims), dtype)
    return da.map_blocks(task(block, False), template, dtype=dtype, meta=meta)
