"""Transposed W on the CPU (F-ordered matrices, stacks of transposes, the ``w.reshape(out,
-1).T`` view of a PyTorch conv weight): the Gram penalties and spectral_norm hand W to BLAS as
a transposed operand instead of copying it, with the results of the contiguous call (to BLAS's
rounding) and no input-sized temporary."""

from __future__ import annotations

import numpy as np
import pytest
from _memory import peak_bytes  # tests/ is on sys.path

import fastops
from fastops.orthogonality import reference

from ._support import KINDS, random_matrix

RTOL = {np.float32: 1e-5, np.float64: 1e-12}


def _transposed(rng, shape, dtype):
    """A (..., d, k) stack whose matrices are transposes of C-contiguous ones."""
    return np.swapaxes(random_matrix(rng, shape[:-2] + shape[-2:][::-1], dtype), -1, -2)


def _close(got, want, dtype):
    np.testing.assert_allclose(got, want, rtol=RTOL[dtype],
                               atol=RTOL[dtype] * max(float(np.max(np.abs(want))), 1.0))


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("shape", [(40, 12), (12, 40), (3, 20, 8)], ids=str)
@pytest.mark.parametrize("kind", KINDS)
def test_penalties_of_transposed_w(kind, shape, dtype, rng):
    W = _transposed(rng, shape, dtype)
    assert not W.flags.c_contiguous
    C = np.ascontiguousarray(W)
    _close(fastops.orthogonality_penalty(W, kind), fastops.orthogonality_penalty(C, kind), dtype)
    value, grad = fastops.orthogonality_penalty_and_grad(W, kind)
    want_value, want_grad = fastops.orthogonality_penalty_and_grad(C, kind)
    _close(value, want_value, dtype)
    _close(grad, want_grad, dtype)
    assert grad.shape == W.shape and grad.dtype == W.dtype
    ref_value, ref_grad = reference.orthogonality_penalty_and_grad(W.astype(np.float64), kind)
    np.testing.assert_allclose(value, ref_value, rtol=1e-4)
    np.testing.assert_allclose(grad, ref_grad, rtol=1e-3, atol=1e-4 * np.abs(ref_grad).max())


def test_conv_weight_view_and_mixed_groups(rng):
    w = random_matrix(rng, (16, 3, 3, 3), np.float32)  # PyTorch (out, in, kh, kw)
    view = w.reshape(16, -1).T  # (27, 16), F-ordered
    Ws = [view, np.ascontiguousarray(view), _transposed(rng, (27, 16), np.float32),
          _transposed(rng, (8, 30), np.float32)]
    total, grads = fastops.orthogonality_penalties_and_grads(Ws, "frobenius")
    want_total, want_grads = fastops.orthogonality_penalties_and_grads(
        [np.ascontiguousarray(W) for W in Ws], "frobenius")
    _close(total, want_total, np.float32)
    for g, h in zip(grads, want_grads, strict=True):
        _close(g, h, np.float32)


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("shape", [(30, 20), (20, 30), (4, 16, 24)], ids=str)
def test_spectral_norm_of_transposed_w(shape, dtype, rng):
    W = _transposed(rng, shape, dtype)
    u = rng.standard_normal(shape[:-1]).astype(dtype)
    got = fastops.spectral_norm(W, u, n_iter=3)
    want = fastops.spectral_norm(np.ascontiguousarray(W), u, n_iter=3)
    for g, h in zip(got, want, strict=True):
        _close(g, h, dtype)
    ref = reference.spectral_norm(W.astype(np.float64), u.astype(np.float64), n_iter=3)
    np.testing.assert_allclose(got[0], ref[0], rtol=1e-4)


def test_transposed_w_is_not_copied(rng):
    W = _transposed(rng, (1024, 256), np.float32)  # 1 MiB, F-ordered
    nbytes = W.size * W.itemsize
    u = rng.standard_normal(1024).astype(np.float32)
    assert peak_bytes(lambda: fastops.spectral_norm(W, u)) < nbytes // 8
    gram = 256 * 256 * 4
    # the gradient (W's size) and the 256 x 256 Gram, nothing of W's size besides
    extra = peak_bytes(lambda: fastops.orthogonality_penalty_and_grad(W)) - nbytes - gram
    assert extra < nbytes // 8, extra
