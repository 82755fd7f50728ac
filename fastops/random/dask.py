"""``uniform`` / ``normal`` with ``chunks=``: a lazy dask array whose blocks are generated
where they are computed (on the workers), each from the stream positions of its elements, so
the values are the bits of the in-memory call whatever the chunking (the mechanism:
fastops._dask).

A block's elements are runs of consecutive flat (C-order) positions (fastops._dask.flat_runs):
a block of whole trailing dims is one run (one kernel call); a block split along the last axis
takes a run per row.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .._dask import flat_runs, task
from .._dispatch import array_module

__all__ = ["generate"]


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
        for lead, start in flat_runs(location, dims):
            _kernels(backend).fill(kind, out[lead].reshape(-1), seed, stream, offset + start)
        return out

    template = da.empty(dims, chunks=chunks, dtype=np.uint8)  # only its chunk structure is used
    meta = array_module(backend).empty((0,) * len(dims), dtype)
    return da.map_blocks(task(block, False), template, dtype=dtype, meta=meta)
