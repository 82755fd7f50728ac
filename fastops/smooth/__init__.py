"""Smoothing family: logsumexp, softmax, log_softmax, smooth_max, soft_argmax and gradients.

From Su Jianlin's post "function smoothing" (kexue.fm/archives/6620): logsumexp is the smooth
maximum, softmax the smooth one-hot of the argmax, and sum_i i * softmax(x)_i the smooth argmax;
masks follow "Keras mask" (kexue.fm/archives/6810) with a boolean ``where`` instead of an
additive -1e10. Special values: ../shared/semantics.md ("smooth").

Every public function validates its arguments, resolves the backend from the array type
(NumPy -> Numba kernels in ``cpu.py``, CuPy -> CUDA kernels in ``gpu.py``, ``backend="numpy"``
-> ``reference.py``), views the input as contiguous ``(rows, n)`` rows along ``axis`` and calls
one kernel of the interface described in ``BACKEND_INTERFACE.md``.
"""

from __future__ import annotations

import importlib
from typing import Any

import numpy as np

from .. import _checks
from .._dask import dask_aware
from .._dispatch import array_module, resolve_backend
from .._rows import RowLayout, as_dtype, column_view, from_half_bits, half_bits
from . import reference

__all__ = [
    "logsumexp",
    "softmax",
    "log_softmax",
    "smooth_max",
    "soft_argmax",
    "logsumexp_backward",
    "softmax_backward",
    "log_softmax_backward",
    "smooth_max_backward",
    "soft_argmax_backward",
]


def _kernels(backend: str) -> Any:
    """The kernel module of a backend, imported on first use (cupy only when asked for)."""
    return importlib.import_module(f"{__name__}.{'gpu' if backend == 'cupy' else 'cpu'}")


#: The forward functions: their column kernels also exist on the GPU (gpu.py's *_columns; the
#: GPU backward ops still take x copied into rows) and take a ``where`` mask on the CPU.
_FORWARD_FUNCS = frozenset({"logsumexp", "smooth_max", "soft_argmax", "softmax",
                            "log_softmax"})


