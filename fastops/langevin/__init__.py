"""Langevin family: fused Langevin and MALA steps with in-kernel noise, the annealed Langevin
sampler of Song & Ermon (2019), and a Gaussian-mixture score.

From Su Jianlin's post "from denoising autoencoders to generative models"
(kexue.fm/archives/7038) and Song & Ermon, "Generative Modeling by Estimating Gradients of the
Data Distribution" (2019). Math: ../shared/formulas.md section 7 (D3, D4, D6); bad input:
../shared/semantics.md ("langevin and random").

The noise of step ``step`` under ``seed`` is ``fastops.random.normal(x.shape, seed=seed,
stream=step)``, generated inside the kernel: flat position i of x (C order) takes the normal at
position i. So a step is reproducible bit for bit whatever the thread count, the GPU launch
shape or how the caller chunks the array, and the CPU and the GPU compute the same bits (the
update is the same IEEE arithmetic on both; the contract is within 4 ulp for the normals).

How it is fast: one pass per step reads x and score and writes x (12 bytes per float32
element, ``out=x`` updates in place) with the Philox generator and the Box-Muller transform in
registers, where NumPy/PyTorch/CuPy eager code allocates the noise and runs several
elementwise passes; the CPU kernel is vectorised (AVX-512 / AVX2) and parallel.
"""

from __future__ import annotations

import importlib
import math
import sys
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from .. import _checks
from .._dask import dask_aware
from .._dispatch import array_module, resolve_backend
from .._rows import as_contiguous, as_dtype
from ..random import check_offset, check_uint64
from ..random import uniform as _uniform
from . import reference
from .reference import MALA_UNIFORM_OFFSET

__all__ = ["MALA_UNIFORM_OFFSET", "annealed_langevin", "gmm_score", "langevin_step", "mala_step"]


def _kernels(backend: str) -> Any:
    return importlib.import_module(f"{__name__}.{'gpu' if backend == 'cupy' else 'cpu'}")


def _same_shape(func: str, name: str, arr: Any, ref_name: str, ref_shape: tuple[int, ...]) -> None:
    if tuple(arr.shape) != tuple(ref_shape):
        raise ValueError(f"{func}: {name} must have the shape of {ref_name} {tuple(ref_shape)}; "
                         f"got shape {tuple(arr.shape)}")


def _overlaps(xp: Any, a: Any, b: Any) -> bool:
    """Whether a and b share memory (exactly for NumPy; bounds first for CuPy, so that the exact
    test, a kernel and a host synchronisation, runs only when the bounds overlap)."""
    if a.size == 0 or b.size == 0:
        return False
    if xp is np:
        return bool(np.shares_memory(a, b))
    return bool(xp.may_share_memory(a, b)) and bool(xp.shares_memory(a, b))


def _same_view(a: Any, b: Any) -> bool:
    """Whether a and b are the same elements in the same layout (an in-place update)."""
    if a is b:
        return True
    ptr = (lambda v: v.data.ptr) if not isinstance(a, np.ndarray) else (
        lambda v: v.__array_interface__["data"][0])
    return (a.shape == b.shape and a.strides == b.strides and a.dtype == b.dtype
            and ptr(a) == ptr(b))


def _flat(xp: Any, arr: Any, dtype: np.dtype) -> Any:
    """A C-contiguous 1-D array of ``arr``'s elements in ``dtype`` (a view when it can be)."""
    return as_contiguous(xp, arr, dtype).reshape(-1)


