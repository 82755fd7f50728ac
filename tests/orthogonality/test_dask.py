"""Orthogonality penalties of dask arrays (fastops.orthogonality.dask): lazy results equal to
the float64 reference within the family tolerances for every chunking: a stack chunked along
its batch (one in-memory call per block), a tall W chunked along d and a wide one along k (the
small-side Gram as a tree sum of the blocks' Grams, the gradient blockwise), both sides chunked
(the small side rechunked), integer and float16 input, NaN in one kernel, the errors."""

from __future__ import annotations

import numpy as np
import pytest

import fastops
from fastops.orthogonality import reference

from ._support import (
    KINDS,
    assert_close_per_kernel,
    grad_scale,
    penalty_scale,
    random_matrix,
    result_dtype,
)

da = pytest.importorskip("dask.array")

# (id, shape, chunks)
CHUNKINGS = [
    ("batch", (3, 24, 5), (1, 24, 5)),
    ("tall-d", (40, 6), (7, 6)),
    ("wide-k", (6, 40), (6, 9)),
    ("both", (2, 30, 7), (1, 11, 3)),
    ("wide-both", (9, 33), (4, 10)),
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize(("shape", "chunks"),
                         [pytest.param(s, c, id=i) for i, s, c in CHUNKINGS])
@pytest.mark.parametrize("kind", KINDS)
def test_against_the_reference(kind, shape, chunks, dtype, rng):
    W = random_matrix(rng, shape, dtype)
    W64 = W.astype(np.float64)
    dW = da.from_array(W, chunks=chunks)
    value, grad = fastops.orthogonality_penalty_and_grad(dW, kind)
    assert isinstance(value, da.Array) and isinstance(grad, da.Array)
    alone = fastops.orthogonality_penalty(dW, kind)
    value, grad, alone = da.compute(value, grad, alone, scheduler="synchronous")
    ref_value, ref_grad = reference.orthogonality_penalty_and_grad(W64, kind)
    out = result_dtype(dtype)
    what = f"{kind} {shape} chunks={chunks}"
    assert_close_per_kernel(value, ref_value, out, penalty_scale(W64, kind), f"{what} value")
    assert_close_per_kernel(alone, ref_value, out, penalty_scale(W64, kind), f"{what} alone")
    assert_close_per_kernel(grad, ref_grad, out, grad_scale(W64), f"{what} grad")


@pytest.mark.parametrize("dtype", [np.int32, np.float16], ids=["i32", "f16"])
def test_promoted_dtypes(dtype, rng):
    W = random_matrix(rng, (30, 5), dtype)
    value, grad = da.compute(*fastops.orthogonality_penalty_and_grad(
        da.from_array(W, chunks=(8, 5))))
    ref_value, ref_grad = reference.orthogonality_penalty_and_grad(W.astype(np.float64))
    out = result_dtype(dtype)
    W64 = W.astype(np.float64)
    assert_close_per_kernel(value, ref_value, out, penalty_scale(W64, "frobenius"), "value")
    assert_close_per_kernel(grad, ref_grad, out, grad_scale(W64), "grad")


@pytest.mark.parametrize("kind", KINDS)
def test_nan_stays_in_its_kernel(kind, rng):
    W = random_matrix(rng, (3, 20, 4), np.float64)
    W[1, 13, 2] = np.nan
    value, grad = da.compute(*fastops.orthogonality_penalty_and_grad(
        da.from_array(W, chunks=(1, 6, 4)), kind))
    assert np.isnan(value[1]) and np.isfinite(value[[0, 2]]).all()
    assert np.isnan(grad[1]).all() and np.isfinite(grad[[0, 2]]).all()


def test_errors_at_the_call():
    with pytest.raises(ValueError, match="orthogonality_penalty: kind"):
        fastops.orthogonality_penalty(da.zeros((4, 3), chunks=2), "nuclear")
    with pytest.raises(ValueError, match="orthogonality_penalty_and_grad: W"):
        fastops.orthogonality_penalty_and_grad(da.zeros(4, chunks=2))
    with pytest.raises(ValueError, match="orthogonality_penalty: backend"):
        fastops.orthogonality_penalty(da.zeros((4, 3), chunks=2), backend="numpy")


def test_list_of_kernels_with_dask_members(rng):
    """Dask and in-memory kernels of several shapes and dtypes in one list, with weights: the
    in-memory call's total and gradients (lazy); the in-memory call's errors."""
    Ws = [random_matrix(rng, (40, 6), np.float32), random_matrix(rng, (2, 5, 9), np.float64),
          random_matrix(rng, (7, 3), np.float64)]
    weights = [1.0, 0.5, 2.0]
    want_total, want_grads = fastops.orthogonality_penalties_and_grads(Ws, weights=weights)
    mixed = [da.from_array(Ws[0], chunks=(9, 6)), da.from_array(Ws[1], chunks=(1, 5, 4)), Ws[2]]
    total, grads = fastops.orthogonality_penalties_and_grads(mixed, weights=weights)
    assert isinstance(total, da.Array) and all(isinstance(g, da.Array) for g in grads)
    total, *grads = da.compute(total, *grads)
    assert total.dtype == np.asarray(want_total).dtype
    np.testing.assert_allclose(total, want_total, rtol=1e-5)
    for got, want in zip(grads, want_grads, strict=True):
        assert got.dtype == want.dtype and got.shape == want.shape
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)
    with pytest.raises(ValueError, match="orthogonality_penalties_and_grads: weights"):
        fastops.orthogonality_penalties_and_grads(mixed, weights=[1.0])
