"""The smooth family on dask arrays (the mechanism: fastops._dask).

Every function takes the in-memory function's arguments, any of its arrays a
``dask.array.Array`` (NumPy or CuPy chunks; ``where``, ``b``, ``out``, ``dout`` and ``dy`` may
also be in-memory arrays or scalars, broadcast lazily), and returns a lazy dask array.

- Reduced axes held in one chunk each: every block is the in-memory call on the block (the
  same kernel, the same values as the whole-array call).
- A chunked reduced axis is never rechunked. The reductions carry a state per kept element
  through ``dask.array.reduction``: logsumexp the block's ``(log|s|, sign)``, smooth_max its
  smooth maximum, soft_argmax ``(smooth max, soft argmax + the block's first index)``; states
  merge with the same functions (a smooth max of smooth maxima is the smooth max of all).
  Block states are in the input's dtype for the reductions themselves (the result is rounded
  to it anyway: within 2 ulp of the unchunked result), in float64 where a second pass uses
  them (softmax, log_softmax and the gradients take ``x - L`` against every element).
- softmax and log_softmax over a chunked axis: that smooth max ``L``, then one blockwise pass
  ``exp((x - L)/τ)`` (``(x - L)/τ``) in float64 with the special values of the in-memory call.
- Gradients: logsumexp_backward is blockwise (no reduction); softmax_backward and
  log_softmax_backward a float64 row sum then a blockwise pass; smooth_max_backward and
  soft_argmax_backward the forward state then a blockwise pass.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from .. import _checks
from .._dask import (
    aligned,
    as_dask,
    block_starts,
    block_states,
    merge_states,
    meta_like,
    namespace,
    serial_tasks,
    state_reduction,
    task,
)

__all__ = [
    "logsumexp", "smooth_max", "soft_argmax", "softmax", "log_softmax", "logsumexp_backward",
    "softmax_backward", "log_softmax_backward", "smooth_max_backward", "soft_argmax_backward",
]


def _inmemory() -> Any:
    from .. import smooth

    return smooth


@dataclass(frozen=True)
class _Spec:
    """What a task needs of its call (the task functions capture this, never the dask arrays:
    dask tokenizes a task function by pickling it, and a captured dask array pickles its whole
    graph, an in-memory input included: 2.3 s of hashing per call of a 2 GiB input)."""

    axes: tuple[int, ...]
    dtype: np.dtype
    shape: tuple[int, ...]
    has_b: bool
    has_where: bool

    def unpack(self, blocks: tuple[Any, ...]) -> tuple[Any, Any, Any]:
        """(x, b, where) blocks from a block function's arguments."""
        it = iter(blocks)
        xb = next(it)
        bb = next(it) if self.has_b else None
        wb = next(it) if self.has_where else None
        return xb, bb, wb


