"""fastops.torch smooth ops: the NumPy functions' bits, fastops' backward kernels through
autograd, gradcheck / opcheck, masks, dtypes, zero-copy views and one torch.compile run."""

from __future__ import annotations

import numpy as np
import pytest
from _torch_support import F64, assert_same, mask, randn, record, torch

import fastops
import fastops.torch as ft

OPS = ["logsumexp", "softmax", "log_softmax", "smooth_max", "soft_argmax"]
ELEMENTWISE = {"softmax", "log_softmax"}


def _kwargs(op: str, m) -> dict:
    kw = {"where": m}
    if op != "logsumexp":
        kw["temperature"] = 0.7
    return kw


def _call(mod, op: str, x, axis=-1, **kw):
    return getattr(mod, op)(x, axis, **kw)


@pytest.mark.parametrize("op", OPS)
def test_forward_and_backward_are_the_numpy_bits(op):
    """Forward and autograd gradient equal fastops on the same arrays, bit for bit, with a
    mask holding a fully masked row. (float64 only: each dtype is another Numba compilation;
    float32 is covered below.)"""
    dtype = F64
    x = randn(4, 7, dtype=dtype, grad=True)
    m = mask(4, 7)
    kw = _kwargs(op, m)
    y = _call(ft, op, x, **kw)
    want = _call(fastops, op, x.detach().numpy(), where=m.numpy(),
                 **{k: v for k, v in kw.items() if k != "where"})
    assert_same(y, want)
    dy = randn(*y.shape, seed=5, dtype=dtype)
    (g,) = torch.autograd.grad(y, x, dy)
    xa, ya, dya, ma = x.detach().numpy(), y.detach().numpy(), dy.numpy(), m.numpy()
    if op == "logsumexp":
        gw = fastops.logsumexp_backward(xa, ya, dya, axis=-1, where=ma)
    elif op in ELEMENTWISE:
        gw = getattr(fastops, f"{op}_backward")(ya, dya, -1, where=ma, temperature=0.7)
    else:
        gw = getattr(fastops, f"{op}_backward")(xa, dya, -1, where=ma, temperature=0.7)
    assert_same(g, gw)
    assert torch.all(g[1] == 0)  # the fully masked row: 0, never NaN


@pytest.mark.parametrize("op", OPS)
def test_gradcheck(op):
    x = randn(3, 5, grad=True)
    m = mask(3, 5, empty_row=None)

    def f(x):
        y = _call(ft, op, x, **_kwargs(op, m))
        return torch.where(m, y, 0.0) if op == "log_softmax" else y

    assert torch.autograd.gradcheck(f, (x,))


@pytest.mark.parametrize("op", OPS)
def test_opcheck(op):
    x = randn(3, 5, grad=True)
    m = mask(3, 5)
    if op == "logsumexp":
        b = torch.rand(3, 5, dtype=F64).requires_grad_()
        args = (x, [1], b, False, True, m)
    elif op in ELEMENTWISE:
        args = (x, [1], m, 0.7)
    else:
        args = (x, [0, 1], 0.7, m, True)
    torch.library.opcheck(getattr(torch.ops.fastops, op), args)


def test_logsumexp_weights_sign_and_broadcast():
    """b broadcast against a, negative weights, return_sign; the gradients of a and b through
    fastops.logsumexp_backward (gradcheck), the sign without one."""
    a = randn(3, 4, grad=True)
    b = (torch.tensor([1.0, -0.5, 2.0, 0.0], dtype=F64)).requires_grad_()
    out, sign = ft.logsumexp(a, axis=1, b=b, return_sign=True)
    wo, ws = fastops.logsumexp(a.detach().numpy(), axis=1, b=b.detach().numpy(),
                               return_sign=True)
    assert_same(out, wo)
    assert_same(sign, ws)
    assert not sign.requires_grad
    assert torch.autograd.gradcheck(
        lambda a, b: ft.logsumexp(a, axis=1, b=b, return_sign=True)[0], (a, b))
    neg = torch.tensor([[-1.0, -2.0]], dtype=F64)
    _, s = ft.logsumexp(torch.zeros(1, 2, dtype=F64), axis=1, b=neg, return_sign=True)
    assert s.item() == -1.0
    assert torch.isnan(ft.logsumexp(torch.zeros(1, 2, dtype=F64), axis=1, b=neg)).all()


@pytest.mark.parametrize("axis, keepdims",
                         [(None, False), (None, True), ((0, 2), True), (1, False)])
def test_logsumexp_axes(axis, keepdims):
    a = randn(2, 3, 4, grad=True)
    out = ft.logsumexp(a, axis, keepdims=keepdims)
    assert_same(out, fastops.logsumexp(a.detach().numpy(), axis, keepdims=keepdims))
    assert torch.autograd.gradcheck(lambda a: ft.logsumexp(a, axis, keepdims=keepdims), (a,))


def test_zero_d_input():
    a = torch.tensor(3.0, dtype=F64, requires_grad=True)
    out = ft.logsumexp(a, keepdims=True)
    assert out.shape == (1,) and out.item() == 3.0
    assert ft.softmax(a).item() == 1.0
    (g,) = torch.autograd.grad(ft.logsumexp(a), a)
    assert g.item() == 1.0


