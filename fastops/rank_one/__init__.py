"""Rank-one matrix exponential family: exp(x yᵀ) dense, applied, inverted, its log-determinant,
chains of such factors (an exactly invertible flow layer), and their gradients.

From Su Jianlin's post "an explicit, always-invertible matrix" (kexue.fm/archives/6407). With
``s = yᵀx`` and ``φ(s) = expm1(s)/s`` (``φ(0) = 1``), formulas.md section 2::

    exp(x yᵀ) = I + φ(s) x yᵀ,   exp(x yᵀ)⁻¹ = I − φ(−s) x yᵀ,   log det exp(x yᵀ) = s

Shapes: ``x``, ``y``, ``v`` are stacks of k-vectors ``(..., k)`` (the last axis is the vector);
their leading dims broadcast against each other (one x, y for many v, or one v for many x, y).
For the columns of a (k, m) matrix V pass its transpose (m, k). A chain's factors are
``xs``, ``ys`` of shape ``(..., L, k)``. Special values: ../shared/semantics.md ("rank_one").

How it is fast: nothing is ever O(k²) except the dense matrix itself, which is written in one
pass. An apply reads x, y and v once per batch entry (the dot products ``s = yᵀx`` and
``a = yᵀv`` share the read of y) and writes ``z = v + φ(s)·a·x``; a chain keeps the vector in
a local buffer (CPU) or registers (GPU) across its L factors, so v is read once and z written
once whatever L; each backward is one fused pass per entry as well. Broadcast operands are
never copied per batch entry: kernels follow an index map into the un-broadcast array. The
kernels are ``cpu.py`` (Numba) and ``gpu.py`` (CUDA C, ``kernels.cu``), interface in
``BACKEND_INTERFACE.md``. Scalars (dot products, s, φ, φ') are computed in float64 whatever
the input dtype; vectors are read and written in the working dtype (float32 or float64;
float16 input is computed in float32 and bool/int input in float64, as the other families).
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import math
from typing import Any

import numpy as np

from .. import _checks
from .._dispatch import array_module, resolve_backend
from .._rows import as_contiguous, as_dtype
from . import reference
from .reference import broadcast_batch, chain_args, cotangent, flag, result_dtype, vector_args

__all__ = [
    "expm_rank1",
    "expm_rank1_apply",
    "expm_rank1_apply_backward",
    "expm_rank1_chain_apply",
    "expm_rank1_chain_apply_backward",
    "expm_rank1_logdet",
]

_F64 = np.float64


def _kernels(backend: str) -> Any:
    """The kernel module of a backend, imported on first use (cupy only when asked for)."""
    return importlib.import_module(f"{__name__}.{'gpu' if backend == 'cupy' else 'cpu'}")


def _shape(a: Any) -> tuple[int, ...]:
    return tuple(int(n) for n in a.shape)


def _work_dtype(func: str, named: list[tuple[str, Any]]) -> np.dtype:
    """float32 or float64: the promotion of every operand's working dtype."""
    return np.dtype(np.result_type(*(_checks.working_dtype(func, n, a.dtype) for n, a in named)))


#: Index maps of at most this many entries are kept (per shape pair) instead of being built
#: again by every call: building one took 13 us of a 100 us apply of 256 vectors.
_CACHED_MAP_ENTRIES = 4096


@functools.lru_cache(maxsize=64)
def _cpu_index_map(lead: tuple[int, ...], batch: tuple[int, ...]) -> np.ndarray:
    """The (B,) int64 map from batch entry to entry of an operand of leading shape ``lead``
    (padded to batch's rank) broadcast to ``batch``. Shared between calls: kernels never
    write their index maps."""
    index = np.arange(math.prod(lead), dtype=np.int64).reshape(lead)
    return np.ascontiguousarray(np.broadcast_to(index, batch).reshape(-1))


