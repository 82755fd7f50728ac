"""Benchmark cases of the Langevin and random families.

- ``langevin_step``: one in-place step ``x <- x + (h/2) s + sqrt(h) z`` with the noise drawn
  inside the kernel; floor: read x and s, write x (12 bytes per float32 element).
- ``random_normal``: ``fastops.random.normal``; floor: the output written once (4 bytes per
  float32 value).
- ``gmm_score``: the score of a K-component isotropic mixture at n points of dimension d;
  floor: read x and write the score (the means are tiny). Compute-bound for d = K = 64
  (4 n K d flops), so % copy is low there by nature.
- ``annealed_langevin``: the demo (``fastops demo langevin``): 2-D mixture of 8 Gaussians,
  10 noise levels from 1 to 0.01, 100 steps each, gmm_score + langevin_step per step; one
  call is the whole run; floor: the 1000 steps' step bytes (12 B per particle coordinate).

Targets (``performance.md``): langevin_step >= 4x torch eager on the CPU, >= 80% of the floor
and >= 2x torch eager on the GPU; random.normal >= 3x NumPy's Generator.standard_normal on the
CPU and >= 80% of the write floor on the GPU.

Peers, the way a user writes the same thing today:

- ``numpy``: NumPy eager: ``x += c1 * s; x += c2 * rng.standard_normal(...)`` with a PCG64
  Generator; ``rng.standard_normal(n, dtype)``; gmm_score through the GEMM expansion of the
  distances (``|x|^2 - 2 x mu^T + |mu|^2``, a stable softmax, ``r @ mu``), in x's dtype (the
  broadcast (n, K, d) difference would need 16 GB at n = 1e6, d = K = 64);
- ``torch``: torch eager, ``x.add_(s, alpha=c1).add_(torch.randn_like(x), alpha=c2)``,
  ``torch.randn``, and the same GEMM formulation (CPU, or CUDA through DLPack);
- ``cupy`` (GPU cases): CuPy eager, the NumPy formulation on CuPy arrays with
  ``cupy.random`` (cuRAND);
- ``numba`` (GPU cases): the fastops CPU backend on host copies.

The demo's only peer is the same run in NumPy eager code (``numpy``; not in ``--quick``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

import numpy as np

from .cases import Case, Impl, check_request, register_family
from .devices import array_module, installed, random_array
from .peers import PEER_NAMES, host_copy_peer, numpy_peer, torch_peer, torch_usable

OPS: tuple[str, ...] = ("langevin_step", "random_normal", "gmm_score", "annealed_langevin")
STEP_SIZE = 1e-4  # an NCSN-like step: c1 = 5e-5, c2 = 1e-2
DEMO_LEVELS = 10
DEMO_STEPS = 100
DEMO_COMPONENT_STD = 0.2

Shape = tuple[int, ...]

#: The ops --quick times when none are named, per device. On the CPU langevin_step only:
#: random_normal and gmm_score are Numba compilations of 3-7 s each on two cores, and the
#: demo run (about 1 s a call) has its own command, ``fastops demo langevin``.
QUICK_OPS: dict[str, tuple[str, ...]] = {"cpu": ("langevin_step",), "cuda": OPS}
#: Small calls (CPU, every size, float32): one step of 4096 particle coordinates, tens of
#: microseconds, as a sampler makes between its score evaluations.
SMALL_CALLS: tuple[tuple[str, Shape], ...] = (("langevin_step", (4096,)),)
SMALL_CALL_DTYPE = "float32"

#: shapes per op, dtypes, per (device, size). gmm_score shapes are (n, d, K).
_GRIDS: dict[tuple[str, str], tuple[dict[str, tuple[Shape, ...]], tuple[str, ...]]] = {
    ("cpu", "full"): ({
        "langevin_step": ((1 << 25,),),
        "random_normal": ((1 << 25,),),
        "gmm_score": ((10 ** 6, 2, 8), (10 ** 6, 2, 64), (10 ** 6, 64, 8), (10 ** 6, 64, 64)),
        "annealed_langevin": ((100_000, 2, 8),),
    }, ("float32",)),
    ("cpu", "quick"): ({
        "langevin_step": ((1 << 24,),),
        "random_normal": ((1 << 25,),),
        "gmm_score": ((10 ** 6, 2, 8), (10 ** 6, 64, 8)),
        "annealed_langevin": ((100_000, 2, 8),),
    }, ("float32",)),
    ("cpu", "tiny"): ({
        "langevin_step": ((1001,),),
        "random_normal": ((1001,),),
        "gmm_score": ((101, 3, 4),),
        "annealed_langevin": ((64, 2, 8),),
    }, ("float32",)),
    ("cuda", "full"): ({
        "langevin_step": ((1 << 28,),),
        "random_normal": ((1 << 28,),),
        "gmm_score": ((10 ** 6, 2, 8), (10 ** 6, 2, 64), (10 ** 6, 64, 8), (10 ** 6, 64, 64)),
        "annealed_langevin": ((100_000, 2, 8),),
    }, ("float32",)),
    ("cuda", "quick"): ({
        "langevin_step": ((1 << 28,),),
        "random_normal": ((1 << 28,),),
        "gmm_score": ((10 ** 6, 64, 64),),
        "annealed_langevin": ((100_000, 2, 8),),
    }, ("float32",)),
    ("cuda", "tiny"): ({
        "langevin_step": ((1001,),),
        "random_normal": ((1001,),),
        "gmm_score": ((101, 3, 4),),
        "annealed_langevin": ((64, 2, 8),),
    }, ("float32",)),
}


def step_coefficients(dtype: str) -> tuple[float, float]:
    """(c1, c2) of the benchmarked step."""
    return 0.5 * STEP_SIZE, math.sqrt(STEP_SIZE)


def demo_means(xp: Any = np, dtype: str = "float32") -> Any:
    """The demo's 8 modes on the circle of radius 4."""
    angles = np.arange(8) * (np.pi / 4)
    return xp.asarray(4.0 * np.stack([np.cos(angles), np.sin(angles)], axis=1), dtype=dtype)


