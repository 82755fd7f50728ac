"""The fastops kernels as torch custom ops (namespace ``fastops``: ``torch.ops.fastops.*``).

Each op has three parts:

- the real kernel: tensors viewed as NumPy/CuPy arrays (``_interop``), the fastops function,
  the result wrapped back, in the layout the fake kernel promises;
- ``register_fake``: shapes, dtypes and strides only, for torch.compile / export / meta;
- ``register_autograd`` (the differentiable ops): the backward is another custom op that runs
  fastops' own fused backward kernel (``logsumexp_backward``, ``softmax_backward``,
  ``orthogonality_penalty_and_grad``, ``expm_rank1_apply_backward``, ...), so the gradient is
  never re-derived with torch ops and compiled graphs keep it as one opaque call.

The ops take what a schema can hold: axes as ``int[]`` (``None`` only for a 0-d input),
optional tensors as ``Tensor?``, floats, bools and strings. They expect checked arguments of
one dtype (float16, float32 or float64): the public functions in ``functional.py`` check,
promote and handle bfloat16 before calling them. The backward ops have no autograd of their
own (no double backward).
"""

from __future__ import annotations

import functools

import torch
from torch import Tensor
from torch.library import custom_op

import fastops as _fo

from . import _interop as io

_NS = "fastops"


def _axis(axis: list[int] | None) -> int | tuple[int, ...] | None:
    return None if axis is None else tuple(axis)


def _reduced(a: Tensor, axis: list[int] | None, keepdims: bool) -> Tensor:
    return a.new_empty(io.reduced_shape(a.shape, axis, keepdims))


# ============================================================================================
# smooth: logsumexp, softmax, log_softmax, smooth_max, soft_argmax
# ============================================================================================


@custom_op(f"{_NS}::logsumexp", mutates_args=())
def logsumexp(a: Tensor, axis: list[int] | None, b: Tensor | None, keepdims: bool,
              return_sign: bool, where: Tensor | None) -> tuple[Tensor, Tensor]:
    """(log|Σ b·exp(a)|, sign); the sign is an empty (0,) tensor unless ``return_sign``."""
    f = "logsumexp"
    shape = io.reduced_shape(a.shape, axis, keepdims)
    with io.on_device_of(f, a):
        res = _fo.logsumexp(io.to_array(f, "a", a), _axis(axis), io.to_array(f, "b", b),
                            keepdims, return_sign, where=io.to_array(f, "where", where))
        if return_sign:
            return io.result_contiguous(res[0], shape), io.result_contiguous(res[1], shape)
        return io.result_contiguous(res, shape), a.new_empty((0,))


@logsumexp.register_fake
def _(a, axis, b, keepdims, return_sign, where):
    out = _reduced(a, axis, keepdims)
    return out, (torch.empty_like(out) if return_sign else a.new_empty((0,)))


@custom_op(f"{_NS}::logsumexp_backward", mutates_args=())
def logsumexp_backward(a: Tensor, out: Tensor, dout: Tensor, axis: list[int] | None,
                       b: Tensor | None, keepdims: bool, where: Tensor | None) -> Tensor:
    """``dout·b·exp(a − out)`` (fastops.logsumexp_backward); 0 where masked or -inf."""
    f = "logsumexp"
    with io.on_device_of(f, a):
        res = _fo.logsumexp_backward(io.to_array(f, "a", a), io.to_array(f, "out", out),
                                     io.to_array(f, "dout", dout), _axis(axis),
                                     io.to_array(f, "b", b), keepdims,
                                     where=io.to_array(f, "where", where))
        return io.result_like(res, a)


@logsumexp_backward.register_fake
def _(a, out, dout, axis, b, keepdims, where):
    return torch.empty_like(a)


def _lse_setup(ctx, inputs, output):
    a, axis, b, keepdims, return_sign, where = inputs
    out, sign = output
    ctx.mark_non_differentiable(sign)
    ctx.axis, ctx.keepdims, ctx.return_sign = axis, keepdims, return_sign
    ctx.save_for_backward(a, b, where, out, sign)