class _Operand:
    """One operand laid out for the kernels: its un-broadcast entries as a C-contiguous
    ``(n, *tail)`` array of the working dtype, and ``idx``, the (B,) int64 map from batch entry
    to entry of ``data`` (None when the operand already has the batch shape: identity).

    On the CPU, leading axes of stride 0 (``numpy.broadcast_to`` views) are read as one entry
    rather than copied; an operand broadcast to every entry gets a one-entry map instead of a
    (B,) one; and with ``columns`` (v and dz, and x and y of logdet, apply and its backward) an
    operand whose ``(n, k)`` transpose is C-contiguous (``V.T`` of a C-contiguous V) is passed
    as that transpose with ``cols`` set, read in place by the kernels instead of copied.
    Measured (2 threads, medians of 5 processes alternating with the copying code,
    2026-12-04), one x, y (64,) and V.T of
    a (64, 65536) V: expm_rank1_apply float64 53.5 -> 14.9 ms (contiguous rows: 11.4 ms; the
    copy was about 75% of the call), float32 45.0 -> 8.1 ms, expm_rank1_apply_backward with
    dz.T too 86.7 -> 47.0 ms, expm_rank1_chain_apply of 8 shared factors 67.6 -> 27.0 ms; an
    apply of 256 vectors 0.088 -> 0.084 ms (the (B,) maps of x and y no longer built)."""

    def __init__(self, xp: Any, arr: Any, batch: tuple[int, ...], ntail: int, dtype: Any,
                 columns: bool = False) -> None:
        self.shape = _shape(arr)
        self.cols = False
        cpu = xp is np
        if cpu:
            arr = _one_entry_along_stride_0(arr, ntail)
        lead = _shape(arr)[:len(self.shape) - ntail]
        tail = self.shape[len(lead):]
        n = math.prod(lead)
        rows = arr.reshape((n,) + tail)
        # (a read-only or misaligned V would be another compiled signature of every kernel:
        # copied instead)
        if cpu and columns and ntail == 1 and not rows.flags.c_contiguous \
                and rows.T.flags.c_contiguous and rows.dtype == dtype \
                and rows.flags.writeable and rows.flags.aligned:
            self.data, self.cols = rows.T, True
        else:
            self.data = as_contiguous(xp, rows, dtype)
        self.idx = None
        if lead != batch:
            padded = (1,) * (len(batch) - len(lead)) + lead
            if cpu and n == 1:
                self.idx = np.zeros(1, np.int64)  # the kernels' one-entry map
            elif cpu and math.prod(batch) <= _CACHED_MAP_ENTRIES:
                self.idx = _cpu_index_map(padded, batch)
            else:
                index = xp.arange(n, dtype=np.int64).reshape(padded)
                self.idx = xp.ascontiguousarray(xp.broadcast_to(index, batch).reshape(-1))


def _one_entry_along_stride_0(arr: np.ndarray, ntail: int) -> np.ndarray:
    """``arr`` with each leading axis of stride 0 (a broadcast) cut to length 1: its distinct
    entries, which the index map then broadcasts again."""
    lead = arr.ndim - ntail
    if not any(arr.strides[i] == 0 and arr.shape[i] > 1 for i in range(lead)):
        return arr
    distinct = arr[tuple(slice(0, 1) if i < lead and arr.strides[i] == 0 else slice(None)
                         for i in range(arr.ndim))]
    # broadcast_to views are read-only, which would be another compiled signature of every
    # kernel: the distinct entries are copied (they are few), never the broadcast size
    return distinct if distinct.flags.writeable else np.array(distinct)


def _cols(**operands: _Operand) -> dict[str, bool]:
    """The ``<name>_cols=True`` keywords of the operands passed as columns (CPU kernels)."""
    return {f"{name}_cols": True for name, op in operands.items() if op.cols}


def _reduce(xp: Any, full: Any, batch: tuple[int, ...], op: _Operand, dtype: np.dtype) -> Any:
    """A per-entry gradient ``(B, *tail)`` as the gradient of the operand: summed over the
    dims the operand was broadcast along (in float64), in the operand's shape and ``dtype``."""
    tail = _shape(full)[1:]
    g = full.reshape(batch + tail)
    if op.idx is not None:
        g = reference.sum_to(xp, g, op.shape, dtype=_F64)
    return g.reshape(op.shape).astype(dtype, copy=False)