class _Rows:
    """A validated call: backend, array module, layout and the canonical (rows, n) input."""

    def __init__(self, func: str, x: Any, axis: Any, where: Any, backend: str,
                 temperature: float = 1.0, name: str = "x", walk_as_it_lies: bool = False
                 ) -> None:
        self.func = func
        self.backend = backend
        self.xp = xp = array_module(backend)
        x = xp.asarray(x)
        # A 0-d input is one row of one element (SciPy's atleast_1d: axis -1, 0 or None;
        # logsumexp(..., keepdims=True) then has shape (1,), as SciPy's); per-element results
        # come back 0-d (elementwise).
        self.input_shape = tuple(x.shape)
        if x.ndim == 0:
            x = x.reshape(1)
        self.out_dtype = _checks.result_dtype(func, name, x.dtype)
        self.work_dtype = _checks.working_dtype(func, name, x.dtype,
                                                keep_float16=backend == "cupy")
        self.scale = 1.0 / _checks.positive_temperature(func, temperature)
        self.axes = _checks.normalize_axes(func, axis, x.ndim)
        self.layout = RowLayout(tuple(x.shape), self.axes)
        mask = None if where is None else _checks.boolean_mask(func, where, xp, x.shape)
        self.empty = self.layout.rows == 0 or self.layout.n == 0
        # With walk_as_it_lies (callers that pass their other per-element inputs through
        # like_input and per-row ones through rows_arg), the CPU kernels read x where it lies:
        # `view` maps x onto (outer, n, inner) without a copy; inner == 1 gives row kernels a
        # (rows, n) view, inner > 1 goes to the column kernels (`columns`).
        # A mask goes with the CPU's forward column kernels, as a strided (outer, n, inner)
        # view (stride 0 where it is broadcast; mask_columns); else x is copied into rows.
        self.view = None
        self.mask_columns = None
        # float16 on the CPU stays float16: in rows (see rows_kernel), and for the column
        # kernels as its uint16 bits, which they read and write in float16, computing in
        # float32 (fastops._vecmath.load / store)
        self.half = xp is np and x.dtype == np.float16
        forward = func in _FORWARD_FUNCS
        on_this_backend = backend == "numba" or forward
        masked_ok = mask is None or (backend == "numba" and forward)
        if walk_as_it_lies and on_this_backend and masked_ok and not self.empty:
            self.view = column_view(x, self.axes, np.float16 if self.half else self.work_dtype)
            if self.view is not None and mask is not None:
                if self.view.array.shape[2] > 1:
                    self.mask_columns = self.view.walk_broadcast(xp, mask)
                if self.mask_columns is None:
                    self.view = None
        self.columns = None
        if self.view is None:
            self.x = None if self.empty else \
                self.layout.to_rows(xp, x, np.float16 if self.half else self.work_dtype)
        elif self.view.array.shape[2] == 1:
            self.x = self.view.rows
        else:
            self.x = None
            self.columns = self.view.array.view(np.uint16) if self.half else self.view.array
        # (distinct mask rows, row index): a mask broadcast over kept axes is not copied out
        self.mask = None if (mask is None or self.empty or self.view is not None) else \
            self.layout.broadcast_rows(xp, mask, np.bool_)

    def rows_kernel(self, kernel: Any, *args: Any) -> Any:
        """``kernel(rows, *args)`` on the (rows, n) input. float16 on the CPU goes in as its
        uint16 bits, x and the float16 (rows, n) arguments from like_input alike: the kernels
        read and write them in float16 and compute in float32 (fastops._vecmath.load / store).
        Before, slabs of rows went through float32 buffers: logsumexp of (4096, 4096)
        float16 took 1.4-1.8x its float32 time, 1.0 now (2-core VM, 2026-12-03)."""
        if not self.half:
            return kernel(self.x, *args)
        result = kernel(half_bits(self.x), *(half_bits(a) for a in args))
        if isinstance(result, tuple):
            return tuple(map(from_half_bits, result))
        return from_half_bits(result)

    def column_kernel(self, kernel: Any, *args: Any) -> Any:
        """``kernel(columns, *args)``, with ``mask=`` the walked mask when there is one (only
        the CPU's forward column kernels take it); a float16 result as float16 (the kernels
        return its bits, see __init__). Every column kernel call goes through here."""
        if self.mask_columns is None:
            return from_half_bits(kernel(self.columns, *args))
        return from_half_bits(kernel(self.columns, *args, mask=self.mask_columns))

    @property
    def row_dtype(self) -> np.dtype:
        """dtype of per-row arguments passed to kernels (float32 for float16 input)."""
        return np.dtype(np.float32) if self.work_dtype == np.float16 else self.work_dtype

    def rows_arg(self, name: str, value: Any, keepdims: bool) -> Any:
        """A per-row argument (out, dout) checked against the reduced shape, as (rows,), or as
        (outer, inner) in the view's order when x is read where it lies (see ``view``)."""
        arr = _checks.real_array(self.func, name, value, self.xp)
        _checks.broadcastable(self.func, name, arr.shape, self.layout.reduced_shape(keepdims))
        if self.view is None:
            return self.layout.row_values(self.xp, arr, keepdims, self.row_dtype)
        per_column = self.view.per_column(self.xp, arr, keepdims, self.row_dtype)
        return per_column if self.columns is not None else per_column.reshape(-1)

    def like_input(self, arr: Any) -> Any:
        """Another per-element argument of x's shape (softmax_backward's dy) in the form the
        kernels get x: (rows, n) rows, or the (outer, n, inner) walk of ``view``."""
        arr = arr.reshape(self.layout.shape)  # a 0-d dy of a 0-d y (see input_shape)
        if self.view is None:
            half = self.half and arr.dtype == np.float16  # read as float16: rows_kernel
            return self.layout.to_rows(self.xp, arr, np.float16 if half else self.work_dtype)
        if self.half and arr.dtype == np.float16:
            walked = self.view.walk(self.xp, arr, np.float16)
            if self.columns is not None:
                return walked.view(np.uint16)  # as x (see __init__)
        else:
            walked = self.view.walk(self.xp, arr, self.work_dtype)
        return walked if self.columns is not None else walked.reshape(self.x.shape)

    def weights_arg(self, b: Any, dtype: Any) -> Any:
        """logsumexp's ``b`` checked against the input's shape, as ``(distinct rows, row
        index)`` (see RowLayout.broadcast_rows) of ``dtype``; None when not given or when there
        are no rows to compute."""
        if b is None:
            return None
        weights = _checks.real_array(self.func, "b", b, self.xp)
        _checks.broadcastable(self.func, "b", weights.shape, self.layout.shape)
        if self.empty:
            return None
        return self.layout.broadcast_rows(self.xp, weights, dtype)

    def reduction(self, rows1d: Any, keepdims: bool) -> Any:
        """A per-row result in the reduced shape; a NumPy scalar for 0-d results, as NumPy and
        SciPy return (CuPy keeps 0-d arrays, as CuPy does)."""
        rows1d = rows1d.astype(self.out_dtype, copy=False)
        out = self.layout.from_row_values(rows1d, keepdims) if self.view is None else \
            self.view.reduction(rows1d, keepdims)
        return out[()] if (out.ndim == 0 and self.xp is np) else out

    def elementwise(self, rows2d: Any) -> Any:
        """A per-element result ((rows, n), or (outer, n, inner) from the column kernels) in
        the input's shape."""
        rows2d = as_dtype(self.xp, rows2d, self.out_dtype)
        if self.view is None:
            out = self.layout.from_rows(self.xp, rows2d)
        else:
            out = self.view.elementwise(rows2d)
        if len(self.input_shape) == 0:  # a 0-d input: a NumPy scalar, as SciPy's (see reduction)
            out = out.reshape(())
            return out[()] if self.xp is np else out
        return out

    def full_reduction(self, value: float, keepdims: bool) -> Any:
        """A per-row result holding ``value`` everywhere (empty rows, no kernel launch)."""
        return self.reduction(self.xp.full(self.layout.rows, value, dtype=self.out_dtype),
                              keepdims)

    def full_like_input(self, value: float) -> Any:
        return self.xp.full(self.input_shape, value, dtype=self.out_dtype)


