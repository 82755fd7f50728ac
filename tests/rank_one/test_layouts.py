"""rank_one on the CPU with operands that are not C-contiguous rows: ``V.T`` of a C-contiguous
V (the documented way to apply E to the columns of a matrix) is read in place, leading axes of
stride 0 (``numpy.broadcast_to``) as one entry, and an operand broadcast to every entry needs
no (B,) index map. Results are the bits of the same call on contiguous copies (the kernels run
the same loops on rows gathered from the columns), and no input-sized temporary is made."""

from __future__ import annotations

import numpy as np
import pytest
from _memory import peak_bytes  # tests/ is on sys.path

import fastops
from fastops.rank_one import reference

from ._support import assert_close, random_vectors


def _columns(rng, k, m, dtype):
    """V.T for a C-contiguous (k, m) V: an F-ordered (m, k) stack of m vectors."""
    return random_vectors(rng, (k, m), dtype).T


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize(("k", "m"), [(5, 7), (64, 300), (130, 3)], ids=str)
@pytest.mark.parametrize("inverse", [False, True])
def test_columns_operand_gives_the_contiguous_bits(k, m, dtype, inverse, rng):
    x, y = random_vectors(rng, (k,), dtype), random_vectors(rng, (k,), dtype)
    X, Y = random_vectors(rng, (m, k), dtype), random_vectors(rng, (m, k), dtype)
    VT, dzT = _columns(rng, k, m, dtype), _columns(rng, k, m, dtype)
    V, dz = np.ascontiguousarray(VT), np.ascontiguousarray(dzT)
    for a, b in [(x, y), (X, Y)]:
        got = fastops.expm_rank1_apply(a, b, VT, inverse=inverse)
        assert np.array_equal(got, fastops.expm_rank1_apply(a, b, V, inverse=inverse))
        assert_close(got, reference.expm_rank1_apply(*(np.float64(t) for t in (a, b, V)),
                                                     inverse=inverse), dtype, "apply")
        for g, h in zip(fastops.expm_rank1_apply_backward(a, b, VT, dzT, inverse=inverse),
                        fastops.expm_rank1_apply_backward(a, b, V, dz, inverse=inverse),
                        strict=True):
            assert np.array_equal(g, h)
    xs, ys = random_vectors(rng, (3, k), dtype), random_vectors(rng, (3, k), dtype)
    XS, YS = random_vectors(rng, (m, 2, k), dtype), random_vectors(rng, (m, 2, k), dtype)
    for a, b in [(xs, ys), (XS, YS)]:  # shared factors (blocks of entries), per-entry factors
        for g, h in zip(fastops.expm_rank1_chain_apply(a, b, VT, inverse=inverse),
                        fastops.expm_rank1_chain_apply(a, b, V, inverse=inverse), strict=True):
            assert np.array_equal(g, h)
        for g, h in zip(
                fastops.expm_rank1_chain_apply_backward(a, b, VT, dzT, 0.5, inverse=inverse),
                fastops.expm_rank1_chain_apply_backward(a, b, V, dz, 0.5, inverse=inverse),
                strict=True):
            assert np.array_equal(g, h)


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("as_columns", ["x", "y", "xy", "xyv", "xyvdz"])
@pytest.mark.parametrize(("k", "m"), [(5, 7), (64, 300)], ids=str)
def test_columns_x_y_give_the_contiguous_bits(k, m, as_columns, dtype, rng):
    """x, y (and v, dz) given as the transposes of C-contiguous (k, m) arrays: logdet, apply and
    its backward read them in place, with the bits of the C-contiguous call; also with the
    columns operand broadcast against a batch of v (an index map on a columns operand)."""
    names = ("x", "y", "v", "dz")
    rows = {n: random_vectors(rng, (m, k), dtype) for n in names}
    # ("dz" names dz; "v" alone is v)
    flagged = {"x": "x" in as_columns, "y": "y" in as_columns, "v": "v" in as_columns,
               "dz": "dz" in as_columns}
    given = {n: np.ascontiguousarray(a.T).T if flagged[n] else a for n, a in rows.items()}
    x, y, v, dz = (given[n] for n in names)
    X, Y, V, DZ = (rows[n] for n in names)
    assert np.array_equal(fastops.expm_rank1_logdet(x, y), fastops.expm_rank1_logdet(X, Y))
    for inverse in (False, True):
        got = fastops.expm_rank1_apply(x, y, v, inverse=inverse)
        assert np.array_equal(got, fastops.expm_rank1_apply(X, Y, V, inverse=inverse))
        assert_close(got, reference.expm_rank1_apply(*(np.float64(t) for t in (X, Y, V)),
                                                     inverse=inverse), dtype, "apply")
        for g, h in zip(fastops.expm_rank1_apply_backward(x, y, v, dz, inverse=inverse),
                        fastops.expm_rank1_apply_backward(X, Y, V, DZ, inverse=inverse),
                        strict=True):
            assert np.array_equal(g, h)
    batch_v = random_vectors(rng, (3, m, k), dtype)  # x, y broadcast along a leading axis
    assert np.array_equal(fastops.expm_rank1_apply(x, y, batch_v),
                          fastops.expm_rank1_apply(X, Y, batch_v))
    for g, h in zip(fastops.expm_rank1_apply_backward(x, y, batch_v, batch_v),
                    fastops.expm_rank1_apply_backward(X, Y, batch_v, batch_v), strict=True):
        assert np.array_equal(g, h)


