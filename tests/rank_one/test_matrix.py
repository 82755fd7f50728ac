"""The matrix: every rank_one function x backend x dtype x shape against the float64 reference,
with the result's array type, dtype and shape, and inputs never written.

Shapes cover one vector, a batch, k = 1, odd k, a long k (the GPU's block-per-entry path),
3-D leading dims, broadcasting both ways (one x, y for many v; one v for many x, y; x and y
broadcast against each other), non-contiguous and negative-stride views, an empty batch and
k = 0. Chains add L = 1, L = 0, per-entry and shared factors.
"""

from __future__ import annotations

import numpy as np
import pytest

from fastops.rank_one import reference

from ._support import assert_close, random_vectors, result_dtype

DTYPES = [np.float16, np.float32, np.float64, np.int64]
DTYPE_IDS = ["f16", "f32", "f64", "i64"]


def _strided(a):
    return a[..., ::2]


def _reversed(a):
    return a[::-1]


# (id, x base shape, y base shape, v base shape, view applied to each base)
VECTOR_SHAPES = [
    ("single(5)", (5,), (5,), (5,), None),
    ("batch(7,3)", (7, 3), (7, 3), (7, 3), None),
    ("k=1(4,1)", (4, 1), (4, 1), (4, 1), None),
    ("odd-k(3,33)", (3, 33), (3, 33), (3, 33), None),
    ("long-k(2,1100)", (2, 1100), (2, 1100), (2, 1100), None),
    ("3d(2,3,17)", (2, 3, 17), (2, 3, 17), (2, 3, 17), None),
    ("parallel(300,128)", (300, 128), (300, 128), (300, 128), None),
    ("parallel-shared-xy(128)-v(300,128)", (128,), (128,), (300, 128), None),
    ("shared-xy(9)-v(6,9)", (9,), (9,), (6, 9), None),
    ("xy(4,9)-shared-v(9)", (4, 9), (4, 9), (9,), None),
    ("x(3,1,5)-y(1,4,5)-v(4,5)", (3, 1, 5), (1, 4, 5), (4, 5), None),
    ("strided(6,10)[...,::2]", (6, 10), (6, 10), (6, 10), _strided),
    ("negstride(5,4)[::-1]", (5, 4), (5, 4), (5, 4), _reversed),
    ("empty-batch(0,5)", (0, 5), (0, 5), (0, 5), None),
    ("k=0(3,0)", (3, 0), (3, 0), (3, 0), None),
]
VECTORS = [pytest.param(*rest, id=sid) for sid, *rest in VECTOR_SHAPES]


def _inputs(backend, rng, bases, view, dtypes):
    """Host inputs and the (device, possibly viewed) arguments."""
    hosts, args = [], []
    for base, dt in zip(bases, dtypes, strict=True):
        h = random_vectors(rng, base, dt)
        d = backend.asarray(h)
        hosts.append(h if view is None else view(h))
        args.append(d if view is None else view(d))
    return hosts, args


def _unchanged(backend, args, hosts):
    for a, h in zip(args, hosts, strict=True):
        assert np.array_equal(backend.asnumpy(a), h), "an input argument was modified"


def _f64(*arrays):
    return [np.asarray(a, np.float64) for a in arrays]


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize(("xb", "yb", "vb", "view"), VECTORS)
def test_dense_and_logdet(backend, xb, yb, vb, view, dtype, rng):
    if xb[-1] > 64:  # the dense matrix of k = 1100 is 10 MB per entry: not needed here
        xb, yb = xb[:-1] + (64,), yb[:-1] + (64,)
    hosts, args = _inputs(backend, rng, (xb, yb), view, (dtype, dtype))
    keep = [h.copy() for h in hosts]
    out = result_dtype(dtype)
    X, Y = _f64(*hosts)
    E = backend.call("expm_rank1", *args)
    assert isinstance(E, backend.array_type)
    assert_close(backend.asnumpy(E), reference.expm_rank1(X, Y), out, "expm_rank1",
                 entry_axes=2)
    s = backend.run("expm_rank1_logdet", *args)
    assert_close(np.asarray(s)[..., None], np.asarray(reference.expm_rank1_logdet(X, Y))[..., None],
                 out, "expm_rank1_logdet")
    _unchanged(backend, args, keep)


@pytest.mark.parametrize("inverse", [False, True], ids=["E", "Einv"])
@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize(("xb", "yb", "vb", "view"), VECTORS)
def test_apply_and_backward(backend, xb, yb, vb, view, dtype, inverse, rng):
    hosts, args = _inputs(backend, rng, (xb, yb, vb), view, (dtype,) * 3)
    keep = [h.copy() for h in hosts]
    out = result_dtype(dtype)
    X, Y, V = _f64(*hosts)
    z = backend.call("expm_rank1_apply", *args, inverse=inverse)
    assert isinstance(z, backend.array_type)
    ref_z = reference.expm_rank1_apply(X, Y, V, inverse=inverse)
    assert_close(backend.asnumpy(z), ref_z, out, "expm_rank1_apply")

    dz_host = random_vectors(rng, ref_z.shape, dtype)
    dz = backend.asarray(dz_host)
    grads = backend.call("expm_rank1_apply_backward", *args, dz, inverse=inverse)
    refs = reference.expm_rank1_apply_backward(X, Y, V, dz_host.astype(np.float64),
                                               inverse=inverse)
    for name, g, r, h in zip(("dx", "dy", "dv"), grads, refs, hosts, strict=True):
        assert isinstance(g, backend.array_type)
        assert g.shape == h.shape
        # summed over broadcast dims: compare against the scale of the summed terms
        assert_close(backend.asnumpy(g), r, out, f"expm_rank1_apply_backward {name}",
                     entry_axes=g.ndim)
    _unchanged(backend, args + [dz], keep + [dz_host])


