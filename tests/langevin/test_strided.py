"""langevin_step on strided operands on the CPU: slices, transposes, negative strides and mixed
layouts are read and written where they lie (no contiguous copy of x, score or out), with the
bits of the reference on contiguous copies, in place and out of place."""

from __future__ import annotations

import numpy as np
import pytest
from _memory import peak_bytes  # tests/ is on sys.path

import fastops
import fastops.langevin
from fastops.langevin import reference


@pytest.fixture(autouse=True)
def _strided_path_at_every_size(monkeypatch):
    """Small operands are copied (cheaper than the strided path's set-up): these tests take
    the strided kernel whatever their size."""
    monkeypatch.setattr(fastops.langevin, "_STRIDED_MIN_SIZE", 0)
    monkeypatch.setattr(fastops.langevin, "_STRIDED_ROWS_MIN_SIZE", 0)

# name -> a view of a (rows, cols) base array
VIEWS = {
    "C": lambda a: a,
    "T": lambda a: a.T,
    "cols::3": lambda a: a[:, ::3],
    "rows::2": lambda a: a[::2],
    "neg": lambda a: a[::-1, ::-2],
    "column": lambda a: a[:, 1:2],
    "T-rows::2": lambda a: a.T[::2],
}


def _base(rng, shape, dtype):
    return rng.standard_normal(shape).astype(dtype)


def _want(x, s, offset):
    return reference.langevin_step(np.ascontiguousarray(x), np.ascontiguousarray(s), 0.5,
                                   seed=7, step=3, noise_scale=0.9, offset=offset)


def _step(x, s, offset, **kwargs):
    return fastops.langevin_step(x, s, 0.5, seed=7, step=3, noise_scale=0.9, offset=offset,
                                 **kwargs)


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("view", ["T", "cols::3", "neg", "T-rows::2"])
@pytest.mark.parametrize("offset", [0, 3])
def test_strided_x_and_score_give_the_reference_bits(view, dtype, offset, rng):
    x = VIEWS[view](_base(rng, (37, 70), dtype))
    s = VIEWS[view](_base(rng, (37, 70), dtype))
    want = _want(x, s, offset)
    got = _step(x, s, offset)
    assert got.dtype == want.dtype and np.array_equal(got, want)
    inplace = x.copy(order="K")
    if view != "T":
        inplace = VIEWS[view](_base(rng, (37, 70), dtype))
        inplace[...] = x
    assert _step(inplace, s, offset, out=inplace) is inplace
    assert np.array_equal(inplace, want)


@pytest.mark.parametrize(("x_view", "s_view", "out_view"),
                         [("C", "T", "C"), ("T", "C", "T"), ("C", "C", "T"), ("T", "T", "C"),
                          ("rows::2", "cols::3", "T"), ("column", "C", "C")])
def test_mixed_layouts_give_the_reference_bits(x_view, s_view, out_view, rng):
    shapes = {"C": (24, 40), "T": (40, 24), "rows::2": (48, 40), "cols::3": (24, 120),
              "column": (24, 3)}
    x = VIEWS[x_view](_base(rng, shapes[x_view], np.float32))
    s = VIEWS[s_view](_base(rng, shapes[s_view] if x_view != "column" else (24, 1),
                            np.float32))
    if s.shape != x.shape:  # the column case: a (24, 1) score of its own
        s = _base(rng, x.shape, np.float32)
    out = VIEWS[out_view](np.empty(shapes[out_view] if x_view != "column" else x.shape,
                                   np.float32))
    assert out.shape == x.shape
    want = _want(x, s, 1)
    assert _step(x, s, 1, out=out) is out
    assert np.array_equal(out, want)


@pytest.mark.parametrize(("shape", "view"),
                         [((6, 10, 8), lambda a: a[:, ::2, :]),     # merges into (rows, 8)
                          ((6, 10, 8), lambda a: a.transpose(2, 0, 1)),  # (8, 60) transposed
                          ((5, 7, 9), lambda a: a.transpose(1, 0, 2)),  # no split: a copy
                          ((301,), lambda a: a[::3])],
                         ids=["3d-slice", "3d-transpose", "3d-no-split", "1d"])
def test_other_ranks(shape, view, rng):
    x = view(_base(rng, shape, np.float32))
    s = view(_base(rng, shape, np.float32))
    want = _want(x, s, 2)
    assert np.array_equal(_step(x, s, 2), want)
    inplace = view(_base(rng, shape, np.float32))
    inplace[...] = x
    _step(inplace, s, 2, out=inplace)
    assert np.array_equal(inplace, want)