class _Call:
    """A validated dask call: x as a dask array, its reduced axes, the aligned mask and weights,
    the result dtype (from the in-memory call on a one-element sample, which also raises the
    in-memory call's errors for bad dtypes, axes and temperatures)."""

    def __init__(self, func: str, x: Any, axis: Any, where: Any, *, b: Any = None,
                 sample_kwargs: dict[str, Any] | None = None,
                 backend: str | None = None) -> None:

        if backend not in (None, "numba", "cupy"):
            raise ValueError(f"{func}: backend must be None for dask arrays (each chunk's "
                             f"array type picks it), got {backend!r}")
        self.func = func
        self.x = as_dask(x)
        self.axes = _checks.normalize_axes(func, axis, self.x.ndim)
        self.where = aligned(func, "where", where, self.x)
        self.b = aligned(func, "b", b, self.x)
        sample = np.ones((1,) * self.x.ndim, self.x.dtype)
        kwargs = dict(sample_kwargs or {})
        for key, arr in (("b", self.b), ("where", self.where)):
            if arr is not None:
                kwargs[key] = np.ones((1,) * self.x.ndim, arr.dtype)
        got = getattr(_inmemory(), func)(sample, axis=axis, **kwargs)
        first = got[0] if isinstance(got, tuple) else got
        self.dtype = np.asarray(first).dtype
        self.whole_axes = all(self.x.numblocks[ax] == 1 for ax in self.axes)
        self.serial = serial_tasks(self.x)
        self.spec = _Spec(self.axes, self.dtype, tuple(self.x.shape), self.b is not None,
                          self.where is not None)

    @property
    def arrays(self) -> list[Any]:
        """x, then b and where where given (the order the block functions unpack)."""
        return [a for a in (self.x, self.b, self.where) if a is not None]

    def meta(self, dtype: Any, ndim: int) -> Any:
        return meta_like(self.x, ndim, dtype)

    def blockwise_reduction(self, fn: Any, keepdims: bool, dtype: Any) -> Any:
        """``fn(x, b, where)`` per block when every reduced axis is one chunk: a reduction."""
        import dask.array as da

        drop = () if keepdims else self.axes
        chunks = tuple((1,) if i in self.axes else c for i, c in enumerate(self.x.chunks)
                       if keepdims or i not in self.axes)
        spec = self.spec
        return da.map_blocks(task(lambda *blocks: fn(*spec.unpack(blocks)), self.serial),
                             *self.arrays,
                             chunks=chunks, drop_axis=drop, dtype=dtype,
                             meta=self.meta(dtype, len(chunks)))

    def blockwise(self, fn: Any, dtype: Any, *more: Any, align: bool = True) -> Any:
        """``fn(x, b, where, *more_blocks, block_info=...)`` per block of x's shape; ``more``
        broadcast along the reduced axes (one chunk of length 1 there) or, with ``align``
        False, one element per block there (block_states: matched by block index)."""
        import dask.array as da

        nbase = len(self.arrays)
        spec = self.spec

        def run(*blocks: Any, block_info: Any = None) -> Any:
            return fn(*spec.unpack(blocks[:nbase]), *blocks[nbase:], block_info=block_info)

        meta = self.meta(dtype, self.x.ndim)
        if align:
            return da.map_blocks(task(run, self.serial), *self.arrays, *more, dtype=dtype,
                                 meta=meta)
        index = tuple(range(self.x.ndim))  # blocks matched by index, never rechunked
        pairs = [item for arr in (*self.arrays, *more) for item in (arr, index)]
        return da.blockwise(task(run, self.serial), index, *pairs, dtype=dtype, meta=meta,
                            align_arrays=False)

    def finish(self, merged: Any, field: int, keepdims: bool, dtype: Any,
               fix: Any = None) -> Any:
        """Field ``field`` of merged states as the result (cast to dtype; axes dropped)."""
        def take(states: Any) -> Any:
            value = states[..., field] if fix is None else fix(states)
            return value.astype(dtype)

        res = merged.map_blocks(take, drop_axis=self.x.ndim, dtype=dtype,
                                meta=self.meta(dtype, self.x.ndim))
        return res if keepdims else res.squeeze(axis=self.axes)

    def per_row(self, name: str, value: Any, keepdims: bool) -> Any:
        """A per-row argument (out, dout) as a dask array of x's shape with the reduced axes of
        length 1 (one chunk there), the other axes chunked as x."""
        import dask.array as da

        arr = as_dask(value)
        kept_shape = tuple(1 if i in self.axes else s for i, s in enumerate(self.x.shape))
        if not keepdims and arr.ndim == self.x.ndim - len(self.axes) and arr.ndim > 0:
            arr = da.expand_dims(arr, self.axes)
        try:
            shape = np.broadcast_shapes(arr.shape, kept_shape)
        except ValueError:
            shape = None
        if shape != kept_shape:
            raise ValueError(f"{self.func}: {name} of shape {tuple(arr.shape)} does not match "
                             f"the reduced shape {kept_shape} (keepdims={keepdims})")
        chunks = tuple((1,) if i in self.axes else c for i, c in enumerate(self.x.chunks))
        return da.broadcast_to(arr, kept_shape).rechunk(chunks)


def _stack(*fields: Any) -> Any:
    xp = namespace(fields[0])
    return xp.stack([xp.asarray(f, dtype=np.float64) for f in fields], axis=-1)


# --------------------------------------------------------------------------------------------
# Reductions
# --------------------------------------------------------------------------------------------


