"""The boundary: conversions are views, devices and dtypes are checked, and the CUDA path
(gpu-marked: DLPack into CuPy on torch's stream). That `import fastops` never imports torch is
tests/test_dispatch.py::test_cpu_use_never_imports_cupy (one subprocess for cupy and torch)."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import numpy as np
import pytest
from _torch_support import F64, assert_same, cuda_only, randn, record, torch

import fastops
import fastops.torch as ft
from fastops.torch import _interop as io

REPO = Path(__file__).resolve().parents[2]


def test_ops_are_registered_under_the_fastops_namespace():
    for name in ("logsumexp", "softmax_backward", "orthogonality_penalty_and_grad",
                 "expm_rank1_chain_apply_backward", "langevin_step_"):
        assert hasattr(torch.ops.fastops, name)
    schema = str(torch.ops.fastops.langevin_step_.default._schema)
    assert re.search(r"Tensor\(a\d*!\) x", schema), schema  # mutates x, in place


def test_results_are_wrapped_without_copies():
    a = np.arange(12.0).reshape(3, 4)[:, ::2]  # strided: torch.from_numpy keeps it as is
    t = io.from_array(a)
    assert t.data_ptr() == a.ctypes.data and t.stride() == (4, 2)
    ro = np.ones(3)
    ro.flags.writeable = False  # torch cannot wrap read-only memory safely: copied
    assert io.from_array(ro).data_ptr() != ro.ctypes.data
    neg = np.arange(4.0)[::-1]
    assert torch.equal(io.from_array(neg), torch.tensor([3.0, 2.0, 1.0, 0.0], dtype=F64))
    assert io.from_array(np.float64(2.5)).shape == ()


def test_inputs_are_viewed_without_copies():
    x = randn(4, 6)[:, 1::2]
    arr = io.to_array("softmax", "x", x)
    assert arr.ctypes.data == x.data_ptr()
    assert arr.strides == (48, 16)
    with pytest.raises(TypeError, match="bfloat16"):
        io.to_array("softmax", "x", x.to(torch.bfloat16))


def test_devices_must_match():
    cpu = randn(2, 3)
    meta = torch.empty(2, 3, dtype=F64, device="meta")
    with pytest.raises(TypeError, match=r"fastops\.torch\.softmax: all tensors must be on one "
                                        r"device; got x on cpu and where on meta"):
        io.check_devices("softmax", [("x", cpu), ("where", meta)])


def test_unsupported_devices_and_layouts():
    with pytest.raises(TypeError, match=r"fastops\.torch\.softmax: x is on the meta device"):
        ft.softmax(torch.empty(2, 2, device="meta"))
    with pytest.raises(TypeError, match=r"fastops\.torch\.orthogonality_penalty: W must be a "
                                        r"dense"):
        ft.orthogonality_penalty(torch.eye(3).to_sparse())


def test_example_trains():
    """examples/flow_density.py at a tiny size: the loss goes down."""
    spec = importlib.util.spec_from_file_location("flow_density",
                                                  REPO / "examples" / "flow_density.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    losses = module.main(["--steps", "20", "--batch", "64", "--layers", "4", "--every", "10",
                          "--dtype", "float64"])  # float64: the kernels the other tests compiled
    assert len(losses) == 3
    assert losses[-1] < losses[0] - 0.3, losses


# --------------------------------------------------------------------------------------------
# CUDA (unverified until run on a GPU: scripts/gpu_check.sh runs the gpu-marked tests)
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dummy", [pytest.param(0, marks=cuda_only)])
def test_cuda_matches_cpu_and_reads_in_place(dummy, monkeypatch):
    pytest.importorskip("cupy")
    calls = record(monkeypatch, "softmax")
    x = randn(5, 33).cuda()
    m = (torch.rand(5, 33) > 0.2).cuda()
    y = ft.softmax(x, where=m)
    arr = calls[-1][0][0]
    assert arr.data.ptr == x.data_ptr()
    assert y.device == x.device
    torch.testing.assert_close(y.cpu(), ft.softmax(x.cpu(), where=m.cpu()), rtol=1e-13,
                               atol=1e-15)
    xg = x.clone().requires_grad_()
    assert torch.autograd.gradcheck(lambda t: ft.log_softmax(t, where=m).masked_fill(~m, 0.0),
                                    (xg,))
    torch.library.opcheck(torch.ops.fastops.logsumexp, (xg, [1], None, False, False, m))


@pytest.mark.parametrize("dummy", [pytest.param(0, marks=cuda_only)])
def test_cuda_runs_on_torchs_current_stream(dummy):
    pytest.importorskip("cupy")
    x = randn(64, 129).cuda()
    stream = torch.cuda.Stream()
    with torch.cuda.stream(stream):
        y = ft.logsumexp(x, axis=1)
        z = y * 2  # torch work queued after the kernel on the same stream
    stream.synchronize()
    torch.testing.assert_close(z.cpu(), 2 * torch.logsumexp(x.cpu(), 1), rtol=1e-13, atol=0)


@pytest.mark.parametrize("dummy", [pytest.param(0, marks=cuda_only)])
def test_cuda_mixed_devices_are_a_type_error(dummy):
    with pytest.raises(TypeError, match="all tensors must be on one device"):
        ft.softmax(randn(2, 3), where=torch.ones(2, 3, dtype=torch.bool, device="cuda"))


@pytest.mark.parametrize("dummy", [pytest.param(0, marks=cuda_only)])
def test_cuda_families(dummy):
    pytest.importorskip("cupy")
    W = randn(2, 6, 3, grad=True)
    Wc = W.detach().cuda().requires_grad_()
    assert torch.autograd.gradcheck(lambda W: ft.orthogonality_penalty(W, "offdiag"), (Wc,))
    xs, ys, v = (randn(3, 4, seed=1) / 3).cuda(), (randn(3, 4, seed=2) / 3).cuda(), randn(5, 4)
    z, ld = ft.expm_rank1_chain_apply(xs, ys, v.cuda())
    zc, ldc = ft.expm_rank1_chain_apply(xs.cpu(), ys.cpu(), v)
    torch.testing.assert_close(z.cpu(), zc, rtol=1e-12, atol=1e-12)
    x = randn(8, 4).cuda()
    ptr = x.data_ptr()
    ft.langevin_step_(x, x.clone(), 0.1, seed=1, step=2)
    assert x.data_ptr() == ptr
    assert_same(x.cpu(), fastops.langevin_step(randn(8, 4).numpy(), randn(8, 4).numpy(), 0.1,
                                               seed=1, step=2))
