"""langevin_step on every backend against the reference formula with the same z, in place and
out of place, over dtypes, shapes and layouts; reproducibility (thread count, chunking, CPU
against GPU); and the "langevin and random" rows of semantics.md that concern the step."""

from __future__ import annotations

import numba
import numpy as np
import pytest

import fastops
import fastops.random as fr
from fastops.langevin import reference

DTYPES = [np.float16, np.float32, np.float64, np.int64]
SHAPES = [(), (1,), (3,), (5,), (4097,), (3, 5, 7), (0, 4), (2, 0)]
F64 = np.float64


def _inputs(rng, shape, dtype):
    x = np.asarray(rng.standard_normal(shape) * 3)  # 0-d: an array, not a NumPy scalar
    s = np.asarray(rng.standard_normal(shape))
    if np.dtype(dtype).kind in "iu":
        return np.asarray(np.round(x)).astype(dtype), np.asarray(np.round(s)).astype(dtype)
    return x.astype(dtype), s.astype(dtype)


def _expected(x, s, step_size, seed, step, noise_scale=1.0):
    """The reference in the working dtype, rounded to the result dtype."""
    dt = np.dtype(x.dtype)
    work = np.float64 if dt.kind in "iu" else (np.float32 if dt == np.float16 else dt.type)
    out = reference.langevin_step(x.astype(work), s, step_size, seed=seed, step=step,
                                  noise_scale=noise_scale)
    return out.astype(np.float64 if dt.kind in "iu" else dt)


def _check(backend, got, want):
    got = backend.asnumpy(got)
    assert got.dtype == want.dtype and got.shape == want.shape
    if backend.name == "cupy":  # normals within 4 ulp of the CPU's, then one axpy
        z_scale = np.spacing(np.abs(want.astype(np.float32 if want.dtype == np.float16
                                                else want.dtype)))
        assert np.all(np.abs(got.astype(F64) - want) <= 8 * z_scale + np.spacing(np.abs(want)))
    else:
        assert np.array_equal(got, want, equal_nan=True)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_equals_the_reference(backend, shape, dtype, rng):
    x, s = _inputs(rng, shape, dtype)
    want = _expected(x, s, 0.03, 17, 5, noise_scale=0.8)
    dx, ds = backend.asarray(x), backend.asarray(s)
    got = backend.call("langevin_step", dx, ds, 0.03, seed=17, step=5, noise_scale=0.8)
    assert isinstance(got, backend.array_type)
    _check(backend, got, want)
    assert np.array_equal(backend.asnumpy(dx), x) and np.array_equal(backend.asnumpy(ds), s)


def test_uses_the_documented_noise(rng):
    x, s = _inputs(rng, (6, 7), np.float64)
    z = fr.normal((6, 7), seed=3, stream=11, dtype="float64")
    want = (x + 0.5 * 0.2 * s) + np.sqrt(0.2) * 1.5 * z
    got = fastops.langevin_step(x, s, 0.2, seed=3, step=11, noise_scale=1.5)
    np.testing.assert_allclose(got, want, rtol=1e-15, atol=1e-15)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_in_place(backend, dtype, rng):
    x, s = _inputs(rng, (33, 65), dtype)
    want = _expected(x, s, 0.1, 2, 9)
    dx = backend.asarray(x.copy())
    got = backend.call("langevin_step", dx, backend.asarray(s), 0.1, seed=2, step=9, out=dx)
    assert got is dx
    _check(backend, dx, want)


@pytest.mark.parametrize("layout", ["fortran", "negstride", "strided"])
def test_non_contiguous_in_place_and_out(backend, layout, rng):
    base_x, base_s = _inputs(rng, (12, 18), np.float32)
    view = {"fortran": lambda a: a.T, "negstride": lambda a: a[::-1, ::-2],
            "strided": lambda a: a[::2]}[layout]
    x, s = view(base_x), view(base_s)
    want = _expected(np.ascontiguousarray(x), np.ascontiguousarray(s), 0.5, 1, 1)
    dx = view(backend.asarray(base_x.copy()))
    got = backend.call("langevin_step", dx, view(backend.asarray(base_s)), 0.5, seed=1, step=1,
                       out=dx)
    assert got is dx
    _check(backend, dx, want)
    out = backend.xp.empty(x.T.shape, np.float32).T  # a Fortran-ordered out
    backend.call("langevin_step", view(backend.asarray(base_x)), view(backend.asarray(base_s)),
                 0.5, seed=1, step=1, out=out)
    _check(backend, out, want)