def demo_sigmas() -> np.ndarray:
    return np.geomspace(1.0, 0.01, DEMO_LEVELS)


def nbytes_floor(op: str, shape: Shape, itemsize: int) -> int:
    """Bytes the op must move: each input read once, each output written once."""
    if op == "langevin_step":
        return 3 * shape[0] * itemsize
    if op == "random_normal":
        return shape[0] * itemsize
    if op == "gmm_score":
        n, d, k = shape
        return (2 * n * d + k * d) * itemsize
    if op == "annealed_langevin":
        n, d, _ = shape
        return DEMO_LEVELS * DEMO_STEPS * 3 * n * d * itemsize
    raise ValueError(f"nbytes_floor: unknown langevin op {op!r}")


# --------------------------------------------------------------------------------------------
# fastops calls and inputs
# --------------------------------------------------------------------------------------------


def _inputs(op: str, backend: str, shape: Shape, dtype: str) -> Callable[[int], tuple]:
    def make(seed: int) -> tuple:
        s = 16 * seed + 3
        if op == "langevin_step":
            # a private copy: the step updates x in place (the cached input is shared)
            x = random_array(backend, shape, dtype, s).copy()
            return x, random_array(backend, shape, dtype, s + 1)
        if op == "random_normal":
            return (shape[0],)
        if op == "gmm_score":
            n, d, k = shape
            x = random_array(backend, (n, d), dtype, s)
            means = random_array(backend, (k, d), dtype, s + 1)
            return x, means
        n, d, _ = shape
        x0 = random_array(backend, (n, d), dtype, s)
        return x0, demo_means(array_module(backend), dtype)

    return make


def _fastops_call(op: str, backend: str) -> Callable[..., Any]:
    import fastops

    if op == "langevin_step":
        counter = [0]

        def step(x: Any, s: Any) -> Any:
            counter[0] += 1
            return fastops.langevin_step(x, s, STEP_SIZE, seed=1, step=counter[0], out=x)

        return step
    if op == "random_normal":
        return lambda n: fastops.random.normal(n, seed=1, backend=backend)
    if op == "gmm_score":
        return lambda x, means: fastops.gmm_score(x, means, 0.5, component_std=0.1)

    def demo(x0: Any, means: Any) -> Any:
        def score(x: Any, sigma: float) -> Any:
            return fastops.gmm_score(x, means, sigma, component_std=DEMO_COMPONENT_STD)

        return fastops.annealed_langevin(score, x0, demo_sigmas(), n_steps_each=DEMO_STEPS,
                                         seed=0)

    return demo


