"""The "rank_one" rows of semantics.md, one test each, on every backend; and the math: dense
against scipy.linalg.expm, apply against dense @ v, inverse(apply(v)) = v, the chain's inverse
undoing it, logdet against numpy.linalg.slogdet of the dense product, and every gradient
against central finite differences of the float64 reference."""

from __future__ import annotations

import numpy as np
import pytest

from fastops.rank_one import reference

from ._support import assert_close, random_vectors

F64 = np.float64
FLOATS = [np.float32, np.float64]
FLOAT_IDS = ["f32", "f64"]


def _e(k, i, dtype=F64):
    a = np.zeros(k, dtype)
    a[i] = 1
    return a


# --- s = 0 (x = e1, y = e2): E = I + x yᵀ, det 1, logdet 0 -----------------------------------

@pytest.mark.parametrize("dtype", FLOATS, ids=FLOAT_IDS)
def test_s_zero_nilpotent(backend, dtype):
    k = 4
    x, y = _e(k, 0, dtype), 3 * _e(k, 1, dtype)
    E = backend.run("expm_rank1", x, y)
    want = np.eye(k) + np.outer(x, y)
    assert E.dtype == dtype and np.array_equal(E, want.astype(dtype))
    assert np.linalg.det(E.astype(F64)) == 1.0
    assert float(backend.run("expm_rank1_logdet", x, y)) == 0.0
    v = np.arange(1.0, k + 1).astype(dtype)
    assert np.array_equal(backend.run("expm_rank1_apply", x, y, v), (want @ v).astype(dtype))
    inv = np.eye(k) - np.outer(x, y)
    assert np.array_equal(backend.run("expm_rank1_apply", x, y, v, inverse=True),
                          (inv @ v).astype(dtype))


# --- |s| < 1e-8: φ(s) = expm1(s)/s, never (exp(s) - 1)/s; φ(0) = 1 exactly -------------------

@pytest.mark.parametrize("s", [1e-9, -3e-10, 1e-30, 5e-320])
def test_tiny_s_uses_expm1(backend, s):
    # x = (1, 1), y = (s, 0): s = yᵀx; E[0, 1] = φ(s) x_0 y_1 = 0, E[1, 0] = φ(s) s.
    x = np.array([1.0, 1.0])
    y = np.array([s, 0.0])
    E = backend.run("expm_rank1", x, y)
    phi = np.expm1(s) / s
    assert E[1, 0] == pytest.approx(phi * s, rel=1e-15, abs=0)
    # (exp(s) - 1)/s would give 0 or a value off by up to 1e-7 relative for these s.
    v = np.array([1.0, 2.0])
    z = backend.run("expm_rank1_apply", x, y, v)
    assert z[1] == pytest.approx(2.0 + phi * s, rel=1e-16)
    assert float(reference.phi(0.0)) == 1.0 and float(reference.phi(s)) == pytest.approx(
        1.0 + s / 2, rel=1e-15)


def test_tiny_s_float32(backend):
    x = np.array([1e-15, 1.0], np.float32)
    y = np.array([1e-15, 0.0], np.float32)  # s = 1e-30
    E = backend.run("expm_rank1", x, y)
    assert E.dtype == np.float32
    assert E[0, 0] == np.float32(1.0) and E[1, 0] == np.float32(1e-15)


def test_dphi_taylor_switch():
    """φ' is continuous across the Taylor threshold and matches a high-order series."""
    t = reference.DPHI_TAYLOR_BELOW
    for s in (t * (1 - 1e-12), t * (1 + 1e-12), -t * (1 - 1e-12), -t * (1 + 1e-12), 1e-9, 0.0):
        series = sum(m * s ** (m - 1) / np.prod(np.arange(1.0, m + 2)) for m in range(1, 30))
        assert float(reference.dphi(s)) == pytest.approx(series, rel=2e-14)


# --- s > 709 (float64) / 88.7 (float32): inf entries, finite logdet --------------------------

@pytest.mark.filterwarnings("ignore:overflow encountered in cast")  # the reference's cast
@pytest.mark.parametrize("dtype", FLOATS, ids=FLOAT_IDS)
def test_overflow(backend, dtype):
    big = 30.0 if dtype == F64 else 10.0  # s = 900 / 100
    x = np.array([big, 0.0, 1.0], dtype)
    y = np.array([big, 0.0, 0.0], dtype)
    s = big * big
    E = backend.run("expm_rank1", x, y)
    nonzero = np.outer(x, y) != 0
    assert np.all(np.isposinf(E[nonzero]))
    assert np.array_equal(E[~nonzero], np.eye(3)[~nonzero].astype(dtype))
    ld = backend.run("expm_rank1_logdet", x, y)
    assert np.isfinite(ld) and float(ld) == s
    # apply: entries where x_i == 0 keep v_i; with yᵀv == 0 the vector is unchanged
    z = backend.run("expm_rank1_apply", x, y, np.array([1.0, 2.0, 3.0], dtype))
    assert np.isposinf(z[0]) and np.isposinf(z[2]) and z[1] == 2
    v = np.array([0.0, 5.0, 7.0], dtype)
    assert np.array_equal(backend.run("expm_rank1_apply", x, y, v), v)