def test_result_keeps_x_layout(rng, monkeypatch):
    x = _base(rng, (30, 50), np.float32).T
    got = _step(x, x, 0)
    assert got.flags.f_contiguous and not got.flags.c_contiguous
    monkeypatch.setattr(fastops.langevin, "_STRIDED_MIN_SIZE", x.size + 1)
    copied = _step(x, x, 0)  # the copying path: the same bits, a C-ordered result
    assert copied.flags.c_contiguous and np.array_equal(copied, got)


def test_read_only_and_converted_operands_still_work(rng):
    """A read-only (broadcast) score and a float16 x take the copying path."""
    x = _base(rng, (20, 30), np.float32).T
    s = np.broadcast_to(_base(rng, (20,), np.float32), x.shape)
    assert np.array_equal(_step(x, s, 0), _want(x, s, 0))
    x16 = _base(rng, (20, 30), np.float16).T
    want = _want(x16.astype(np.float32), s, 0).astype(np.float16)
    assert np.array_equal(_step(x16, s, 0), want)


@pytest.mark.parametrize("view", ["T", "cols::3"])
def test_strided_step_copies_nothing(view, rng):
    """In place no input-sized temporary is allocated; out of place only the result. (What
    is traced besides: the kernel's per-thread buffer of a tile's normals, 72 KiB.)"""
    x = VIEWS[view](_base(rng, (512, 1536), np.float32))
    s = VIEWS[view](_base(rng, (512, 1536), np.float32))
    nbytes = x.size * x.itemsize  # 1 MiB
    assert peak_bytes(lambda: _step(x, s, 0, out=x)) < nbytes // 4
    assert peak_bytes(lambda: _step(x, s, 0)) < nbytes + nbytes // 4
    out = np.empty(x.shape[::-1], np.float32).T  # a transposed out for a strided x
    assert peak_bytes(lambda: _step(x, s, 0, out=out)) < nbytes // 4


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("view", ["T", "cols::3", "neg", "T-rows::2", "rows::2"])
def test_gmm_score_reads_strided_x_in_place(view, dtype, rng):
    """gmm_score of a strided x: the bits of the C-contiguous call (the kernel gathers each
    tile of points either way; that call is checked against the reference in
    test_semantics / test_matrix), a C-contiguous result, and no copy of x."""
    x = VIEWS[view](_base(rng, (300, 96), dtype))
    means = rng.standard_normal((5, x.shape[1])).astype(dtype)
    log_weights = rng.standard_normal(5).astype(dtype)
    got = fastops.langevin.gmm_score(x, means, 0.7, log_weights=log_weights)
    want = fastops.langevin.gmm_score(np.ascontiguousarray(x), means, 0.7,
                                      log_weights=log_weights)
    assert got.flags.c_contiguous and got.dtype == dtype
    np.testing.assert_array_equal(got, want)
    big = VIEWS[view](_base(rng, (2000, 2000), dtype))  # per-thread tiles: <= 0.5 MiB
    nbytes = big.size * big.itemsize
    big_means = rng.standard_normal((5, big.shape[1])).astype(dtype)
    assert peak_bytes(lambda: fastops.langevin.gmm_score(big, big_means, 0.7)) < 1.25 * nbytes


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("chains", [37, 5000])
def test_mala_step_on_transposed_chains(chains, dtype, rng):
    """x = X.T (chains along the contiguous axis): the accept kernel walks the transposes in
    place (fastops.langevin._Chains); the step equals the C-contiguous one (proposals, the
    decisions, x_new, log densities, scores) and keeps x's layout."""

    def log_prob_and_score(y):
        return -0.5 * np.einsum("ij,ij->i", y, y, dtype=np.float64), -y

    X = _base(rng, (24, chains), dtype) * 2
    x = X.T
    log_prob, score = log_prob_and_score(x)
    xc = np.ascontiguousarray(x)
    got = fastops.langevin.mala_step(x, log_prob, score, log_prob_and_score, 2.5, seed=5,
                                     step=2)
    want = fastops.langevin.mala_step(xc, log_prob, np.ascontiguousarray(score),
                                      log_prob_and_score, 2.5, seed=5, step=2)
    assert 0 < want[3].sum() < chains  # some accepted, some rejected
    for k in (0, 2, 3):  # x_new, score, accepted: bit for bit
        np.testing.assert_array_equal(got[k], want[k])
    # (the callback's einsum sums an F-ordered y in another order: its last bits differ)
    np.testing.assert_allclose(got[1], want[1], rtol=1e-12)
    assert got[0].T.flags.c_contiguous
    np.testing.assert_array_equal(X, x.T)  # the input untouched
