"""The "orthogonality" rows of semantics.md, one test each, on every backend; and the math:
spectral penalties against numpy.linalg.eigvalsh, spectral_norm against the SVD, SOM against a
loop-by-loop transcription of formulas.md 4.1, every gradient against central finite
differences of the reference, and the O(min(d, k)²) memory promise."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

import fastops
from fastops.orthogonality import reference

from ._support import KINDS, random_matrix

F64 = np.float64
PENALTY_OPS = ("orthogonality_penalty", "orthogonality_penalty_and_grad")
ALL_OPS = PENALTY_OPS + ("som_penalty", "som_penalty_and_grad", "spectral_norm")


def _call(backend, op, x, **kwargs):
    """Run op on x (a host array) with its other arguments filled in; host results."""
    if op == "spectral_norm":
        u = np.ones(x.shape[:-1]) if x.ndim >= 1 else np.ones(1)
        return backend.run(op, x, u, **kwargs)
    return backend.run(op, x, **kwargs)


# --- W.ndim < 2 --------------------------------------------------------------------------------

@pytest.mark.parametrize("op", ALL_OPS)
@pytest.mark.parametrize("shape", [(), (5,)], ids=["0-d", "1-d"])
def test_fewer_than_two_dims_is_a_value_error(backend, op, shape):
    x = backend.asarray(np.ones(shape))
    with pytest.raises(ValueError, match=rf"{op}\b.*at least 2 dimensions.*got shape"):
        if op == "spectral_norm":
            backend.call(op, x, backend.asarray(np.ones(1)))
        else:
            backend.call(op, x)


def test_list_member_with_fewer_than_two_dims(backend):
    with pytest.raises(ValueError, match=r"orthogonality_penalties_and_grads.*Ws\[1\]"):
        backend.call("orthogonality_penalties_and_grads",
                     [backend.asarray(np.eye(3)), backend.asarray(np.ones(3))])


# --- k = 1 ---------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_single_column(backend, dtype, rng):
    w = rng.standard_normal((9, 1)).astype(dtype)
    norm2 = float(np.sum(w.astype(F64) ** 2))
    value, grad = backend.run("orthogonality_penalty_and_grad", w, "frobenius")
    assert float(value) == pytest.approx((norm2 - 1.0) ** 2, rel=1e-5 if dtype == np.float32
                                         else 1e-13)
    np.testing.assert_allclose(grad, 4.0 * (norm2 - 1.0) * w, rtol=2e-5, atol=1e-6)
    value, grad = backend.run("orthogonality_penalty_and_grad", w, "offdiag")
    assert float(value) == 0.0 and not grad.any()
    value, dY = backend.run("som_penalty_and_grad", w)
    assert float(value) == 0.0 and not dY.any()
    assert float(backend.run("som_penalty", w)) == 0.0


# --- a zero column -----------------------------------------------------------------------

@pytest.mark.parametrize("shape", [(8, 4), (3, 6)], ids=["d>k", "d<k"])
def test_zero_column(backend, shape, rng):
    W = rng.standard_normal(shape)
    W[:, 1] = 0.0
    for kind in ("frobenius", "offdiag"):
        value, grad = backend.run("orthogonality_penalty_and_grad", W, kind)
        ref_value, ref_grad = reference.orthogonality_penalty_and_grad(W, kind)
        assert np.isfinite(value) and np.isfinite(grad).all()
        np.testing.assert_allclose(value, ref_value, rtol=1e-12)
        np.testing.assert_allclose(grad, ref_grad, rtol=1e-12, atol=1e-12 * abs(ref_grad).max())
    # SOM: the zero column is orthogonal to all (ϑ = 0 for it, via the eps guard), no gradient
    value, dY = backend.run("som_penalty_and_grad", W)
    without = np.delete(W, 1, axis=1)
    assert np.isfinite(value) and np.isfinite(dY).all()
    np.testing.assert_allclose(value, reference.som_penalty(without), rtol=1e-12)
    assert not dY[:, 1].any()
    np.testing.assert_allclose(np.delete(dY, 1, axis=1),
                               reference.som_penalty_and_grad(without)[1], rtol=1e-9,
                               atol=1e-12 * abs(dY).max())


def test_zero_matrix(backend):
    """All filters dead: penalties of the zero matrix, finite everywhere."""
    Z = np.zeros((5, 3))
    assert float(backend.run("orthogonality_penalty", Z, "frobenius")) == 3.0
    assert float(backend.run("orthogonality_penalty", Z, "offdiag")) == 0.0
    assert float(backend.run("orthogonality_penalty", Z, "spectral")) == 1.0
    value, dY = backend.run("som_penalty_and_grad", Z)
    assert float(value) == 0.0 and not dY.any()
    sigma, u, v = backend.run("spectral_norm", Z, np.ones(5))
    assert float(sigma) == 0.0 and not u.any() and not v.any()


# --- NaN / inf in one kernel of a batch ------------------------------------------------------

@pytest.mark.parametrize("bad", [np.nan, np.inf], ids=["nan", "inf"])
@pytest.mark.parametrize("shape", [(4, 7, 3), (4, 3, 7)], ids=["d>k", "d<k"])
@pytest.mark.parametrize("op", ["penalty", "som", "spectral_norm"])
def test_non_finite_in_one_kernel(backend, op, shape, bad, rng):
    """A NaN (or inf) in one kernel of a batch: NaN for that kernel (for an inf: inf or NaN,
    as the sums happen to combine it; SOM maps it through tanh(inf) = 1 and stays finite), and
    the other kernels are untouched by it."""
    W = random_matrix(rng, shape, F64)
    W[2, 1, 2] = bad
    good = [0, 1, 3]
    with np.errstate(all="ignore"):  # inf * 0 in the GEMMs, as in NumPy itself
        if op == "penalty":
            cases = [(backend.run("orthogonality_penalty_and_grad", W, kind),
                      reference.orthogonality_penalty_and_grad(W, kind)) for kind in KINDS]
        elif op == "som":
            cases = [(backend.run("som_penalty_and_grad", W), reference.som_penalty_and_grad(W))]
        else:
            u = np.ones(shape[:-1])
            cases = [(backend.run("spectral_norm", W, u, n_iter=2),
                      reference.spectral_norm(W, u, n_iter=2))]
    for got, ref in cases:
        value = np.asarray(got[0])
        if op == "som":
            np.testing.assert_allclose(value, ref[0], rtol=1e-11)
        elif np.isnan(bad):
            assert np.isnan(value[2]) and np.isnan(ref[0][2]), value
        else:
            assert not np.isfinite(value[2]) and not np.isfinite(ref[0][2]), value
        np.testing.assert_allclose(value[good], ref[0][good], rtol=1e-11)
        assert np.isfinite(value[good]).all()
        for g, r in zip(got[1:], ref[1:], strict=True):
            assert np.isfinite(g[good]).all()
            np.testing.assert_allclose(g[good], r[good], rtol=1e-9,
                                       atol=1e-11 * np.abs(r[good]).max())
            if not np.isfinite(value[2]):
                assert not np.isfinite(g[2]).all()


# --- d >> k and k >> d: O(min(d, k)²) memory ---------------------------------------------------

@pytest.mark.parametrize("shape", [(32768, 256), (256, 32768)], ids=["d>>k", "k>>d"])
@pytest.mark.parametrize("kind", KINDS)
def test_memory_stays_small_gram(shape, kind, rng):
    """W of (256, 32768): the naive 32768² Gram would need 8 GiB in float64; fastops' extra
    memory (traced NumPy allocations beyond the input and the gradient) stays below 4 MiB plus
    small vectors (the 256 x 256 Gram is 0.5 MiB; eigh's workspace is also O(min(d, k)²))."""
    W = (rng.standard_normal(shape) / np.sqrt(shape[0])).astype(np.float32)
    fastops.orthogonality_penalty_and_grad(W, kind)  # compile outside the trace
    tracemalloc.start()
    try:
        _, grad = fastops.orthogonality_penalty_and_grad(W, kind)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    extra = peak - grad.nbytes
    assert extra < 4 * 2**20, f"{extra / 2**20:.1f} MiB beyond the gradient"
    small = W[:128, :64] if shape[0] > shape[1] else W[:64, :128]
    np.testing.assert_allclose(
        fastops.orthogonality_penalty(small, kind),
        reference.orthogonality_penalty(small.astype(F64), kind), rtol=1e-4)


# --- unknown kind ------------------------------------------------------------------------

@pytest.mark.parametrize("op", PENALTY_OPS + ("orthogonality_penalties_and_grads",))
def test_unknown_kind_lists_the_kinds(backend, op):
    W = backend.asarray(np.eye(3))
    arg = [W] if op.endswith("grads") else W
    with pytest.raises(ValueError, match=rf"{op}: kind must be one of 'frobenius', 'offdiag', "
                                         rf"'spectral'; got 'l2'"):
        backend.call(op, arg, "l2")


# --- the math -------------------------------------------------------------------------------

@pytest.mark.parametrize("shape", [(12, 5), (5, 12), (7, 7), (3, 6, 4), (2, 4, 6)])
def test_spectral_against_eigvalsh(backend, shape, rng):
    W = random_matrix(rng, shape, F64)
    G = np.swapaxes(W, -1, -2) @ W - np.eye(shape[-1])
    expected = np.max(np.abs(np.linalg.eigvalsh(G)), axis=-1) ** 2
    np.testing.assert_allclose(backend.run("orthogonality_penalty", W, "spectral"), expected,
                               rtol=1e-12)


@pytest.mark.parametrize("shape", [(9, 6), (6, 9), (3, 8, 5)])
def test_spectral_norm_against_svd(backend, shape, rng):
    W = rng.standard_normal(shape)
    u0 = rng.standard_normal(shape[:-1])
    sigma, u, v = backend.run("spectral_norm", W, u0, n_iter=300)
    U, s, Vt = np.linalg.svd(W)
    np.testing.assert_allclose(sigma, s[..., 0], rtol=1e-10)
    # the singular vectors up to sign
    np.testing.assert_allclose(np.abs(np.sum(u * U[..., :, 0], axis=-1)), 1.0, rtol=1e-8)
    np.testing.assert_allclose(np.abs(np.sum(v * Vt[..., 0, :], axis=-1)), 1.0, rtol=1e-8)
    # sigma = uᵀ W v for the returned pair (Miyato's definition)
    np.testing.assert_allclose(np.einsum("...i,...ij,...j->...", u, W, v), sigma, rtol=1e-10)


def _som_by_loops(Y, gamma=10.0, lambda1=100.0, lambda2=1.0, eps=1e-12):
    """formulas.md 4.1 written element by element, independently of the reference."""
    b, k = Y.shape
    cols = []
    for i in range(k):
        t = [np.tanh(gamma * Y[a, i]) for a in range(b)]
        norm = np.sqrt(sum(v * v for v in t))
        cols.append([v / max(norm, eps) for v in t])
    S = 0.0
    Q = 0.0
    for i in range(k):
        for j in range(k):
            if i != j:
                theta = sum(cols[i][a] * cols[j][a] for a in range(b))
                S += theta
                Q += theta * theta
    return lambda1 * S * S + lambda2 * Q


@pytest.mark.parametrize("shape", [(6, 4), (3, 7), (10, 10)])
@pytest.mark.parametrize("params", [{}, {"gamma": 2.0, "lambda1": 3.0, "lambda2": 0.5}])
def test_som_against_the_formula(backend, shape, params, rng):
    Y = rng.standard_normal(shape) * 0.3
    expected = _som_by_loops(Y, **params)
    assert float(backend.run("som_penalty", Y, **params)) == pytest.approx(expected, rel=1e-11)
    assert float(reference.som_penalty(Y, **params)) == pytest.approx(expected, rel=1e-11)


def _central_differences(f, X, h=1e-6):
    grad = np.zeros_like(X)
    for idx in np.ndindex(X.shape):
        Xp = X.copy()
        Xm = X.copy()
        Xp[idx] += h
        Xm[idx] -= h
        grad[idx] = (float(np.sum(f(Xp))) - float(np.sum(f(Xm)))) / (2 * h)
    return grad


@pytest.mark.parametrize("shape", [(7, 4), (4, 7), (2, 5, 3)])
@pytest.mark.parametrize("kind", KINDS)
def test_penalty_gradient_against_finite_differences(backend, kind, shape, rng):
    W = random_matrix(rng, shape, F64)
    fd = _central_differences(lambda X: reference.orthogonality_penalty(X, kind), W)
    _, grad = backend.run("orthogonality_penalty_and_grad", W, kind)
    np.testing.assert_allclose(grad, fd, rtol=1e-6, atol=1e-7 * np.abs(fd).max())


@pytest.mark.parametrize("shape", [(8, 4), (3, 6), (2, 6, 3)])
def test_som_gradient_against_finite_differences(backend, shape, rng):
    Y = rng.standard_normal(shape) * 0.1  # away from tanh's saturation
    params = {"gamma": 3.0, "lambda1": 2.0, "lambda2": 1.5}
    fd = _central_differences(lambda X: reference.som_penalty(X, **params), Y)
    _, dY = backend.run("som_penalty_and_grad", Y, **params)
    np.testing.assert_allclose(dY, fd, rtol=1e-6, atol=1e-7 * np.abs(fd).max())


def test_list_gradient_against_finite_differences(backend, rng):
    Ws = [random_matrix(rng, (5, 3), F64), random_matrix(rng, (3, 5), F64),
          random_matrix(rng, (5, 3), F64)]
    weights = [0.5, 2.0, -1.0]
    _, grads = backend.run("orthogonality_penalties_and_grads", Ws, "offdiag", weights=weights)
    for i, W in enumerate(Ws):
        def total(X, i=i):
            members = [X if j == i else Ws[j] for j in range(len(Ws))]
            return reference.orthogonality_penalties_and_grads(members, "offdiag",
                                                               weights=weights)[0]
        fd = _central_differences(total, W)
        np.testing.assert_allclose(grads[i], fd, rtol=1e-6, atol=1e-7 * np.abs(fd).max())


@pytest.mark.parametrize("shape", [(64, 16), (16, 64)], ids=["d>k", "d<k"])
def test_nearly_orthogonal_keeps_its_digits(backend, shape, rng):
    """Training drives W to orthogonality, where ||WᵀW − I||² is the difference of O(k) terms:
    the value and gradient keep float64 accuracy relative to themselves (no cancellation
    against the diagonal)."""
    Q, _ = np.linalg.qr(rng.standard_normal((max(shape), min(shape))))
    W = (Q if shape[0] > shape[1] else Q.T) + 1e-7 * rng.standard_normal(shape)
    for kind in ("frobenius", "offdiag"):
        value, grad = backend.run("orthogonality_penalty_and_grad", W, kind)
        ref_value, ref_grad = reference.orthogonality_penalty_and_grad(W, kind)
        if kind == "offdiag" and shape[0] < shape[1]:
            continue  # k > d: the columns cannot be orthogonal; nothing cancels to 0 here
        # for d < k the rows are orthonormal and WᵀW − I keeps k − d eigenvalues −1
        floor = max(shape[1] - shape[0], 0) if kind == "frobenius" else 0
        assert abs(ref_value - floor) < 1e-10
        assert float(value) == pytest.approx(float(ref_value), rel=1e-6, abs=1e-20)
        np.testing.assert_allclose(grad, ref_grad, rtol=1e-6, atol=1e-6 * np.abs(ref_grad).max())


def test_orthonormal_kernels_have_zero_penalty(backend, rng):
    Q, _ = np.linalg.qr(rng.standard_normal((10, 4)))
    value, grad = backend.run("orthogonality_penalty_and_grad", Q, "frobenius")
    assert abs(float(value)) < 1e-28 and np.abs(grad).max() < 1e-14
    # orthogonal, not normalised: offdiag ignores the norms
    value, grad = backend.run("orthogonality_penalty_and_grad", Q * [1.0, 2.0, 3.0, 0.5],
                              "offdiag")
    assert abs(float(value)) < 1e-28 and np.abs(grad).max() < 1e-14