def test_stride_0_and_partly_broadcast_operands(rng):
    k = 6
    v = random_vectors(rng, (k,), np.float64)
    X, Y = random_vectors(rng, (5, k), np.float64), random_vectors(rng, (5, k), np.float64)
    many = np.broadcast_to(v, (5, k))  # stride 0 along the batch: read as one entry
    want = fastops.expm_rank1_apply(X, Y, v)
    assert np.array_equal(fastops.expm_rank1_apply(X, Y, many), want)
    dz = random_vectors(rng, (5, k), np.float64)
    got = fastops.expm_rank1_apply_backward(X, Y, many, dz)
    ref = fastops.expm_rank1_apply_backward(X, Y, np.ascontiguousarray(many), dz)
    assert got[2].shape == (5, k)  # the gradient of a (5, k) view is per entry, not summed
    for g, h in zip(got, ref, strict=True):
        assert np.array_equal(g, h)
    x3, y3 = random_vectors(rng, (3, 1, k), np.float64), random_vectors(rng, (1, 4, k), np.float64)
    v2 = random_vectors(rng, (4, k), np.float64)
    for _ in range(2):  # the second call reuses the cached index maps
        got = fastops.expm_rank1_apply(x3, y3, v2)
        assert_close(got, reference.expm_rank1_apply(x3, y3, v2), np.float64, "partial")


def test_columns_and_shared_factors_copy_nothing(rng):
    """apply / chain of V.T with one x, y, and apply / logdet of X.T, Y.T: the result is the
    only input-sized allocation (no copy of the transposes, no (B,) index maps of x and y);
    the tile buffers of gathered columns are 32 KiB per operand."""
    k, m = 8, 1 << 15
    x, y = random_vectors(rng, (k,), np.float64), random_vectors(rng, (k,), np.float64)
    VT = _columns(rng, k, m, np.float64)  # 2 MiB
    nbytes = VT.size * VT.itemsize
    assert peak_bytes(lambda: fastops.expm_rank1_apply(x, y, VT)) < nbytes + nbytes // 8
    XT, YT = _columns(rng, k, m, np.float64), _columns(rng, k, m, np.float64)
    assert peak_bytes(lambda: fastops.expm_rank1_apply(XT, YT, VT)) < nbytes + nbytes // 8
    assert peak_bytes(lambda: fastops.expm_rank1_logdet(XT, YT)) < nbytes // 4
    xs, ys = random_vectors(rng, (2, k), np.float64), random_vectors(rng, (2, k), np.float64)
    # z and logdet (m float64 values, an eighth of z here)
    assert peak_bytes(lambda: fastops.expm_rank1_chain_apply(xs, ys, VT)) < nbytes + nbytes // 4
