"""Every family's CPU kernels on their parallel path, at thread counts 1, 2 and 3, in one
process whose Numba threading layer the caller chose (run by tests/test_threads.py).

The parallel threshold is set to 0 and the chunks to one item, so that even these test-sized
calls open parallel regions and hand out many chunks dynamically. Results are compared with
the NumPy references (the families' test tolerances) and, where the README promises bits
(random, Langevin), bit for bit with the single-thread results.

Usage: python _threading_workload.py LAYER [torch-first]; prints "ok LAYER" on success, exits
77 when the layer cannot be loaded here (tbb not installed).
"""

from __future__ import annotations

import os
import sys

LAYER = sys.argv[1]
os.environ["NUMBA_THREADING_LAYER"] = LAYER
os.environ["NUMBA_NUM_THREADS"] = "3"  # one more than the development machine's cores
if "torch-first" in sys.argv[2:]:
    import torch  # noqa: F401  (brings its own libgomp, loaded before Numba's)

import numba  # noqa: E402
import numpy as np  # noqa: E402

import fastops  # noqa: E402
import fastops._numba as scheduling  # noqa: E402


@numba.njit(parallel=True)
def _probe(a):
    return a.sum()


try:
    _probe(np.ones(3))
except ValueError as exc:  # "No threading layer could be loaded"
    print(f"layer {LAYER} unavailable: {exc}")
    sys.exit(77)

scheduling.PARALLEL_MIN_NS = 0  # every call parallel...
scheduling.CHUNK_NS = 1  # ...in chunks of one item, taken dynamically

rng = np.random.default_rng(2026)
F32, F64 = np.float32, np.float64


def approx(got, want, dtype):
    """Normwise: max |got - want| <= rtol * max |want| for each output (elementwise tolerances
    are the family tests' business; a chunk missed or done twice is far outside this)."""
    rtol = 1e-4 if dtype == F32 else 1e-11
    got = got if isinstance(got, tuple) else (got,)
    want = want if isinstance(want, tuple) else (want,)
    for g, w in zip(got, want, strict=True):
        if isinstance(g, list):
            approx(tuple(g), tuple(w), dtype)
            continue
        g, w = np.asarray(g, F64), np.asarray(w, F64)
        assert g.shape == w.shape, (g.shape, w.shape)
        assert np.array_equal(np.isnan(g), np.isnan(w)), "NaNs differ"
        finite = np.isfinite(w)
        assert np.array_equal(g[~finite], w[~finite], equal_nan=True), "infs differ"
        scale = np.abs(w[finite]).max(initial=0.0)
        err = np.abs(g[finite] - w[finite]).max(initial=0.0)
        assert err <= rtol * scale + 1e-300, f"max |err| {err:.3g} > {rtol:g} * {scale:.3g}"


def exact(got, want):
    got = got if isinstance(got, tuple) else (got,)
    want = want if isinstance(want, tuple) else (want,)
    for g, w in zip(got, want, strict=True):
        assert np.array_equal(g, w, equal_nan=True), "bits differ between thread counts"


