"""``where`` masks and logsumexp's ``b`` that broadcast against the input, without being copied
out to the input's size.

``fastops._rows.RowLayout.broadcast_rows`` keeps only the rows a broadcast argument really has
(a key mask ``(B, 1, 1, T)`` for scores ``(B, H, Q, T)``: ``B`` rows) and an index from each row
of the input to its argument row; the CPU kernels follow the index. Checked here: the
decomposition itself on many broadcast patterns, every op against the float64 reference with
masks and weights broadcast along kept axes, the reduced axes, both and neither, over the CPU
kernel paths (short-row tiles, long rows, segments of a split row), strided masks, and that a
broadcast mask costs no input-sized allocation.
"""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

import fastops
from fastops._rows import RowLayout

from ._support import OPS, make_case, random_values
from .test_matrix import _run_and_check

# (x shape, axis, mask shape)
BROADCASTS = [
    pytest.param((4, 3, 5, 70), -1, (4, 1, 1, 70), id="key-mask(4,1,1,70)"),
    pytest.param((4, 3, 5, 16), -1, (4, 1, 5, 16), id="short-rows(4,1,5,16)"),
    pytest.param((3, 70, 20), -1, (70, 20), id="short-rows-leading(70,20)"),
    pytest.param((2, 40000), -1, (1, 40000), id="split(1,40000)"),
    pytest.param((5, 7, 9), 1, (5, 1, 9), id="middle-axis(5,1,9)"),
    pytest.param((5, 7, 9), 1, (1, 7, 1), id="reduced-only(1,7,1)"),
    pytest.param((5, 7, 9), 0, (7, 1), id="axis0(7,1)"),
    pytest.param((3, 4, 6), (0, 2), (3, 1, 1), id="axes02(3,1,1)"),
    pytest.param((6, 40), -1, (6, 1), id="per-row(6,1)"),
    pytest.param((6, 40), -1, (), id="scalar"),
]


def _broadcast_mask(rng, x_shape, mask_shape):
    """A random mask of ``mask_shape`` (about 30% False) with one argument row all False."""
    mask = rng.random(mask_shape) > 0.3
    if mask.ndim >= 2 and mask.shape[0] > 1:
        mask[0] = False  # rows with nothing kept, shared by all the rows it broadcasts to
    if mask.ndim == 0:
        mask = np.bool_(True)
    return mask


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize(("shape", "axis", "mask_shape"), BROADCASTS)
@pytest.mark.parametrize("op", OPS)
def test_broadcast_where(backend, op, shape, axis, mask_shape, dtype, rng):
    x = random_values(rng, shape, dtype)
    where = _broadcast_mask(rng, shape, mask_shape)
    _run_and_check(backend, make_case(op, x, axis, rng, where=where),
                   err=f"{op} {shape} axis={axis} where{mask_shape}")


@pytest.mark.parametrize("op", ["softmax", "logsumexp", "soft_argmax_backward"])
def test_strided_broadcast_mask(backend, op, rng):
    """A mask that is itself a strided view (every other column of a wider mask)."""
    x = random_values(rng, (4, 3, 33), np.float32)
    wide = rng.random((4, 1, 66)) > 0.3
    _run_and_check(backend, make_case(op, x, -1, rng, where=wide[:, :, ::2]))


@pytest.mark.parametrize("masked", [False, True], ids=["no-mask", "mask"])
@pytest.mark.parametrize("op", ["logsumexp", "logsumexp_backward"])
@pytest.mark.parametrize(("shape", "axis", "b_shape"), [
    pytest.param((4, 3, 70), -1, (4, 1, 70), id="(4,1,70)"),
    pytest.param((4, 3, 16), -1, (3, 16), id="short(3,16)"),
    pytest.param((5, 7, 9), 1, (5, 7, 1), id="reduced-axis(5,7,1)"),
    pytest.param((5, 7, 9), 0, (7, 9), id="axis0(7,9)"),
])
def test_broadcast_b(backend, op, shape, axis, b_shape, masked, rng):
    x = random_values(rng, shape, np.float64)
    b = rng.uniform(-0.5, 2.0, b_shape) if op == "logsumexp" else rng.uniform(0.25, 2.0, b_shape)
    b.flat[::5] = 0.0
    where = (rng.random(b_shape) > 0.3) if masked else None
    kw = {"return_sign": True} if op == "logsumexp" else {}
    _run_and_check(backend, make_case(op, x, axis, rng, b=b, where=where, **kw))