def logsumexp(a: Any, axis: Any = None, b: Any = None, keepdims: bool = False,
              return_sign: bool = False, *, where: Any = None, backend: str | None = None) -> Any:
    """:func:`fastops.logsumexp` of dask arrays (lazy)."""
    func = "logsumexp"
    call = _Call(func, a, axis, where, b=b, backend=backend,
                 sample_kwargs={"return_sign": return_sign})
    spec = call.spec
    lse = _inmemory().logsumexp
    signed = call.b is not None or return_sign
    dtype = spec.dtype
    if call.whole_axes and not return_sign:
        return call.blockwise_reduction(
            lambda xb, bb, wb: lse(xb, axis=spec.axes, b=bb, keepdims=keepdims, where=wb),
            keepdims, dtype)

    def partial(*blocks: Any, block_info: Any = None) -> Any:
        xb, bb, wb = spec.unpack(blocks)
        if signed:
            return _stack(*lse(xb, axis=spec.axes, b=bb, keepdims=True, return_sign=True,
                               where=wb))
        return _stack(lse(xb, axis=spec.axes, keepdims=True, where=wb))

    def merge(states: Any, axes: tuple[int, ...]) -> Any:
        if signed:
            return _stack(*lse(states[..., 0], axis=axes, b=states[..., 1], keepdims=True,
                               return_sign=True))
        return _stack(lse(states[..., 0], axis=axes, keepdims=True))

    states = block_states(partial, call.arrays, spec.axes, 2 if signed else 1,
                          serial=call.serial)
    # whole reduced axes: a block's state is already its rows' result (one call, no merge)
    merged = states if call.whole_axes else merge_states(states, merge, spec.axes,
                                                         serial=call.serial)
    if return_sign:
        return (call.finish(merged, 0, keepdims, dtype), call.finish(merged, 1, keepdims, dtype))
    if signed:  # a negative total has no logarithm: NaN, as the in-memory call
        def unsigned(states: Any) -> Any:
            return namespace(states).where(states[..., 1] < 0, np.nan, states[..., 0])

        return call.finish(merged, 0, keepdims, dtype, fix=unsigned)
    return call.finish(merged, 0, keepdims, dtype)


def _smooth_max_state(call: _Call, tau: float, float64: bool, per_block: bool = False) -> Any:
    """Merged per-row smooth maxima (one field), block states in float64 or x's dtype;
    ``per_block``: (the blocks' states, the merged ones)."""
    smooth = _inmemory()
    smooth_max = smooth.smooth_max
    block_max = smooth._smooth_max_float64 if float64 else smooth_max
    spec = call.spec

    def partial(*blocks: Any, block_info: Any = None) -> Any:
        xb, _, wb = spec.unpack(blocks)
        return _stack(block_max(xb, axis=spec.axes, temperature=tau, where=wb, keepdims=True))

    def merge(states: Any, axes: tuple[int, ...]) -> Any:
        return _stack(smooth_max(states[..., 0], axis=axes, temperature=tau, keepdims=True))

    if not per_block:
        return state_reduction(partial, merge, call.arrays, spec.axes, 1, serial=call.serial)
    states = block_states(partial, call.arrays, spec.axes, 1, serial=call.serial)
    return states, merge_states(states, merge, spec.axes, serial=call.serial)


def _temperature_reduction(func: str, state: Any, field: int, x: Any, axis: Any,
                           temperature: float, where: Any, keepdims: bool,
                           backend: str | None) -> Any:
    """smooth_max / soft_argmax: blockwise when the reduced axes are whole, else field
    ``field`` of the merged states ``state(call, tau, float64=False)``."""
    call = _Call(func, x, axis, where, backend=backend,
                 sample_kwargs={"temperature": temperature})
    spec = call.spec
    if call.whole_axes:
        fn = getattr(_inmemory(), func)
        return call.blockwise_reduction(
            lambda xb, bb, wb: fn(xb, axis=spec.axes, temperature=temperature, where=wb,
                                  keepdims=keepdims), keepdims, spec.dtype)
    merged = state(call, float(temperature), float64=False)
    return call.finish(merged, field, keepdims, spec.dtype)


