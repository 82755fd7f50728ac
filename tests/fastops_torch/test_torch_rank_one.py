"""fastops.torch rank-one exponentials: apply (and its inverse), chains with their logdet, the
logdet alone, and the Rank1ExpFlow layer."""

from __future__ import annotations

import pytest
from _torch_support import F64, assert_same, randn, torch

import fastops
import fastops.torch as ft


@pytest.mark.parametrize("inverse", [False, True])
def test_apply_bits_gradients_and_gradcheck(inverse):
    x, y = randn(3, seed=1, grad=True) / 2, randn(3, seed=2, grad=True) / 2
    x, y = x.detach().requires_grad_(), y.detach().requires_grad_()
    v = randn(4, 3, seed=3, grad=True)
    z = ft.expm_rank1_apply(x, y, v, inverse=inverse)
    xa, ya, va = (t.detach().numpy() for t in (x, y, v))
    assert_same(z, fastops.expm_rank1_apply(xa, ya, va, inverse=inverse))
    dz = randn(4, 3, seed=4)
    grads = torch.autograd.grad(z, (x, y, v), dz)
    for g, w in zip(grads, fastops.expm_rank1_apply_backward(xa, ya, va, dz.numpy(),
                                                             inverse=inverse), strict=True):
        assert_same(g, w)  # the broadcast x, y: summed over the batch by the kernel
    assert torch.autograd.gradcheck(
        lambda x, y, v: ft.expm_rank1_apply(x, y, v, inverse=inverse), (x, y, v))
    torch.library.opcheck(torch.ops.fastops.expm_rank1_apply, (x, y, v, inverse))


def test_chain_bits_both_cotangents_and_gradcheck():
    xs = (randn(3, 4, seed=1) / 3).requires_grad_()
    ys = (randn(3, 4, seed=2) / 3).requires_grad_()
    v = randn(5, 4, seed=3, grad=True)
    z, logdet = ft.expm_rank1_chain_apply(xs, ys, v)
    arrays = [t.detach().numpy() for t in (xs, ys, v)]
    wz, wl = fastops.expm_rank1_chain_apply(*arrays)
    assert_same(z, wz)
    assert_same(logdet, wl)
    dz, dl = randn(5, 4, seed=4), randn(5, seed=5)
    grads = torch.autograd.grad((z, logdet), (xs, ys, v), (dz, dl))
    for g, w in zip(grads, fastops.expm_rank1_chain_apply_backward(*arrays, dz.numpy(),
                                                                   dl.numpy()), strict=True):
        assert_same(g, w)
    assert torch.autograd.gradcheck(lambda a, b, c: ft.expm_rank1_chain_apply(a, b, c),
                                    (xs, ys, v))
    assert torch.autograd.gradcheck(
        lambda a, b, c: ft.expm_rank1_chain_apply(a, b, c, inverse=True), (xs, ys, v))
    torch.library.opcheck(torch.ops.fastops.expm_rank1_chain_apply, (xs, ys, v, False))


def test_logdet():
    x = randn(2, 3, seed=1, grad=True)
    y = randn(3, seed=2, grad=True)
    s = ft.expm_rank1_logdet(x, y)
    assert_same(s, fastops.expm_rank1_logdet(x.detach().numpy(), y.detach().numpy()))
    gx, gy = torch.autograd.grad(s.sum(), (x, y))
    torch.testing.assert_close(gx, y.detach().expand(2, 3), rtol=0, atol=0)
    torch.testing.assert_close(gy, x.detach().sum(0), rtol=1e-15, atol=0)
    assert torch.autograd.gradcheck(ft.expm_rank1_logdet, (x, y))
    torch.library.opcheck(torch.ops.fastops.expm_rank1_logdet, (x, y))


def test_promotion_and_errors():
    x32 = randn(3, dtype=torch.float32)
    z = ft.expm_rank1_apply(x32, x32 / 4, randn(3))
    assert z.dtype == F64  # torch's promotion of float32 with float64
    with pytest.raises(TypeError, match=r"fastops\.torch\.expm_rank1_apply: inverse must be"):
        ft.expm_rank1_apply(x32, x32, x32, inverse=1)
    with pytest.raises(TypeError, match=r"fastops\.torch\.expm_rank1_chain_apply: v must be"):
        ft.expm_rank1_chain_apply(randn(2, 3), randn(2, 3), torch.ones(3, dtype=torch.int64))
    with pytest.raises(ValueError, match="last dimension"):
        ft.expm_rank1_apply(randn(3), randn(2), randn(3))


def test_rank1_exp_flow_inverts_and_trains():
    torch.manual_seed(0)
    flow = ft.Rank1ExpFlow(4, 3, dtype=F64)
    v = randn(6, 4, seed=9)
    z, logdet = flow(v)
    back, neg = flow.inverse(z)
    torch.testing.assert_close(back, v, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(neg, -logdet, rtol=0, atol=0)
    torch.testing.assert_close(logdet, flow.log_det().expand(6), rtol=1e-14, atol=1e-15)
    dense = torch.eye(4, dtype=F64)
    for x, y in zip(flow.xs.detach(), flow.ys.detach(), strict=True):
        dense = torch.linalg.matrix_exp(torch.outer(x, y)) @ dense
    torch.testing.assert_close(z, v @ dense.T, rtol=1e-12, atol=1e-12)
    (z.square().sum() - logdet.sum()).backward()
    assert flow.xs.grad is not None and torch.isfinite(flow.ys.grad).all()