def _lse_backward(ctx, dout, dsign):
    a, b, where, out, sign = ctx.saved_tensors
    if ctx.return_sign:  # d log|S| = sign·dS/|S|: fastops' dout·b·exp(a − out) times the sign
        dout = dout * sign
    da = db = None
    if ctx.needs_input_grad[0]:
        da = logsumexp_backward(a, out, dout, ctx.axis, b, ctx.keepdims, where)
    if b is not None and ctx.needs_input_grad[2]:  # ∂/∂b_i = exp(a_i − out): the same kernel
        db = logsumexp_backward(a, out, dout, ctx.axis, None, ctx.keepdims, where)
    return da, None, db, None, None, None


logsumexp.register_autograd(_lse_backward, setup_context=_lse_setup)


def _softmax_op(log: bool):
    name = "log_softmax" if log else "softmax"

    @custom_op(f"{_NS}::{name}", mutates_args=())
    def op(x: Tensor, axis: list[int] | None, where: Tensor | None,
           temperature: float) -> Tensor:
        with io.on_device_of(name, x):
            fn = _fo.log_softmax if log else _fo.softmax
            res = fn(io.to_array(name, "x", x), _axis(axis),
                     where=io.to_array(name, "where", where), temperature=temperature)
            return io.result_like(res, x)

    @op.register_fake
    def _(x, axis, where, temperature):
        return torch.empty_like(x)

    @custom_op(f"{_NS}::{name}_backward", mutates_args=())
    def backward_op(y: Tensor, dy: Tensor, axis: list[int] | None, where: Tensor | None,
                    temperature: float) -> Tensor:
        with io.on_device_of(name, y):
            fn = _fo.log_softmax_backward if log else _fo.softmax_backward
            res = fn(io.to_array(name, "y", y), io.to_array(name, "dy", dy), _axis(axis),
                     where=io.to_array(name, "where", where), temperature=temperature)
            return io.result_like(res, y)

    @backward_op.register_fake
    def _(y, dy, axis, where, temperature):
        return torch.empty_like(y)

    def setup(ctx, inputs, output):
        _, axis, where, temperature = inputs
        ctx.axis, ctx.temperature = axis, temperature
        ctx.save_for_backward(output, where)

    def backward(ctx, dy):
        y, where = ctx.saved_tensors
        return backward_op(y, dy, ctx.axis, where, ctx.temperature), None, None, None

    op.register_autograd(backward, setup_context=setup)
    return op, backward_op


softmax, softmax_backward = _softmax_op(False)
log_softmax, log_softmax_backward = _softmax_op(True)


def _temperature_op(name: str):
    """smooth_max / soft_argmax: reductions of x/τ whose backward recomputes from x."""

    @custom_op(f"{_NS}::{name}", mutates_args=())
    def op(x: Tensor, axis: list[int] | None, temperature: float, where: Tensor | None,
           keepdims: bool) -> Tensor:
        with io.on_device_of(name, x):
            res = getattr(_fo, name)(io.to_array(name, "x", x), _axis(axis),
                                     temperature=temperature,
                                     where=io.to_array(name, "where", where), keepdims=keepdims)
            return io.result_contiguous(res, io.reduced_shape(x.shape, axis, keepdims))

    @op.register_fake
    def _(x, axis, temperature, where, keepdims):
        return _reduced(x, axis, keepdims)

    @custom_op(f"{_NS}::{name}_backward", mutates_args=())
    def backward_op(x: Tensor, dout: Tensor, axis: list[int] | None, temperature: float,
                    where: Tensor | None, keepdims: bool) -> Tensor:
        with io.on_device_of(name, x):
            res = getattr(_fo, f"{name}_backward")(
                io.to_array(name, "x", x), io.to_array(name, "dout", dout), _axis(axis),
                temperature=temperature, where=io.to_array(name, "where", where),
                keepdims=keepdims)
            return io.result_like(res, x)

    @backward_op.register_fake
    def _(x, dout, axis, temperature, where, keepdims):
        return torch.empty_like(x)

    def setup(ctx, inputs, output):
        x, axis, temperature, where, keepdims = inputs
        ctx.axis, ctx.temperature, ctx.keepdims = axis, temperature, keepdims
        ctx.save_for_backward(x, where)

    def backward(ctx, dout):
        x, where = ctx.saved_tensors
        dx = backward_op(x, dout, ctx.axis, ctx.temperature, where, ctx.keepdims)
        return dx, None, None, None, None

    op.register_autograd(backward, setup_context=setup)
    return op, backward_op


smooth_max, smooth_max_backward = _temperature_op("smooth_max")
soft_argmax, soft_argmax_backward = _temperature_op("soft_argmax")