def test_log_space_coefficient(backend):
    """float64, s = 720: φ(s) overflows but φ(s)·(yᵀv) with a tiny yᵀv does not."""
    x = np.array([np.sqrt(720.0), 1.0])
    y = np.array([np.sqrt(720.0), 0.0])
    v = np.array([1e-300, 0.0])
    z = backend.run("expm_rank1_apply", x, y, v)
    c = np.exp(720.0 - np.log(720.0) + np.log(np.sqrt(720.0) * 1e-300))
    assert np.isfinite(z).all()
    assert z[1] == pytest.approx(c, rel=1e-12)


# --- E applied after E⁻¹: identity within 1e-12 (float64) for |s| <= 10 ------------------------

@pytest.mark.parametrize("s", [-10.0, -3.0, -1e-6, 0.0, 1e-6, 2.5, 10.0])
def test_apply_after_inverse_is_identity(backend, s, rng):
    """Within 1e-12 of the largest vector the round trip forms, up to |s| = 3; beyond, within
    16 ulp times cond(E) ~ e^|s|: one rounding of the intermediate is amplified by E's
    conditioning, so not even the float64 reference meets 1e-12 at |s| = 10 (measured 1.6e-12
    to 2.2e-12 on these inputs)."""
    k = 16
    y = rng.standard_normal((8, k))
    u = rng.standard_normal((8, k))
    u -= (u * y).sum(-1, keepdims=True) / (y * y).sum(-1, keepdims=True) * y  # u ⟂ y
    x = s * y / (y * y).sum(-1, keepdims=True) + 0.3 * u  # yᵀx = s, x not parallel to y
    v = rng.standard_normal((8, k))
    for first in (True, False):
        w = backend.run("expm_rank1_apply", x, y, v, inverse=first)
        back = backend.run("expm_rank1_apply", x, y, w, inverse=not first)
        scale = np.maximum(np.maximum(np.abs(v).max(-1), np.abs(w).max(-1)),
                           np.abs(back - w).max(-1))
        err = np.abs(back - v).max(axis=-1) / scale
        assert err.max() <= max(1e-12, 16 * np.finfo(F64).eps * np.exp(abs(s))), (first, err)


# --- x and y of different last dimension, v of wrong shape: ValueError naming both shapes ------

SHAPE_ERRORS = [
    ("expm_rank1", (np.ones(3), np.ones(4)), r"x and y .*x of shape \(3,\) and y of shape \(4,\)"),
    ("expm_rank1_logdet", (np.ones((2, 3)), np.ones(4)), r"x of shape \(2, 3\) and y of shape"),
    ("expm_rank1_apply", (np.ones(3), np.ones(3), np.ones(5)),
     r"x and v .*x of shape \(3,\) and v of shape \(5,\)"),
    ("expm_rank1_apply", (np.ones((2, 3)), np.ones((3, 3)), np.ones(3)),
     r"broadcast.*x \(2,\), y \(3,\)"),
    ("expm_rank1_apply_backward", (np.ones(3), np.ones(3), np.ones(3), np.ones(4)),
     r"dz must broadcast to the result's shape \(3,\); got dz of shape \(4,\)"),
    ("expm_rank1_chain_apply", (np.ones((2, 3)), np.ones((2, 4)), np.ones(3)),
     r"xs of shape \(2, 3\) and ys of shape \(2, 4\)"),
    ("expm_rank1_chain_apply", (np.ones((2, 3)), np.ones((2, 3)), np.ones(4)),
     r"xs of shape \(2, 3\) and v of shape \(4,\)"),
    ("expm_rank1_chain_apply_backward",
     (np.ones((2, 3)), np.ones((2, 3)), np.ones((5, 3)), np.ones((5, 3)), np.ones(4)),
     r"dlogdet must broadcast to the result's shape \(5,\); got dlogdet of shape \(4,\)"),
]


@pytest.mark.parametrize(("op", "args", "message"), SHAPE_ERRORS,
                         ids=[f"{e[0]}-{i}" for i, e in enumerate(SHAPE_ERRORS)])
def test_shape_mismatch_names_both_shapes(backend, op, args, message):
    with pytest.raises(ValueError, match=rf"^{op}: .*{message}"):
        backend.call(op, *args)