def test_float16_and_bfloat16():
    """float16 goes to fastops as float16 (its float32 accumulation); bfloat16 is computed in
    float32 and returned as bfloat16, gradient too."""
    x = randn(4, 9)
    h = x.to(torch.float16)
    assert_same(ft.softmax(h), fastops.softmax(h.numpy()))
    f = x.to(torch.float32).requires_grad_()
    y = ft.softmax(f)
    assert_same(y, fastops.softmax(f.detach().numpy()))
    (g,) = torch.autograd.grad(y, f, torch.ones_like(y))
    assert_same(g, fastops.softmax_backward(y.detach().numpy(), np.ones((4, 9), np.float32)))
    xb = x.to(torch.bfloat16).requires_grad_()
    y = ft.log_softmax(xb)
    assert y.dtype == torch.bfloat16
    want = fastops.log_softmax(xb.detach().float().numpy())
    assert torch.equal(y, torch.from_numpy(want).to(torch.bfloat16))
    (g,) = torch.autograd.grad(y.sum(), xb)
    assert g.dtype == torch.bfloat16 and torch.isfinite(g).all()


def test_strided_inputs_are_read_in_place(monkeypatch):
    """A transposed and a sliced tensor reach the kernel as views of their own memory (same
    pointer and strides), and the result tensor wraps the kernel's output array."""
    calls = record(monkeypatch, "softmax")
    base = randn(6, 8)
    for x in (base.T, base[:, ::2]):
        y = ft.softmax(x, axis=0)
        arr = calls[-1][0][0]
        assert arr.ctypes.data == x.data_ptr()
        assert arr.strides == tuple(s * x.element_size() for s in x.stride())
        assert_same(y, fastops.softmax(x.numpy(), axis=0))
    calls.clear()
    x = randn(5, 8)
    y = ft.softmax(x)
    assert y.data_ptr() == calls[-1][2].ctypes.data  # the result itself: no copy either


def test_backward_reads_saved_output_in_place(monkeypatch):
    calls = record(monkeypatch, "softmax_backward")
    x = randn(3, 6, grad=True)
    y = ft.softmax(x)
    y.backward(torch.ones_like(y))
    assert calls[-1][0][0].ctypes.data == y.data_ptr()


def test_compile_fullgraph_matches_eager():
    """torch.compile(fullgraph=True) of a loss made of the five ops: no graph break, eager's
    value and gradient. (aot_eager: dynamo + AOTAutograd with the fake and backward kernels;
    inductor's C++ build of the surrounding torch ops would add ~40 s here.)"""
    x = randn(3, 5, grad=True)
    m = mask(3, 5, empty_row=None)

    def loss(x, m):
        p = ft.softmax(x, where=m, temperature=0.5)
        lp = ft.log_softmax(x, where=m)
        return ((p * x).sum() + torch.where(m, lp, 0.0).sum()
                + ft.logsumexp(x, axis=1, where=m).sum() + ft.smooth_max(x).sum()
                + ft.soft_argmax(x, where=m).sum())

    want = loss(x, m)
    (gwant,) = torch.autograd.grad(want, x)
    got = torch.compile(loss, fullgraph=True, backend="aot_eager")(x, m)
    (g,) = torch.autograd.grad(got, x)
    assert torch.equal(got, want)
    assert torch.equal(g, gwant)


def test_errors_name_the_function_and_argument():
    x = randn(2, 3)
    with pytest.raises(TypeError, match=r"fastops\.torch\.softmax: x must be a floating tensor"):
        ft.softmax(x.to(torch.int64))
    with pytest.raises(TypeError, match=r"fastops\.torch\.softmax: x must be a dense"):
        ft.softmax(x.to_sparse())
    with pytest.raises(TypeError, match=r"fastops\.torch\.logsumexp: where must be a boolean"):
        ft.logsumexp(x, where=torch.ones(2, 3))
    with pytest.raises(TypeError, match=r"fastops\.torch\.smooth_max: x is on the meta device"):
        ft.smooth_max(torch.empty(2, 3, device="meta"))
    with pytest.raises(TypeError, match=r"fastops\.torch\.soft_argmax: x must be a torch.Tensor"):
        ft.soft_argmax(np.ones(3))
    with pytest.raises(TypeError, match=r"fastops\.torch\.logsumexp: a must be a floating"):
        ft.logsumexp(x.to(torch.complex128))
    with pytest.raises(ValueError, match=r"fastops\.torch\.softmax: temperature must be a finite"):
        ft.softmax(x, temperature=0.0)
    with pytest.raises(TypeError, match=r"fastops\.torch\.softmax: temperature must be a real"):
        ft.softmax(x, temperature="1")
    with pytest.raises(np.exceptions.AxisError):
        ft.softmax(x, axis=2)
    with pytest.raises(TypeError, match=r"fastops\.torch\.log_softmax: axis must be"):
        ft.log_softmax(x, axis=1.0)