@pytest.mark.parametrize(("shape", "axes", "arg_shape", "distinct"), [
    ((8, 16, 4, 32), (3,), (8, 1, 1, 32), 8),
    ((8, 16, 4, 32), (3,), (8, 1, 4, 32), 32),
    ((8, 16, 4, 32), (3,), (8, 16, 4, 32), 8 * 16 * 4),
    ((8, 16, 4, 32), (3,), (32,), 1),
    ((8, 16, 4, 32), (1,), (8, 1, 4, 1), 32),
    ((8, 16, 4, 32), (0, 2), (1, 16, 1, 32), 16 * 32),
    ((8, 16, 4, 32), (0, 1, 2, 3), (4, 1), 1),
    ((5, 6), (0,), (), 1),
])
def test_broadcast_rows_decomposition(shape, axes, arg_shape, distinct, rng):
    """rows2d[index] is the broadcast argument's (rows, n), with only the distinct rows kept."""
    arg = rng.standard_normal(arg_shape)
    layout = RowLayout(shape, axes)
    rows2d, index = layout.broadcast_rows(np, arg, np.float64)
    assert rows2d.shape == (distinct, layout.n) and rows2d.flags.c_contiguous
    assert index.shape == (layout.rows,) and index.dtype == np.intp
    expected = layout.to_rows(np, np.broadcast_to(arg, shape), np.float64)
    np.testing.assert_array_equal(rows2d[index], expected)


def test_broadcast_mask_is_not_materialised(rng):
    """Scores (8, 16, 64, 512) float32 with a key mask (8, 1, 1, 512): the mask's broadcast
    copy would be 4 MiB; the distinct rows and the row index are 4 KiB and 64 KiB."""
    s = random_values(rng, (8, 16, 64, 512), np.float32)
    m = rng.random((8, 1, 1, 512)) > 0.2
    for fn in (fastops.logsumexp, fastops.soft_argmax):
        fn(s, axis=-1, where=m)  # compile outside the measurement
        tracemalloc.start()
        fn(s, axis=-1, where=m)
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        assert peak < 1 << 20, f"{fn.__name__}: peak {peak} bytes for a broadcast mask"


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
def test_weighted_rows_fast_and_exact_paths(backend, dtype, rng):
    """The CPU weighted kernel sends rows of finite values through vectorised passes and rows
    with a kept NaN or infinity through an exact scalar loop: rows of each kind, side by side,
    with weights broadcast along the rows."""
    x = random_values(rng, (8, 300), dtype)
    b = rng.uniform(-1.0, 2.0, (1, 300)).astype(dtype)
    b[0, 7] = 0.0
    x[1, 5] = -np.inf  # finite row but for a -inf: the fast path
    x[2, 7] = np.nan  # hidden by b == 0: the fast path
    x[3, 9] = np.nan  # a kept NaN: the exact loop
    x[4, 11] = np.inf  # a kept +inf: the exact loop
    x[5, :] = -np.inf  # nothing finite
    x[6, 12] = x[6].max() + 1.0  # one maximum
    x[7, 20:30] = x[7].max() + 1.0  # ties at the maximum, with weights of both signs
    if dtype == np.float64:
        x[0, :2] = [1e300, -1e300]  # x * b overflows to both infinities: the probe is NaN
        b[0, :2] = [1e300, 1e300]
    case = make_case("logsumexp", x, -1, rng, b=b, return_sign=True)
    _run_and_check(backend, case)