@dask_aware(f"{__name__}.dask")
def logsumexp(a: Any, axis: Any = None, b: Any = None, keepdims: bool = False,
              return_sign: bool = False, *, where: Any = None, backend: str | None = None) -> Any:
    """Stable ``log(sum(b * exp(a)))`` over ``axis``, as ``scipy.special.logsumexp``.

    Evaluated in one pass as ``m + log1p(sum_{i != i_max} b_i exp(a_i - m) / b_max)`` with
    ``m = max a``: no overflow, and the dominant term is kept out of the sum, so
    ``logsumexp([0, -40])`` equals ``numpy.logaddexp(0, -40)`` (SciPy gh-18295).

    Parameters
    ----------
    a : array_like
        Input (NumPy or CuPy). bool/int are computed in float64, float16 in float32.
    axis : None, int or tuple of ints
        Axes to reduce; None (default) reduces all.
    b : array_like, optional
        Weights broadcastable to ``a``; may be negative. Elements with ``b == 0`` are ignored,
        even when ``a`` is inf or NaN there.
    keepdims : bool
        Keep the reduced axes with length 1.
    return_sign : bool
        Return ``(log|s|, sign(s))``; without it a negative total gives NaN.
    where : array of bool, optional
        Elements to include (JAX's ``where``); broadcastable to ``a``.
    backend : {None, "numba", "cupy", "numpy"}
        None picks from the array type; "numpy" runs the reference.

    Special values: a row with nothing kept, or only -inf, gives -inf (sign 0); any +inf gives
    +inf; a NaN gives NaN for its row only; an empty row gives -inf.

    Examples
    --------
    >>> fastops.logsumexp(np.array([2.0, 1, 4, 5, 3]))
    np.float64(5.451914395937593)
    >>> fastops.logsumexp(np.array([[0.0, -np.inf]]), axis=1, where=np.array([[False, True]]))
    array([-inf])
    """
    func = "logsumexp"
    name = resolve_backend(func, (a, b, where), backend)
    if name == "numpy":
        return reference.logsumexp(a, axis, b, keepdims, return_sign, where=where)
    a, b = _promoted_operands(func, a, b, array_module(name))
    if a.dtype.kind == "c":
        return _complex_logsumexp(a, b, axis, keepdims, return_sign, where, name)
    weight = _uniform_weight(func, a, b, name)
    if weight is not None:  # one weight for every element: a shift of the unweighted result
        return _uniformly_weighted(a, axis, weight, keepdims, return_sign, where, name)
    call = _Rows(func, a, axis, where, name, name="a", walk_as_it_lies=b is None)
    xp = call.xp
    b_rows = call.weights_arg(b, call.row_dtype)
    if call.empty:
        out = call.full_reduction(-np.inf, keepdims)
        return (out, xp.zeros_like(out)) if return_sign else out
    kernels = _kernels(name)
    x = call.x
    if b_rows is None:
        out = call.rows_kernel(kernels.lse, call.mask, 1.0) if call.columns is None else \
            call.column_kernel(kernels.lse_columns, 1.0)
        if not return_sign:
            return call.reduction(out, keepdims)
        sign = xp.where(xp.isnan(out), xp.nan, xp.where(out == -xp.inf, 0.0, 1.0))
    else:
        if x.dtype == np.float16 and not call.half:  # the GPU's weighted sums: float32 input
            x = x.astype(np.float32)
        out, sign = kernels.lse_weighted(x, b_rows, call.mask) if not call.half else \
            call.rows_kernel(kernels.lse_weighted, b_rows, call.mask)
        _regroup_cancelled(call, x, b_rows, out, sign)
        if not return_sign:
            return call.reduction(xp.where(sign < 0, xp.nan, out), keepdims)
    return call.reduction(out, keepdims), call.reduction(sign.astype(out.dtype), keepdims)