# --- NaN in x or y: NaN in that batch entry only ---------------------------------------------

@pytest.mark.parametrize("where", ["x", "y"])
@pytest.mark.parametrize("dtype", FLOATS, ids=FLOAT_IDS)
def test_nan_stays_in_its_entry(backend, where, dtype, rng):
    x = random_vectors(rng, (3, 5), dtype)
    y = random_vectors(rng, (3, 5), dtype)
    v = random_vectors(rng, (3, 5), dtype)
    (x if where == "x" else y)[1, 2] = np.nan
    results = {
        "dense": backend.run("expm_rank1", x, y),
        "logdet": np.asarray(backend.run("expm_rank1_logdet", x, y))[:, None],
        "apply": backend.run("expm_rank1_apply", x, y, v),
        "inverse": backend.run("expm_rank1_apply", x, y, v, inverse=True),
        "chain": backend.run("expm_rank1_chain_apply", x[:, None], y[:, None], v)[0],
    }
    for name, r in results.items():
        flat = r.reshape(3, -1)
        assert np.isnan(flat[1]).any(), name
        assert np.isfinite(flat[[0, 2]]).all(), name


# --- the math -------------------------------------------------------------------------------

def test_dense_against_scipy_expm(backend, rng):
    linalg = pytest.importorskip("scipy.linalg")
    for k, scale in ((1, 1.0), (5, 1.0), (17, 2.0), (8, 0.1)):
        x = random_vectors(rng, (3, k), F64, scale)
        y = random_vectors(rng, (3, k), F64, scale)
        E = backend.run("expm_rank1", x, y)
        for b in range(3):
            want = linalg.expm(np.outer(x[b], y[b]))
            np.testing.assert_allclose(E[b], want, rtol=1e-13, atol=1e-13 * np.abs(want).max())


@pytest.mark.parametrize("dtype", FLOATS, ids=FLOAT_IDS)
def test_apply_against_dense(backend, dtype, rng):
    x = random_vectors(rng, (4, 9), dtype)
    y = random_vectors(rng, (4, 9), dtype)
    V = random_vectors(rng, (4, 6, 9), dtype)  # columns of a (k, m) matrix, as (m, k)
    E = reference.expm_rank1(x.astype(F64), y.astype(F64))
    z = backend.run("expm_rank1_apply", x[:, None], y[:, None], V)
    want = np.einsum("bij,bmj->bmi", E, V.astype(F64))
    assert_close(z, want, dtype, "apply vs dense @ v", entry_axes=2)
    w = backend.run("expm_rank1_apply", x[:, None], y[:, None], V, inverse=True)
    assert_close(w, np.linalg.solve(E[:, None], V.astype(F64)[..., None])[..., 0], dtype,
                 "inverse apply vs solve", entry_axes=2, rtol=1e-10 if dtype == F64 else 2e-6)


@pytest.mark.parametrize("dtype", FLOATS, ids=FLOAT_IDS)
def test_chain_inverse_undoes_chain_and_logdet(backend, dtype, rng):
    L, k = 6, 7
    xs = random_vectors(rng, (L, k), dtype, 0.7)
    ys = random_vectors(rng, (L, k), dtype, 0.7)
    v = random_vectors(rng, (5, k), dtype)
    z, ld = backend.run("expm_rank1_chain_apply", xs, ys, v)
    back, ld_inv = backend.run("expm_rank1_chain_apply", xs, ys, z, inverse=True)
    tol = 1e-12 if dtype == F64 else 2e-5
    assert np.abs(back - v).max() <= tol * np.abs(v).max()
    np.testing.assert_allclose(ld_inv, -ld, rtol=tol)
    # logdet against slogdet of the dense product E_L ... E_1
    P = np.eye(k)
    for layer in range(L):
        P = reference.expm_rank1(xs[layer].astype(F64), ys[layer].astype(F64)) @ P
    sign, logabs = np.linalg.slogdet(P)
    assert sign == 1.0
    np.testing.assert_allclose(ld, np.full(5, logabs), rtol=1e-10 if dtype == F64 else 1e-5,
                               atol=1e-10)
    np.testing.assert_allclose(z, v.astype(F64) @ P.T, rtol=1e-5 if dtype == np.float32 else 1e-11,
                               atol=1e-6 if dtype == np.float32 else 1e-12)
    single = backend.run("expm_rank1_logdet", xs[0], ys[0])
    assert float(single) == pytest.approx(np.linalg.slogdet(
        reference.expm_rank1(xs[0].astype(F64), ys[0].astype(F64)))[1], rel=1e-5, abs=1e-6)


