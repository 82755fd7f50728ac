"""NumPy reference of the rank_one family: the executable specification.

A direct transcription of ../shared/formulas.md section 2, clear rather than fast: everything is
computed in float64 with NumPy broadcasting, and results are cast to the result dtype (float64
for bool/int input, else the promoted input dtype; gradients in the dtype of their input).
Validation is shared with the public API (``fastops.rank_one``), so the reference raises
exactly the same errors.

With ``s = yᵀx`` and ``φ(s) = expm1(s)/s`` (``φ(0) = 1``)::

    E = exp(x yᵀ) = I + φ(s) x yᵀ          E⁻¹ = exp(−x yᵀ) = I − φ(−s) x yᵀ
    E v = v + φ(s) (yᵀv) x                 log det E = s

Conventions that make special values well defined (semantics.md, "rank_one"):

- a product of the coefficient with an exact zero is zero: ``E_ij = δ_ij`` where
  ``x_i y_j == 0`` even when ``φ(s)`` overflowed, and ``(E v)_i = v_i`` where ``x_i == 0`` or
  where ``yᵀv == 0`` (unless ``φ(s)`` is NaN, so that NaN input gives NaN);
- when ``φ(s)`` overflows (s > 709.78) the coefficient ``φ(s)·(yᵀv)`` of an apply is taken in
  log space, ``log φ(s) = s − log s + log1p(−e^{−s})``, so it stays finite where it is;
- scalars (s, the dot products, φ, φ') are float64 whatever the input dtype.

Accuracy (formulas.md 2.5): the plain formulas lose the small entries to cancellation, e.g.
``E = 1 + φ(s)·s`` for k = 1 is −2.1e-17 at s = −50 where e^−50 = 1.9e-22. So

- s is a compensated dot product (:func:`dot2`: as if summed in twice float64's precision),
  and φ(s), e^s take its low part to first order: at s ≈ 700 a plain float64 s is off by
  hundreds of ulp of 1, which e^s and φ(s) turn into a relative error of that size;
- a diagonal entry is ``E_ii = 1 + φ(s) x_i y_i`` or, the same number, ``e^s − φ(s) r_i``
  with ``r_i = s − x_i y_i`` (in double-double), whichever has the smaller rounding bound
  (1 + |φ x_i y_i| against e^s + φ |r_i|);
- an applied entry is ``v_i + c x_i`` or, the same number, ``e^t v_i + σ φ(t) τ_i`` with
  ``τ_i = x_i (yᵀv) − s v_i = Σ_l y_l (x_i v_l − x_l v_i)`` (each 2x2 determinant exact to
  an ulp), where that form's bound is smaller: v along x (an eigenvector, E v = e^s v) and
  k = 1 are the cases it exists for;
- a backward entry (dx, dy, dv) with t < −1 takes, element by element where its bound is the
  smaller, the forms through e^t and the determinants τ, τ' (:func:`_apply_vjp`), which do
  not cancel where the direct forms do (k = 1: dv = w e^s, not w (1 + φ(s) s));
- φ'(s) is its Taylor series for |s| < 1 (:data:`DPHI_TAYLOR_BELOW`): the direct formula
  loses log2(2/|s|) bits there.

So every entry of E is within a few ulp of its exact value (tests against mpmath), and an
applied entry within a few ulp of max(|result|, the smaller form's bound).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import _checks

_F64 = np.float64

#: |s| below which φ'(s) is its Taylor series Σ_{n≥1} n s^(n−1)/(n+1)!, summed to
#: :data:`DPHI_TERMS` terms (the last term below 2^-53 of the sum for |s| < 1). Above 1 the
#: direct formula (e^s − φ(s))/s loses at most 2 bits (its worst case, s = −1); at the former
#: threshold 1e-2 it lost 7.
DPHI_TAYLOR_BELOW = 1.0
DPHI_TERMS = 18
#: Taylor coefficients of φ': n/(n+1)! for n = 1 .. DPHI_TERMS.
DPHI_COEFFS = tuple(n / float(np.prod(np.arange(1, n + 2, dtype=np.float64)))
                    for n in range(1, DPHI_TERMS + 1))


# --------------------------------------------------------------------------------------------
# φ, φ' and the apply coefficient
# --------------------------------------------------------------------------------------------


def phi(s: Any) -> Any:
    """φ(s) = expm1(s)/s elementwise (float64), exactly 1 at s = 0; never (exp(s) − 1)/s."""
    s = np.asarray(s, dtype=_F64)
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        out = np.expm1(s) / np.where(s == 0.0, 1.0, s)
    return np.where(s == 0.0, 1.0, out)


def dphi(s: Any) -> Any:
    """φ'(s) = (e^s − φ(s))/s, by its Taylor series 1/2 + s/3 + s²/8 + s³/30 + ... (
    :data:`DPHI_COEFFS`) for |s| < 1 (the direct formula cancels there)."""
    s = np.asarray(s, dtype=_F64)
    taylor = np.zeros_like(s)
    for c in reversed(DPHI_COEFFS):
        taylor = c + s * taylor
    small = np.abs(s) < DPHI_TAYLOR_BELOW
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        direct = (np.exp(s) - phi(s)) / np.where(small, 1.0, s)
    return np.where(small, taylor, direct)


# --------------------------------------------------------------------------------------------
# Error-free transformations (NumPy has no fused multiply-add: Dekker's product)
# --------------------------------------------------------------------------------------------

_SPLIT = 134217729.0  # 2^27 + 1, Veltkamp's splitting constant for float64


def two_sum(a: Any, b: Any) -> tuple[Any, Any]:
    """(s, e): s = fl(a + b), s + e = a + b exactly (Knuth); e = 0 where s is not finite."""
    with np.errstate(invalid="ignore", over="ignore"):
        s = a + b
        bb = s - a
        e = (a - (s - bb)) + (b - bb)
    return s, np.where(np.isfinite(e), e, 0.0)


def two_prod(a: Any, b: Any) -> tuple[Any, Any]:
    """(p, e): p = fl(a·b), p + e = a·b exactly (Dekker; barring underflow); e = 0 where p is
    not finite or a factor is too large to split."""
    with np.errstate(invalid="ignore", over="ignore"):
        p = a * b
        ca, cb = _SPLIT * a, _SPLIT * b
        ah, bh = ca - (ca - a), cb - (cb - b)
        al, bl = a - ah, b - bh
        e = ((ah * bh - p) + ah * bl + al * bh) + al * bl
    return p, np.where(np.isfinite(e), e, 0.0)


def dot2(X: Any, Y: Any) -> tuple[Any, Any]:
    """(hi, lo): Σ_j X_j Y_j over the last axis as hi + lo, to about twice float64's
    precision; hi is the sum rounded to float64.

    Vectorised over every axis (a TwoSum loop over j cost seconds at k = 4100): each exact
    product p_j + e_j (:func:`two_prod`) has p_j split on the grid g = 2^(e − 61), where
    Σ|p_j| < 2^e, into its multiple of g, summed as int64 (exact in any order: Σ|q_j| < 2^61),
    and the rest, summed in float64 with the e_j (each below 2g: that sum's error is below
    2^-100 Σ|p_j|); the CPU kernels do the same (fastops._exact.grid_dot; Rump, Ogita &
    Oishi, "Accurate floating-point summation part I", SIAM J. Sci. Comput. 31, 2008). Where
    Σ|p_j| is not finite, or below 2^-900 (where an absolute error of s cannot matter), the
    plain sum with lo = 0."""
    X, Y = np.broadcast_arrays(np.asarray(X, _F64), np.asarray(Y, _F64))
    p, e = two_prod(X, Y)
    with np.errstate(invalid="ignore", over="ignore"):
        m = np.abs(p).sum(axis=-1)
        plain = p.sum(axis=-1)
    usable = np.isfinite(m) & (m >= 2.0**-900)
    e_m = np.frexp(np.where(usable, m, 1.0))[1]
    inv = np.ldexp(1.0, -e_m)[..., None]
    g = np.ldexp(1.0, e_m - 61)
    q = np.trunc(np.where(usable[..., None], p, 0.0) * inv * 2.0**61)
    total = q.astype(np.int64).sum(axis=-1)
    with np.errstate(invalid="ignore", over="ignore"):
        rest = (np.where(usable[..., None], p - q * g[..., None], 0.0) + e).sum(axis=-1)
        hi = total.astype(_F64)
        rest = rest + (total - hi.astype(np.int64)).astype(_F64) * g
        hi, lo = two_sum(hi * g, rest)
    return np.where(usable, hi, plain), np.where(usable, lo, 0.0)


def phi2(hi: Any, lo: Any) -> Any:
    """φ(hi + lo) to first order in lo (|lo| <= ulp(hi)/2, so the second order is below
    2^-100 of φ)."""
    ph = phi(hi)
    with np.errstate(invalid="ignore", over="ignore"):
        return np.where((lo != 0.0) & np.isfinite(ph), ph + dphi(hi) * lo, ph)


def exp2(hi: Any, lo: Any) -> Any:
    """e^(hi + lo) = e^hi (1 + lo) to first order."""
    with np.errstate(invalid="ignore", over="ignore"):
        e = np.exp(hi)
        return np.where((lo != 0.0) & np.isfinite(e), e + e * lo, e)


def det2(a: Any, b: Any, c: Any, d: Any) -> Any:
    """a·d − b·c within an ulp or two of its own magnitude: both products exact (two_prod),
    their difference rounded once."""
    p, ep = two_prod(a, d)
    q, eq = two_prod(b, c)
    hi, e = two_sum(p, -q)
    with np.errstate(invalid="ignore", over="ignore"):
        return hi + (e + (ep - eq))


def dphi2(hi: Any, lo: Any) -> Any:
    """φ'(hi + lo): the Taylor series (which does not need lo) below |s| < 1, else
    (e^s − φ(s))/s with e^s and φ(s) to first order in lo."""
    hi = np.asarray(hi, _F64)
    small = np.abs(hi) < DPHI_TAYLOR_BELOW
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        direct = (exp2(hi, lo) - phi2(hi, lo)) / np.where(small, 1.0, hi)
    return np.where(small, dphi(hi), direct)


def factor(s: Any, inverse: bool, s_lo: Any = 0.0) -> tuple[Any, Any]:
    """(g(s), g'(s)) at s = s + s_lo: the coefficient function of E (``g = φ``) or of E⁻¹
    (``g(s) = −φ(−s)``, ``g'(s) = φ'(−s)``)."""
    s, s_lo = np.asarray(s, _F64), np.asarray(s_lo, _F64)
    if inverse:
        return -phi2(-s, -s_lo), dphi2(-s, -s_lo)
    return phi2(s, s_lo), dphi2(s, s_lo)


def coef(s: Any, a: Any, inverse: bool, s_lo: Any = 0.0) -> Any:
    """``g(s)·a``, the multiple of x an apply adds to v (``a = yᵀv``, s = s + s_lo): 0 for
    a == 0 (unless g(s) is NaN), and in log space where g(s) overflowed."""
    s = np.asarray(s, _F64)
    a = np.asarray(a, _F64)
    t = -s if inverse else s
    sign = -1.0 if inverse else 1.0
    ph = phi2(t, -np.asarray(s_lo, _F64) if inverse else s_lo)
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        c = sign * ph * a
        c = np.where((a == 0.0) & ~np.isnan(ph), 0.0, c)
        big = np.isinf(ph) & np.isfinite(t) & np.isfinite(a) & (a != 0.0)
        tb = np.where(big, t, 1.0)
        log_c = tb - np.log(tb) + np.log1p(-np.exp(-tb)) + np.log(np.where(big, np.abs(a), 1.0))
        c = np.where(big, sign * np.sign(a) * np.exp(log_c), c)
    return c


def scaled(c: Any, x: Any) -> Any:
    """``c·x`` with ``c·0 = 0`` even for infinite c (the product with an exact zero)."""
    with np.errstate(invalid="ignore", over="ignore"):
        return np.where(x != 0.0, c * x, 0.0)


# --------------------------------------------------------------------------------------------
# Argument checks (shared with the public API)
# --------------------------------------------------------------------------------------------


def _shape(a: Any) -> tuple[int, ...]:
    return tuple(int(n) for n in a.shape)


def broadcast_batch(func: str, named: list[tuple[str, tuple[int, ...]]]) -> tuple[int, ...]:
    """The broadcast of the batch shapes ``named`` (name, batch shape); ValueError naming the
    arguments and their shapes when they do not broadcast."""
    try:
        return tuple(np.broadcast_shapes(*(shape for _, shape in named)))
    except ValueError:
        listed = ", ".join(f"{name} {shape}" for name, shape in named)
        raise ValueError(
            f"{func}: the leading (batch) dims must broadcast; got {listed}"
        ) from None


def vector_args(func: str, named: list[tuple[str, Any]], xp: Any = np) -> tuple[list, int]:
    """Check ``(name, value)`` pairs that are stacks of k-vectors ``(..., k)``: real dtype, at
    least one dimension, one k for all. Returns (the arrays of module ``xp``, k)."""
    arrays = []
    for name, value in named:
        arr = _checks.real_array(func, name, value, xp)
        if arr.ndim < 1:
            raise ValueError(
                f"{func}: {name} must have at least 1 dimension, shape (..., k); got shape ()"
            )
        arrays.append(arr)
    first_name, first = named[0][0], arrays[0]
    for (name, _), arr in zip(named[1:], arrays[1:], strict=True):
        if arr.shape[-1] != first.shape[-1]:
            raise ValueError(
                f"{func}: {first_name} and {name} must have the same last dimension k; got "
                f"{first_name} of shape {_shape(first)} and {name} of shape {_shape(arr)}"
            )
    return arrays, int(first.shape[-1])


def chain_args(func: str, xs: Any, ys: Any, v: Any, xp: Any = np) -> tuple[Any, Any, Any]:
    """Check a chain's factors ``xs``, ``ys`` (..., L, k) and its vectors ``v`` (..., k)."""
    arrays = []
    for name, value in (("xs", xs), ("ys", ys)):
        arr = _checks.real_array(func, name, value, xp)
        if arr.ndim < 2:
            raise ValueError(
                f"{func}: {name} must have at least 2 dimensions, shape (..., L, k); got shape "
                f"{_shape(arr)}"
            )
        arrays.append(arr)
    xs, ys = arrays
    if xs.shape[-2:] != ys.shape[-2:]:
        raise ValueError(
            f"{func}: xs and ys must have the same last two dimensions (L, k); got xs of shape "
            f"{_shape(xs)} and ys of shape {_shape(ys)}"
        )
    (v,), _ = vector_args(func, [("v", v)], xp)
    if v.shape[-1] != xs.shape[-1]:
        raise ValueError(
            f"{func}: v must have shape (..., k) with the k of xs; got xs of shape {_shape(xs)} "
            f"and v of shape {_shape(v)}"
        )
    return xs, ys, v


def cotangent(func: str, name: str, value: Any, shape: tuple[int, ...], xp: Any = np) -> Any:
    """A cotangent (``dz``, ``dlogdet``) that must broadcast to the result's ``shape``."""
    arr = _checks.real_array(func, name, value, xp)
    try:
        ok = np.broadcast_shapes(_shape(arr), shape) == tuple(shape)
    except ValueError:
        ok = False
    if not ok:
        raise ValueError(
            f"{func}: {name} must broadcast to the result's shape {tuple(shape)}; got {name} of "
            f"shape {_shape(arr)}"
        )
    return arr


def flag(func: str, name: str, value: Any) -> bool:
    """A bool argument (``inverse``): TypeError for anything but True / False."""
    if not isinstance(value, bool | np.bool_):
        raise TypeError(f"{func}: {name} must be True or False; got {value!r}")
    return bool(value)


def result_dtype(func: str, named: list[tuple[str, Any]]) -> np.dtype:
    """The promoted result dtype of the arrays ``named``: the one rule of every family
    (fastops._checks.promoted_dtype: NumPy's promotion, bool/int results as float64)."""
    return _checks.promoted_dtype(func, named)


def sum_to(xp: Any, g: Any, shape: tuple[int, ...], dtype: Any = None) -> Any:
    """Sum ``g`` (a broadcast result) down to ``shape``: the gradient of a broadcast input.

    ``dtype``: the accumulator (the sums' dtype), e.g. float64 for a float32 ``g``, without a
    converted copy of ``g`` (the wrapper's astype copy was 2x the per-entry gradient)."""
    extra = g.ndim - len(shape)
    if extra > 0:
        g = g.sum(axis=tuple(range(extra)), dtype=dtype)
    axes = tuple(i for i, (n, m) in enumerate(zip(shape, g.shape, strict=True))
                 if n == 1 and m != 1)
    if axes:
        g = g.sum(axis=axes, keepdims=True, dtype=dtype)
    return g


def _finish(value: Any, dtype: np.dtype) -> Any:
    out = np.asarray(value).astype(dtype)
    return out[()] if out.ndim == 0 else out


def _dot(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", over="ignore"):
        return np.sum(a * b, axis=-1)


# --------------------------------------------------------------------------------------------
# The public functions, in float64
# --------------------------------------------------------------------------------------------


def expm_rank1(x: Any, y: Any) -> Any:
    """E = I + φ(s) x yᵀ, shape (..., k, k) (``E_ij = δ_ij`` where ``x_i y_j == 0``)."""
    func = "expm_rank1"
    (x, y), k = vector_args(func, [("x", x), ("y", y)])
    broadcast_batch(func, [("x", _shape(x)[:-1]), ("y", _shape(y)[:-1])])
    dtype = result_dtype(func, [("x", x), ("y", y)])
    X, Y = np.broadcast_arrays(x.astype(_F64), y.astype(_F64))
    s_hi, s_lo = dot2(X, Y)
    ph = phi2(s_hi, s_lo)
    with np.errstate(invalid="ignore", over="ignore"):
        P = X[..., :, None] * Y[..., None, :]
    E = np.eye(k) + scaled(ph[..., None, None], P)
    # the diagonal: 1 + φ p_i, or e^s − φ r_i (r_i = s − p_i in double-double), by the bounds
    p, e = two_prod(X, Y)
    r_hi, r_e = two_sum(s_hi[..., None], -p)
    phk = ph[..., None]
    with np.errstate(invalid="ignore", over="ignore"):
        r = r_hi + (r_e + (s_lo[..., None] - e))
        es = exp2(s_hi, s_lo)[..., None]
        other = es - phk * r
        better = (es + phk * np.abs(r) < 1.0 + np.abs(phk * p)) & (p != 0.0)
    i = np.arange(k)
    E[..., i, i] = np.where(better, other, E[..., i, i])
    return E.astype(dtype)


def expm_rank1_logdet(x: Any, y: Any) -> Any:
    """log det exp(x yᵀ) = s = yᵀx, shape (...)."""
    func = "expm_rank1_logdet"
    (x, y), _ = vector_args(func, [("x", x), ("y", y)])
    broadcast_batch(func, [("x", _shape(x)[:-1]), ("y", _shape(y)[:-1])])
    dtype = result_dtype(func, [("x", x), ("y", y)])
    return _finish(dot2(x.astype(_F64), y.astype(_F64))[0], dtype)


#: An entry of E v is rewritten in the form e^t v_i + σ φ(t) τ_i (see the module docstring)
#: where that form's terms are, norm-wise, below 1/8 of those of v_i + c x_i (3 bits at
#: stake); each element then takes the form with the smaller rounding bound.
EIGEN_FORM_GAIN = 8.0
#: The backward's eigen forms are looked at only for t = ±s below this: they need
#: |e^t| < 1 to pay (with τ ≈ 0 their terms are e^t against 1 + |e^t − 1|, a ratio of 8 at
#: e^t = 2/9, t = −1.5), and they divide by t.
EIGEN_FORM_T_BELOW = -1.0


def _norm(u: Any) -> Any:
    """The Euclidean norm over the last axis."""
    return np.sqrt((u * u).sum(axis=-1))


def _apply64(X: Any, Y: Any, V: Any, inverse: bool) -> Any:
    """E v (or E⁻¹ v) at broadcast float64 operands, each entry in the better of its two
    forms (module docstring)."""
    X, Y, V = np.broadcast_arrays(X, Y, V)
    s_hi, s_lo = dot2(X, Y)
    a = dot2(Y, V)[0]
    c = coef(s_hi, a, inverse, s_lo)[..., None]
    z = V + scaled(c, X)
    t, t_lo, sign = (-s_hi, -s_lo, -1.0) if inverse else (s_hi, s_lo, 1.0)
    with np.errstate(invalid="ignore", over="ignore"):
        es, ph = exp2(t, t_lo)[..., None], np.abs(phi2(t, t_lo))[..., None]
        bound = np.abs(V) + np.abs(scaled(c, X))
        # which entries to rewrite: norm-wise, the eigen form's terms e^t|v| + |φ||τ| below
        # 1/EIGEN_FORM_GAIN of |v| + |c||x| (the kernels' rule, cpu.py _eigen_form_pays)
        estimate = es[..., 0] * _norm(V) + ph[..., 0] * _norm(X * a[..., None]
                                                               - s_hi[..., None] * V)
        flagged = ((EIGEN_FORM_GAIN * estimate < _norm(V) + np.abs(c[..., 0]) * _norm(X))
                   & np.isfinite(c[..., 0]) & np.isfinite(ph[..., 0]))
    if not flagged.any():
        return z
    z = z.copy()
    f = flagged  # a boolean index: (n, k) operands below, also for one unbatched entry
    Xf, Yf, Vf = X[f], Y[f], V[f]
    # τ_i = Σ_l y_l (x_i v_l − x_l v_i), each determinant to an ulp
    D = det2(Xf[:, :, None], Xf[:, None, :], Vf[:, :, None], Vf[:, None, :])
    with np.errstate(invalid="ignore", over="ignore"):
        tau = (D * Yf[:, None, :]).sum(axis=-1)
        tau_bound = np.abs(D * Yf[:, None, :]).sum(axis=-1)
        esf, phf = es[f], phi2(t, t_lo)[f][:, None]
        other = esf * Vf + sign * phf * tau
        better = esf * np.abs(Vf) + np.abs(phf) * tau_bound < bound[f]
    z[f] = np.where(better, other, z[f])
    return z


def expm_rank1_apply(x: Any, y: Any, v: Any, *, inverse: bool = False) -> Any:
    """E v = v + φ(s)(yᵀv) x, or E⁻¹ v = v − φ(−s)(yᵀv) x; leading dims broadcast."""
    func = "expm_rank1_apply"
    (x, y, v), _ = vector_args(func, [("x", x), ("y", y), ("v", v)])
    broadcast_batch(func, [(n, _shape(a)[:-1]) for n, a in (("x", x), ("y", y), ("v", v))])
    inverse = flag(func, "inverse", inverse)
    dtype = result_dtype(func, [("x", x), ("y", y), ("v", v)])
    z = _apply64(x.astype(_F64), y.astype(_F64), v.astype(_F64), inverse)
    return z.astype(dtype)


def _apply_vjp(X: Any, Y: Any, V: Any, W: Any, inverse: bool) -> tuple[Any, Any, Any]:
    """(dx, dy, dv) of one factor at broadcast float64 operands (formulas.md 2.4 b, c), each
    entry in the better of its two forms (module docstring, "Accuracy"): with t = ±s,
    σ = ±1 (forward / inverse), a = yᵀv, b = xᵀw (w = dz) the direct forms

        dx = g a w + g' a b y,   dy = g b v + g' a b x,   dv = w + g b y

    cancel where t ≪ 0 (for k = 1, dv = w e^s is computed as w (1 + φ(s) s)); they are the
    same numbers as, from g + s g' = σ e^t and 1 + g s = e^t,

        dx = (a/t)(e^t b y − φ(t) τ'),   dy = (b/t)(e^t a x − φ(t) τ),   dv = e^t w + σ φ(t) τ'

    with τ_i = Σ_l y_l (x_i v_l − x_l v_i) (as the apply's) and τ'_i = Σ_l x_l (y_i w_l −
    y_l w_i), each 2x2 determinant to an ulp; an element takes the second form where its
    rounding bound is the smaller, looked at for the entries whose norm-wise estimate says it
    may pay (as :func:`_apply64`)."""
    X, Y, V, W = np.broadcast_arrays(X, Y, V, W)
    # a and b compensated too: each gradient is proportional to one of them
    (s, s_lo), a, b = dot2(X, Y), dot2(Y, V)[0], dot2(X, W)[0]
    g, gp = factor(s, inverse, s_lo)
    with np.errstate(invalid="ignore", over="ignore"):
        ga, gb, gpab = (g * a)[..., None], (g * b)[..., None], (gp * a * b)[..., None]
        dx, dy, dv = ga * W + gpab * Y, gb * V + gpab * X, W + gb * Y
    t, t_lo, sign = (-s, -s_lo, -1.0) if inverse else (s, s_lo, 1.0)
    with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
        es, ph = exp2(t, t_lo), phi2(t, t_lo)
        nx, ny, nv, nw = (_norm(u) for u in (X, Y, V, W))
        tau_n = np.sqrt(np.maximum(a * a * nx**2 - 2 * a * s * (X * V).sum(-1)
                                   + s * s * nv**2, 0.0))
        taw_n = np.sqrt(np.maximum(b * b * ny**2 - 2 * b * s * (Y * W).sum(-1)
                                   + s * s * nw**2, 0.0))
        ga0, gb0, gpab0 = ga[..., 0], gb[..., 0], gpab[..., 0]
        pays = ((EIGEN_FORM_GAIN * (es * nw + ph * taw_n) < nw + np.abs(gb0) * ny)
                | (EIGEN_FORM_GAIN * np.abs(a / t) * (es * np.abs(b) * ny + ph * taw_n)
                   < np.abs(ga0) * nw + np.abs(gpab0) * ny)
                | (EIGEN_FORM_GAIN * np.abs(b / t) * (es * np.abs(a) * nx + ph * tau_n)
                   < np.abs(gb0) * nv + np.abs(gpab0) * nx))
        flagged = (pays & (t < EIGEN_FORM_T_BELOW) & np.isfinite(ph) & np.isfinite(gp)
                   & np.isfinite(a) & np.isfinite(b))
    if not flagged.any():
        return dx, dy, dv
    dx, dy, dv = dx.copy(), dy.copy(), dv.copy()
    f = flagged
    Xf, Yf, Vf, Wf = X[f], Y[f], V[f], W[f]
    D = det2(Xf[:, :, None], Xf[:, None, :], Vf[:, :, None], Vf[:, None, :])  # x_i v_l − x_l v_i
    Dw = det2(Yf[:, :, None], Yf[:, None, :], Wf[:, :, None], Wf[:, None, :])  # y_i w_l − y_l w_i
    with np.errstate(invalid="ignore", over="ignore"):
        tau, tau_b = (D * Yf[:, None, :]).sum(-1), np.abs(D * Yf[:, None, :]).sum(-1)
        taw, taw_b = (Dw * Xf[:, None, :]).sum(-1), np.abs(Dw * Xf[:, None, :]).sum(-1)
        esf, phf, tf = es[f][:, None], ph[f][:, None], t[f][:, None]
        af, bf = a[f][:, None], b[f][:, None]
        forms = (
            (dx, (af / tf) * (esf * bf * Yf - phf * taw),
             np.abs(af / tf) * (esf * np.abs(bf * Yf) + phf * taw_b),
             np.abs(ga[f] * Wf) + np.abs(gpab[f] * Yf)),
            (dy, (bf / tf) * (esf * af * Xf - phf * tau),
             np.abs(bf / tf) * (esf * np.abs(af * Xf) + phf * tau_b),
             np.abs(gb[f] * Vf) + np.abs(gpab[f] * Xf)),
            (dv, esf * Wf + sign * phf * taw, esf * np.abs(Wf) + phf * taw_b,
             np.abs(Wf) + np.abs(gb[f] * Yf)))
        for out, other, other_bound, direct_bound in forms:
            out[f] = np.where(other_bound < direct_bound, other, out[f])
    return dx, dy, dv


def expm_rank1_apply_backward(x: Any, y: Any, v: Any, dz: Any, *, inverse: bool = False
                              ) -> tuple[Any, Any, Any]:
    """(dx, dy, dv), the vector-Jacobian product of :func:`expm_rank1_apply` with ``dz``;
    each gradient has its input's shape (summed over broadcast dims) and dtype."""
    func = "expm_rank1_apply_backward"
    (x, y, v), _ = vector_args(func, [("x", x), ("y", y), ("v", v)])
    batch = broadcast_batch(func, [(n, _shape(a)[:-1])
                                   for n, a in (("x", x), ("y", y), ("v", v))])
    k = int(x.shape[-1])
    dz = cotangent(func, "dz", dz, batch + (k,))
    inverse = flag(func, "inverse", inverse)
    full = batch + (k,)
    X, Y, V = (np.broadcast_to(a.astype(_F64), full) for a in (x, y, v))
    W = np.broadcast_to(dz.astype(_F64), full)
    grads = _apply_vjp(X, Y, V, W, inverse)
    return tuple(_finish(sum_to(np, g, _shape(a)), _checks.result_dtype(func, n, a.dtype))
                 for g, (n, a) in zip(grads, (("x", x), ("y", y), ("v", v)), strict=True))


def _chain_order(L: int, inverse: bool) -> range:
    """The factors in the order they are applied: E_1 first, or E_L⁻¹ first for the inverse."""
    return range(L - 1, -1, -1) if inverse else range(L)


def _chain_operands(func: str, xs: Any, ys: Any, v: Any) -> tuple[Any, Any, Any, tuple]:
    xs, ys, v = chain_args(func, xs, ys, v)
    batch = broadcast_batch(func, [("xs", _shape(xs)[:-2]), ("ys", _shape(ys)[:-2]),
                                   ("v", _shape(v)[:-1])])
    return xs, ys, v, batch


def expm_rank1_chain_apply(xs: Any, ys: Any, v: Any, *, inverse: bool = False
                           ) -> tuple[Any, Any]:
    """(z, logdet): z = E_L ⋯ E_1 v (inverse: E_1⁻¹ ⋯ E_L⁻¹ v), logdet = ±Σ_l s_l."""
    func = "expm_rank1_chain_apply"
    xs, ys, v, batch = _chain_operands(func, xs, ys, v)
    inverse = flag(func, "inverse", inverse)
    dtype = result_dtype(func, [("xs", xs), ("ys", ys), ("v", v)])
    L, k = int(xs.shape[-2]), int(xs.shape[-1])
    z = np.broadcast_to(v.astype(_F64), batch + (k,))
    for layer in _chain_order(L, inverse):
        X, Y = xs[..., layer, :].astype(_F64), ys[..., layer, :].astype(_F64)
        z = _apply64(X, Y, z, inverse)
    # Σ_l s_l as one compensated sum of the L·k products, rounded once: a sum of the rounded
    # s_l would keep each one's error (s_l of ±hundreds cancelling to tens: many ulp)
    ld = dot2(xs.astype(_F64).reshape(xs.shape[:-2] + (L * k,)),
              ys.astype(_F64).reshape(ys.shape[:-2] + (L * k,)))[0]
    ld = np.broadcast_to(ld, batch)
    return z.astype(dtype), _finish(-ld if inverse else ld, dtype)


def expm_rank1_chain_apply_backward(xs: Any, ys: Any, v: Any, dz: Any, dlogdet: Any, *,
                                    inverse: bool = False) -> tuple[Any, Any, Any]:
    """(dxs, dys, dv): the VJP of :func:`expm_rank1_chain_apply` with cotangents ``dz`` of z
    and ``dlogdet`` of logdet (None = 0); each gradient has its input's shape and dtype."""
    func = "expm_rank1_chain_apply_backward"
    xs, ys, v, batch = _chain_operands(func, xs, ys, v)
    L, k = int(xs.shape[-2]), int(xs.shape[-1])
    dz = cotangent(func, "dz", dz, batch + (k,))
    dl = None if dlogdet is None else cotangent(func, "dlogdet", dlogdet, batch)
    inverse = flag(func, "inverse", inverse)
    full = batch + (k,)
    order = list(_chain_order(L, inverse))
    z = np.broadcast_to(v.astype(_F64), full)
    inputs = {}
    for layer in order:
        inputs[layer] = z
        z = _apply64(xs[..., layer, :].astype(_F64), ys[..., layer, :].astype(_F64), z, inverse)
    w = np.broadcast_to(dz.astype(_F64), full)
    sdl = np.zeros(batch) if dl is None else np.broadcast_to(dl.astype(_F64), batch)
    sdl = (-sdl if inverse else sdl)[..., None]
    dxs = np.zeros(batch + (L, k))
    dys = np.zeros(batch + (L, k))
    for layer in reversed(order):
        X = np.broadcast_to(xs[..., layer, :].astype(_F64), full)
        Y = np.broadcast_to(ys[..., layer, :].astype(_F64), full)
        gx, gy, w = _apply_vjp(X, Y, inputs[layer], w, inverse)
        dxs[..., layer, :] = gx + sdl * Y
        dys[..., layer, :] = gy + sdl * X
    return (_finish(sum_to(np, dxs, _shape(xs)), _checks.result_dtype(func, "xs", xs.dtype)),
            _finish(sum_to(np, dys, _shape(ys)), _checks.result_dtype(func, "ys", ys.dtype)),
            _finish(sum_to(np, w, _shape(v)), _checks.result_dtype(func, "v", v.dtype)))