# ============================================================================================
# orthogonality: Gram penalties, SOM, spectral norm
# ============================================================================================


def _batch_shape(W: Tensor) -> list[int]:
    return list(W.shape[:-2])


@custom_op(f"{_NS}::orthogonality_penalty", mutates_args=())
def orthogonality_penalty(W: Tensor, kind: str) -> Tensor:
    """The value only (no autograd: the public function uses the op below when W needs a
    gradient)."""
    f = "orthogonality_penalty"
    with io.on_device_of(f, W):
        res = _fo.orthogonality_penalty(io.to_array(f, "W", W), kind)
        return io.result_contiguous(res, _batch_shape(W))


@orthogonality_penalty.register_fake
def _(W, kind):
    return W.new_empty(_batch_shape(W))


@custom_op(f"{_NS}::orthogonality_penalty_and_grad", mutates_args=())
def orthogonality_penalty_and_grad(W: Tensor, kind: str) -> tuple[Tensor, Tensor]:
    """(value, dvalue/dW) in one fused call: two GEMMs and one pass over the Gram."""
    f = "orthogonality_penalty"
    with io.on_device_of(f, W):
        value, grad = _fo.orthogonality_penalty_and_grad(io.to_array(f, "W", W), kind)
        return io.result_contiguous(value, _batch_shape(W)), io.result_like(grad, W)


@orthogonality_penalty_and_grad.register_fake
def _(W, kind):
    return W.new_empty(_batch_shape(W)), torch.empty_like(W)


def _value_and_grad_setup(ctx, inputs, output):
    """The gradient came with the value: keep it, the backward only scales it."""
    value, grad = output
    ctx.mark_non_differentiable(grad)
    ctx.save_for_backward(grad)


def _value_and_grad_backward(ctx, dvalue, _dgrad):
    (grad,) = ctx.saved_tensors
    scale = dvalue.reshape(dvalue.shape + (1, 1)).to(grad.dtype)
    return (scale * grad,) + (None,) * (ctx.n_extra_inputs)


def _register_value_and_grad(op, n_extra_inputs: int) -> None:
    def setup(ctx, inputs, output):
        _value_and_grad_setup(ctx, inputs, output)
        ctx.n_extra_inputs = n_extra_inputs

    op.register_autograd(_value_and_grad_backward, setup_context=setup)


_register_value_and_grad(orthogonality_penalty_and_grad, 1)


@custom_op(f"{_NS}::orthogonality_penalties_and_grads", mutates_args=())
def orthogonality_penalties_and_grads(Ws: list[Tensor], kind: str,
                                      weights: list[float]) -> tuple[Tensor, list[Tensor]]:
    """Σ_i w_i·Σ penalty(Ws[i]) and each w_i·grad, same-shaped kernels batched in one call."""
    f = "orthogonality_penalties_and_grads"
    if not Ws:
        return torch.zeros((), dtype=torch.float64), []
    with io.on_device_of(f, Ws[0]):
        total, grads = _fo.orthogonality_penalties_and_grads(
            [io.to_array(f, f"Ws[{i}]", W) for i, W in enumerate(Ws)], kind, weights=weights)
        return (io.result_contiguous(total, []),
                [io.result_like(g, W) for g, W in zip(grads, Ws, strict=True)])


@orthogonality_penalties_and_grads.register_fake
def _(Ws, kind, weights):
    if not Ws:
        return torch.zeros((), dtype=torch.float64), []
    dtype = functools.reduce(torch.promote_types, [W.dtype for W in Ws])
    return Ws[0].new_empty((), dtype=dtype), [torch.empty_like(W) for W in Ws]


def _penalties_setup(ctx, inputs, output):
    total, grads = output
    ctx.mark_non_differentiable(*grads)
    ctx.save_for_backward(*grads)


def _penalties_backward(ctx, dtotal, _dgrads):
    return [dtotal.to(g.dtype) * g for g in ctx.saved_tensors], None, None


orthogonality_penalties_and_grads.register_autograd(_penalties_backward,
                                                    setup_context=_penalties_setup)


@custom_op(f"{_NS}::som_penalty", mutates_args=())
def som_penalty(Y: Tensor, gamma: float, lambda1: float, lambda2: float, eps: float) -> Tensor:
    f = "som_penalty"
    with io.on_device_of(f, Y):
        res = _fo.som_penalty(io.to_array(f, "Y", Y), gamma=gamma, lambda1=lambda1,
                              lambda2=lambda2, eps=eps)
        return io.result_contiguous(res, _batch_shape(Y))