def _full_vectors(xp: Any, dz: Any, k: int) -> Any:
    """A cotangent broadcast along its vector axis too (0-d, or a last dim of 1 for k > 1,
    both valid cotangents), as a stride-0 view of k-vectors: the kernels read k values per
    entry (a (B, 1) dz was read past its end; a 0-d one failed to compile)."""
    if dz.ndim == 0 or dz.shape[-1] != k:
        return xp.broadcast_to(dz, _shape(dz)[:-1] + (k,))
    return dz


def _scalar_or_array(xp: Any, out: Any) -> Any:
    """A NumPy scalar for 0-d results (as NumPy reductions); CuPy keeps 0-d arrays."""
    return out[()] if (out.ndim == 0 and xp is np) else out


class _Call:
    """A validated call on x, y (and v): backend, operands, batch shape and dtypes."""

    def __init__(self, func: str, named: list[tuple[str, Any]], backend: str | None) -> None:
        self.func = func
        self.name = resolve_backend(func, tuple(v for _, v in named), backend)
        self.xp = array_module(self.name)

    def vectors(self, named: list[tuple[str, Any]]) -> None:
        arrays, self.k = vector_args(self.func, named, self.xp)
        self.arrays = dict(zip((n for n, _ in named), arrays, strict=True))
        self.batch = broadcast_batch(self.func,
                                     [(n, _shape(a)[:-1]) for n, a in self.arrays.items()])
        self._dtypes()

    def chain(self, xs: Any, ys: Any, v: Any) -> None:
        xs, ys, v = chain_args(self.func, xs, ys, v, self.xp)
        self.arrays = {"xs": xs, "ys": ys, "v": v}
        self.L, self.k = int(xs.shape[-2]), int(xs.shape[-1])
        self.batch = broadcast_batch(self.func, [("xs", _shape(xs)[:-2]), ("ys", _shape(ys)[:-2]),
                                                 ("v", _shape(v)[:-1])])
        self._dtypes()

    def device(self) -> Any:
        """The input's CuPy device as a context (results and index maps are made there), or
        a null context on the CPU."""
        if self.xp is np:
            return contextlib.nullcontext()
        return next(iter(self.arrays.values())).device

    def _dtypes(self) -> None:
        named = list(self.arrays.items())
        self.out_dtype = result_dtype(self.func, named)
        self.work = _work_dtype(self.func, named)
        self.B = math.prod(self.batch)

    @property
    def empty(self) -> bool:
        return self.B == 0 or self.k == 0

    def operand(self, name: str, ntail: int = 1, arr: Any = None,
                columns: bool = False) -> _Operand:
        return _Operand(self.xp, self.arrays[name] if arr is None else arr, self.batch, ntail,
                        self.work, columns)

    def in_dtype(self, name: str) -> np.dtype:
        return _checks.result_dtype(self.func, name, self.arrays[name].dtype)


# --------------------------------------------------------------------------------------------
# Public functions
# --------------------------------------------------------------------------------------------


def expm_rank1(x: Any, y: Any, *, backend: str | None = None) -> Any:
    """The matrix exponential ``exp(x yᵀ) = I + φ(s) x yᵀ`` (``s = yᵀx``), shape ``(..., k, k)``.

    ``x``, ``y``: ``(..., k)``, leading dims broadcast. Written in one pass at the write
    bandwidth (the k² outputs are the cost; use :func:`expm_rank1_apply` to multiply vectors
    without forming it). ``φ(s) = expm1(s)/s``, ``φ(0) = 1``: s = 0 with x, y ≠ 0 (e.g.
    x = e1, y = e2) gives ``I + x yᵀ``. For s > 709 (float64) / 88.7 (float32) the entries
    with ``x_i y_j ≠ 0`` are inf; entries with ``x_i y_j = 0`` stay ``δ_ij``. Every entry is
    within 8 ulp of its exact value: the diagonal takes the form ``e^s − φ(s)(s − x_i y_i)``
    where ``1 + φ(s) x_i y_i`` would cancel (``expm_rank1([1.], [-50.])`` is e^−50, not
    −2e-17), s is a compensated sum where needed (docs/formulas.md, "Accuracy").

    >>> E = fastops.expm_rank1(np.array([1.0, 0.0]), np.array([0.0, 2.0]))  # s = 0
    >>> E
    array([[1., 2.],
           [0., 1.]])
    """
    func = "expm_rank1"
    call = _Call(func, [("x", x), ("y", y)], backend)
    if call.name == "numpy":
        return reference.expm_rank1(x, y)
    call.vectors([("x", x), ("y", y)])
    xp, k = call.xp, call.k
    with call.device():
        if call.empty:
            eye = xp.eye(k, dtype=call.out_dtype)
            return xp.broadcast_to(eye, call.batch + (k, k)).copy()
        ox, oy = call.operand("x"), call.operand("y")
        E = _kernels(call.name).dense(ox.data, ox.idx, oy.data, oy.idx, call.B)
        return E.reshape(call.batch + (k, k)).astype(call.out_dtype, copy=False)


