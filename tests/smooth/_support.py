"""Helpers of the smooth tests: inputs, reference results and per-dtype comparisons.

Every comparison is against ``fastops.smooth.reference`` evaluated in float64 on the very same
input (the input cast to float64, which is exact), with the tolerances of semantics.md:
float64 1e-13 relative, float32 2e-6 relative, float16 about one float16 ulp of the reference
rounded to float16. Where a result is a difference of larger terms (log_softmax near 0, the
backward passes) relative error is meaningless, so an absolute term ``rtol * scale`` is added,
``scale`` being the magnitude of the terms in that row (see ``Case.scale``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from fastops.smooth import reference

FORWARD = ("logsumexp", "softmax", "log_softmax", "smooth_max", "soft_argmax")
BACKWARD = (
    "logsumexp_backward",
    "softmax_backward",
    "log_softmax_backward",
    "smooth_max_backward",
    "soft_argmax_backward",
)
OPS = FORWARD + BACKWARD
#: Ops whose result has the reduced shape (the others are shaped like the input).
REDUCTIONS = ("logsumexp", "smooth_max", "soft_argmax")
#: Ops with a ``keepdims`` argument.
KEEPDIMS_OPS = REDUCTIONS + ("logsumexp_backward", "smooth_max_backward", "soft_argmax_backward")
#: Ops with a ``temperature`` argument.
TEMPERATURE_OPS = tuple(op for op in OPS if not op.startswith("logsumexp"))

RTOL = {np.dtype(np.float64): 1e-13, np.dtype(np.float32): 2e-6}
F16_INNER_RTOL = 2e-6  # float16 is computed in float32, then rounded once to float16

F64 = np.float64


def result_dtype(dtype: Any) -> np.dtype:
    """float16/32/64 stay; bool and integers give float64."""
    dt = np.dtype(dtype)
    return np.dtype(F64) if dt.kind in "biu" else np.dtype(dt.type)


def norm_axes(axis: Any, ndim: int) -> tuple[int, ...]:
    if axis is None:
        return tuple(range(ndim))
    items = axis if isinstance(axis, tuple) else (axis,)
    return tuple(sorted(i % ndim for i in items))


def row_max(values: np.ndarray, axes: tuple[int, ...]) -> np.ndarray:
    """max |v| over the finite entries of each row (keepdims shape), 0 for none."""
    v = np.asarray(values, F64)
    a = np.where(np.isfinite(v), np.abs(v), 0.0)
    return np.max(a, axis=axes, keepdims=True, initial=0.0)


def row_sum(values: np.ndarray, axes: tuple[int, ...]) -> np.ndarray:
    v = np.asarray(values, F64)
    return np.sum(np.where(np.isfinite(v), np.abs(v), 0.0), axis=axes, keepdims=True)


def row_len(shape: tuple[int, ...], axes: tuple[int, ...]) -> float:
    return float(np.prod([shape[i] for i in axes], dtype=np.int64))


def assert_close(got: Any, ref: Any, dtype: Any, scale: Any = 0.0, err_msg: str = "") -> None:
    """``got`` (a host array of result dtype ``dtype``) against the float64 ``ref``.

    NaN where ``ref`` is NaN and only there; infinities equal; finite values within
    ``rtol * (|ref| + scale)`` (float32/float64), or for float16 within one float16 ulp of
    ``ref`` rounded to float16 plus the float32 error of the computation.
    """
    got = np.asarray(got)
    ref = np.asarray(ref, F64)
    dtype = np.dtype(dtype)
    assert got.shape == ref.shape, f"{err_msg}: shape {got.shape} != expected {ref.shape}"
    scale = np.broadcast_to(np.asarray(scale, F64), ref.shape)
    g = got.astype(F64)
    if dtype == np.float16:
        with np.errstate(over="ignore"):
            r16 = ref.astype(np.float16)
        r = r16.astype(F64)
        with np.errstate(invalid="ignore"):
            ulp = np.spacing(np.abs(r16)).astype(F64)
        tol = ulp + F16_INNER_RTOL * (np.abs(ref) + scale)
    else:
        r = ref
        tol = RTOL[dtype] * (np.abs(ref) + scale)
    nan_ok = np.isnan(g) == np.isnan(r)
    inf_ok = np.where(np.isinf(r) | np.isinf(g), g == r, True)
    finite = np.isfinite(r) & np.isfinite(g)
    with np.errstate(invalid="ignore"):
        err = np.where(finite, np.abs(g - r), 0.0)
    close = err <= np.where(finite, tol, np.inf)
    ok = nan_ok & inf_ok & close
    if not ok.all():
        bad = np.argwhere(~ok)
        first = tuple(int(i) for i in bad[0])
        worst = first
        if finite.any() and not close.all():
            ratio = np.where(finite, err / np.where(tol > 0, tol, np.finfo(F64).tiny), 0.0)
            worst = tuple(int(i) for i in np.unravel_index(np.argmax(ratio), ratio.shape))
        raise AssertionError(
            f"{err_msg}: {len(bad)} of {ref.size} elements differ (dtype {dtype}); "
            f"first at {first}: got {g[first]!r}, expected {r[first]!r}; "
            f"worst at {worst}: got {g[worst]!r}, expected {r[worst]!r}, "
            f"|err| {err[worst]:.3g} > tol {tol[worst]:.3g}"
        )


def assert_same(got: Any, expected: Any, err_msg: str = "") -> None:
    """Bitwise equality (NaN equal to NaN), dtype and shape included."""
    got = np.asarray(got)
    expected = np.asarray(expected)
    assert got.dtype == expected.dtype, f"{err_msg}: dtype {got.dtype} != {expected.dtype}"
    assert got.shape == expected.shape, f"{err_msg}: shape {got.shape} != {expected.shape}"
    assert np.array_equal(got, expected, equal_nan=True), f"{err_msg}: {got} != {expected}"


def random_values(rng: np.random.Generator, shape: tuple[int, ...], dtype: Any,
                  spread: float = 2.0) -> np.ndarray:
    """Finite test values of ``dtype``: normal * spread for floats, small integers for ints."""
    dt = np.dtype(dtype)
    if dt.kind == "b":
        return rng.random(shape) < 0.5
    if dt.kind in "iu":
        lo = 0 if dt.kind == "u" else -5
        return rng.integers(lo, 6, size=shape).astype(dt)
    return (rng.standard_normal(shape) * spread).astype(dt)


@dataclass
class Case:
    """One call: positional args and keywords (host arrays), the float64 reference result,
    the per-element tolerance ``scale`` and the dtype of the result."""

    op: str
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    ref: Any
    scale: Any
    dtype: np.dtype
    inputs: list[np.ndarray] = field(default_factory=list)


def _f64(value: Any) -> Any:
    if value is None or isinstance(value, bool | float | int):
        return value
    arr = np.asarray(value)
    return arr if arr.dtype == np.bool_ else arr.astype(F64)


def make_case(op: str, x: np.ndarray, axis: Any, rng: np.random.Generator, *,
              where: Any = None, temperature: float | None = None,
              keepdims: bool | None = None, b: Any = None,
              return_sign: bool | None = None) -> Case:
    """Build the arguments of ``op`` around the input ``x`` and its float64 reference.

    Backward ops get their other arguments the way a caller would have them: ``out`` and ``y``
    are the reference forward results rounded to the result dtype, ``dout``/``dy`` random
    cotangents of the result dtype. The reference is evaluated on exactly these (rounded)
    arguments, cast to float64.
    """
    x = np.asarray(x)
    rdt = result_dtype(x.dtype)
    ndim = x.ndim
    axes = norm_axes(axis, ndim)
    tau = 1.0 if temperature is None else float(temperature)
    kw: dict[str, Any] = {"axis": axis}
    if where is not None:
        kw["where"] = where
    if temperature is not None:
        kw["temperature"] = temperature
    if keepdims is not None:
        kw["keepdims"] = keepdims
    if b is not None:
        kw["b"] = b
    if return_sign is not None:
        kw["return_sign"] = return_sign
    kw64 = {k: (_f64(v) if k == "b" else v) for k, v in kw.items()}
    x64 = x.astype(F64)
    n = row_len(x.shape, axes)
    fkw = {k: v for k, v in kw64.items() if k in ("axis", "where", "temperature")}
    reduced_keep = tuple(1 if i in axes else s for i, s in enumerate(x.shape))
    reduced = reduced_keep if keepdims else tuple(s for i, s in enumerate(x.shape)
                                                  if i not in axes)

    def squeeze(v: np.ndarray) -> np.ndarray:
        return v if keepdims else np.reshape(v, reduced)

    if op in FORWARD:
        args: tuple[Any, ...] = (x,)
        ref = getattr(reference, op)(x64, **kw64)
        if op in ("logsumexp", "smooth_max"):
            scale = squeeze(row_max(x64, axes) + tau * np.log(max(n, 1.0)))
        elif op == "soft_argmax":
            scale = np.full(reduced, n)
        elif op == "softmax":
            scale = row_max(ref, axes)
        else:  # log_softmax: x/τ - lse(x/τ), a difference of terms of size |x|/τ
            scale = row_max(x64, axes) / tau + row_max(ref, axes)
        inputs = [x]
    elif op == "logsumexp_backward":
        out = np.asarray(reference.logsumexp(x64, axis, b=kw64.get("b"), keepdims=bool(keepdims),
                                             where=where)).astype(rdt)
        dout = np.asarray(rng.standard_normal(out.shape)).astype(rdt)
        args = (x, out, dout)
        bkw = {k: v for k, v in kw64.items() if k in ("axis", "where", "keepdims", "b")}
        ref = reference.logsumexp_backward(x64, out.astype(F64), dout.astype(F64), **bkw)
        scale = row_max(ref, axes)
        inputs = [x, out, dout]
    elif op in ("softmax_backward", "log_softmax_backward"):
        log = op.startswith("log")
        if x.dtype.kind == "f":
            fwd = reference.log_softmax if log else reference.softmax
            y = np.asarray(fwd(x64, **fkw)).astype(rdt)
            dy = np.asarray(rng.standard_normal(x.shape)).astype(rdt)
        else:  # integer y and dy: checks their promotion (the formula holds for any y)
            y = x
            dy = random_values(rng, x.shape, x.dtype)
        args = (y, dy)
        ref = getattr(reference, op)(y.astype(F64), dy.astype(F64), **fkw)
        y64, dy64 = y.astype(F64), dy.astype(F64)
        if log:
            with np.errstate(over="ignore"):
                ey = np.exp(np.where(np.isfinite(y64), y64, -np.inf))
            scale = (row_max(dy64, axes) + row_max(ey, axes) * row_sum(dy64, axes)) / tau
        else:
            scale = row_max(y64, axes) * (row_max(dy64, axes) + row_sum(y64 * dy64, axes)) / tau
        scale = scale + row_max(ref, axes)
        inputs = [y, dy]
    else:  # smooth_max_backward / soft_argmax_backward
        dout = np.asarray(rng.standard_normal(reduced)).astype(rdt)
        args = (x, dout)
        ref = getattr(reference, op)(x64, dout.astype(F64), **fkw,
                                     **({} if keepdims is None else {"keepdims": keepdims}))
        scale = row_max(ref, axes)
        if op == "soft_argmax_backward":
            p = reference.smooth_max_backward(x64, 1.0, **fkw)
            scale = scale + row_max(p, axes) * n * np.abs(
                np.reshape(dout.astype(F64), reduced_keep)) / tau
        inputs = [x, dout]
    return Case(op, args, kw, ref, scale, rdt, inputs)


def check_result(backend: Any, case: Case, got: Any, shape_of: Any = None, err_msg: str = "",
                 scalar_ok: bool = True) -> None:
    """Type, dtype and shape of a raw (device) result, then its values against the reference."""
    refs = case.ref if isinstance(case.ref, tuple) else (case.ref,)
    gots = got if isinstance(got, tuple) else (got,)
    assert len(gots) == len(refs), f"{err_msg}: {len(gots)} results, expected {len(refs)}"
    for i, (g, r) in enumerate(zip(gots, refs, strict=True)):
        r = np.asarray(r)
        types = (backend.array_type, np.generic) if (scalar_ok and r.ndim == 0
                                                     and backend.name != "cupy") \
            else (backend.array_type,)
        assert isinstance(g, types), f"{err_msg}[{i}]: type {type(g).__name__}"
        assert g.dtype == case.dtype, f"{err_msg}[{i}]: dtype {g.dtype} != {case.dtype}"
        assert tuple(g.shape) == r.shape, f"{err_msg}[{i}]: shape {g.shape} != {r.shape}"
        scale = case.scale if i == 0 else 0.0
        assert_close(backend.asnumpy(g), r, case.dtype, scale, f"{err_msg}[{i}]")
