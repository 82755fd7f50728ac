"""Where a benchmark runs: array modules, random inputs, synchronisation.

Everything GPU-related is imported lazily, and only after ``importlib.util.find_spec`` says
CuPy is installed, so that ``import fastops.bench`` and CPU-only runs never import CuPy.
"""

from __future__ import annotations

import importlib
import importlib.util
from collections import OrderedDict
from functools import cache
from types import ModuleType
from typing import Any

import numpy as np

#: Backends ``fastops bench`` knows how to time, and the device each one runs on.
BENCH_BACKENDS: dict[str, str] = {"numba": "cpu", "cupy": "cuda"}


def installed(module: str) -> bool:
    """True when ``module`` can be imported, without importing it."""
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        # find_spec raises for a half-imported or broken parent package: treat as absent.
        return False


@cache
def cupy_usable() -> tuple[bool, str]:
    """Whether CuPy is installed *and* sees a GPU, with the reason when it does not.

    Only here (and only when the spec exists) is CuPy imported.
    """
    if not installed("cupy"):
        return False, "cupy is not installed"
    try:
        import cupy

        count = cupy.cuda.runtime.getDeviceCount()
    except Exception as exc:  # CUDA driver missing, no device, broken install...
        return False, f"cupy cannot reach a GPU: {type(exc).__name__}: {exc}"
    if count < 1:
        return False, "cupy found no CUDA device"
    return True, ""


def backend_status(backend: str) -> tuple[bool, str]:
    """Whether fastops can run ``backend`` here, and why not.

    Prefers ``fastops.backends()``; falls back to probing the modules so that the bench can
    still explain itself while the package core is incomplete.
    """
    if backend == "cupy":
        ok, reason = cupy_usable()
        if not ok:
            return ok, reason
    try:
        import fastops

        info = fastops.backends().get(backend)
    except Exception:  # the package API not there (yet): probe the module instead
        info = None
    if info is not None:
        return bool(info.get("available")), str(info.get("reason") or "")
    if backend == "numba":
        return (True, "") if installed("numba") else (False, "numba is not installed")
    if backend == "cupy":
        return True, ""
    return False, f"unknown backend {backend!r}"


def resolve_backends(requested: str) -> tuple[list[str], dict[str, str]]:
    """Turn ``--backend numba|cupy|all`` into the backends to run and the skipped ones.

    Returns ``(run, skipped)`` where ``skipped`` maps a backend to the reason it is skipped.
    ``all`` means every backend available on this machine; naming one that is not available
    skips it with its reason (the CLI turns an empty ``run`` into an error).
    """
    names = list(BENCH_BACKENDS) if requested == "all" else [requested]
    run: list[str] = []
    skipped: dict[str, str] = {}
    for name in names:
        if name not in BENCH_BACKENDS:
            skipped[name] = f"unknown backend (choose from {', '.join(BENCH_BACKENDS)})"
            continue
        ok, reason = backend_status(name)
        if ok:
            run.append(name)
        else:
            skipped[name] = reason
    return run, skipped


def array_module(backend: str) -> ModuleType:
    """numpy for host backends, cupy for the GPU one (imported only here)."""
    if BENCH_BACKENDS.get(backend, "cpu") == "cuda":
        return importlib.import_module("cupy")
    return np


def synchronize(device: str) -> None:
    """Wait for all queued work on ``device`` ("cpu" is a no-op)."""
    if device == "cuda":
        import cupy

        # Device-wide, so work queued by torch or by another stream is included too.
        cupy.cuda.runtime.deviceSynchronize()


def to_host(a: Any) -> Any:
    """A NumPy copy of a CuPy array (identity for NumPy arrays and non-arrays)."""
    if isinstance(a, np.ndarray) or not hasattr(a, "__cuda_array_interface__"):
        return a
    import cupy

    return cupy.asnumpy(a)


class _InputCache:
    """A small LRU of generated random arrays, bounded in bytes.

    Generating 128 MB of normal deviates costs about half a second on the development CPU,
    and consecutive cases (every op on one shape and dtype) want the same arrays; inputs are
    never written by the timed functions, so sharing them is safe.
    """

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._items: OrderedDict[tuple, Any] = OrderedDict()

    def get(self, key: tuple, make: Any) -> Any:
        if key in self._items:
            self._items.move_to_end(key)
            return self._items[key]
        value = make()
        self._items[key] = value
        while len(self._items) > 1 and self._bytes() > self.max_bytes:
            self._items.popitem(last=False)
        return value

    def _bytes(self) -> int:
        return sum(int(v.nbytes) for v in self._items.values())

    def clear(self) -> None:
        self._items.clear()


_CACHE = _InputCache(max_bytes=1 << 30)


def random_array(
    backend: str,
    shape: tuple[int, ...],
    dtype: str,
    seed: int,
    kind: str = "normal",
) -> Any:
    """A random array on ``backend``'s device (never zeros: timings on zeros flatter).

    ``kind``: "normal" (standard normal), "simplex" (positive rows summing to one, a
    realistic softmax output), "log_simplex" (its log, a realistic log_softmax output) or
    "kernel" (normal with variance 1/d for shape (..., d, k): a freshly initialised weight
    matrix, whose columns are nearly orthonormal).
    Arrays come from a seeded generator on the device itself.
    """

    def make() -> Any:
        # Generated where it will be used: numpy draws 16M normals in about 0.3 s, too slow
        # for the GPU's 268M-element shapes, which CuPy's generator fills in milliseconds.
        xp = array_module(backend)
        if np.dtype(dtype) == np.float16:  # the generators draw float32 and float64 only
            return make_in(xp, np.float32).astype(np.float16)
        return make_in(xp, np.dtype(dtype).type)

    def make_in(xp: Any, dt: Any) -> Any:
        rng = xp.random.default_rng(seed)
        if kind == "normal":
            return rng.standard_normal(shape, dtype=dt)
        if kind == "kernel":
            a = rng.standard_normal(shape, dtype=dt)
            a *= dt(1.0 / max(1, shape[-2]) ** 0.5)
            return a
        if kind in ("simplex", "log_simplex"):
            # Bounded away from 0 so that the log below stays finite.
            a = rng.random(shape, dtype=dt) + dt(0.01)
            a /= a.sum(axis=-1, keepdims=True)
            if kind == "log_simplex":
                xp.log(a, out=a)
            return a
        raise ValueError(f"random_array: unknown kind {kind!r}")

    return _CACHE.get((BENCH_BACKENDS.get(backend, "cpu"), shape, dtype, seed, kind), make)


def clear_input_cache() -> None:
    """Free the cached random inputs (call between families or at the end of a run)."""
    _CACHE.clear()