def expm_rank1_logdet(x: Any, y: Any, *, backend: str | None = None) -> Any:
    """``log det exp(x yᵀ) = s = yᵀx`` (exact: no determinant, no exp), shape ``(...)``.

    >>> float(fastops.expm_rank1_logdet(np.array([1.0, 2.0]), np.array([3.0, 0.5])))
    4.0
    """
    func = "expm_rank1_logdet"
    call = _Call(func, [("x", x), ("y", y)], backend)
    if call.name == "numpy":
        return reference.expm_rank1_logdet(x, y)
    call.vectors([("x", x), ("y", y)])
    xp = call.xp
    with call.device():
        if call.empty:
            return _scalar_or_array(xp, xp.zeros(call.batch, dtype=call.out_dtype))
        ox, oy = call.operand("x", columns=True), call.operand("y", columns=True)
        s = _kernels(call.name).logdet(ox.data, ox.idx, oy.data, oy.idx, call.B,
                                       **_cols(x=ox, y=oy))
        return _scalar_or_array(xp, s.reshape(call.batch).astype(call.out_dtype, copy=False))


def expm_rank1_apply(x: Any, y: Any, v: Any, *, inverse: bool = False,
                     backend: str | None = None) -> Any:
    """``E v = v + φ(s)(yᵀv) x`` with ``E = exp(x yᵀ)``, or with ``inverse=True``
    ``E⁻¹ v = v − φ(−s)(yᵀv) x``, without forming E: O(k) per vector.

    ``x``, ``y``, ``v``: ``(..., k)``; leading dims broadcast (one x, y for a batch of v, or
    one v for a batch of x, y); the result has the broadcast shape. For the columns of a
    (k, m) matrix V pass ``V.T`` (m, k): the CPU reads it in place (no copy). One pass per
    batch entry: the two dot products share the read of y. E is always invertible; its
    condition number grows like ``e^|s|``, so the inverse of a factor with very negative s
    (``φ(−s)`` overflows for s < −709 in float64) is inf. Where ``φ(s)`` overflows the
    coefficient ``φ(s)(yᵀv)`` is taken in log space.

    >>> x, y = np.array([1.0, 0.0]), np.array([0.0, 2.0])
    >>> fastops.expm_rank1_apply(x, y, np.array([1.0, 1.0]))
    array([3., 1.])
    >>> fastops.expm_rank1_apply(x, y, np.array([3.0, 1.0]), inverse=True)
    array([1., 1.])
    """
    func = "expm_rank1_apply"
    named = [("x", x), ("y", y), ("v", v)]
    call = _Call(func, named, backend)
    if call.name == "numpy":
        return reference.expm_rank1_apply(x, y, v, inverse=inverse)
    call.vectors(named)
    inverse = flag(func, "inverse", inverse)
    xp, k = call.xp, call.k
    with call.device():
        if call.empty:
            return xp.empty(call.batch + (k,), dtype=call.out_dtype)
        ox, oy, ov = (call.operand(n, columns=True) for n in ("x", "y", "v"))
        z = _kernels(call.name).apply(ox.data, ox.idx, oy.data, oy.idx, ov.data, ov.idx, call.B,
                                      inverse, **_cols(x=ox, y=oy, v=ov))
        return as_dtype(xp, z.reshape(call.batch + (k,)), call.out_dtype)