@som_penalty.register_fake
def _(Y, gamma, lambda1, lambda2, eps):
    return Y.new_empty(_batch_shape(Y))


@custom_op(f"{_NS}::som_penalty_and_grad", mutates_args=())
def som_penalty_and_grad(Y: Tensor, gamma: float, lambda1: float, lambda2: float,
                         eps: float) -> tuple[Tensor, Tensor]:
    f = "som_penalty"
    with io.on_device_of(f, Y):
        value, grad = _fo.som_penalty_and_grad(io.to_array(f, "Y", Y), gamma=gamma,
                                               lambda1=lambda1, lambda2=lambda2, eps=eps)
        return io.result_contiguous(value, _batch_shape(Y)), io.result_like(grad, Y)


@som_penalty_and_grad.register_fake
def _(Y, gamma, lambda1, lambda2, eps):
    return Y.new_empty(_batch_shape(Y)), torch.empty_like(Y)


_register_value_and_grad(som_penalty_and_grad, 4)


@custom_op(f"{_NS}::spectral_norm", mutates_args=())
def spectral_norm(W: Tensor, u: Tensor, n_iter: int, eps: float
                  ) -> tuple[Tensor, Tensor, Tensor]:
    """(sigma, u_new, v_new) by ``n_iter`` power-iteration steps."""
    f = "spectral_norm"
    with io.on_device_of(f, W):
        sigma, u_new, v_new = _fo.spectral_norm(io.to_array(f, "W", W), io.to_array(f, "u", u),
                                                n_iter=n_iter, eps=eps)
        lead = _batch_shape(W)
        return (io.result_contiguous(sigma, lead),
                io.result_contiguous(u_new, lead + [W.shape[-2]]),
                io.result_contiguous(v_new, lead + [W.shape[-1]]))


@spectral_norm.register_fake
def _(W, u, n_iter, eps):
    lead = _batch_shape(W)
    return (W.new_empty(lead), W.new_empty(lead + [W.shape[-2]]),
            W.new_empty(lead + [W.shape[-1]]))


def _spectral_setup(ctx, inputs, output):
    sigma, u_new, v_new = output
    ctx.mark_non_differentiable(u_new, v_new)
    ctx.save_for_backward(u_new, v_new)


def _spectral_backward(ctx, dsigma, _du, _dv):
    # sigma = u_newᵀ W v_new with u_new, v_new held constant (no gradient through the power
    # iteration, as torch.nn.utils.spectral_norm): dW = dsigma · u_new v_newᵀ. fastops has no
    # backward kernel for this outer product; it is the one gradient formed with torch ops.
    u, v = ctx.saved_tensors
    dW = (dsigma.to(u.dtype)[..., None, None] * u[..., :, None]) * v[..., None, :]
    return dW, None, None, None


spectral_norm.register_autograd(_spectral_backward, setup_context=_spectral_setup)


# ============================================================================================
# rank_one: exp(x yᵀ) applied, chained, log-determinant
# ============================================================================================


def _batch(*shapes) -> list[int]:
    return list(torch.broadcast_shapes(*shapes))


@custom_op(f"{_NS}::expm_rank1_apply", mutates_args=())
def expm_rank1_apply(x: Tensor, y: Tensor, v: Tensor, inverse: bool) -> Tensor:
    f = "expm_rank1_apply"
    with io.on_device_of(f, x):
        res = _fo.expm_rank1_apply(io.to_array(f, "x", x), io.to_array(f, "y", y),
                                   io.to_array(f, "v", v), inverse=inverse)
        return io.result_contiguous(res, _batch(x.shape[:-1], y.shape[:-1], v.shape[:-1])
                                    + [x.shape[-1]])


@expm_rank1_apply.register_fake
def _(x, y, v, inverse):
    return x.new_empty(_batch(x.shape[:-1], y.shape[:-1], v.shape[:-1]) + [x.shape[-1]])