def referenced_calls():
    """(name, dtype, fastops call, NumPy-reference call) of the families without a bit promise."""
    calls = []
    for dt in (F32, F64):
        long_rows = rng.standard_normal((37, 700)).astype(dt)
        short_rows = rng.standard_normal((300, 12)).astype(dt)
        few_huge = rng.standard_normal((1, 40000)).astype(dt)
        mask = rng.random(long_rows.shape) > 0.2
        ones = np.ones(37, dt)
        y = fastops.softmax(long_rows, backend="numpy")
        W = (rng.standard_normal((5, 60, 40)) / 8).astype(dt)
        Y = rng.standard_normal((64, 48)).astype(dt)
        u = np.ones((5, 60), dt)
        x, yv = (rng.standard_normal((2, 50, 16)) / 4).astype(dt)
        v = rng.standard_normal((50, 16)).astype(dt)
        xs, ys = (rng.standard_normal((2, 7, 16)) / 4).astype(dt)
        means = rng.standard_normal((6, 3)).astype(F64)
        pts = rng.standard_normal((900, 3)).astype(dt)
        for name, fn, kwargs in [
            ("logsumexp", lambda a, **k: fastops.logsumexp(a, axis=-1, **k), {}),
            ("softmax", fastops.softmax, {}),
            ("log_softmax", lambda a, **k: fastops.log_softmax(a, temperature=0.7, **k), {}),
            ("soft_argmax", fastops.soft_argmax, {}),
        ]:
            for a in (long_rows, short_rows, few_huge):
                calls.append((f"{name}{a.shape}", dt, lambda fn=fn, a=a, k=kwargs: fn(a, **k),
                              lambda fn=fn, a=a, k=kwargs: fn(a, backend="numpy", **k)))
        calls += [
            ("logsumexp masked+b", dt,
             lambda a=long_rows, m=mask: fastops.logsumexp(a, axis=-1, b=a, where=m,
                                                           return_sign=True),
             lambda a=long_rows, m=mask: fastops.logsumexp(a, axis=-1, b=a, where=m,
                                                           return_sign=True, backend="numpy")),
            ("softmax_backward", dt, lambda y=y, d=long_rows: fastops.softmax_backward(y, d),
             lambda y=y, d=long_rows: fastops.smooth.reference.softmax_backward(y, d)),
            ("smooth_max_backward", dt,
             lambda a=long_rows, d=ones: fastops.smooth_max_backward(a, d),
             lambda a=long_rows, d=ones: fastops.smooth.reference.smooth_max_backward(a, d)),
            ("ortho penalty+grad", dt, lambda W=W: fastops.orthogonality_penalty_and_grad(W),
             lambda W=W: fastops.orthogonality_penalty_and_grad(W, backend="numpy")),
            ("ortho offdiag", dt,
             lambda W=W: fastops.orthogonality_penalty_and_grad(W, "offdiag"),
             lambda W=W: fastops.orthogonality_penalty_and_grad(W, "offdiag", backend="numpy")),
            ("som", dt, lambda Y=Y: fastops.som_penalty_and_grad(Y),
             lambda Y=Y: fastops.som_penalty_and_grad(Y, backend="numpy")),
            ("spectral_norm", dt, lambda W=W, u=u: fastops.spectral_norm(W, u),
             lambda W=W, u=u: fastops.spectral_norm(W, u, backend="numpy")),
            ("expm_rank1", dt, lambda x=x, y=yv: fastops.expm_rank1(x, y),
             lambda x=x, y=yv: fastops.expm_rank1(x, y, backend="numpy")),
            ("expm_rank1_apply", dt, lambda x=x, y=yv, v=v: fastops.expm_rank1_apply(x, y, v),
             lambda x=x, y=yv, v=v: fastops.expm_rank1_apply(x, y, v, backend="numpy")),
            ("expm_rank1_chain_apply", dt,
             lambda xs=xs, ys=ys, v=v: fastops.expm_rank1_chain_apply(xs, ys, v),
             lambda xs=xs, ys=ys, v=v: fastops.expm_rank1_chain_apply(xs, ys, v,
                                                                      backend="numpy")),
            ("gmm_score", dt, lambda p=pts, m=means: fastops.gmm_score(p, m.astype(p.dtype), 0.5),
             lambda p=pts, m=means: fastops.gmm_score(p, m.astype(p.dtype), 0.5,
                                                      backend="numpy")),
        ]
    return calls


def _in_place_step(x, score):
    fastops.langevin_step(x, score, 1e-2, seed=1, step=4, offset=2, out=x)
    return x


def bitwise_calls():
    """(name, call) of the ops whose bits must not depend on the thread count."""
    x32 = rng.standard_normal(50001).astype(F32)
    s32 = rng.standard_normal(50001).astype(F32)
    x64 = rng.standard_normal(20001)
    return [
        ("uniform32", lambda: fastops.random.uniform(70001, seed=5, stream=2, offset=3)),
        ("normal32", lambda: fastops.random.normal(70001, seed=5, stream=2, offset=3)),
        ("normal64", lambda: fastops.random.normal(30001, seed=5, dtype="float64", offset=1)),
        ("langevin_step32", lambda: fastops.langevin_step(x32, s32, 1e-2, seed=1, step=4)),
        ("langevin_step32 in place", lambda: _in_place_step(x32.copy(), s32)),
        ("langevin_step64", lambda: fastops.langevin_step(x64, x64, 1e-3, seed=2, step=9)),
    ]


def main() -> None:
    refs = referenced_calls()
    bits = bitwise_calls()
    single = {}
    for threads in (1, 2, 3):
        with fastops.threads(threads):
            for name, dt, call, reference in refs:
                try:
                    approx(call(), reference(), dt)
                except AssertionError as exc:
                    message = f"{name} {dt.__name__}, {threads} threads: {exc}"
                    raise AssertionError(message) from None
            for name, call in bits:
                got = call()
                if threads == 1:
                    single[name] = got
                else:
                    try:
                        exact(got, single[name])
                    except AssertionError as exc:
                        raise AssertionError(f"{name}, {threads} threads: {exc}") from None
    assert numba.threading_layer() == LAYER, numba.threading_layer()
    print(f"ok {LAYER} {len(refs)} referenced calls, {len(bits)} bitwise calls, threads 1-3")


if __name__ == "__main__":
    main()