@dask_aware(f"{__name__}.dask")
def langevin_step(x: Any, score: Any, step_size: float, *, seed: int, step: int,
                  noise_scale: float = 1.0, out: Any = None, offset: int = 0,
                  backend: str | None = None) -> Any:
    """One Langevin step ``x + (step_size/2) score + noise_scale sqrt(step_size) z``.

    ``z = fastops.random.normal(x.shape, seed=seed, stream=step, offset=offset)`` is generated
    in the kernel (never stored): flat position i of x (C order) takes the normal at stream
    position ``offset + i``. ``x`` and ``score`` have the same shape; ``out=x`` updates x in
    place (any other overlap of out with x or score is a ValueError). ``offset`` lets a caller
    that steps an array in pieces pass each piece's flat position, so that the pieces get the
    bits of one whole call; dask arrays are stepped that way (lazily, block by block, each run
    of consecutive flat positions of a block with its offset: fastops/langevin/dask.py).

    float32 / float64 are computed in their own precision (float16 in float32, integers in
    float64), each product and sum rounded
    on its own: the result equals the NumPy reference (``backend="numpy"``) bit for bit on the
    CPU. A NaN in score gives NaN in those elements only.

    >>> import numpy as np, fastops
    >>> x = np.zeros(4, np.float32)
    >>> y = fastops.langevin_step(x, np.ones(4, np.float32), 0.01, seed=0, step=0)
    >>> bool(np.array_equal(y, fastops.langevin_step(x, np.ones(4, np.float32), 0.01, seed=0,
    ...                                              step=0, backend="numpy")))
    True
    """
    func = "langevin_step"
    backend = resolve_backend(func, (x, score, out), backend)
    xp = array_module(backend)
    x = _checks.real_array(func, "x", x, xp)
    score = _checks.real_array(func, "score", score, xp)
    _same_shape(func, "score", score, "x", x.shape)
    step_size = _checks.real_number(func, "step_size", step_size, positive=True)
    noise_scale = _checks.real_number(func, "noise_scale", noise_scale, nonnegative=True)
    seed = check_uint64(func, "seed", seed)
    step = check_uint64(func, "step", step)
    offset = check_offset(func, offset, x.size)
    result = _checks.result_dtype(func, "x", x.dtype)
    work = _checks.working_dtype(func, "x", x.dtype)
    inplace = False
    if out is not None:
        if not isinstance(out, xp.ndarray):
            raise TypeError(f"{func}: out must be a {xp.__name__} array; got {type(out).__name__}")
        _same_shape(func, "out", out, "x", x.shape)
        if out.dtype != result:
            raise ValueError(f"{func}: out must have dtype {result}; got {out.dtype}")
        inplace = _same_view(out, x)
        if (not inplace and _overlaps(xp, out, x)) or _overlaps(xp, out, score):
            raise ValueError(f"{func}: out may be x itself (an in-place update) but must not "
                             "overlap x otherwise, nor score")
    if backend == "numpy":
        res = np.asarray(reference.langevin_step(xp.asarray(x, work), score, step_size,
                                                 seed=seed, step=step, noise_scale=noise_scale,
                                                 offset=offset))
        res = res.astype(result, copy=False)
        if out is None:
            return res
        out[...] = res
        return out
    c1, c2 = reference.step_coefficients(step_size, noise_scale, work)
    if xp is np and x.size >= _STRIDED_MIN_SIZE and not (
            x.flags.c_contiguous and score.flags.c_contiguous
            and (out is None or out.flags.c_contiguous)):
        stepped = _step_in_place_of_copies(x, score, out, inplace, work, c1, c2, seed, step,
                                           offset)
        if stepped is not None:
            return stepped
    xw = _flat(xp, x, work)
    sw = _flat(xp, score, work)
    direct = out is not None and out.dtype == work and out.flags.c_contiguous
    if direct:
        target = out.reshape(-1)
        if inplace:
            xw = target  # x is out: the kernel reads and writes the same array
    else:
        target = xp.empty(x.size, work)
    _kernels(backend).step(xw, sw, target, c1, c2, seed, step, offset)
    if out is None:
        return as_dtype(xp, target.reshape(x.shape), result)
    if not direct:
        out[...] = target.reshape(out.shape)
    return out


def _merged_stride(shape: tuple[int, ...], strides: tuple[int, ...]) -> int | None:
    """The byte stride of ``shape``'s axes merged into one in C order (0 when they hold one
    element), or None when they do not merge (an axis's stride is not the next longer-than-1
    axis's stride times that axis's length)."""
    merged = None
    inner = None  # (stride, length) of the nearest inner axis longer than 1
    for length, stride in zip(reversed(shape), reversed(strides), strict=True):
        if length == 1:
            continue
        if inner is not None and stride != inner[0] * inner[1]:
            return None
        if merged is None:
            merged = stride
        inner = (stride, length)
    return 0 if merged is None else merged