def smooth_max(x: Any, axis: Any = -1, *, temperature: float = 1.0, where: Any = None,
               keepdims: bool = False, backend: str | None = None) -> Any:
    """:func:`fastops.smooth_max` of dask arrays (lazy)."""
    return _temperature_reduction("smooth_max", _smooth_max_state, 0, x, axis, temperature,
                                  where, keepdims, backend)


def _flat_strides(shape: tuple[int, ...], axes: tuple[int, ...]) -> list[int]:
    """Multipliers of each reduced axis's index in the flat (C-order) index over ``axes``."""
    sizes = [shape[ax] for ax in axes]
    return [math.prod(sizes[k + 1:]) for k in range(len(axes))]


def _flat_index(xp: Any, spec: _Spec, block_shape: tuple[int, ...], block_info: Any) -> Any:
    """The global flat index over the reduced axes of each element of a block (broadcast)."""
    starts = block_starts(block_info, spec.axes)
    index = 0
    for ax, start, stride in zip(spec.axes, starts, _flat_strides(spec.shape, spec.axes),
                                 strict=True):
        shape = [1] * len(block_shape)
        shape[ax] = block_shape[ax]
        index = index + (xp.arange(block_shape[ax], dtype=np.float64) + start).reshape(shape) \
            * stride
    return index


def _argmax_state(call: _Call, tau: float, float64: bool) -> Any:
    """Merged per-row (smooth max, soft argmax) states."""
    smooth = _inmemory()
    spec = call.spec

    def partial(*blocks: Any, block_info: Any = None) -> Any:
        xb, _, wb = spec.unpack(blocks)
        xb = xb.astype(np.float64, copy=False) if float64 else xb
        kw = {"axis": spec.axes, "temperature": tau, "where": wb, "keepdims": True}
        sm = smooth.smooth_max(xb, **kw)
        if len(spec.axes) == 1:  # the block's index is the global one shifted by its start
            start = block_starts(block_info, spec.axes)[0]
            return _stack(sm, smooth.soft_argmax(xb, **kw) + start)
        xp = namespace(xb)
        p = smooth.softmax(xb, axis=spec.axes, temperature=tau, where=wb).astype(np.float64)
        index = _flat_index(xp, spec, xb.shape, block_info)
        return _stack(sm, xp.sum(p * index, axis=spec.axes, keepdims=True))

    def merge(states: Any, axes: tuple[int, ...]) -> Any:
        xp = namespace(states)
        sm, arg = states[..., 0], states[..., 1]
        total = smooth.smooth_max(sm, axis=axes, temperature=tau, keepdims=True)
        with np.errstate(invalid="ignore", divide="ignore"):
            w = xp.exp((sm - total) / tau)
            live = w > 0  # blocks with nothing kept (smooth max -inf) have a NaN argmax
            num = xp.sum(xp.where(live, w * arg, 0.0), axis=axes, keepdims=True)
            den = xp.sum(xp.where(live, w, 0.0), axis=axes, keepdims=True)
            value = xp.where(xp.isfinite(total), num / den, np.nan)
        return _stack(total, value)

    return state_reduction(partial, merge, call.arrays, spec.axes, 2, serial=call.serial)


def soft_argmax(x: Any, axis: Any = -1, *, temperature: float = 1.0, where: Any = None,
                keepdims: bool = False, backend: str | None = None) -> Any:
    """:func:`fastops.soft_argmax` of dask arrays (lazy)."""
    return _temperature_reduction("soft_argmax", _argmax_state, 1, x, axis, temperature,
                                  where, keepdims, backend)


# --------------------------------------------------------------------------------------------
# Per-element outputs
# --------------------------------------------------------------------------------------------


def _probabilities(xb: Any, wb: Any, total: Any, tau: float, log: bool) -> Any:
    """softmax (log_softmax) of a block in float64 given its rows' smooth max ``total``, with
    the in-memory special values: a kept NaN (softmax: or +inf) makes its row NaN at the kept
    elements, a row with nothing kept or only -inf is 0 (-inf); masked elements get 0 (-inf)."""
    xp = namespace(xb)
    fill = -np.inf if log else 0.0
    with np.errstate(invalid="ignore", over="ignore"):
        d = (xb.astype(np.float64) - total) / tau
        if log:
            y = d  # a +inf row: NaN at its +inf elements, -inf elsewhere (SciPy's x - lse)
        else:
            y = xp.where((total == np.inf) | xp.isnan(total), np.nan, xp.exp(d))
        y = xp.where(total == -np.inf, fill, y)
    return y if wb is None else xp.where(wb, y, fill)


