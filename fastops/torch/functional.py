"""The public fastops.torch functions: fastops' NumPy-style signatures on torch tensors.

Each function checks its arguments (dtype, device, layout: ``TypeError`` naming the function and
the argument), promotes its tensors to one dtype (torch's rule), computes bfloat16 in float32
(returned as bfloat16), and calls one custom op from ``_ops`` (``torch.ops.fastops.<name>``),
whose autograd runs fastops' fused backward kernels. The checks read tensor metadata only, so
``torch.compile(fullgraph=True)`` traces these functions without graph breaks.

Argument names follow fastops (``axis``, ``where``, ``temperature``, ``keepdims``), so the
NumPy documentation of each function applies; values (temperature, kinds, shapes) are checked
by fastops itself with its own messages.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import Tensor

from . import _interop as io
from . import _ops

__all__ = [
    "expm_rank1_apply",
    "expm_rank1_chain_apply",
    "expm_rank1_logdet",
    "gmm_score",
    "langevin_step",
    "langevin_step_",
    "log_softmax",
    "logsumexp",
    "mala_step",
    "orthogonality_penalties",
    "orthogonality_penalty",
    "smooth_max",
    "soft_argmax",
    "softmax",
    "som_penalty",
    "spectral_norm",
]


def _mask(func: str, where: Any) -> Tensor | None:
    return io.check_tensor(func, "where", where, kind="bool", optional=True)


def _needs_grad(*tensors: Tensor | None) -> bool:
    return torch.is_grad_enabled() and any(t is not None and t.requires_grad for t in tensors)


# --------------------------------------------------------------------------------------------
# smooth
# --------------------------------------------------------------------------------------------


def logsumexp(a: Tensor, axis: int | Sequence[int] | None = None, b: Tensor | None = None,
              keepdims: bool = False, return_sign: bool = False, *,
              where: Tensor | None = None) -> Tensor | tuple[Tensor, Tensor]:
    """Stable ``log Σ b·exp(a)`` over ``axis`` (``fastops.logsumexp``, SciPy's semantics).

    Differentiable in ``a`` and ``b`` (both through ``fastops.logsumexp_backward``); with
    ``return_sign=True`` returns ``(log|Σ|, sign)``, the sign without a gradient. ``a`` and ``b``
    are broadcast against each other (differentiably, so a broadcast operand's gradient is
    summed) and promoted to one dtype. A row with nothing kept gets gradient 0, never NaN.
    """
    f = "logsumexp"
    io.check_tensor(f, "a", a)
    io.check_tensor(f, "b", b, optional=True)
    where = _mask(f, where)
    io.check_devices(f, [("a", a), ("b", b), ("where", where)])
    keepdims = io.flag(f, "keepdims", keepdims)
    return_sign = io.flag(f, "return_sign", return_sign)
    dtype = a.dtype
    if b is not None:
        a, b = io.promote(f, a, b)
        dtype = a.dtype
        if a.shape != b.shape:
            a, b = torch.broadcast_tensors(a, b)
        b = io.compute_dtype(b)
    a = io.compute_dtype(a)
    axes = io.normalize_axes(f, axis, a.ndim, none_means_all=True)
    out, sign = _ops.logsumexp(a, axes, b, keepdims, return_sign, where)
    out = io.restore_dtype(out, dtype)
    return (out, io.restore_dtype(sign, dtype)) if return_sign else out


def _softmax(f: str, op: Any, x: Tensor, axis: Any, where: Any, temperature: Any) -> Tensor:
    io.check_tensor(f, "x", x)
    where = _mask(f, where)
    io.check_devices(f, [("x", x), ("where", where)])
    temperature = io.real_number(f, "temperature", temperature, positive=True)
    axes = io.normalize_axes(f, axis, x.ndim, none_means_all=True)
    return io.restore_dtype(op(io.compute_dtype(x), axes, where, temperature), x.dtype)


def softmax(x: Tensor, axis: int | Sequence[int] | None = -1, *, where: Tensor | None = None,
            temperature: float = 1.0) -> Tensor:
    """``exp(x/τ) / Σ exp(x/τ)`` over ``axis`` (``fastops.softmax``); gradient by
    ``fastops.softmax_backward``. Masked-out entries are 0; a fully masked row is all 0 and
    gets gradient 0."""
    return _softmax("softmax", _ops.softmax, x, axis, where, temperature)


def log_softmax(x: Tensor, axis: int | Sequence[int] | None = -1, *,
                where: Tensor | None = None, temperature: float = 1.0) -> Tensor:
    """``x/τ − logsumexp(x/τ)`` over ``axis`` (``fastops.log_softmax``); gradient by
    ``fastops.log_softmax_backward``. Masked-out entries are -inf and neither receive nor pass
    on gradient."""
    return _softmax("log_softmax", _ops.log_softmax, x, axis, where, temperature)


def _temperature(f: str, op: Any, x: Tensor, axis: Any, temperature: Any, where: Any,
                 keepdims: Any) -> Tensor:
    io.check_tensor(f, "x", x)
    where = _mask(f, where)
    io.check_devices(f, [("x", x), ("where", where)])
    temperature = io.real_number(f, "temperature", temperature, positive=True)
    keepdims = io.flag(f, "keepdims", keepdims)
    axes = io.normalize_axes(f, axis, x.ndim, none_means_all=True)
    return io.restore_dtype(op(io.compute_dtype(x), axes, temperature, where, keepdims),
                            x.dtype)


def smooth_max(x: Tensor, axis: int | Sequence[int] | None = -1, *, temperature: float = 1.0,
               where: Tensor | None = None, keepdims: bool = False) -> Tensor:
    """``τ·logsumexp(x/τ)`` over ``axis`` (``fastops.smooth_max``); gradient by
    ``fastops.smooth_max_backward``."""
    return _temperature("smooth_max", _ops.smooth_max, x, axis, temperature, where, keepdims)


def soft_argmax(x: Tensor, axis: int | Sequence[int] | None = -1, *, temperature: float = 1.0,
                where: Tensor | None = None, keepdims: bool = False) -> Tensor:
    """``Σ_i i·softmax(x/τ)_i`` (0-based i) over ``axis`` (``fastops.soft_argmax``); gradient
    by ``fastops.soft_argmax_backward``. A fully masked row is NaN with gradient 0."""
    return _temperature("soft_argmax", _ops.soft_argmax, x, axis, temperature, where, keepdims)


# --------------------------------------------------------------------------------------------
# orthogonality
# --------------------------------------------------------------------------------------------


def orthogonality_penalty(W: Tensor, kind: str = "frobenius") -> Tensor:
    """Orthogonality penalty of each kernel of ``W`` (..., d, k) (``fastops.orthogonality_
    penalty``: ``"frobenius"``, ``"offdiag"``, ``"spectral"``), shape ``W.shape[:-2]``.

    When W needs a gradient the value and ``dvalue/dW`` are computed in one fused call
    (``fastops.orthogonality_penalty_and_grad``: two GEMMs and one pass) and the backward
    only scales that gradient. A torch ``Linear``/conv weight ``(out, ...)`` is passed as
    ``w.reshape(out, -1).T`` (a view: its filters are the columns).
    """
    f = "orthogonality_penalty"
    io.check_tensor(f, "W", W)
    if not isinstance(kind, str):
        raise TypeError(f"{io.prefix(f)}: kind must be a str; got {type(kind).__name__}")
    Wc = io.compute_dtype(W)
    if _needs_grad(W):
        value = _ops.orthogonality_penalty_and_grad(Wc, kind)[0]
    else:
        value = _ops.orthogonality_penalty(Wc, kind)
    return io.restore_dtype(value, W.dtype)


def orthogonality_penalties(Ws: Sequence[Tensor], kind: str = "frobenius", *,
                            weights: Sequence[float] | None = None) -> Tensor:
    """``Σ_i weights[i]·Σ penalty(Ws[i])`` over a list of kernels of any shapes, differentiable
    in each; same-shaped kernels of one dtype run as one batched call
    (``fastops.orthogonality_penalties_and_grads``). The gradients are computed with the
    value (one more GEMM per group), also when none is needed: this is a training-loss term.
    The total has the promoted dtype of the kernels (float64 for an empty list)."""
    f = "orthogonality_penalties"
    if not isinstance(Ws, list | tuple):
        raise TypeError(f"{io.prefix(f)}: Ws must be a list or tuple of tensors; "
                        f"got {type(Ws).__name__}")
    Ws = list(Ws)
    for i, W in enumerate(Ws):
        io.check_tensor(f, f"Ws[{i}]", W)
    io.check_devices(f, [(f"Ws[{i}]", W) for i, W in enumerate(Ws)])
    if not isinstance(kind, str):
        raise TypeError(f"{io.prefix(f)}: kind must be a str; got {type(kind).__name__}")
    if weights is None:
        ws = [1.0] * len(Ws)
    else:
        ws = [io.real_number(f, f"weights[{i}]", w) for i, w in enumerate(weights)]
        if len(ws) != len(Ws):
            raise ValueError(f"{io.prefix(f)}: weights must have one number per kernel; "
                             f"got {len(ws)} for {len(Ws)} kernels")
    if not Ws:
        return torch.zeros((), dtype=torch.float64)
    dtype = Ws[0].dtype
    for W in Ws[1:]:
        dtype = torch.promote_types(dtype, W.dtype)
    total, _ = _ops.orthogonality_penalties_and_grads([io.compute_dtype(W) for W in Ws], kind,
                                                      ws)
    return io.restore_dtype(total, dtype)


def som_penalty(Y: Tensor, *, gamma: float = 10.0, lambda1: float = 100.0, lambda2: float = 1.0,
                eps: float = 1e-12) -> Tensor:
    """The Self-Orthogonality Module penalty of a layer's outputs ``Y`` (..., b, k)
    (``fastops.som_penalty``), differentiable in Y through ``fastops.som_penalty_and_grad``
    (value and gradient in one call)."""
    f = "som_penalty"
    io.check_tensor(f, "Y", Y)
    params = [io.real_number(f, n, v) for n, v in
              (("gamma", gamma), ("lambda1", lambda1), ("lambda2", lambda2), ("eps", eps))]
    Yc = io.compute_dtype(Y)
    if _needs_grad(Y):
        value = _ops.som_penalty_and_grad(Yc, *params)[0]
    else:
        value = _ops.som_penalty(Yc, *params)
    return io.restore_dtype(value, Y.dtype)


def spectral_norm(W: Tensor, u: Tensor, *, n_iter: int = 1,
                  eps: float = 1e-12) -> tuple[Tensor, Tensor, Tensor]:
    """``(sigma, u_new, v_new)``: ``n_iter`` power-iteration steps on each ``W`` (..., m, n)
    from ``u`` (..., m) (``fastops.spectral_norm``).

    As ``torch.nn.utils.spectral_norm``: no gradient flows through the iteration; ``sigma``
    is differentiable in W as ``u_newᵀ W v_new`` with u_new, v_new held constant
    (``dsigma/dW = u_new v_newᵀ``); u_new and v_new carry no gradient (keep u_new as a
    buffer for the next step). ``u`` is converted to W's dtype.
    """
    f = "spectral_norm"
    io.check_tensor(f, "W", W)
    io.check_tensor(f, "u", u)
    io.check_devices(f, [("W", W), ("u", u)])
    if isinstance(n_iter, bool) or not isinstance(n_iter, int):
        raise TypeError(f"{io.prefix(f)}: n_iter must be an int; got {type(n_iter).__name__}")
    eps = io.real_number(f, "eps", eps, positive=True)
    Wc = io.compute_dtype(W)
    sigma, u_new, v_new = _ops.spectral_norm(Wc, u.detach().to(Wc.dtype), n_iter, eps)
    return (io.restore_dtype(sigma, W.dtype), io.restore_dtype(u_new, W.dtype),
            io.restore_dtype(v_new, W.dtype))


# --------------------------------------------------------------------------------------------
# rank_one
# --------------------------------------------------------------------------------------------


def _rank_one_operands(f: str, named: list[tuple[str, Tensor]]) -> tuple[list[Tensor], Any]:
    for name, t in named:
        io.check_tensor(f, name, t)
    io.check_devices(f, named)
    promoted = io.promote(f, *(t for _, t in named))
    dtype = promoted[0].dtype
    return [io.compute_dtype(t) for t in promoted], dtype


def expm_rank1_apply(x: Tensor, y: Tensor, v: Tensor, *, inverse: bool = False) -> Tensor:
    """``exp(x yᵀ) v`` (or ``exp(x yᵀ)⁻¹ v``) without forming the matrix
    (``fastops.expm_rank1_apply``), differentiable in x, y and v through
    ``fastops.expm_rank1_apply_backward``. Leading dims broadcast; a broadcast operand's
    gradient is summed over the broadcast dims (by the kernel)."""
    f = "expm_rank1_apply"
    (x, y, v), dtype = _rank_one_operands(f, [("x", x), ("y", y), ("v", v)])
    inverse = io.flag(f, "inverse", inverse)
    return io.restore_dtype(_ops.expm_rank1_apply(x, y, v, inverse), dtype)


def expm_rank1_chain_apply(xs: Tensor, ys: Tensor, v: Tensor, *,
                           inverse: bool = False) -> tuple[Tensor, Tensor]:
    """``(z, logdet)`` of the chain ``E_L ⋯ E_1 v``, ``E_l = exp(xs[..., l, :] ys[..., l, :]ᵀ)``
    (``fastops.expm_rank1_chain_apply``); z and logdet both differentiable in xs, ys and v
    through ``fastops.expm_rank1_chain_apply_backward``."""
    f = "expm_rank1_chain_apply"
    (xs, ys, v), dtype = _rank_one_operands(f, [("xs", xs), ("ys", ys), ("v", v)])
    inverse = io.flag(f, "inverse", inverse)
    z, logdet = _ops.expm_rank1_chain_apply(xs, ys, v, inverse)
    return io.restore_dtype(z, dtype), io.restore_dtype(logdet, dtype)


def expm_rank1_logdet(x: Tensor, y: Tensor) -> Tensor:
    """``log det exp(x yᵀ) = yᵀx`` (``fastops.expm_rank1_logdet``), differentiable in x and
    y (the gradient through the chain backward kernel of one factor)."""
    f = "expm_rank1_logdet"
    (x, y), dtype = _rank_one_operands(f, [("x", x), ("y", y)])
    return io.restore_dtype(_ops.expm_rank1_logdet(x, y), dtype)


# --------------------------------------------------------------------------------------------
# langevin
# --------------------------------------------------------------------------------------------


def gmm_score(x: Tensor, means: Tensor, sigma: float, *, log_weights: Tensor | None = None,
              component_std: float = 0.0) -> Tensor:
    """Score of a Gaussian mixture at the points x (..., d) (``fastops.gmm_score``).

    Not differentiable (it is itself a gradient): computed on detached inputs, so the result
    never requires grad. ``means`` and ``log_weights`` are converted to x's dtype.
    """
    f = "gmm_score"
    io.check_tensor(f, "x", x)
    io.check_tensor(f, "means", means)
    io.check_tensor(f, "log_weights", log_weights, optional=True)
    io.check_devices(f, [("x", x), ("means", means), ("log_weights", log_weights)])
    sigma = io.real_number(f, "sigma", sigma)
    component_std = io.real_number(f, "component_std", component_std)
    xc = io.compute_dtype(x.detach())
    means = means.detach().to(xc.dtype)
    log_weights = None if log_weights is None else log_weights.detach().to(xc.dtype)
    return io.restore_dtype(_ops.gmm_score(xc, means, sigma, log_weights, component_std),
                            x.dtype)


def _langevin_args(f: str, x: Any, score: Any, step_size: Any, seed: Any, step: Any,
                   noise_scale: Any, offset: Any) -> tuple:
    io.check_tensor(f, "x", x)
    io.check_tensor(f, "score", score)
    io.check_devices(f, [("x", x), ("score", score)])
    step_size = io.real_number(f, "step_size", step_size, positive=True)
    noise_scale = io.real_number(f, "noise_scale", noise_scale, nonnegative=True)
    seed = io.int64_seed(io.check_uint64(f, "seed", seed))
    step = io.int64_seed(io.check_uint64(f, "step", step))
    if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
        raise ValueError(f"{io.prefix(f)}: offset must be an int >= 0; got {offset!r}")
    return step_size, seed, step, noise_scale, offset


def langevin_step(x: Tensor, score: Tensor, step_size: float, *, seed: int, step: int,
                  noise_scale: float = 1.0, offset: int = 0, out: Tensor | None = None
                  ) -> Tensor:
    """One Langevin step ``x + (h/2)·score + noise_scale·sqrt(h)·z`` (``fastops.langevin_step``)
    with the Philox normals z of ``(seed, step)`` generated in the kernel: the same bits as the
    NumPy function on the same data. No gradient (inputs are detached).

    ``out=x`` (or :func:`langevin_step_`) updates x in place, in its own memory; another
    ``out`` tensor of x's shape and dtype receives the result.
    """
    f = "langevin_step"
    args = _langevin_args(f, x, score, step_size, seed, step, noise_scale, offset)
    if out is not None:
        io.check_tensor(f, "out", out)
        io.check_devices(f, [("x", x), ("out", out)])
        if out.shape != x.shape or out.dtype != x.dtype:
            raise ValueError(f"{io.prefix(f)}: out must have x's shape {tuple(x.shape)} and "
                             f"dtype {x.dtype}; got {tuple(out.shape)} and {out.dtype}")
        with torch.no_grad():
            if out is x:
                _ops.langevin_step_(x, score.detach(), *args)
            else:
                _ops.langevin_step_out(x.detach(), score.detach(), *args, out)
        return out
    xc = io.compute_dtype(x.detach())
    return io.restore_dtype(_ops.langevin_step(xc, io.compute_dtype(score.detach()), *args),
                            x.dtype)


def langevin_step_(x: Tensor, score: Tensor, step_size: float, *, seed: int, step: int,
                   noise_scale: float = 1.0, offset: int = 0) -> Tensor:
    """In-place :func:`langevin_step` (torch's trailing-underscore convention): x is updated
    in its own memory (no copy, strided x included; bfloat16 through a float32 copy) and
    returned."""
    return langevin_step(x, score, step_size, seed=seed, step=step, noise_scale=noise_scale,
                         offset=offset, out=x)


def mala_step(x: Tensor, log_prob: Tensor, score: Tensor,
              log_prob_and_score: Callable[[Tensor], tuple[Tensor, Tensor]], step_size: float, *,
              seed: int, step: int) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """One Metropolis-adjusted Langevin step for chains along x's first axis
    (``fastops.mala_step``): returns ``(x_new, log_prob_new, score_new, accepted)``.

    ``log_prob_and_score(y)`` receives the proposals as a tensor (x's dtype and device) and
    returns tensors. A plain function, not a custom op (a schema cannot hold a callback), so
    torch.compile graph-breaks around it; no gradient. bfloat16 chains are stepped in float32.
    """
    f = "mala_step"
    for name, t in (("x", x), ("log_prob", log_prob), ("score", score)):
        io.check_tensor(f, name, t)
    io.check_devices(f, [("x", x), ("log_prob", log_prob), ("score", score)])
    if not callable(log_prob_and_score):
        raise TypeError(f"{io.prefix(f)}: log_prob_and_score must be callable; "
                        f"got {type(log_prob_and_score).__name__}")
    step_size = io.real_number(f, "step_size", step_size, positive=True)
    seed = io.check_uint64(f, "seed", seed)
    step = io.check_uint64(f, "step", step)
    dtype = x.dtype
    xc, lpc, sc = (io.compute_dtype(t.detach()) for t in (x, log_prob, score))

    def callback(y_array: Any) -> tuple[Any, Any]:
        y = io.restore_dtype(io.from_array(y_array), dtype)
        lp, s = log_prob_and_score(y)
        for name, t in (("log_prob_and_score(...)[0]", lp), ("log_prob_and_score(...)[1]", s)):
            io.check_tensor(f, name, t)
        io.check_devices(f, [("x", x), ("log_prob_and_score(...)[0]", lp),
                             ("log_prob_and_score(...)[1]", s)])
        return (io.to_array(f, "log_prob", io.compute_dtype(lp.detach())),
                io.to_array(f, "score", io.compute_dtype(s.detach())))

    import fastops

    with torch.no_grad(), io.on_device_of(f, x):
        res = fastops.mala_step(io.to_array(f, "x", xc), io.to_array(f, "log_prob", lpc),
                                io.to_array(f, "score", sc), callback, step_size, seed=seed,
                                step=step)
        x_new, lp_new, s_new, accepted = (io.from_array(r) for r in res)
    return (io.restore_dtype(x_new, dtype), io.restore_dtype(lp_new, log_prob.dtype),
            io.restore_dtype(s_new, dtype), accepted)
