"""The matrix: every orthogonality function x backend x dtype x shape against the float64
reference, with the result's array type, dtype and shape, and inputs never written.

Shapes cover d > k, d < k (the small-Gram path), d = k, k = 1, d = 1, batches (one and two
leading dims), a transposed view, a negative-stride view, an empty batch and d = 0 / k = 0.
"""

from __future__ import annotations

import numpy as np
import pytest

from fastops.orthogonality import reference

from ._support import (
    KINDS,
    assert_close_per_kernel,
    grad_scale,
    penalty_scale,
    random_matrix,
    result_dtype,
)

DTYPES = [np.float16, np.float32, np.float64, np.int64]
DTYPE_IDS = ["f16", "f32", "f64", "i64"]

# (id, base shape, view taking the input from the base: works on NumPy and CuPy arrays alike)
SHAPES = [
    ("d>k(5,3)", (5, 3), None),
    ("d<k(3,5)", (3, 5), None),
    ("d=k(4,4)", (4, 4), None),
    ("k=1(6,1)", (6, 1), None),
    ("d=1(1,6)", (1, 6), None),
    ("batch(3,64,32)", (3, 64, 32), None),
    ("batch-d<k(2,3,6,9)", (2, 3, 6, 9), None),
    ("T(7,4)", (7, 4), lambda a: a.T),
    ("negstride(10,12)[::-2,::-1]", (10, 12), lambda a: a[::-2, ::-1]),
    ("empty-batch(0,3,2)", (0, 3, 2), None),
    ("d=0(0,4)", (0, 4), None),
    ("k=0(4,0)", (4, 0), None),
]
MATRIX = [pytest.param(base, view, id=sid) for sid, base, view in SHAPES]


def _input(backend, rng, base, view, dtype):
    """(host input, the argument passed: a view of a device array where ``view`` is given)."""
    host_base = random_matrix(rng, base, dtype)
    host = host_base if view is None else view(host_base)
    dev_base = backend.asarray(host_base)
    return host, (dev_base if view is None else view(dev_base))


def _unchanged(backend, arg, host):
    assert np.array_equal(backend.asnumpy(arg), host), "an input argument was modified"


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize(("base", "view"), MATRIX)
@pytest.mark.parametrize("kind", KINDS)
def test_penalty_and_grad(backend, kind, base, view, dtype, rng):
    host, arg = _input(backend, rng, base, view, dtype)
    keep = host.copy()
    out_dtype = result_dtype(dtype)
    W64 = host.astype(np.float64)
    ref_value, ref_grad = reference.orthogonality_penalty_and_grad(W64, kind)
    scale = penalty_scale(W64, kind)

    value = backend.call("orthogonality_penalty", arg, kind)
    value_host = backend.asnumpy(value)
    assert_close_per_kernel(np.asarray(value_host)[..., None], np.asarray(ref_value)[..., None],
                            out_dtype, scale, f"orthogonality_penalty {kind}")

    got_value, got_grad = backend.call("orthogonality_penalty_and_grad", arg, kind)
    assert isinstance(got_grad, backend.array_type)
    if host.ndim > 2:
        assert isinstance(got_value, backend.array_type)
    assert_close_per_kernel(np.asarray(backend.asnumpy(got_value))[..., None],
                            np.asarray(ref_value)[..., None], out_dtype, scale,
                            f"orthogonality_penalty_and_grad value {kind}")
    assert_close_per_kernel(backend.asnumpy(got_grad), ref_grad, out_dtype, grad_scale(W64),
                            f"orthogonality_penalty_and_grad grad {kind}")
    _unchanged(backend, arg, keep)


def _som_scale(Y64, gamma=10.0, lambda1=100.0, lambda2=1.0):
    """The SOM penalty's terms on |Θ|: λ1 (Σ|Θ_ij|)² + λ2 ΣΘ_ij² (an upper bound of R)."""
    T = np.tanh(gamma * Y64)
    Yh = T / np.maximum(np.sqrt(np.sum(T * T, axis=-2, keepdims=True)), 1e-12)
    A = np.abs(np.swapaxes(Yh, -1, -2) @ Yh)
    return lambda1 * A.sum(axis=(-2, -1)) ** 2 + lambda2 * (A * A).sum(axis=(-2, -1))


@pytest.mark.filterwarnings("ignore:overflow encountered in cast")  # float16 gradients
@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize(("base", "view"), MATRIX)
def test_som(backend, base, view, dtype, rng):
    host, arg = _input(backend, rng, base, view, dtype)
    keep = host.copy()
    out_dtype = result_dtype(dtype)
    Y64 = host.astype(np.float64)
    ref_value, ref_grad = reference.som_penalty_and_grad(Y64)
    scale = _som_scale(Y64)
    value = backend.run("som_penalty", arg)
    assert_close_per_kernel(np.asarray(value)[..., None], np.asarray(ref_value)[..., None],
                            out_dtype, scale, "som_penalty")
    got_value, got_grad = backend.call("som_penalty_and_grad", arg)
    assert isinstance(got_grad, backend.array_type)
    assert_close_per_kernel(np.asarray(backend.asnumpy(got_value))[..., None],
                            np.asarray(ref_value)[..., None], out_dtype, scale,
                            "som_penalty_and_grad value")
    # dY's terms are bounded by γ · 4 (λ1 |S| k + λ2 ...) ~ the value times γ: use the max.
    grad_terms = 10.0 * 4.0 * np.sqrt(scale) * np.sqrt(np.maximum(scale, 1.0))
    assert_close_per_kernel(backend.asnumpy(got_grad), ref_grad, out_dtype, grad_terms,
                            "som_penalty_and_grad grad")
    _unchanged(backend, arg, keep)