def _regroup_cancelled(call: _Rows, x: Any, b_rows: Any, out: Any, sign: Any) -> None:
    """Rows whose weighted total came out exactly 0 (sign 0), recomputed in place by
    reference.exact_cancellations (equal ``a`` grouped, exactly cancelling groups dropped):
    terms far below the largest are lost when the sum is scaled by it. Such rows are rare (and
    include the rows with nothing kept, which come back unchanged); they are computed on the
    host."""
    xp = call.xp
    rows = xp.flatnonzero(sign == 0)
    if rows.size == 0:
        return

    def host(v: Any) -> np.ndarray:
        return np.asarray(v if xp is np else xp.asnumpy(v), np.float64)

    keep = np.ones(x[rows].shape, bool) if call.mask is None else \
        np.asarray(call.mask[0][call.mask[1][rows]] if xp is np else
                   xp.asnumpy(call.mask[0][call.mask[1][rows]]))
    value, sgn = reference.exact_cancellations(host(x[rows]), host(b_rows[0][b_rows[1][rows]]),
                                               keep)
    out[rows] = xp.asarray(value).astype(out.dtype)
    sign[rows] = xp.asarray(sgn).astype(sign.dtype)


def _promoted_operands(func: str, a: Any, b: Any, xp: Any) -> tuple[Any, Any]:
    """logsumexp's ``a`` and ``b`` as SciPy takes them: ``a`` in the dtype promoted with
    ``b`` (fastops._checks.promoted_dtype: a float32 ``a`` with a float64 ``b`` is computed and
    returned in float64, with a Python float ``b`` in float32) and broadcast against ``b``'s
    shape (the reduction runs over the broadcast shape)."""
    dtype = _checks.promoted_dtype(func, [("a", a)] + ([] if b is None else [("b", b)]),
                                   allow_complex=True)
    arr = _checks.real_array(func, "a", a, xp, allow_complex=True)
    weights = None
    if b is not None:
        weights = _checks.real_array(func, "b", b, xp, allow_complex=True)
        arr = _checks.broadcast_against(func, "a", arr, "b", weights, xp)
    if _checks.result_dtype(func, "a", arr.dtype, allow_complex=True) != dtype:
        arr = arr.astype(dtype)
    return arr, weights