def test_noise_scale_zero_is_plain_drift(backend, rng):
    x, s = _inputs(rng, (100,), np.float64)
    got = backend.run("langevin_step", x, s, 0.25, seed=0, step=0, noise_scale=0.0)
    assert np.array_equal(got, x + 0.125 * s)


def test_nan_in_score_gives_nan_there_only(backend, rng):
    x, s = _inputs(rng, (4, 9), np.float32)
    s[1, 3] = np.nan
    s[3, 8] = np.inf
    got = backend.run("langevin_step", x, s, 0.01, seed=4, step=2)
    bad = np.zeros(s.shape, bool)
    bad[1, 3] = True
    assert np.array_equal(np.isnan(got), bad)
    assert got[3, 8] == np.inf
    assert np.all(np.isfinite(got[~bad & np.isfinite(s)]))


def test_same_seed_and_step_is_bitwise_reproducible(rng):
    x, s = _inputs(rng, (1 << 18) + 5, np.float32)
    first = fastops.langevin_step(x, s, 0.01, seed=8, step=3)
    threads = numba.config.NUMBA_NUM_THREADS
    for count in sorted({1, threads}):
        numba.set_num_threads(count)
        try:
            assert np.array_equal(fastops.langevin_step(x, s, 0.01, seed=8, step=3), first)
        finally:
            numba.set_num_threads(threads)
    assert not np.array_equal(fastops.langevin_step(x, s, 0.01, seed=8, step=4), first)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_pieces_with_offsets_give_the_same_bits(backend, dtype, rng):
    x, s = _inputs(rng, (4099,), dtype)
    whole = backend.run("langevin_step", x, s, 0.3, seed=5, step=1)
    for cut in (1, 2, 3, 5, 2048, 4098):
        head = backend.run("langevin_step", x[:cut], s[:cut], 0.3, seed=5, step=1)
        tail = backend.run("langevin_step", x[cut:], s[cut:], 0.3, seed=5, step=1, offset=cut)
        assert np.array_equal(np.concatenate([head, tail]), whole), cut


@pytest.mark.parametrize("chunks", [(3, 5), (10, 7), (1, 2)], ids=str)
def test_dask_chunking_gives_the_same_bits(chunks, rng):
    da = pytest.importorskip("dask.array")
    x, s = _inputs(rng, (10, 7), np.float32)
    whole = fastops.langevin_step(x, s, 0.3, seed=5, step=1)
    lazy = fastops.langevin_step(da.from_array(x, chunks=chunks), da.from_array(s, chunks=chunks),
                                 0.3, seed=5, step=1)
    assert isinstance(lazy, da.Array)
    got = lazy.compute()
    assert got.dtype == whole.dtype and np.array_equal(got, whole)
    with pytest.raises(ValueError, match=r"^langevin_step: out is not supported for dask"):
        fastops.langevin_step(da.from_array(x), s, 0.3, seed=5, step=1, out=x)


@pytest.mark.parametrize("chunks", [(2, 2, 4), (1, 5, 6), (4, 1, 1)], ids=str)
def test_dask_blocks_split_in_trailing_axes(chunks, rng):
    """Blocks split along the middle and last axes are stepped run by run (one call per row of
    a block, each with its flat offset), never rechunked: the bits of the whole call."""
    da = pytest.importorskip("dask.array")
    x, s = _inputs(rng, (4, 5, 6), np.float64)
    whole = fastops.langevin_step(x, s, 0.3, seed=9, step=4, offset=17)
    lazy = fastops.langevin_step(da.from_array(x, chunks=chunks), da.from_array(s, chunks=chunks),
                                 0.3, seed=9, step=4, offset=17)
    assert lazy.chunks == da.from_array(x, chunks=chunks).chunks  # not rechunked
    assert np.array_equal(lazy.compute(), whole)


@pytest.mark.gpu
def test_cpu_and_gpu_steps_agree(rng):
    from conftest import cupy_status
    if not cupy_status()[0]:
        pytest.skip("cupy: " + cupy_status()[1])
    import cupy
    x, s = _inputs(rng, (1 << 20) + 3, np.float32)
    cpu = fastops.langevin_step(x, s, 0.02, seed=77, step=123)
    gpu = cupy.asnumpy(fastops.langevin_step(cupy.asarray(x), cupy.asarray(s), 0.02, seed=77,
                                             step=123))
    ulps = np.abs(cpu.astype(F64) - gpu) / np.spacing(np.abs(cpu))
    assert ulps.max() <= 4
