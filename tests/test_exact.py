"""fastops._exact: the error-free transformations are exact, also when the caller is compiled
with fastops' fast-math flags (reassociation would turn their error terms into 0), and
grid_dot, itself compiled with them, is a twice-precision dot product."""

from __future__ import annotations

from fractions import Fraction

import numba
import numpy as np
import pytest

from fastops._exact import det2, exact, grid_dot, renormalize, two_prod, two_sum
from fastops._numba import FASTMATH


@numba.njit(fastmath=FASTMATH, cache=True)
def _fast_caller(x, y):
    """A fast-math kernel: a plain (reassociated) sum, then grid_dot and renormalize."""
    s = 0.0
    m = 0.0
    for j in range(x.size):
        s += x[j] * y[j]
        m += abs(x[j] * y[j])
    hi, lo = grid_dot(x, y, m)
    return s, hi, lo


@exact
def _two_prod_two_sum(a, b):
    return two_prod(a, b), two_sum(a, b)


@exact
def _det(a, b, c, d):
    return det2(a, b, c, d)


def _exact_dot(x, y) -> Fraction:
    return sum((Fraction(float(a)) * Fraction(float(b)) for a, b in zip(x, y, strict=True)),
               Fraction(0))


@pytest.mark.parametrize("k", [1, 2, 3, 5, 64, 257])
def test_grid_dot_is_twice_precision_from_a_fast_math_caller(k):
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
    assert worst <= 4 * k, f"grid_dot error {worst:.1f} x 2^-106 of sum |x y|"


def test_det2_exact_cases():
    # x_i v_l − x_l v_i with v = x: exactly 0 (the eigen form of rank_one relies on it)
    for a, b in ((0.1, 0.7), (1e300, 3e-300), (np.pi, np.e)):
        assert _det(a, b, a, b) == 0.0
    a, b, c, d = 1.0 + 2.0**-30, 1.0, 1.0, 1.0 - 2.0**-30
    exact_value = Fraction(a) * Fraction(d) - Fraction(b) * Fraction(c)
    assert Fraction(_det(a, b, c, d)) == exact_value  # −2^-60, lost by a·d − b·c


def test_two_prod_and_two_sum_are_exact():
    (p, e), (t, f) = _two_prod_two_sum(1.0 + 2.0**-30, 1.0 - 2.0**-30)
    assert Fraction(p) + Fraction(e) == Fraction(1.0 + 2.0**-30) * Fraction(1.0 - 2.0**-30)
    assert Fraction(t) + Fraction(f) == Fraction(1.0 + 2.0**-30) + Fraction(1.0 - 2.0**-30)
    assert renormalize(1.0, 2.0**-60) == (1.0, 2.0**-60)
