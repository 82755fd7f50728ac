"""fastops._exact: the error-free transformations are exact, also when the caller is compiled
with fastops' fast-math flags (reassociation would turn their error terms into 0)."""

from __future__ import annotations

from fractions import Fraction

import numba
import numpy as np
import pytest

from fastops._exact import det2, dot2, exact, renormalize
from fastops._numba import FASTMATH


@numba.njit(fastmath=FASTMATH, cache=True)
def _fast_caller(x, y):
    """A fast-math kernel calling dot2 next to a plain (reassociated) sum."""
    s = 0.0
    for j in range(x.size):
        s += x[j] * y[j]
    hi, lo = dot2(x, y)
    return s, hi, lo


@exact
def _det(a, b, c, d):
    return det2(a, b, c, d)


def _exact_dot(x, y) -> Fraction:
    return sum((Fraction(float(a)) * Fraction(float(b)) for a, b in zip(x, y, strict=True)),
               Fraction(0))


@pytest.mark.parametrize("k", [1, 2, 3, 5, 64, 257])
def test_dot2_is_twice_precision_from_a_fast_math_caller(k):
    rng = np.random.default_rng(k)
    worst = 0.0
    for _ in range(20):
        x = rng.standard_normal(k) * 10.0 ** rng.uniform(-3, 3, k)
        y = rng.standard_normal(k)
        if k > 1:  # heavy cancellation: the last term cancels the others to ~1e-10 of them
            y[-1] = -float(x[:-1] @ y[:-1]) / x[-1] * (1 + 1e-10)
        _, hi, lo = _fast_caller(x, y)
        ex = _exact_dot(x, y)
        scale = sum(abs(Fraction(float(a)) * Fraction(float(b))) for a, b in zip(x, y, strict=True))
        err = abs(Fraction(hi) + Fraction(lo) - ex)
        worst = max(worst, float(err / scale) / 2.0**-106)
        # hi is the sum rounded to float64 (to within an ulp of it, given the lo part)
        assert abs(Fraction(hi) - ex) <= abs(ex) * Fraction(2) ** -52 + scale * Fraction(2) ** -104
    assert worst <= 4 * k, f"dot2 error {worst:.1f} x 2^-106 of sum |x y|"


def test_det2_exact_cases():
    # x_i v_l − x_l v_i with v = x: exactly 0 (the eigen form of rank_one relies on it)
    for a, b in ((0.1, 0.7), (1e300, 3e-300), (np.pi, np.e)):
        assert _det(a, b, a, b) == 0.0
    a, b, c, d = 1.0 + 2.0**-30, 1.0, 1.0, 1.0 - 2.0**-30
    exact_value = Fraction(a) * Fraction(d) - Fraction(b) * Fraction(c)
    assert Fraction(_det(a, b, c, d)) == exact_value  # −2^-60, lost by a·d − b·c


def test_grid_dot_is_twice_precision():
    """The kernels' vectorised compensated dot (rank_one cpu._grid_dot_rows), compiled with
    fastops' fast-math flags, against exact rationals on sums that cancel to 1e-10."""
    from fastops.rank_one.cpu import _grid_dot_rows

    rng = np.random.default_rng(5)
    for k in (1, 3, 64, 1000):
        for _ in range(10):
            x = rng.standard_normal(k) * 10.0 ** rng.uniform(-8, 8, k)
            y = rng.standard_normal(k)
            if k > 1:
                y[-1] = -float(x[:-1] @ y[:-1]) / x[-1] * (1 + 1e-10)
            m = float(np.abs(x * y).sum())
            hi, lo = _grid_dot_rows(x, y, m)
            ex = _exact_dot(x, y)
            assert abs(Fraction(hi) + Fraction(lo) - ex) <= Fraction(m) * Fraction(2) ** -98
    assert renormalize(1.0, 2.0**-60) == (1.0, 2.0**-60)