def _complex_logsumexp(a: Any, b: Any, axis: Any, keepdims: bool, return_sign: bool,
                       where: Any, backend: str) -> Any:
    """logsumexp of complex ``a`` (already promoted with ``b`` and broadcast against it):
    SciPy's algorithm (fastops.smooth.reference.complex_lse), in complex128. On the CPU a Numba
    kernel per row (cpu.lse_complex), the rows it cannot finish (a result that is not finite)
    from the reference's direct formula; on the GPU the reference's array code on CuPy arrays
    (several CuPy kernels, not one fused kernel)."""
    func = "logsumexp"
    xp = array_module(backend)
    dtype = np.dtype(a.dtype)
    a = a.reshape(1) if a.ndim == 0 else a
    axes = _checks.normalize_axes(func, axis, a.ndim)
    keep = None if where is None else _checks.boolean_mask(func, where, xp, a.shape)
    layout = RowLayout(tuple(a.shape), axes)
    if backend == "cupy" or layout.rows == 0 or layout.n == 0:
        w = None if b is None else xp.broadcast_to(b, a.shape)
        if keep is not None:
            w = xp.where(keep, 1.0 if w is None else w, 0.0)
        return reference.complex_lse(xp, a.astype(np.complex128), w, axes, keepdims,
                                     return_sign, dtype)
    x = layout.to_rows(np, a, np.complex128)
    b_rows = None if b is None else layout.broadcast_rows(np, b, np.complex128)
    mask_rows = None if keep is None else layout.broadcast_rows(np, keep, np.bool_)
    out, sign, direct = _kernels(backend).lse_complex(x, b_rows, mask_rows)
    if direct.any():
        rows = np.flatnonzero(direct)
        w = None if b_rows is None else b_rows[0][b_rows[1][rows]]
        if mask_rows is not None:
            w = np.where(mask_rows[0][mask_rows[1][rows]], 1.0 if w is None else w, 0.0)
        fixed = reference.complex_lse(np, x[rows], w, (1,), False, return_sign, np.complex128)
        out[rows], sign[rows] = fixed if return_sign else (fixed, 0.0)
    wrap = reference.wrap_radians
    if return_sign:
        value = out.real.astype(np.float32 if dtype == np.complex64 else np.float64)
        sign = (sign.real + wrap(np, sign.imag) * 1j).astype(dtype)
        return (_complex_result(layout, value, keepdims),
                _complex_result(layout, sign, keepdims))
    return _complex_result(layout, (out.real + wrap(np, out.imag) * 1j).astype(dtype),
                           keepdims)


def _complex_result(layout: RowLayout, rows1d: np.ndarray, keepdims: bool) -> Any:
    out = layout.from_row_values(rows1d, keepdims)
    return out[()] if out.ndim == 0 else out


def _uniform_weight(func: str, a: Any, b: Any, backend: str) -> float | None:
    """``b`` as a Python float when it is one finite, nonzero value (a scalar or a size-1
    array) on the CPU, else None. Such a weight is not broadcast into an input-sized array:
    ``log Σ b·exp(a) = log|b| + logsumexp(a)`` with the sign of b (a scalar b used to cost 14x
    the unweighted call: the broadcast array, then the weighted kernel's scalar exp)."""
    if b is None or backend != "numba":
        return None
    weights = _checks.real_array(func, "b", b, np)
    if weights.size != 1:
        return None
    _checks.broadcastable(func, "b", weights.shape, np.shape(a))
    value = float(weights.reshape(()))
    return value if (np.isfinite(value) and value != 0.0) else None


def _uniformly_weighted(a: Any, axis: Any, weight: float, keepdims: bool, return_sign: bool,
                        where: Any, backend: str) -> Any:
    """logsumexp with one finite nonzero weight: the unweighted result plus log|weight| (added
    in float64, rounded once); a negative weight makes every nonzero total negative, which is
    NaN without return_sign."""
    value, sign = logsumexp(a, axis, None, keepdims, True, where=where, backend=backend)
    dtype = np.result_type(value)
    shifted = np.asarray(value, np.float64) + np.log(abs(weight))
    if weight < 0:
        sign = -sign
    if not return_sign:
        return np.where(np.asarray(sign) < 0, np.nan, shifted).astype(dtype)[()]
    return shifted.astype(dtype)[()], sign