def expm_rank1_apply_backward(x: Any, y: Any, v: Any, dz: Any, *, inverse: bool = False,
                              backend: str | None = None) -> tuple[Any, Any, Any]:
    """``(dx, dy, dv)``: the vector-Jacobian product of :func:`expm_rank1_apply` with the
    cotangent ``dz`` of its result (formulas.md 2.4 b, c). With ``a = yᵀv``, ``b = xᵀdz``::

        dv = dz + φ(s) b y,   dx = φ(s) a dz + φ'(s) a b y,   dy = φ(s) b v + φ'(s) a b x

    (for ``inverse=True``, φ(s) → −φ(−s) and φ'(s) → φ'(−s)). ``dz`` must broadcast to the
    result's shape. Each gradient has the shape and dtype of its input: where an input was
    broadcast (one x, y for many v) its gradient is summed over the broadcast dims. φ' uses
    its Taylor series for |s| < 1. One fused pass per batch entry (three dot products,
    then the three gradients).

    >>> x, y, v = np.array([1.0, 0.0]), np.array([0.0, 2.0]), np.array([1.0, 1.0])
    >>> dx, dy, dv = fastops.expm_rank1_apply_backward(x, y, v, np.array([1.0, 0.0]))
    >>> dv  # Eᵀ dz
    array([1., 2.])
    """
    func = "expm_rank1_apply_backward"
    named = [("x", x), ("y", y), ("v", v)]
    call = _Call(func, named + [("dz", dz)], backend)
    if call.name == "numpy":
        return reference.expm_rank1_apply_backward(x, y, v, dz, inverse=inverse)
    call.vectors(named)
    xp, k = call.xp, call.k
    dz = _full_vectors(xp, cotangent(func, "dz", dz, call.batch + (k,), xp), k)
    inverse = flag(func, "inverse", inverse)
    with call.device():
        ops = [call.operand(n, columns=True) for n, _ in named]
        if call.empty:
            return tuple(xp.zeros(o.shape, dtype=call.in_dtype(n))
                         for o, (n, _) in zip(ops, named, strict=True))
        odz = call.operand("dz", arr=dz, columns=True)
        grads = _kernels(call.name).apply_backward(
            ops[0].data, ops[0].idx, ops[1].data, ops[1].idx, ops[2].data, ops[2].idx,
            odz.data, odz.idx, call.B, inverse,
            **_cols(x=ops[0], y=ops[1], v=ops[2], dz=odz))
        return tuple(_reduce(xp, g, call.batch, o, call.in_dtype(n))
                     for g, o, (n, _) in zip(grads, ops, named, strict=True))


def expm_rank1_chain_apply(xs: Any, ys: Any, v: Any, *, inverse: bool = False,
                           backend: str | None = None) -> tuple[Any, Any]:
    """``(z, logdet)`` of a chain of L rank-one exponentials: ``z = E_L ⋯ E_2 E_1 v`` with
    ``E_l = exp(xs[..., l, :] ys[..., l, :]ᵀ)`` and ``logdet = Σ_l s_l``; with
    ``inverse=True`` ``z = E_1⁻¹ ⋯ E_L⁻¹ v`` and ``logdet = −Σ_l s_l``, so that the inverse
    call undoes the forward one (an exactly invertible flow layer).

    ``xs``, ``ys``: ``(..., L, k)``; ``v``: ``(..., k)``; the leading dims of the three
    broadcast (typically ``xs``, ``ys`` of shape (L, k) for a batch of v of shape (B, k)).
    ``z`` has the broadcast shape + (k,), ``logdet`` the broadcast shape (one value per
    vector). O(L·k) per vector: the vector stays in a local buffer across the L factors, so v
    is read once and z written once whatever L.

    >>> xs = np.array([[1.0, 0.0], [0.0, 1.0]])
    >>> ys = np.array([[0.0, 1.0], [1.0, 0.0]])
    >>> z, logdet = fastops.expm_rank1_chain_apply(xs, ys, np.array([0.0, 1.0]))
    >>> z, float(logdet)
    (array([1., 2.]), 0.0)
    >>> fastops.expm_rank1_chain_apply(xs, ys, z, inverse=True)[0]
    array([0., 1.])
    """
    func = "expm_rank1_chain_apply"
    call = _Call(func, [("xs", xs), ("ys", ys), ("v", v)], backend)
    if call.name == "numpy":
        return reference.expm_rank1_chain_apply(xs, ys, v, inverse=inverse)
    call.chain(xs, ys, v)
    inverse = flag(func, "inverse", inverse)
    xp, k = call.xp, call.k
    with call.device():
        if call.empty:
            z = xp.broadcast_to(call.arrays["v"], call.batch + (k,)).astype(call.out_dtype)
            return z, _scalar_or_array(xp, xp.zeros(call.batch, dtype=call.out_dtype))
        oxs, oys = call.operand("xs", 2), call.operand("ys", 2)
        ov = call.operand("v", columns=True)
        z, ld = _kernels(call.name).chain(oxs.data, oxs.idx, oys.data, oys.idx, ov.data, ov.idx,
                                          call.B, inverse, **_cols(v=ov))
        return (z.reshape(call.batch + (k,)).astype(call.out_dtype, copy=False),
                _scalar_or_array(xp, ld.reshape(call.batch).astype(call.out_dtype, copy=False)))