# --------------------------------------------------------------------------------------------
# Peers
# --------------------------------------------------------------------------------------------


def _eager_step(xp: Any, device: str) -> Callable[..., Any]:
    """x += c1 s; x += c2 N(0, 1): NumPy (PCG64 Generator) or CuPy (cupy.random) eager."""
    c1, c2 = step_coefficients("float32")
    rng = xp.random.default_rng(0)

    def step(x: Any, s: Any) -> Any:
        x += x.dtype.type(c1) * s
        x += x.dtype.type(c2) * rng.standard_normal(x.shape, dtype=x.dtype)
        return x

    return step


def _eager_normal(xp: Any, dtype: str) -> Callable[..., Any]:
    rng = xp.random.default_rng(0)
    return lambda n: rng.standard_normal(n, dtype=np.dtype(dtype).type)


def gmm_score_gemm(xp: Any, x: Any, means: Any, sigma: float = 0.5,
                   component_std: float = 0.1) -> Any:
    """The GEMM formulation a NumPy/CuPy user writes (x's dtype, no (n, K, d) temporary)."""
    var = component_std ** 2 + sigma ** 2
    d2 = (x * x).sum(1)[:, None] - 2 * (x @ means.T) + (means * means).sum(1)[None, :]
    logits = d2 * x.dtype.type(-0.5 / var)
    logits -= logits.max(axis=1, keepdims=True)
    r = xp.exp(logits)
    r /= r.sum(axis=1, keepdims=True)
    return (r @ means - x) * x.dtype.type(1.0 / var)


def _numpy_demo(x0: np.ndarray, means: np.ndarray) -> np.ndarray:
    """The demo's sampler in NumPy eager code (same schedule; PCG64 noise)."""
    rng = np.random.default_rng(0)
    sigmas = demo_sigmas()
    x = x0.copy()
    t = x.dtype.type
    for sigma in sigmas:
        alpha = 2e-5 * (sigma / sigmas[-1]) ** 2
        for _ in range(DEMO_STEPS):
            s = gmm_score_gemm(np, x, means, sigma, DEMO_COMPONENT_STD)
            x += t(0.5 * alpha) * s
            x += t(math.sqrt(alpha)) * rng.standard_normal(x.shape, dtype=x.dtype)
    return x + t(sigmas[-1] ** 2) * gmm_score_gemm(np, x, means, sigmas[-1], DEMO_COMPONENT_STD)


def _torch_fns(op: str, dtype: str) -> Callable[..., Any]:
    import torch

    c1, c2 = step_coefficients(dtype)
    if op == "langevin_step":
        return lambda x, s: x.add_(s, alpha=c1).add_(torch.randn_like(x), alpha=c2)
    if op == "random_normal":
        tdt = getattr(torch, dtype)
        return lambda n, device: torch.randn(n, dtype=tdt, device=device)

    def gmm(x: Any, means: Any) -> Any:
        var = 0.1 ** 2 + 0.5 ** 2
        d2 = torch.cdist(x, means).square_()
        r = torch.softmax(d2 * (-0.5 / var), dim=1)
        return (r @ means - x) * (1.0 / var)

    return gmm


