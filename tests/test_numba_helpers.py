"""The shared Numba helpers: the vectorisable elementary functions of ``fastops/_vecmath.py``
against NumPy's libm."""

from __future__ import annotations

import re

import numba
import numpy as np

from fastops._numba import FASTMATH
from fastops._vecmath import fast_tanh


@numba.njit(fastmath=FASTMATH, error_model="numpy")
def _tanh_all(x, out):
    for i in range(x.size):
        out[i] = fast_tanh(x[i])


def test_fast_tanh_accuracy():
    rng = np.random.default_rng(3)
    x = np.concatenate([
        np.linspace(-25.0, 25.0, 100001),
        rng.uniform(-0.5, 0.5, 100000),  # around the series / exp switch at 0.3466
        np.geomspace(1e-300, 1.0, 2000), -np.geomspace(1e-300, 1.0, 2000),
        [0.34657359027997264, 0.3465735902799726, 0.17328679513998632, 19.1, 710.0, 1e300],
    ])
    got = np.empty_like(x)
    _tanh_all(x, got)
    want = np.tanh(x)
    ulps = np.abs(got - want) / np.spacing(np.maximum(np.abs(want), np.finfo(float).tiny))
    assert ulps.max() <= 4, (ulps.max(), x[np.argmax(ulps)])


def test_fast_tanh_special_values():
    x = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, 40.0, -40.0, 5e-324])
    got = np.empty_like(x)
    _tanh_all(x, got)
    np.testing.assert_array_equal(got, [0.0, -0.0, 1.0, -1.0, np.nan, 1.0, -1.0, 5e-324])
    assert np.signbit(got[1]) and not np.signbit(got[0])


def test_fast_tanh_vectorises():
    """The reason it exists: the loop calling it compiles to packed (SIMD) double arithmetic,
    ``mulpd`` / ``vfmadd...pd`` / ``divpd`` (scalar code uses the ``sd`` forms only)."""
    asm = _tanh_all.inspect_asm(_tanh_all.signatures[0])
    assert re.search(r"\bv?(mul|add|div|fmadd\d*|fnmadd\d*)pd\b", asm)