def expm_rank1_chain_apply_backward(xs: Any, ys: Any, v: Any, dz: Any, dlogdet: Any, *,
                                    inverse: bool = False, backend: str | None = None
                                    ) -> tuple[Any, Any, Any]:
    """``(dxs, dys, dv)``: the vector-Jacobian product of :func:`expm_rank1_chain_apply` with
    the cotangents ``dz`` of z and ``dlogdet`` of logdet (``None`` for 0).

    ``dz`` must broadcast to z's shape and ``dlogdet`` to logdet's. Each gradient has the
    shape and dtype of its input (summed over broadcast dims: shared xs, ys of shape (L, k)
    get the sum over the batch). One pass per vector: the forward is recomputed, keeping each
    factor's input (a per-entry buffer of L·k values), then the factors are walked back with
    formulas.md 2.4 (b)-(d).

    >>> xs = np.array([[1.0, 0.0]]); ys = np.array([[0.0, 2.0]])
    >>> dxs, dys, dv = fastops.expm_rank1_chain_apply_backward(
    ...     xs, ys, np.array([1.0, 1.0]), np.array([1.0, 0.0]), 1.0)
    >>> dv, dxs  # s = 0, yᵀv = 2: dxs = 2 dz + (φ'(0)·2·1 + dlogdet) ys
    (array([1., 2.]), array([[2., 4.]]))
    """
    func = "expm_rank1_chain_apply_backward"
    call = _Call(func, [("xs", xs), ("ys", ys), ("v", v), ("dz", dz), ("dlogdet", dlogdet)],
                 backend)
    if call.name == "numpy":
        return reference.expm_rank1_chain_apply_backward(xs, ys, v, dz, dlogdet, inverse=inverse)
    call.chain(xs, ys, v)
    xp, k = call.xp, call.k
    dz = _full_vectors(xp, cotangent(func, "dz", dz, call.batch + (k,), xp), k)
    dl = None if dlogdet is None else cotangent(func, "dlogdet", dlogdet, call.batch, xp)
    inverse = flag(func, "inverse", inverse)
    names = (("xs", 2), ("ys", 2), ("v", 1))
    with call.device():
        ops = [call.operand(n, t, columns=n == "v") for n, t in names]
        if call.empty:
            return tuple(xp.zeros(o.shape, dtype=call.in_dtype(n))
                         for o, (n, _) in zip(ops, names, strict=True))
        odz = call.operand("dz", arr=dz, columns=True)
        dl_full = None
        if dl is not None:
            dl_full = xp.ascontiguousarray(xp.broadcast_to(dl.astype(_F64), call.batch).reshape(-1))
        grads = _kernels(call.name).chain_backward(
            ops[0].data, ops[0].idx, ops[1].data, ops[1].idx, ops[2].data, ops[2].idx,
            odz.data, odz.idx, dl_full, call.B, inverse, **_cols(v=ops[2], dz=odz))
        return tuple(_reduce(xp, g, call.batch, o, call.in_dtype(n))
                     for g, o, (n, _) in zip(grads, ops, names, strict=True))