@dask_aware(f"{__name__}.dask")
def smooth_max(x: Any, axis: Any = -1, *, temperature: float = 1.0, where: Any = None,
               keepdims: bool = False, backend: str | None = None) -> Any:
    """Smooth maximum ``τ·logsumexp(x/τ)`` over ``axis`` (τ = ``temperature`` > 0).

    ``max(x) <= smooth_max(x) <= max(x) + τ·log(n)``; it tends to ``max(x)`` as τ -> 0.
    Special values as :func:`logsumexp` (no weights): nothing kept or all -inf -> -inf,
    +inf -> +inf, NaN -> NaN for that row.

    >>> round(float(fastops.smooth_max(np.array([1.0, 3.0]), temperature=0.1)), 12)
    3.000000000206
    """
    return _temperature_reduction("smooth_max", "lse", -np.inf, x, axis, temperature, where,
                                  keepdims, backend)


@dask_aware(f"{__name__}.dask")
def soft_argmax(x: Any, axis: Any = -1, *, temperature: float = 1.0, where: Any = None,
                keepdims: bool = False, backend: str | None = None) -> Any:
    """Smooth argmax ``sum_i i·softmax(x/τ)_i`` over ``axis``, with 0-based ``i``.

    Su's post counts from 1: add 1 for its values. Over several axes ``i`` is the C-order flat
    position within the reduced axes. Special values: nothing kept, all -inf, an empty row,
    a +inf or a NaN give NaN; an all-equal row of length n gives (n - 1)/2.

    >>> round(float(fastops.soft_argmax(np.array([2.0, 1, 4, 5, 3]))), 12)  # post: 3.7336...
    2.733639662883
    """
    return _temperature_reduction("soft_argmax", "soft_argmax", np.nan, x, axis, temperature,
                                  where, keepdims, backend)


def _smooth_max_float64(x: Any, axis: Any, temperature: float = 1.0, where: Any = None,
                        keepdims: bool = False) -> Any:
    """smooth_max computed and returned in float64 whatever x's dtype (not public: the block
    states of fastops.smooth.dask, where a second pass takes x - L against every element and
    a float32 L would cost |L| x 6e-8 of relative accuracy). The CPU kernels finish their
    float64 row states in float64; other backends and float16 run on a float64 copy."""
    name = resolve_backend("smooth_max", (x, where), None)
    xp = array_module(name)
    x = xp.asarray(x)
    if name != "numba" or x.dtype not in (np.float32, np.float64):
        return smooth_max(x.astype(np.float64), axis, temperature=temperature, where=where,
                          keepdims=keepdims)
    call = _Rows("smooth_max", x, axis, where, name, temperature, walk_as_it_lies=True)
    call.out_dtype = np.dtype(np.float64)
    if call.empty:
        return call.full_reduction(-np.inf, keepdims)
    kernels = _kernels(name)
    if call.columns is not None:
        return call.reduction(call.column_kernel(kernels.lse_columns_float64, call.scale),
                              keepdims)
    return call.reduction(kernels.lse_float64(call.x, call.mask, call.scale), keepdims)


def _temperature_reduction(func: str, kernel: str, empty_value: float, x: Any, axis: Any,
                           temperature: float, where: Any, keepdims: bool,
                           backend: str | None) -> Any:
    """smooth_max / soft_argmax: a per-row kernel of x/τ; ``empty_value`` for empty rows."""
    name = resolve_backend(func, (x, where), backend)
    if name == "numpy":
        return getattr(reference, func)(x, axis, temperature=temperature, where=where,
                                        keepdims=keepdims)
    call = _Rows(func, x, axis, where, name, temperature, walk_as_it_lies=True)
    if call.empty:
        return call.full_reduction(empty_value, keepdims)
    if call.columns is not None:
        columns_fn = getattr(_kernels(name), f"{kernel}_columns")
        return call.reduction(call.column_kernel(columns_fn, call.scale), keepdims)
    kernel_fn = getattr(_kernels(name), kernel)
    return call.reduction(call.rows_kernel(kernel_fn, call.mask, call.scale), keepdims)


def _softmax(func: str, log: bool, x: Any, axis: Any, where: Any, temperature: float,
             backend: str | None) -> Any:
    name = resolve_backend(func, (x, where), backend)
    if name == "numpy":
        ref = reference.log_softmax if log else reference.softmax
        return ref(x, axis, where=where, temperature=temperature)
    call = _Rows(func, x, axis, where, name, temperature, walk_as_it_lies=True)
    if call.empty:
        return call.full_like_input(0.0)
    if call.columns is not None:
        return call.elementwise(call.column_kernel(_kernels(name).softmax_columns, call.scale,
                                                   log))
    return call.elementwise(call.rows_kernel(_kernels(name).softmax, call.mask, call.scale, log))


