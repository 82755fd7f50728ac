"""``uniform`` / ``normal`` with ``chunks=``: lazy dask arrays whose blocks are generated from
their elements' stream positions, so that any chunking (Hypothesis-chosen: chunks of one, of
whole trailing dims, split along the last axis) gives the bits of the in-memory call."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import fastops.random as fr

da = pytest.importorskip("dask.array")


@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_any_chunking_gives_the_in_memory_bits(data):
    shape = tuple(data.draw(st.lists(st.integers(0, 7), min_size=0, max_size=3)))
    chunks = tuple(data.draw(st.integers(1, max(n, 1))) for n in shape)
    kind = data.draw(st.sampled_from(["uniform", "normal"]))
    dtype = data.draw(st.sampled_from(["float32", "float64"]))
    offset = data.draw(st.integers(0, 2**40))
    seed, stream = data.draw(st.integers(0, 2**64 - 1)), data.draw(st.integers(0, 2**64 - 1))
    fn = getattr(fr, kind)
    lazy = fn(shape, seed=seed, stream=stream, dtype=dtype, offset=offset, chunks=chunks)
    assert isinstance(lazy, da.Array) and lazy.chunks == da.core.normalize_chunks(chunks, shape)
    got = lazy.compute(scheduler="synchronous")
    want = fn(shape, seed=seed, stream=stream, dtype=dtype, offset=offset)
    assert got.dtype == want.dtype and got.shape == want.shape
    assert np.array_equal(got, want), (shape, chunks, kind, dtype)


def test_auto_chunks_and_errors():
    lazy = fr.normal((300, 200), seed=1, chunks="auto")
    assert np.array_equal(lazy.compute(), fr.normal((300, 200), seed=1))
    with pytest.raises(ValueError, match="normal: chunks= needs backend"):
        fr.normal(4, seed=1, chunks=2, backend="numpy")
    with pytest.raises(ValueError, match="uniform: shape"):
        fr.uniform((-1,), seed=1, chunks=2)
