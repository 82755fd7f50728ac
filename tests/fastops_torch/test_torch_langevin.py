"""fastops.torch Langevin ops: the NumPy functions' bits, in place in the tensor's own memory,
MALA with a tensor callback, the GMM score; no gradients."""

from __future__ import annotations

import numpy as np
import pytest
from _torch_support import F64, assert_same, randn, torch

import fastops
import fastops.torch as ft


def test_langevin_step_bits_and_in_place():
    x, s = randn(5, 3), randn(5, 3, seed=1)
    y = ft.langevin_step(x, s, 0.1, seed=7, step=3)
    want = fastops.langevin_step(x.numpy(), s.numpy(), 0.1, seed=7, step=3)
    assert_same(y, want)
    xt = x.T.clone().T  # a Fortran-ordered tensor: stepped where it lies
    ptr = xt.data_ptr()
    out = ft.langevin_step_(xt, s, 0.1, seed=7, step=3)
    assert out is xt and xt.data_ptr() == ptr
    assert_same(xt, want)
    target = torch.empty_like(x)
    assert ft.langevin_step(x, s, 0.1, seed=7, step=3, out=target) is target
    assert_same(target, want)
    big = 2**64 - 1  # a seed beyond int64 crosses the schema as its bits
    assert_same(ft.langevin_step(x, s, 0.1, seed=big, step=big),
                fastops.langevin_step(x.numpy(), s.numpy(), 0.1, seed=big, step=big))


def test_langevin_step_no_grad_and_opcheck():
    x = randn(4, 2, grad=True)
    assert not ft.langevin_step(x, x, 0.1, seed=0, step=0).requires_grad
    torch.library.opcheck(torch.ops.fastops.langevin_step,
                          (x.detach(), x.detach(), 0.1, 1, 2, 1.0, 0))
    torch.library.opcheck(torch.ops.fastops.langevin_step_,
                          (x.detach().clone(), x.detach(), 0.1, 1, 2, 1.0, 0))


def test_langevin_bfloat16_in_place(monkeypatch):
    """bfloat16 is stepped in float32 and copied back. (The float32 step runs on the NumPy
    reference here, whose bits the Numba kernel's own tests match: this checks the staging
    without another Numba compilation.)"""
    original = fastops.langevin_step
    monkeypatch.setattr(fastops, "langevin_step",
                        lambda *a, **kw: original(*a, **kw, backend="numpy"))
    x = randn(4, 3).to(torch.bfloat16)
    want = fastops.langevin_step(x.float().numpy(), x.float().numpy(), 0.1, seed=1, step=2)
    ft.langevin_step_(x, x.clone(), 0.1, seed=1, step=2)
    assert torch.equal(x, torch.from_numpy(want).to(torch.bfloat16))


def test_mala_step_matches_numpy():
    def target_np(y):
        return -0.5 * np.sum(y * y, axis=1), -y

    def target_t(y):
        assert isinstance(y, torch.Tensor)
        return -0.5 * (y * y).sum(1), -y

    x = randn(16, 2)
    lp, s = target_t(x)
    got = ft.mala_step(x, lp, s, target_t, 0.5, seed=1, step=4)
    want = fastops.mala_step(x.numpy(), lp.numpy(), s.numpy(), target_np, 0.5, seed=1, step=4)
    for t, w in zip(got, want, strict=True):
        assert_same(t, w)
    assert got[3].dtype == torch.bool


def test_gmm_score():
    x = randn(6, 2, grad=True)
    means = torch.tensor([[0.0, 0.0], [2.0, 1.0]], dtype=F64)
    lw = torch.tensor([0.0, -1.0], dtype=F64)
    got = ft.gmm_score(x, means, 0.5, log_weights=lw, component_std=0.3)
    assert not got.requires_grad
    assert_same(got, fastops.gmm_score(x.detach().numpy(), means.numpy(), 0.5,
                                       log_weights=lw.numpy(), component_std=0.3))
    torch.library.opcheck(torch.ops.fastops.gmm_score, (x.detach(), means, 0.5, lw, 0.3))


def test_errors():
    x = randn(3, 2)
    with pytest.raises(ValueError, match=r"fastops\.torch\.langevin_step: seed must be an int"):
        ft.langevin_step(x, x, 0.1, seed=-1, step=0)
    with pytest.raises(ValueError, match=r"fastops\.torch\.langevin_step: step_size must be"):
        ft.langevin_step(x, x, 0.0, seed=0, step=0)
    with pytest.raises(ValueError, match=r"fastops\.torch\.langevin_step: out must have"):
        ft.langevin_step(x, x, 0.1, seed=0, step=0, out=torch.empty(2, 3, dtype=F64))
    with pytest.raises(TypeError, match=r"fastops\.torch\.mala_step: log_prob_and_score must"):
        ft.mala_step(x, x[:, 0], x, None, 0.1, seed=0, step=0)
