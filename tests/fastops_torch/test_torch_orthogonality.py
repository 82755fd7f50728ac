"""fastops.torch orthogonality ops: values and gradients are fastops' fused ones, gradcheck,
opcheck, the batched list call, SOM and spectral norm."""

from __future__ import annotations

import pytest
from _torch_support import F64, assert_same, randn, record, torch

import fastops
import fastops.torch as ft

KINDS = ["frobenius", "offdiag", "spectral"]


@pytest.mark.parametrize("kind", KINDS)
def test_penalty_value_grad_and_gradcheck(kind):
    W = randn(2, 6, 3, grad=True)
    value = ft.orthogonality_penalty(W, kind)
    wv, wg = fastops.orthogonality_penalty_and_grad(W.detach().numpy(), kind)
    assert_same(value, wv)
    dv = torch.tensor([1.0, -2.0], dtype=F64)
    (g,) = torch.autograd.grad(value, W, dv)
    assert_same(g, wg * dv.numpy()[:, None, None])
    assert torch.autograd.gradcheck(lambda W: ft.orthogonality_penalty(W, kind), (W,))
    with torch.no_grad():
        assert_same(ft.orthogonality_penalty(W, kind), fastops.orthogonality_penalty(
            W.detach().numpy(), kind))


def test_opcheck():
    W = randn(2, 6, 3, grad=True)
    torch.library.opcheck(torch.ops.fastops.orthogonality_penalty_and_grad, (W, "offdiag"))
    torch.library.opcheck(torch.ops.fastops.orthogonality_penalty, (W.detach(), "spectral"))
    Ws = [randn(5, 3, grad=True), randn(4, 4, seed=1, grad=True)]
    torch.library.opcheck(torch.ops.fastops.orthogonality_penalties_and_grads,
                          (Ws, "frobenius", [1.0, 0.5]))
    Y = randn(6, 3, grad=True)
    torch.library.opcheck(torch.ops.fastops.som_penalty_and_grad, (Y, 1.0, 100.0, 1.0, 1e-12))
    torch.library.opcheck(torch.ops.fastops.spectral_norm, (W, randn(2, 6, seed=3), 2, 1e-12))


def test_conv_weight_view_is_passed_uncopied(monkeypatch):
    """A conv weight (out, in, kh, kw) as its (d, k) kernel: a transposed view, read by the
    fused kernel in place; the gradient reaches the weight through the view."""
    calls = record(monkeypatch, "orthogonality_penalty_and_grad")
    w = randn(4, 2, 3, 3, grad=True)
    W = w.reshape(4, -1).T
    value = ft.orthogonality_penalty(W, "frobenius")
    arr = calls[-1][0][0]
    assert arr.ctypes.data == w.data_ptr() and arr.shape == (18, 4)
    value.backward()
    _, want = fastops.orthogonality_penalty_and_grad(W.detach().numpy())
    assert_same(w.grad.reshape(4, -1).T, want)


def test_penalties_list_and_regularizer():
    layers = torch.nn.Sequential(torch.nn.Conv2d(2, 4, 3), torch.nn.Flatten(),
                                 torch.nn.Linear(4, 3), torch.nn.Linear(3, 3)).double()
    reg = ft.OrthogonalityRegularizer(layers, "offdiag", 0.25)
    total = reg()
    Ws = [p.detach().reshape(p.shape[0], -1).T.numpy() for p in layers.parameters()
          if p.ndim >= 2]
    want, grads = fastops.orthogonality_penalties_and_grads(Ws, "offdiag", weights=[0.25] * 3)
    assert_same(total, want)
    total.backward()
    weights = [p for p in layers.parameters() if p.ndim >= 2]
    for p, g in zip(weights, grads, strict=True):
        assert_same(p.grad.reshape(p.shape[0], -1).T, g)
    Ws = [randn(5, 3, grad=True), randn(2, 5, 3, seed=2, grad=True), randn(3, 3, seed=4,
                                                                        grad=True)]
    assert torch.autograd.gradcheck(
        lambda a, b, c: ft.orthogonality_penalties([a, b, c], "frobenius",
                                                   weights=[1.0, 2.0, 0.5]), Ws)


def test_som_penalty():
    Y = randn(2, 6, 3, grad=True)
    value = ft.som_penalty(Y, gamma=1.0)
    wv, wg = fastops.som_penalty_and_grad(Y.detach().numpy(), gamma=1.0)
    assert_same(value, wv)
    (g,) = torch.autograd.grad(value.sum(), Y)
    assert_same(g, wg)
    assert torch.autograd.gradcheck(lambda Y: ft.som_penalty(Y, gamma=1.0), (Y,))


def test_spectral_norm():
    """The power iteration's bits; sigma differentiable as uᵀWv with u, v constant (torch's
    rule), u and v without gradient."""
    W = randn(2, 5, 4, grad=True)
    u = randn(2, 5, seed=7)
    sigma, u1, v1 = ft.spectral_norm(W, u, n_iter=3)
    for t, a in zip((sigma, u1, v1), fastops.spectral_norm(W.detach().numpy(), u.numpy(),
                                                           n_iter=3), strict=True):
        assert_same(t, a)
    assert not u1.requires_grad and not v1.requires_grad
    (g,) = torch.autograd.grad(sigma.sum(), W)
    torch.testing.assert_close(g, u1[:, :, None] * v1[:, None, :], rtol=0, atol=0)


def test_spectral_norm_parametrization():
    from torch.nn.utils import parametrize

    torch.manual_seed(0)
    layer = torch.nn.Linear(6, 5).double()
    parametrize.register_parametrization(layer, "weight", ft.SpectralNorm(layer.weight))
    for _ in range(30):  # training mode: the buffer u converges
        w = layer.weight
    sigma = torch.linalg.matrix_norm(w.detach(), 2)
    assert abs(sigma.item() - 1.0) < 1e-6
    layer.eval()
    u = layer.parametrizations.weight[0]._u.clone()
    assert torch.equal(layer.weight, layer.weight)  # eval: u is kept, results repeat
    assert torch.equal(layer.parametrizations.weight[0]._u, u)
    layer.train()
    out = layer(randn(3, 6)).sum()
    out.backward()
    assert layer.parametrizations.weight.original.grad is not None


def test_errors():
    with pytest.raises(TypeError, match=r"fastops\.torch\.orthogonality_penalty: W must be"):
        ft.orthogonality_penalty(torch.ones(3, 3, dtype=torch.int32))
    with pytest.raises(TypeError, match=r"fastops\.torch\.orthogonality_penalties: Ws must be"):
        ft.orthogonality_penalties(randn(3, 3))
    with pytest.raises(ValueError, match="kind"):
        ft.orthogonality_penalty(randn(3, 3), "nope")
    with pytest.raises(TypeError, match=r"fastops\.torch\.spectral_norm: n_iter must be an int"):
        ft.spectral_norm(randn(3, 3), randn(3), n_iter=1.0)