@dask_aware(f"{__name__}.dask")
def softmax(x: Any, axis: Any = -1, *, where: Any = None, temperature: float = 1.0,
            backend: str | None = None) -> Any:
    """``exp(x/τ) / sum(exp(x/τ))`` over ``axis``, computed stably in one pass per row.

    Masked-out elements (``where`` False) are 0. A row with nothing kept, or only -inf, is all
    0 (not NaN: attention with fully masked rows stays finite); a +inf or a NaN makes the row
    NaN. Rows sum to 1 within a few ulp.

    >>> fastops.softmax(np.array([1000.0, 1000.0]))
    array([0.5, 0.5])
    """
    return _softmax("softmax", False, x, axis, where, temperature, backend)


@dask_aware(f"{__name__}.dask")
def log_softmax(x: Any, axis: Any = -1, *, where: Any = None, temperature: float = 1.0,
                backend: str | None = None) -> Any:
    """``x/τ - logsumexp(x/τ)`` over ``axis``.

    Masked-out elements are -inf; a row with nothing kept or only -inf is all -inf; a +inf or
    a NaN makes the row NaN.

    >>> fastops.log_softmax(np.array([1e10, 1e-10]))
    array([ 0.e+00, -1.e+10])
    """
    return _softmax("log_softmax", True, x, axis, where, temperature, backend)


@dask_aware(f"{__name__}.dask")
def logsumexp_backward(a: Any, out: Any, dout: Any, axis: Any = None, b: Any = None,
                       keepdims: bool = False, *, where: Any = None) -> Any:
    """Gradient of :func:`logsumexp` with respect to ``a``: ``dout · b · exp(a - out)``.

    ``out`` is the forward result and ``dout`` the upstream gradient, both in the reduced shape
    given by ``axis``/``keepdims`` (or broadcastable to it, e.g. ``dout=1.0``). Masked-out
    elements, ``b == 0``, ``a == -inf`` and rows whose ``out`` is -inf get 0, never NaN.

    >>> a = np.array([0.0, np.log(3.0)])
    >>> fastops.logsumexp_backward(a, fastops.logsumexp(a), 1.0)
    array([0.25, 0.75])
    """
    func = "logsumexp_backward"
    name = resolve_backend(func, (a, out, dout, b, where), None)
    if any(v is not None and v.dtype.kind == "c"
           for v in (array_module(name).asarray(v) if v is not None else None
                     for v in (a, out, dout, b))):
        # complex: one array expression (NumPy or CuPy), dout * b * exp(a - out)
        return reference.complex_lse_backward(array_module(name), a, out, dout, axis, b,
                                              keepdims, where)
    call = _Rows(func, a, axis, where, name, name="a", walk_as_it_lies=b is None)
    out_rows = call.rows_arg("out", out, keepdims)
    dout_rows = call.rows_arg("dout", dout, keepdims)
    b_rows = call.weights_arg(b, call.work_dtype)
    if call.empty:
        return call.full_like_input(0.0)
    kernels = _kernels(name)
    if call.columns is not None:
        return call.elementwise(call.column_kernel(kernels.lse_backward_columns, out_rows,
                                                               dout_rows))
    return call.elementwise(call.rows_kernel(kernels.lse_backward, b_rows, call.mask, out_rows,
                                             dout_rows))


def _softmax_backward(func: str, log: bool, y: Any, dy: Any, axis: Any, where: Any,
                      temperature: float) -> Any:
    name = resolve_backend(func, (y, dy, where), None)
    call = _Rows(func, y, axis, where, name, temperature, name="y", walk_as_it_lies=True)
    xp = call.xp
    dy = _checks.real_array(func, "dy", dy, xp)
    if tuple(dy.shape) != call.input_shape:
        raise ValueError(f"{func}: dy must have the shape of y, {call.input_shape}; "
                         f"got {tuple(dy.shape)}")
    if call.empty:
        return call.full_like_input(0.0)
    kernels = _kernels(name)
    dy_rows = call.like_input(dy)
    if call.columns is not None:
        return call.elementwise(call.column_kernel(kernels.softmax_backward_columns, dy_rows,
                                                   call.scale, log))
    return call.elementwise(call.rows_kernel(kernels.softmax_backward, dy_rows, call.mask,
                                             call.scale, log))


