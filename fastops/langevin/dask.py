"""langevin_step and gmm_score of dask arrays (the mechanism: fastops._dask).

- ``langevin_step``: each block of x (and the same block of score) is stepped by the
  in-memory kernel once per run of consecutive flat positions (fastops._dask.flat_runs), with
  that run's offset: the bits of the whole in-memory call, whatever the chunks, and nothing is
  rechunked (a block of whole trailing dims is one run).
- ``gmm_score``: the points' last axis d whole in every block (rechunked to one chunk when it
  is not: a point's score needs all of it), one in-memory call per block; ``means`` and
  ``log_weights``, the (K, d) and (K,) parameters, are in-memory arrays sent to every block.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .. import _checks
from .._dask import as_dask, flat_runs, is_dask
from ..random import check_offset, check_uint64
from . import _same_shape

__all__ = ["gmm_score", "langevin_step"]


def _inmemory() -> Any:
    from .. import langevin

    return langevin


def langevin_step(x: Any, score: Any, step_size: float, *, seed: int, step: int,
                  noise_scale: float = 1.0, out: Any = None, offset: int = 0,
                  backend: str | None = None) -> Any:
    """:func:`fastops.langevin_step` of dask arrays (lazy)."""
    import dask.array as da

    func = "langevin_step"
    if out is not None:
        raise ValueError(f"{func}: out is not supported for dask arrays (they are immutable); "
                         "use the returned array")
    x = as_dask(x)
    score = as_dask(score)
    _same_shape(func, "score", score, "x", tuple(x.shape))
    step_size = _checks.real_number(func, "step_size", step_size, positive=True)
    noise_scale = _checks.real_number(func, "noise_scale", noise_scale, nonnegative=True)
    seed = check_uint64(func, "seed", seed)
    step = check_uint64(func, "step", step)
    offset = check_offset(func, offset, math.prod(x.shape))
    result = _checks.result_dtype(func, "x", x.dtype)
    dims = tuple(x.shape)
    score = score.rechunk(x.chunks)
    fn = _inmemory().langevin_step

    def block(xb: Any, sb: Any, block_info: Any = None) -> Any:
        if xb.ndim == 0:
            return fn(xb, sb, step_size, seed=seed, step=step, noise_scale=noise_scale,
                      offset=offset, backend=backend)
        runs = flat_runs(block_info[0]["array-location"], dims)
        if len(runs) == 1:  # whole trailing dims: one call, x's own layout
            return fn(xb, sb, step_size, seed=seed, step=step, noise_scale=noise_scale,
                      offset=offset + runs[0][1], backend=backend)
        res = None
        for lead, start in runs:
            got = fn(xb[lead].reshape(-1), sb[lead].reshape(-1), step_size, seed=seed,
                     step=step, noise_scale=noise_scale, offset=offset + start, backend=backend)
            if res is None:
                res = np.empty_like(got, shape=xb.shape)  # NumPy or CuPy, as the block
            res[lead] = got.reshape(res[lead].shape)
        return res if res is not None else fn(xb, sb, step_size, seed=seed, step=step,
                                              noise_scale=noise_scale, offset=offset,
                                              backend=backend)

    return da.map_blocks(block, x, score, dtype=result, meta=x._meta.astype(result))


def gmm_score(x: Any, means: Any, sigma: float, *, log_weights: Any = None,
              component_std: float = 0.0, backend: str | None = None) -> Any:
    """:func:`fastops.gmm_score` of a dask array of points (lazy)."""
    import dask.array as da

    func = "gmm_score"
    for name, value in (("means", means), ("log_weights", log_weights)):
        if is_dask(value):
            raise TypeError(f"{func}: {name} must be an in-memory array (the mixture's "
                            "parameters go to every block); got a dask array")
    x = as_dask(x)
    fn = _inmemory().gmm_score
    # the in-memory call's errors (shapes of means / log_weights, sigma), on one point
    shape = (1,) * max(x.ndim - 1, 0) + tuple(x.shape[-1:])
    sample = fn(np.zeros_like(x._meta, shape=shape), means, sigma, log_weights=log_weights,
                component_std=component_std, backend=backend)
    if x.ndim and x.numblocks[-1] > 1:
        x = x.rechunk({x.ndim - 1: -1})
    return da.map_blocks(lambda xb: fn(xb, means, sigma, log_weights=log_weights,
                                       component_std=component_std, backend=backend),
                         x, dtype=sample.dtype, meta=x._meta.astype(sample.dtype))