def langevin_peers(op: str, device: str, dtype: str, fastops_call: Callable[..., Any],
                   size: str = "full", wanted: Sequence[str] | None = None) -> tuple[Impl, ...]:
    """The peers of one case on ``device`` that are installed here. The demo's NumPy run
    (about 13 s on two cores) is left out of --quick, which is meant to take about a minute."""
    wanted = PEER_NAMES if wanted is None else tuple(wanted)
    peers: list[Impl] = []
    if op == "annealed_langevin":
        if "numpy" in wanted and size != "quick":
            demo = Impl("numpy", "NumPy eager: GEMM gmm score + eager step, same schedule",
                        _numpy_demo, prepare=numpy_peer(_numpy_demo, "", device).prepare,
                        slow=True, warmup=0)
            peers.append(demo)
        return tuple(peers)
    if "numpy" in wanted:
        if op == "langevin_step":
            peers.append(numpy_peer(_eager_step(np, "cpu"),
                                    "NumPy eager: x += c1 s; x += c2 rng.standard_normal (PCG64)",
                                    device))
        elif op == "random_normal":
            peers.append(numpy_peer(_eager_normal(np, dtype),
                                    "numpy Generator(PCG64).standard_normal", device))
        else:
            peers.append(numpy_peer(partial(gmm_score_gemm, np),
                                    "NumPy: GEMM distances, softmax, r @ means", device))
    if "torch" in wanted and torch_usable(device):
        fn = _torch_fns(op, dtype)
        if op == "random_normal":
            where = "cuda" if device == "cuda" else "cpu"
            peers.append(torch_peer("torch", "torch.randn", lambda n: fn(n, where), device))
        else:
            what = {"langevin_step": "eager x.add_(s, alpha).add_(randn_like(x), alpha)",
                    "gmm_score": "cdist, softmax, r @ means"}[op]
            peers.append(torch_peer("torch", what, fn, device))
    if "cupy" in wanted and device == "cuda" and installed("cupy"):
        import cupy

        if op == "langevin_step":
            peers.append(Impl("cupy", "CuPy eager: x += c1 s; x += c2 cupy.random (cuRAND)",
                              _eager_step(cupy, device), clock="cupy"))
        elif op == "random_normal":
            peers.append(Impl("cupy", "cupy.random.default_rng().standard_normal",
                              _eager_normal(cupy, dtype), clock="cupy"))
        else:
            peers.append(Impl("cupy", "CuPy: GEMM distances, softmax, r @ means",
                              partial(gmm_score_gemm, cupy), clock="cupy"))
    if "numba" in wanted and device == "cuda" and op != "random_normal":
        peers.append(host_copy_peer(fastops_call))
    return tuple(peers)


# --------------------------------------------------------------------------------------------
# The cases
# --------------------------------------------------------------------------------------------


def _label(op: str, shape: Shape) -> str:
    if op == "gmm_score":
        n, d, k = shape
        return f"n{n:.0e}".replace("e+0", "e") + f" d{d} K{k}"
    if op == "annealed_langevin":
        particles = f"{shape[0] // 1000}k" if shape[0] >= 1000 else str(shape[0])
        return f"{particles} x{DEMO_LEVELS * DEMO_STEPS}"
    n = shape[0]
    return f"2^{n.bit_length() - 1}" if n & (n - 1) == 0 else str(n)


def langevin_cases(size: str = "full", backend: str = "numba",
                   ops: Sequence[str] | None = None) -> list[Case]:
    """The Langevin / random cases of ``size`` ("full", "quick", "tiny") on ``backend``."""
    device = check_request("langevin_cases", backend, ops, OPS)
    shapes, dtypes = _GRIDS[(device, size)]
    default = QUICK_OPS[device] if size == "quick" else OPS
    selected = [op for op in OPS if op in (ops or default)]
    cases = [
        _case(op, shape, dtype, backend, device, size)
        for dtype in dtypes
        for op in selected
        for shape in shapes[op]
    ]
    if device == "cpu":
        cases += [
            _case(op, shape, SMALL_CALL_DTYPE, backend, device, size, small_call=True)
            for op, shape in SMALL_CALLS
            if op in selected
        ]
    return cases


def _case(op: str, shape: Shape, dtype: str, backend: str, device: str, size: str,
          small_call: bool = False) -> Case:
    call = _fastops_call(op, backend)
    return Case(
        family="langevin", op=op, shape=shape, dtype=dtype, backend=backend,
        nbytes=nbytes_floor(op, shape, np.dtype(dtype).itemsize),
        make_inputs=_inputs(op, backend, shape, dtype),
        impl=Impl(name="fastops", label=f"fastops.{op} ({backend})", call=call,
                  clock="cupy" if device == "cuda" else "host"),
        peer_fn=partial(langevin_peers, op, device, dtype, call, size),
        shape_label=_label(op, shape),
        stochastic=op != "gmm_score",
        small_call=small_call,
    )


register_family("langevin", langevin_cases, OPS)