@dask_aware(f"{__name__}.dask")
def softmax_backward(y: Any, dy: Any, axis: Any = -1, *, where: Any = None,
                     temperature: float = 1.0) -> Any:
    """Gradient of :func:`softmax` given its output ``y``: ``(y/τ)·(dy - <dy, y>)``.

    Masked-out elements get 0 (and their ``dy`` is ignored, even if inf or NaN).

    >>> y = fastops.softmax(np.array([0.0, 0.0]))
    >>> fastops.softmax_backward(y, np.array([1.0, 0.0]))
    array([ 0.25, -0.25])
    """
    return _softmax_backward("softmax_backward", False, y, dy, axis, where, temperature)


@dask_aware(f"{__name__}.dask")
def log_softmax_backward(y: Any, dy: Any, axis: Any = -1, *, where: Any = None,
                         temperature: float = 1.0) -> Any:
    """Gradient of :func:`log_softmax` given its output ``y``: ``(dy - exp(y)·sum(dy))/τ``.

    Elements whose ``y`` is -inf (masked-out or -inf inputs) neither receive nor pass on
    gradient, so fully masked rows get 0, never NaN.

    >>> y = fastops.log_softmax(np.array([0.0, 0.0]))
    >>> fastops.log_softmax_backward(y, np.array([1.0, 0.0]))
    array([ 0.5, -0.5])
    """
    return _softmax_backward("log_softmax_backward", True, y, dy, axis, where, temperature)


def _prob_backward(func: str, index_weighted: bool, x: Any, dout: Any, axis: Any,
                   temperature: float, where: Any, keepdims: bool) -> Any:
    name = resolve_backend(func, (x, dout, where), None)
    call = _Rows(func, x, axis, where, name, temperature, walk_as_it_lies=True)
    dout_rows = call.rows_arg("dout", dout, keepdims)
    if call.empty:
        return call.full_like_input(0.0)
    kernels = _kernels(name)
    op = "soft_argmax_backward" if index_weighted else "smooth_max_backward"
    if call.columns is not None:
        columns_fn = getattr(kernels, f"{op}_columns")
        return call.elementwise(call.column_kernel(columns_fn, call.scale, dout_rows))
    return call.elementwise(call.rows_kernel(getattr(kernels, op), call.mask, call.scale,
                                             dout_rows))


@dask_aware(f"{__name__}.dask")
def smooth_max_backward(x: Any, dout: Any, axis: Any = -1, *, temperature: float = 1.0,
                        where: Any = None, keepdims: bool = False) -> Any:
    """Gradient of :func:`smooth_max` w.r.t. ``x``: ``dout · softmax(x/τ)``.

    Recomputes the row statistics from ``x`` (one pass) and writes the gradient (a second);
    masked-out elements and rows with nothing kept or only -inf get 0.

    >>> fastops.smooth_max_backward(np.array([0.0, 0.0]), 2.0)
    array([1., 1.])
    """
    return _prob_backward("smooth_max_backward", False, x, dout, axis, temperature, where,
                          keepdims)


@dask_aware(f"{__name__}.dask")
def soft_argmax_backward(x: Any, dout: Any, axis: Any = -1, *, temperature: float = 1.0,
                         where: Any = None, keepdims: bool = False) -> Any:
    """Gradient of :func:`soft_argmax` w.r.t. ``x``: ``dout · p · (i - y) / τ``.

    ``p = softmax(x/τ)`` and ``y`` the soft argmax; masked-out elements and rows with nothing
    kept or only -inf get 0.

    >>> fastops.soft_argmax_backward(np.array([0.0, 0.0]), 1.0)
    array([-0.25,  0.25])
    """
    return _prob_backward("soft_argmax_backward", True, x, dout, axis, temperature, where,
                          keepdims)