@pytest.mark.parametrize("n_iter", [1, 3])
@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize(("base", "view"), MATRIX)
def test_spectral_norm(backend, base, view, dtype, n_iter, rng):
    host, arg = _input(backend, rng, base, view, dtype)
    keep = host.copy()
    u_host = rng.standard_normal(host.shape[:-1]).astype(result_dtype(dtype))
    u = backend.asarray(u_host)
    out_dtype = result_dtype(dtype)
    W64 = host.astype(np.float64)
    ref = reference.spectral_norm(W64, u_host.astype(np.float64), n_iter=n_iter)
    got = backend.call("spectral_norm", arg, u, n_iter=n_iter)
    assert len(got) == 3 and all(isinstance(g, backend.array_type) for g in got[1:])
    sigma, u_new, v_new = backend.asnumpy(got)
    size = np.sqrt(np.sum(W64 * W64, axis=(-2, -1)))
    # u and v have entries <= 1; each GEMV's rounding scales with ||W|| / sigma.
    vec_scale = size / np.maximum(np.asarray(ref[0], np.float64), 1e-3) + 1.0
    assert_close_per_kernel(np.asarray(sigma)[..., None], np.asarray(ref[0])[..., None],
                            out_dtype, size, "spectral_norm sigma")
    assert_close_per_kernel(u_new, ref[1], out_dtype, vec_scale, "spectral_norm u")
    assert_close_per_kernel(v_new, ref[2], out_dtype, vec_scale, "spectral_norm v")
    _unchanged(backend, arg, keep)
    _unchanged(backend, u, u_host)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("weights", [None, [0.5, 2.0, 1.0, 0.0, -1.0, 3.0]],
                         ids=["unweighted", "weighted"])
def test_list_of_kernels(backend, kind, weights, rng):
    """Mixed shapes, dtypes and batch dims; same-shaped kernels share one batched call."""
    hosts = [
        random_matrix(rng, (5, 3), np.float64),
        random_matrix(rng, (5, 3), np.float64),  # same shape as the first: stacked with it
        random_matrix(rng, (3, 5), np.float64),
        random_matrix(rng, (2, 4, 4), np.float64),  # a batch of kernels
        random_matrix(rng, (5, 3), np.float32),  # same shape, another dtype: its own group
        random_matrix(rng, (4, 4), np.float64),  # same matrix shape as the batch above
    ]
    keep = [h.copy() for h in hosts]
    args = [backend.asarray(h) for h in hosts]
    total, grads = backend.call("orthogonality_penalties_and_grads", args, kind, weights=weights)
    assert len(grads) == len(hosts)
    ws = weights or [1.0] * len(hosts)
    ref_total = 0.0
    scale_total = 0.0
    for h, g, w in zip(hosts, grads, ws, strict=True):
        W64 = h.astype(np.float64)
        ref_value, ref_grad = reference.orthogonality_penalty_and_grad(W64, kind)
        ref_total += w * float(np.sum(ref_value))
        scale_total += abs(w) * float(np.sum(penalty_scale(W64, kind)))
        assert isinstance(g, backend.array_type)
        assert_close_per_kernel(backend.asnumpy(g), w * np.asarray(ref_grad), h.dtype,
                                abs(w) * grad_scale(W64), f"list grad {h.shape} {h.dtype}")
    total_host = np.asarray(backend.asnumpy(total))
    assert total_host.shape == () and total_host.dtype == np.float64
    assert_close_per_kernel(total_host[None], np.array([ref_total]), np.float64,
                            np.array(scale_total) * 1e6, "list total")  # float32 member
    for a, h in zip(args, keep, strict=True):
        _unchanged(backend, a, h)


def test_list_of_kernels_empty_and_float32(backend, rng):
    total, grads = backend.run("orthogonality_penalties_and_grads", [])
    assert grads == [] and float(total) == 0.0
    hosts = [random_matrix(rng, (6, 2), np.float32), random_matrix(rng, (2, 6), np.float16)]
    total, grads = backend.call("orthogonality_penalties_and_grads",
                                [backend.asarray(h) for h in hosts])
    total = np.asarray(backend.asnumpy(total))
    assert total.dtype == np.float32  # float32 and float16 results promote to float32
    assert [backend.asnumpy(g).dtype for g in grads] == [np.float32, np.float16]
    ref = sum(float(reference.orthogonality_penalty(h.astype(np.float64))) for h in hosts)
    assert abs(float(total) - ref) <= 2e-3 * ref