def _central(f, a, eps=1e-6):
    """Central finite differences of the scalar function f at a (float64, every element)."""
    g = np.zeros_like(a)
    for i in np.ndindex(a.shape):
        d = np.zeros_like(a)
        d[i] = eps
        g[i] = (f(a + d) - f(a - d)) / (2 * eps)
    return g


@pytest.mark.parametrize("inverse", [False, True], ids=["E", "Einv"])
@pytest.mark.parametrize("s_scale", [1e-3, 1.0], ids=["tiny-s", "s~1"])
def test_apply_gradients_against_finite_differences(backend, inverse, s_scale, rng):
    x = random_vectors(rng, (2, 5), F64) * np.sqrt(s_scale)
    y = random_vectors(rng, (2, 5), F64) * np.sqrt(s_scale)
    v = random_vectors(rng, (3, 2, 5), F64)  # x, y broadcast over the leading 3
    dz = rng.standard_normal((3, 2, 5))

    def loss(xx, yy, vv):
        return float((reference.expm_rank1_apply(xx, yy, vv, inverse=inverse) * dz).sum())

    got = backend.run("expm_rank1_apply_backward", x, y, v, dz, inverse=inverse)
    want = (_central(lambda a: loss(a, y, v), x), _central(lambda a: loss(x, a, v), y),
            _central(lambda a: loss(x, y, a), v))
    for g, w in zip(got, want, strict=True):
        np.testing.assert_allclose(g, w, rtol=1e-7, atol=1e-8)


@pytest.mark.parametrize("inverse", [False, True], ids=["E", "Einv"])
def test_chain_gradients_against_finite_differences(backend, inverse, rng):
    xs = random_vectors(rng, (3, 4), F64, 0.8)
    ys = random_vectors(rng, (2, 3, 4), F64, 0.8)  # ys per entry, xs shared
    v = random_vectors(rng, (2, 4), F64)
    dz = rng.standard_normal((2, 4))
    dl = rng.standard_normal(2)

    def loss(a, b, c):
        z, ld = reference.expm_rank1_chain_apply(a, b, c, inverse=inverse)
        return float((z * dz).sum() + (ld * dl).sum())

    got = backend.run("expm_rank1_chain_apply_backward", xs, ys, v, dz, dl, inverse=inverse)
    want = (_central(lambda a: loss(a, ys, v), xs), _central(lambda a: loss(xs, a, v), ys),
            _central(lambda a: loss(xs, ys, a), v))
    for g, w in zip(got, want, strict=True):
        np.testing.assert_allclose(g, w, rtol=1e-7, atol=1e-8)


def test_logdet_gradient_is_y_and_x(backend, rng):
    """formulas.md 2.4 (d): with dz = 0 the chain backward of logdet gives dlogdet·y, dlogdet·x."""
    xs = random_vectors(rng, (1, 6), F64)
    ys = random_vectors(rng, (1, 6), F64)
    v = random_vectors(rng, (6,), F64)
    dxs, dys, dv = backend.run("expm_rank1_chain_apply_backward", xs, ys, v, np.zeros(6), 2.5)
    np.testing.assert_allclose(dxs, 2.5 * ys, rtol=1e-15)
    np.testing.assert_allclose(dys, 2.5 * xs, rtol=1e-15)
    assert np.array_equal(dv, np.zeros(6))


# --- a cotangent broadcast along the vector axis (0-d, (B, 1)) ------------------------------

@pytest.mark.parametrize("dz_shape", [(), (1,), (3, 1)], ids=["0d", "(1,)", "(B,1)"])
def test_cotangent_broadcast_along_the_vector_axis(backend, dz_shape, rng):
    """dz of shape () or (B, 1) broadcasts to (B, k): the kernels get k-vectors (a (B, 1) dz
    was read past its end, a 0-d one failed to compile)."""
    xs, ys = rng.standard_normal((3, 2, 4)), rng.standard_normal((3, 2, 4)) / 2
    v = rng.standard_normal((3, 4))
    dz = np.full(dz_shape, 0.75)
    full = np.broadcast_to(dz, (3, 4)).copy()
    got = backend.run("expm_rank1_apply_backward", xs[:, 0], ys[:, 0], v, dz)
    want = reference.expm_rank1_apply_backward(xs[:, 0], ys[:, 0], v, full)
    for g, w in zip(got, want, strict=True):
        np.testing.assert_allclose(g, w, rtol=1e-13, atol=1e-14)
    got = backend.run("expm_rank1_chain_apply_backward", xs, ys, v, dz, np.ones(3))
    want = reference.expm_rank1_chain_apply_backward(xs, ys, v, full, np.ones(3))
    for g, w in zip(got, want, strict=True):
        np.testing.assert_allclose(g, w, rtol=1e-13, atol=1e-14)