@custom_op(f"{_NS}::expm_rank1_apply_backward", mutates_args=())
def expm_rank1_apply_backward(x: Tensor, y: Tensor, v: Tensor, dz: Tensor,
                              inverse: bool) -> tuple[Tensor, Tensor, Tensor]:
    f = "expm_rank1_apply"
    with io.on_device_of(f, x):
        grads = _fo.expm_rank1_apply_backward(
            io.to_array(f, "x", x), io.to_array(f, "y", y), io.to_array(f, "v", v),
            io.to_array(f, "dz", dz), inverse=inverse)
        return tuple(io.result_like(g, t) for g, t in zip(grads, (x, y, v), strict=True))


@expm_rank1_apply_backward.register_fake
def _(x, y, v, dz, inverse):
    return torch.empty_like(x), torch.empty_like(y), torch.empty_like(v)


def _apply_setup(ctx, inputs, output):
    x, y, v, inverse = inputs
    ctx.inverse = inverse
    ctx.save_for_backward(x, y, v)


def _apply_backward(ctx, dz):
    x, y, v = ctx.saved_tensors
    dx, dy, dv = expm_rank1_apply_backward(x, y, v, dz, ctx.inverse)
    return dx, dy, dv, None


expm_rank1_apply.register_autograd(_apply_backward, setup_context=_apply_setup)


def _chain_batch(xs: Tensor, ys: Tensor, v: Tensor) -> list[int]:
    return _batch(xs.shape[:-2], ys.shape[:-2], v.shape[:-1])


@custom_op(f"{_NS}::expm_rank1_chain_apply", mutates_args=())
def expm_rank1_chain_apply(xs: Tensor, ys: Tensor, v: Tensor,
                           inverse: bool) -> tuple[Tensor, Tensor]:
    f = "expm_rank1_chain_apply"
    batch = _chain_batch(xs, ys, v)
    with io.on_device_of(f, v):
        z, logdet = _fo.expm_rank1_chain_apply(io.to_array(f, "xs", xs), io.to_array(f, "ys", ys),
                                               io.to_array(f, "v", v), inverse=inverse)
        return (io.result_contiguous(z, batch + [v.shape[-1]]),
                io.result_contiguous(logdet, batch))


@expm_rank1_chain_apply.register_fake
def _(xs, ys, v, inverse):
    batch = _chain_batch(xs, ys, v)
    return v.new_empty(batch + [v.shape[-1]]), v.new_empty(batch)


@custom_op(f"{_NS}::expm_rank1_chain_apply_backward", mutates_args=())
def expm_rank1_chain_apply_backward(xs: Tensor, ys: Tensor, v: Tensor, dz: Tensor,
                                    dlogdet: Tensor | None,
                                    inverse: bool) -> tuple[Tensor, Tensor, Tensor]:
    f = "expm_rank1_chain_apply"
    with io.on_device_of(f, v):
        grads = _fo.expm_rank1_chain_apply_backward(
            io.to_array(f, "xs", xs), io.to_array(f, "ys", ys), io.to_array(f, "v", v),
            io.to_array(f, "dz", dz), io.to_array(f, "dlogdet", dlogdet), inverse=inverse)
        return tuple(io.result_like(g, t) for g, t in zip(grads, (xs, ys, v), strict=True))


@expm_rank1_chain_apply_backward.register_fake
def _(xs, ys, v, dz, dlogdet, inverse):
    return torch.empty_like(xs), torch.empty_like(ys), torch.empty_like(v)


def _chain_setup(ctx, inputs, output):
    xs, ys, v, inverse = inputs
    ctx.inverse = inverse
    ctx.save_for_backward(xs, ys, v)


def _chain_backward(ctx, dz, dlogdet):
    xs, ys, v = ctx.saved_tensors
    dxs, dys, dv = expm_rank1_chain_apply_backward(xs, ys, v, dz, dlogdet, ctx.inverse)
    return dxs, dys, dv, None


expm_rank1_chain_apply.register_autograd(_chain_backward, setup_context=_chain_setup)


@custom_op(f"{_NS}::expm_rank1_logdet", mutates_args=())
def expm_rank1_logdet(x: Tensor, y: Tensor) -> Tensor:
    f = "expm_rank1_logdet"
    with io.on_device_of(f, x):
        res = _fo.expm_rank1_logdet(io.to_array(f, "x", x), io.to_array(f, "y", y))
        return io.result_contiguous(res, _batch(x.shape[:-1], y.shape[:-1]))


@expm_rank1_logdet.register_fake
def _(x, y):
    return x.new_empty(_batch(x.shape[:-1], y.shape[:-1]))