def _row_split(arrays: list[np.ndarray]) -> tuple[int, int, list[tuple[int, int]]] | None:
    """A split of the common shape into (rows, n), the leading axes merged into rows and the
    others into n, that every array's strides allow: (rows, n, [(row stride, column stride)]
    in elements per array), trying n = the last axis first; None when no split does."""
    shape = arrays[0].shape
    ndim = len(shape)
    for cut in [ndim - 1] + [c for c in range(ndim + 1) if c != ndim - 1]:
        if cut < 0:
            continue
        steps = []
        for a in arrays:
            rs = _merged_stride(shape[:cut], a.strides[:cut])
            cs = _merged_stride(shape[cut:], a.strides[cut:])
            if rs is None or cs is None or rs % a.itemsize or cs % a.itemsize:
                break
            steps.append((rs // a.itemsize, cs // a.itemsize))
        else:
            return math.prod(shape[:cut]), math.prod(shape[cut:]), steps
    return None


def _strided_operand(arr: np.ndarray, rows: int, n: int, rs: int, cs: int
                     ) -> tuple[np.ndarray, int, int, int] | None:
    """``arr`` as the kernel's (flat buffer, base, row stride, column stride): a 1-D view
    from its lowest to its highest element (a view of the caller's memory, never a copy);
    None when that view would not be a plain aligned, writeable array (such operands are
    copied instead, so that the kernel keeps one compiled signature per dtype)."""
    if not (arr.flags.writeable and arr.flags.aligned):
        return None
    # a view starting at the lowest element (the last one along each negative stride)
    lowest = arr[tuple(slice(-1, None) if st < 0 else slice(0, 1) for st in arr.strides)]
    span = abs(rs) * (rows - 1) + abs(cs) * (n - 1) + 1
    buf = np.lib.stride_tricks.as_strided(lowest, (span,), (arr.itemsize,))
    base = (rows - 1) * abs(rs) * (rs < 0) + (n - 1) * abs(cs) * (cs < 0)
    return buf, base, rs, cs


#: Below these many elements a strided langevin_step copies its operands instead (the
#: copies, in cache, cost less than the strided path's set-up, about 40 us of Python, and its
#: scalar update loops): _STRIDED_MIN_SIZE for any layout, _STRIDED_ROWS_MIN_SIZE when every
#: operand is C-like (a slice such as x[:, ::2]; NumPy copies those quickly). Measured (2
#: threads, float32, x and score the same view, 2026-12-04), copying / strided: x.T of
#: (128, 128) 98-138 / 140-215 us, (256, 256) 570-760 / 430-610 us, (1024, 1024) 28-31 /
#: 9-10 ms; x[:, ::2] of (512, 512) 0.56-0.59 / 0.80-0.83 ms, (1024, 1024) 3.1-3.6 /
#: 3.0-3.1 ms, (2048, 2048) 10.7 / 5.6-5.8 ms.
_STRIDED_MIN_SIZE = 1 << 16
_STRIDED_ROWS_MIN_SIZE = 1 << 19


def _step_in_place_of_copies(x: np.ndarray, score: np.ndarray, out: np.ndarray | None,
                             inplace: bool, work: np.dtype, c1: float, c2: float, seed: int,
                             step: int, offset: int) -> np.ndarray | None:
    """langevin_step on the CPU of operands of which one at least is not C-contiguous (a
    slice, a transpose, out=x of either): read and written through their strides, the result
    (when out is None) in x's layout, so that no operand is copied. None when the layouts do
    not allow it (no common (rows, n) split of the shape, a read-only or misaligned operand):
    the caller then copies. Operands not in the working dtype are converted first (a copy),
    as on the contiguous path.

    Measured (2-core VM, 2 threads, float32 (4096, 4096), medians of 5 processes of 11 calls
    each alternating with the copying code, 2026-12-04), before -> after: x[:, ::2] of a
    (4096, 8192) array with a contiguous score 67 -> 47 ms, with a strided score too
    110 -> 52, and out=x 121 -> 42; x.T and score.T 504 -> 72, and out=x 756 -> 64; C inputs
    into a transposed out 288 -> 104 (the contiguous step: 39 ms, 29 in place).
    """
    xw = x if x.dtype == work else as_contiguous(np, x, work)
    sw = score if score.dtype == work else as_contiguous(np, score, work)
    direct = out is not None and out.dtype == work
    if inplace and xw is not x:
        return None
    if direct:
        target = out
    else:
        target = np.empty_like(xw, order="K")
    split = _row_split([xw, sw, target])
    if split is None and not direct:
        target = np.empty(x.shape, work)
        split = _row_split([xw, sw, target])
    if split is None:
        return None
    rows, n, steps = split
    if x.size < _STRIDED_ROWS_MIN_SIZE and all(abs(cs) <= abs(rs) for rs, cs in steps):
        return None
    xo = _strided_operand(xw, rows, n, *steps[0])
    so = _strided_operand(sw, rows, n, *steps[1])
    to = xo if inplace else _strided_operand(target, rows, n, *steps[2])
    if xo is None or so is None or to is None:
        return None
    cpu = _kernels("numba")
    cpu.step_strided(xo, so, to, rows, n, c1, c2, seed, step, offset)
    if out is None:
        return as_dtype(np, target, _checks.result_dtype("langevin_step", "x", x.dtype))
    if not direct:
        out[...] = target
    return out


def mala_step(x: Any, log_prob: Any, score: Any,
              log_prob_and_score: Callable[[Any], tuple[Any, Any]], step_size: float, *,
              seed: int, step: int, backend: str | None = None) -> tuple[Any, Any, Any, Any]:
    """One Metropolis-adjusted Langevin step for chains along the leading axis of x.

    The proposal is :func:`langevin_step` (seed, step); ``log_prob_and_score(y)`` returns the
    log density (n_chains,) and its gradient (x's shape) at the proposals; chain c accepts if
    ``log u_c < log alpha_c`` with ``log alpha = lp(y) - lp(x) + log q(x|y) - log q(y|x)``,
    ``log q(a|b) = -||a - b - (h/2) s(b)||^2 / (2h)`` (sums in float64) and ``u_c`` the float64
    uniform at position ``MALA_UNIFORM_OFFSET + c`` of the stream ``step``. A proposal whose
    log density is NaN is rejected. Returns ``(x_new, log_prob_new, score_new, accepted)``.

    >>> import numpy as np, fastops
    >>> def target(x):  # standard normal: log density and score
    ...     return -0.5 * np.sum(x * x, axis=1), -x
    >>> x = np.zeros((1000, 2))
    >>> lp, s = target(x)
    >>> for t in range(50):
    ...     x, lp, s, ok = fastops.mala_step(x, lp, s, target, 0.5, seed=1, step=t)
    >>> bool(0.8 < x.var() < 1.2)
    True
    """
    func = "mala_step"
    backend = resolve_backend(func, (x, log_prob, score), backend)
    xp = array_module(backend)
    x = _checks.real_array(func, "x", x, xp)
    if x.ndim < 1:
        raise ValueError(f"{func}: x must have at least 1 dimension (chains, ...); got a scalar")
    n = x.shape[0]
    log_prob = _checks.real_array(func, "log_prob", log_prob, xp)
    _same_shape(func, "log_prob", log_prob, "x's chains", (n,))
    score = _checks.real_array(func, "score", score, xp)
    _same_shape(func, "score", score, "x", x.shape)
    if not callable(log_prob_and_score):
        raise TypeError(f"{func}: log_prob_and_score must be callable; "
                        f"got {type(log_prob_and_score).__name__}")
    step_size = _checks.real_number(func, "step_size", step_size, positive=True)
    seed = check_uint64(func, "seed", seed)
    step = check_uint64(func, "step", step)
    y = langevin_step(x, score, step_size, seed=seed, step=step, backend=backend)
    lp_y, s_y = log_prob_and_score(y)
    lp_y = _checks.real_array(func, "log_prob_and_score(...)[0]", lp_y, xp)
    _same_shape(func, "log_prob_and_score(...)[0]", lp_y, "x's chains", (n,))
    s_y = _checks.real_array(func, "log_prob_and_score(...)[1]", s_y, xp)
    _same_shape(func, "log_prob_and_score(...)[1]", s_y, "x", x.shape)
    u = _uniform(n, seed=seed, stream=step, dtype="float64", offset=MALA_UNIFORM_OFFSET,
                 backend=backend)
    if backend == "numpy":
        accepted = reference.mala_accept(x, y, log_prob, lp_y, score, s_y, step_size, u)
        y = np.where(accepted.reshape((n,) + (1,) * (x.ndim - 1)), y, x).astype(y.dtype)
    else:
        d = x.size // n if n else 0
        work = _checks.working_dtype(func, "x", x.dtype)
        chains = _Chains(xp, work, n, d, (x, y, score, s_y))
        y2 = chains.y_new(y)  # ours: the kernel turns it into x_new
        accepted = _kernels(backend).mala_accept(
            chains.operand(x), y2, chains.operand(score), chains.operand(s_y),
            xp.ascontiguousarray(log_prob, dtype=np.float64),
            xp.ascontiguousarray(lp_y, dtype=np.float64), u, step_size)
        y = y2.reshape(x.shape).astype(y.dtype, copy=False)
    lp_dtype = np.result_type(log_prob.dtype, lp_y.dtype)
    lp_new = xp.where(accepted, lp_y, log_prob).astype(lp_dtype, copy=False)
    keep = accepted.reshape((n,) + (1,) * (x.ndim - 1))
    score_new = xp.where(keep, s_y, score).astype(np.result_type(score.dtype, s_y.dtype),
                                                  copy=False)
    return y, lp_new, score_new, accepted


def _progress_bar(total: int) -> tuple[Callable[[], None], Callable[[], None]]:
    """(advance, close) of a progress bar over ``total`` steps: rich's when installed, else a
    line on stderr every 10%."""
    try:
        from rich.progress import Progress
    except ImportError:
        state = {"done": 0}

        def advance() -> None:
            state["done"] += 1
            if state["done"] * 10 // total != (state["done"] - 1) * 10 // total:
                print(f"annealed_langevin: {state['done']}/{total} steps", file=sys.stderr)

        return advance, lambda: None
    bar = Progress(transient=False)
    bar.start()
    task = bar.add_task("annealed Langevin", total=total)
    return (lambda: bar.advance(task)), bar.stop


def annealed_langevin(score: Callable[[Any, float], Any], x0: Any, sigmas: Sequence[float], *,
                      n_steps_each: int = 100, eps: float = 2e-5, seed: int = 0,
                      denoise: bool = True, callback: Callable[[int, int, Any], None] | None = None,
                      progress: bool = False) -> Any:
    """Annealed Langevin dynamics (Song & Ermon 2019, Algorithm 1).

    For each noise level ``sigma_i`` of ``sigmas`` (usually decreasing, e.g. geometric from 1 to
    0.01), ``alpha_i = eps sigma_i^2 / sigma_L^2`` (sigma_L the last level) and
    ``n_steps_each`` updates ``x <- x + (alpha_i/2) score(x, sigma_i) + sqrt(alpha_i) z``, the
    paper's convention. The NCSN reference code writes ``x + step_lr (sigma_i/sigma_L)^2 s +
    sqrt(2 step_lr (sigma_i/sigma_L)^2) z``: its ``step_lr`` is ``eps / 2`` here (its default
    2e-5 is ``eps=4e-5``). Step t of level i (both from 0) draws its noise from the stream
    ``i * n_steps_each + t`` of ``seed``, so runs are reproducible. ``denoise=True`` ends with
    the step ``x + sigma_L^2 score(x, sigma_L)`` (Tweedie's denoiser, formulas.md D4).

    ``score(x, sigma)`` is called on x's array type (NumPy or CuPy) and must return an array of
    x's shape. ``callback(level, t, x)`` runs after every update; ``progress=True`` shows a
    progress bar (rich when installed). x0 is not modified; returns the samples.

    >>> import numpy as np, fastops
    >>> means = np.array([[-4.0], [4.0]])
    >>> score = lambda x, sigma: fastops.gmm_score(x, means, sigma, component_std=0.5)
    >>> x = fastops.annealed_langevin(score, np.zeros((2000, 1)), np.geomspace(1, 0.01, 10),
    ...                               n_steps_each=50)
    >>> bool(abs((x > 0).mean() - 0.5) < 0.05) and bool(np.abs(np.abs(x) - 4).mean() < 0.6)
    True
    """
    func = "annealed_langevin"
    if not callable(score):
        raise TypeError(f"{func}: score must be callable; got {type(score).__name__}")
    backend = resolve_backend(func, (x0,), None)
    xp = array_module(backend)
    x0 = _checks.real_array(func, "x0", x0, xp)
    levels = [_checks.real_number(func, "sigmas[i]", s, positive=True) for s in sigmas]
    if not levels:
        raise ValueError(f"{func}: sigmas must hold at least one noise level; got none")
    n_steps_each = _checks.positive_int(func, "n_steps_each", n_steps_each)
    eps = _checks.real_number(func, "eps", eps, positive=True)
    seed = check_uint64(func, "seed", seed)
    if callback is not None and not callable(callback):
        raise TypeError(f"{func}: callback must be callable; got {type(callback).__name__}")
    result = _checks.result_dtype(func, "x0", x0.dtype)
    x = xp.array(x0, dtype=result, copy=True)
    last = levels[-1]
    advance, close = _progress_bar(len(levels) * n_steps_each) if progress else (None, None)
    try:
        for i, sigma in enumerate(levels):
            alpha = eps * (sigma / last) ** 2
            for t in range(n_steps_each):
                s = score(x, sigma)
                langevin_step(x, s, alpha, seed=seed, step=i * n_steps_each + t, out=x,
                              backend=backend)
                if callback is not None:
                    callback(i, t, x)
                if advance is not None:
                    advance()
    finally:
        if close is not None:
            close()
    if denoise:
        s = _checks.real_array(func, "score(x, sigma)", score(x, last), xp)
        _same_shape(func, "score(x, sigma)", s, "x0", x.shape)
        x += (last * last) * s.astype(result, copy=False)
    return x


class _Chains:
    """mala_step's (chains, d) operands for the accept kernel: on the CPU, when x, the
    proposal, score and the callback's score are all 2-D X.T views of C-contiguous (d,
    chains) arrays of the working dtype (chains along the contiguous axis, as langevin_step
    keeps x's layout), they are passed as they lie to the column kernel; otherwise each is
    made C-contiguous, the proposal included. x = X.T of a (64, 65536) float32 X, a Gaussian
    callback: 27.5 ms C-contiguous, 81 ms through the copies (the row kernel on the strided
    proposal: 37 ms of it) (2-core VM, 2026-12-03)."""

    def __init__(self, xp: Any, work: Any, n: int, d: int, arrays: tuple[Any, ...]) -> None:
        self.xp, self.work, self.shape = xp, work, (n, d)
        self.columns = xp is np and all(
            a.ndim == 2 and a.dtype == work and a.T.flags.c_contiguous
            and not a.flags.c_contiguous and a.flags.writeable for a in arrays)

    def operand(self, arr: Any) -> Any:
        return arr if self.columns else as_contiguous(self.xp, arr, self.work).reshape(self.shape)

    def y_new(self, y: Any) -> Any:
        """The proposal as the array the kernel overwrites with x_new (y itself where it
        can)."""
        if self.columns:
            return y
        y2 = y.reshape(self.shape)
        if y2.dtype != self.work or not y2.flags.c_contiguous:
            y2 = as_contiguous(self.xp, y2, self.work)
        return y2


def _points(xp: Any, x: Any, work: Any, d: int) -> Any:
    """gmm_score's x as (points, d) for the kernels. On the CPU a strided x of the working
    dtype whose points reshape without a copy is passed as it lies (the kernel gathers tiles
    of points itself): x = X.T of a (64, 100000) float32 X took 11.2 ms C-contiguous, 19.7-22.3
    ms through the copy, 14.7 ms read in place against 13.6 C-contiguous in the same run
    (2-core VM, 2026-12-03, K = 8); else as_contiguous."""
    if xp is np and x.dtype == work and x.dtype.isnative and x.flags.aligned \
            and not x.flags.c_contiguous and x.ndim >= 2 and x.size:
        try:
            return x.reshape(-1, d, copy=False)
        except ValueError:  # the points do not lie on one (points, d) grid: copied
            pass
    return as_contiguous(xp, x, work).reshape(-1, d)


@dask_aware(f"{__name__}.dask")
def gmm_score(x: Any, means: Any, sigma: float, *, log_weights: Any = None,
              component_std: float = 0.0, backend: str | None = None) -> Any:
    """Score (gradient of the log density) of the mixture ``sum_k w_k N(mu_k, v I)`` with
    ``v = component_std^2 + sigma^2`` at the points x (..., d): a mixture of isotropic Gaussians
    of std ``component_std`` seen through noise of std ``sigma`` (the score an annealed sampler
    needs at level sigma). ``means``: (K, d); ``log_weights``: (K,) unnormalised log weights
    (uniform when None). One fused pass per point: the responsibilities come from a stable
    softmax over the components, ``score = (sum_k r_k mu_k - x) / v``. A NaN in a point gives
    NaN in its score only.

    >>> import numpy as np, fastops
    >>> fastops.gmm_score(np.array([[1.0, 0.0]]), np.array([[0.0, 0.0]]), 1.0).tolist()
    [[-1.0, 0.0]]
    """
    func = "gmm_score"
    backend = resolve_backend(func, (x, means, log_weights), backend)
    xp = array_module(backend)
    x = _checks.real_array(func, "x", x, xp)
    means = _checks.real_array(func, "means", means, xp)
    if x.ndim < 1:
        raise ValueError(f"{func}: x must have shape (..., d); got a scalar")
    if means.ndim != 2 or means.shape[0] < 1:
        raise ValueError(f"{func}: means must have shape (K, d) with K >= 1; "
                         f"got shape {tuple(means.shape)}")
    if means.shape[1] != x.shape[-1]:
        raise ValueError(f"{func}: means of shape {tuple(means.shape)} and x of shape "
                         f"{tuple(x.shape)} differ in the last dimension d")
    k = means.shape[0]
    if log_weights is not None:
        log_weights = _checks.real_array(func, "log_weights", log_weights, xp)
        _same_shape(func, "log_weights", log_weights, "means' components", (k,))
    sigma = _checks.real_number(func, "sigma", sigma, nonnegative=True)
    component_std = _checks.real_number(func, "component_std", component_std, nonnegative=True)
    var = component_std ** 2 + sigma ** 2
    if not (var > 0.0 and math.isfinite(var)):
        raise ValueError(f"{func}: component_std^2 + sigma^2 must be finite and > 0; got "
                         f"sigma={sigma!r}, component_std={component_std!r}")
    result = _checks.result_dtype(func, "x", x.dtype)
    work = _checks.working_dtype(func, "x", x.dtype)
    d = x.shape[-1]
    if backend == "numpy":
        pts = np.asarray(x, work).reshape(-1, d)
        res = reference.gmm_score(pts, means, sigma, log_weights=log_weights,
                                  component_std=component_std)
        return res.reshape(x.shape).astype(result, copy=False)
    pts = _points(xp, x, work, d)
    mu = as_contiguous(xp, means, work)
    lw = (xp.zeros(k, work) if log_weights is None
          else xp.ascontiguousarray(log_weights, dtype=work))
    if pts.shape[0] == 0 or d == 0:
        return xp.zeros(x.shape, result)
    res = _kernels(backend).gmm_score(pts, mu, lw, var)
    return as_dtype(xp, res.reshape(x.shape), result)