def _softmax(func: str, log: bool, x: Any, axis: Any, where: Any, temperature: float,
             backend: str | None) -> Any:
    call = _Call(func, x, axis, where, backend=backend,
                 sample_kwargs={"temperature": temperature})
    spec = call.spec
    tau = float(temperature)
    if call.whole_axes:
        fn = getattr(_inmemory(), func)
        return call.blockwise(lambda xb, bb, wb, block_info=None:
                              fn(xb, axis=spec.axes, temperature=tau, where=wb), spec.dtype)
    states, merged = _smooth_max_state(call, tau, float64=True, per_block=True)
    smooth = _inmemory()

    def block(xb: Any, bb: Any, wb: Any, lb: Any, tb: Any, block_info: Any = None) -> Any:
        """The block's own softmax (the in-memory kernel, in x's dtype) rescaled to the row's:
        p = p_block exp((L_block - L)/τ), log p = log p_block + (L_block - L)/τ; rows whose
        smooth max is not finite (a NaN, a +inf, nothing kept) take the float64 formula."""
        xp = namespace(xb)
        if not bool(xp.isfinite(tb).all()):
            return _probabilities(xb, wb, tb, tau, log).astype(spec.dtype)
        shift = (lb - tb) / tau  # <= 0; -inf where the block keeps nothing of the row
        if log:
            y = smooth.log_softmax(xb, axis=spec.axes, temperature=tau, where=wb)
            y += shift.astype(y.dtype)
            return y
        return smooth.smooth_max_backward(xb, xp.exp(shift), axis=spec.axes, temperature=tau,
                                          where=wb, keepdims=True)

    return call.blockwise(block, spec.dtype, states[..., 0], merged[..., 0], align=False)


def softmax(x: Any, axis: Any = -1, *, where: Any = None, temperature: float = 1.0,
            backend: str | None = None) -> Any:
    """:func:`fastops.softmax` of dask arrays (lazy)."""
    return _softmax("softmax", False, x, axis, where, temperature, backend)


def log_softmax(x: Any, axis: Any = -1, *, where: Any = None, temperature: float = 1.0,
                backend: str | None = None) -> Any:
    """:func:`fastops.log_softmax` of dask arrays (lazy)."""
    return _softmax("log_softmax", True, x, axis, where, temperature, backend)


# --------------------------------------------------------------------------------------------
# Gradients
# --------------------------------------------------------------------------------------------


def logsumexp_backward(a: Any, out: Any, dout: Any, axis: Any = None, b: Any = None,
                       keepdims: bool = False, *, where: Any = None) -> Any:
    """:func:`fastops.logsumexp_backward` of dask arrays (lazy; blockwise: no reduction)."""
    func = "logsumexp_backward"
    call = _Call(func, a, axis, where, b=b,
                 sample_kwargs={"out": np.zeros(()), "dout": np.ones(()), "keepdims": True})
    spec = call.spec
    out_b = call.per_row("out", out, keepdims)
    dout_b = call.per_row("dout", dout, keepdims)
    fn = _inmemory().logsumexp_backward
    return call.blockwise(lambda xb, bb, wb, ob, db, block_info=None:
                          fn(xb, ob, db, axis=spec.axes, b=bb, keepdims=True, where=wb),
                          spec.dtype, out_b, dout_b)