def _logdet_setup(ctx, inputs, output):
    ctx.save_for_backward(*inputs)


def _logdet_backward(ctx, dlogdet):
    # logdet = s = yᵀx: the chain backward of one factor applied to v = 0 (so dz plays no
    # part) returns exactly (dlogdet·y, dlogdet·x), summed over broadcast dims by the kernel.
    # (dz is a (k,) zero vector: a 0-d dz fails in the CPU kernel's column path, a rank_one
    # bug reported to its owner.)
    x, y = ctx.saved_tensors
    zero = x.new_zeros(x.shape[-1:])
    dxs, dys, _ = expm_rank1_chain_apply_backward(x.unsqueeze(-2), y.unsqueeze(-2), zero, zero,
                                                  dlogdet, False)
    return dxs.squeeze(-2), dys.squeeze(-2)


expm_rank1_logdet.register_autograd(_logdet_backward, setup_context=_logdet_setup)


# ============================================================================================
# langevin: GMM score, Langevin steps (no gradient)
# ============================================================================================


@custom_op(f"{_NS}::gmm_score", mutates_args=())
def gmm_score(x: Tensor, means: Tensor, sigma: float, log_weights: Tensor | None,
              component_std: float) -> Tensor:
    f = "gmm_score"
    with io.on_device_of(f, x):
        res = _fo.gmm_score(io.to_array(f, "x", x), io.to_array(f, "means", means), sigma,
                            log_weights=io.to_array(f, "log_weights", log_weights),
                            component_std=component_std)
        return io.result_contiguous(res, list(x.shape))


@gmm_score.register_fake
def _(x, means, sigma, log_weights, component_std):
    return x.new_empty(x.shape)


def _langevin(f: str, x: Tensor, score: Tensor, step_size: float, seed: int, step: int,
              noise_scale: float, offset: int, out: Tensor | None) -> object:
    """One fastops.langevin_step on tensors; with ``out`` the result is written there.

    bfloat16 operands are stepped in float32; a bfloat16 ``out`` goes through a float32 copy
    that is copied back (the one case that is not zero-copy).
    """
    target = None if out is None else (out.float() if out.dtype == torch.bfloat16 else out)
    if x is out:
        x = target
    elif x.dtype == torch.bfloat16:
        x = x.float()
    if score.dtype == torch.bfloat16:
        score = score.float()
    with io.on_device_of(f, x):
        xa = io.to_array(f, "x", x)
        outa = None if target is None else (xa if target is x else io.to_array(f, "out", target))
        res = _fo.langevin_step(xa, io.to_array(f, "score", score), step_size,
                                seed=io.uint64_seed(seed), step=io.uint64_seed(step),
                                noise_scale=noise_scale, out=outa, offset=offset)
    if out is not None and target is not out:
        out.copy_(target)
    return res


@custom_op(f"{_NS}::langevin_step", mutates_args=())
def langevin_step(x: Tensor, score: Tensor, step_size: float, seed: int, step: int,
                  noise_scale: float, offset: int) -> Tensor:
    f = "langevin_step"
    res = _langevin(f, x, score, step_size, seed, step, noise_scale, offset, None)
    with io.on_device_of(f, x):
        return io.result_like(res, x)


@langevin_step.register_fake
def _(x, score, step_size, seed, step, noise_scale, offset):
    return torch.empty_like(x)


@custom_op(f"{_NS}::langevin_step_", mutates_args=("x",))
def langevin_step_(x: Tensor, score: Tensor, step_size: float, seed: int, step: int,
                   noise_scale: float, offset: int) -> None:
    """In place on x: the kernel writes x's own memory (bfloat16: through a float32 copy)."""
    _langevin("langevin_step_", x, score, step_size, seed, step, noise_scale, offset, x)


@langevin_step_.register_fake
def _(x, score, step_size, seed, step, noise_scale, offset):
    return None


@custom_op(f"{_NS}::langevin_step_out", mutates_args=("out",))
def langevin_step_out(x: Tensor, score: Tensor, step_size: float, seed: int, step: int,
                      noise_scale: float, offset: int, out: Tensor) -> None:
    _langevin("langevin_step", x, score, step_size, seed, step, noise_scale, offset, out)


@langevin_step_out.register_fake
def _(x, score, step_size, seed, step, noise_scale, offset, out):
    return None