def test_mixed_dtypes(backend, rng):
    """float32 x with float64 v computes and returns float64; each gradient keeps its
    input's dtype."""
    x = random_vectors(rng, (4, 6), np.float32)
    y = random_vectors(rng, (4, 6), np.float32)
    v = random_vectors(rng, (4, 6), np.float64)
    z = backend.run("expm_rank1_apply", x, y, v)
    assert z.dtype == np.float64
    X, Y = _f64(x, y)
    assert_close(z, reference.expm_rank1_apply(X, Y, v), np.float64, "mixed apply")
    dx, dy, dv = backend.run("expm_rank1_apply_backward", x, y, v, np.ones(6))
    assert (dx.dtype, dy.dtype, dv.dtype) == (np.float32, np.float32, np.float64)


# (id, xs base, ys base, v base): xs, ys (..., L, k), v (..., k)
CHAIN_SHAPES = [
    ("shared(L3,k5)-v(7,5)", (3, 5), (3, 5), (7, 5)),
    ("per-entry(4,L2,k6)", (4, 2, 6), (4, 2, 6), (4, 6)),
    ("L=1(1,9)-v(3,9)", (1, 9), (1, 9), (3, 9)),
    ("L=0(0,4)-v(2,4)", (0, 4), (0, 4), (2, 4)),
    ("k=1(L4,1)-v(5,1)", (4, 1), (4, 1), (5, 1)),
    ("odd-k(L5,33)-v(3,33)", (5, 33), (5, 33), (3, 33)),
    ("parallel(L3,k64)-v(200,64)", (3, 64), (3, 64), (200, 64)),
    ("parallel-per-entry(200,L2,k64)", (200, 2, 64), (200, 2, 64), (200, 64)),
    ("block-k(L3,300)-v(2,300)", (3, 300), (3, 300), (2, 300)),
    ("global-k(L2,4100)-v(2,4100)", (2, 4100), (2, 4100), (2, 4100)),
    ("xs(2,1,L3,k4)-ys(3,L3,k4)-v(4,)", (2, 1, 3, 4), (3, 3, 4), (4,)),
    ("single-v(5,L2,k3)-v(3,)", (5, 2, 3), (2, 3), (3,)),
    ("empty-batch", (0, 2, 3), (2, 3), (3,)),
    ("k=0", (2, 0), (2, 0), (3, 0)),
]
CHAINS = [pytest.param(*rest, id=sid) for sid, *rest in CHAIN_SHAPES]
CHAIN_DTYPES = [np.float32, np.float64, np.int64]


@pytest.mark.parametrize("inverse", [False, True], ids=["E", "Einv"])
@pytest.mark.parametrize("dtype", CHAIN_DTYPES, ids=["f32", "f64", "i64"])
@pytest.mark.parametrize(("xsb", "ysb", "vb"), CHAINS)
def test_chain_and_backward(backend, xsb, ysb, vb, dtype, inverse, rng):
    scale = 0.5 if np.dtype(dtype).kind == "f" else 1.0
    xs = random_vectors(rng, xsb, dtype, scale)
    ys = random_vectors(rng, ysb, dtype, scale)
    v = random_vectors(rng, vb, dtype)
    if np.dtype(dtype).kind in "iu":  # |s| <= k per factor: keep the products moderate
        xs = (xs * (rng.random(xs.shape) < 0.3)).astype(dtype)
    keep = [a.copy() for a in (xs, ys, v)]
    args = [backend.asarray(a) for a in (xs, ys, v)]
    out = result_dtype(dtype)
    XS, YS, V = _f64(xs, ys, v)
    z, ld = backend.call("expm_rank1_chain_apply", *args, inverse=inverse)
    assert isinstance(z, backend.array_type)
    ref_z, ref_ld = reference.expm_rank1_chain_apply(XS, YS, V, inverse=inverse)
    assert_close(backend.asnumpy(z), ref_z, out, "expm_rank1_chain_apply z")
    assert_close(np.asarray(backend.asnumpy(ld))[..., None], np.asarray(ref_ld)[..., None], out,
                 "expm_rank1_chain_apply logdet")

    dz = random_vectors(rng, ref_z.shape, dtype)
    dl = random_vectors(rng, np.shape(ref_ld), dtype)
    for dlogdet in (backend.asarray(dl), None):
        grads = backend.call("expm_rank1_chain_apply_backward", *args, backend.asarray(dz),
                             dlogdet, inverse=inverse)
        refs = reference.expm_rank1_chain_apply_backward(
            XS, YS, V, dz.astype(np.float64), None if dlogdet is None else dl.astype(np.float64),
            inverse=inverse)
        for name, g, r, h in zip(("dxs", "dys", "dv"), grads, refs, (xs, ys, v), strict=True):
            assert isinstance(g, backend.array_type)
            assert g.shape == h.shape
            assert_close(backend.asnumpy(g), r, out, f"chain backward {name}", entry_axes=g.ndim,
                         rtol=1e-11 if out == np.float64 else None)
    _unchanged(backend, args, keep)