def _softmax_backward(func: str, log: bool, y: Any, dy: Any, axis: Any, where: Any,
                      temperature: float) -> Any:

    call = _Call(func, y, axis, where,
                 sample_kwargs={"dy": np.ones((1,) * np.ndim(y)),
                                "temperature": temperature})
    spec = call.spec
    dy = as_dask(dy)
    if dy.shape != spec.shape:
        raise ValueError(f"{func}: dy must have the shape of y, {spec.shape}; got {dy.shape}")
    dy = dy.rechunk(call.x.chunks)
    sc = 1.0 / float(temperature)
    if call.whole_axes:
        fn = getattr(_inmemory(), func)
        return call.blockwise(lambda yb, bb, wb, dyb, block_info=None:
                              fn(yb, dyb, axis=spec.axes, where=wb, temperature=temperature),
                              spec.dtype, dy)

    def live(yb: Any, wb: Any) -> Any:
        xp = namespace(yb)
        alive = yb != -np.inf if log else xp.ones(yb.shape, bool)
        return alive if wb is None else alive & wb

    def terms(yb: Any, bb: Any, wb: Any, dyb: Any, block_info: Any = None) -> Any:
        xp = namespace(yb)
        t = dyb.astype(np.float64) if log else yb.astype(np.float64) * dyb
        return xp.where(live(yb, wb), t, 0.0)

    total = call.blockwise(terms, np.float64, dy).sum(axis=spec.axes, keepdims=True)

    def grad(yb: Any, bb: Any, wb: Any, dyb: Any, sb: Any, block_info: Any = None) -> Any:
        xp = namespace(yb)
        y64, dy64 = yb.astype(np.float64), dyb.astype(np.float64)
        g = sc * (dy64 - xp.exp(y64) * sb) if log else sc * y64 * (dy64 - sb)
        return xp.where(live(yb, wb), g, 0.0).astype(spec.dtype)

    return call.blockwise(grad, spec.dtype, dy, total)


def softmax_backward(y: Any, dy: Any, axis: Any = -1, *, where: Any = None,
                     temperature: float = 1.0) -> Any:
    """:func:`fastops.softmax_backward` of dask arrays (lazy)."""
    return _softmax_backward("softmax_backward", False, y, dy, axis, where, temperature)


def log_softmax_backward(y: Any, dy: Any, axis: Any = -1, *, where: Any = None,
                         temperature: float = 1.0) -> Any:
    """:func:`fastops.log_softmax_backward` of dask arrays (lazy)."""
    return _softmax_backward("log_softmax_backward", True, y, dy, axis, where, temperature)


def _prob_backward(func: str, index_weighted: bool, x: Any, dout: Any, axis: Any,
                   temperature: float, where: Any, keepdims: bool) -> Any:
    call = _Call(func, x, axis, where,
                 sample_kwargs={"dout": np.ones(()), "temperature": temperature,
                                "keepdims": True})
    spec = call.spec
    dout_b = call.per_row("dout", dout, keepdims)
    tau = float(temperature)
    if call.whole_axes:
        fn = getattr(_inmemory(), func)
        return call.blockwise(lambda xb, bb, wb, db, block_info=None:
                              fn(xb, db, axis=spec.axes, temperature=tau, where=wb,
                                 keepdims=True), spec.dtype, dout_b)
    state = _argmax_state(call, tau, float64=True) if index_weighted else \
        _smooth_max_state(call, tau, float64=True)
    fields = [state[..., k] for k in range(2 if index_weighted else 1)]

    def grad(xb: Any, bb: Any, wb: Any, db: Any, tb: Any, ab: Any = None,
             block_info: Any = None) -> Any:
        xp = namespace(xb)
        p = _probabilities(xb, wb, tb, tau, False)
        d64 = db.astype(np.float64)
        if not index_weighted:
            return (d64 * p).astype(spec.dtype)
        index = _flat_index(xp, spec, xb.shape, block_info)
        with np.errstate(invalid="ignore"):
            g = d64 / tau * p * (index - ab)
        return xp.where(p == 0, 0.0, g).astype(spec.dtype)

    return call.blockwise(grad, spec.dtype, dout_b, *fields)


def smooth_max_backward(x: Any, dout: Any, axis: Any = -1, *, temperature: float = 1.0,
                        where: Any = None, keepdims: bool = False) -> Any:
    """:func:`fastops.smooth_max_backward` of dask arrays (lazy)."""
    return _prob_backward("smooth_max_backward", False, x, dout, axis, temperature, where,
                          keepdims)


def soft_argmax_backward(x: Any, dout: Any, axis: Any = -1, *, temperature: float = 1.0,
                         where: Any = None, keepdims: bool = False) -> Any:
    """:func:`fastops.soft_argmax_backward` of dask arrays (lazy)."""
    return _prob_backward("soft_argmax_backward", True, x, dout, axis, temperature, where,
                          keepdims)


