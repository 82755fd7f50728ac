"""Shared fixtures: the backend every test runs on, and moving arrays to and from it.

The markers ``gpu`` and ``slow`` are registered in pyproject.toml, not here. The cupy backend
carries the ``gpu`` marker and is skipped where ``fastops.backends()`` says CuPy cannot run
(no CuPy, or no CUDA device); everywhere else the same test body runs on every backend.
"""

from __future__ import annotations

import functools
import inspect
import os
from typing import Any

import numpy as np
import pytest

# Keep Numba's on-disk cache out of the repository when the caller did not choose a place
# (must be set before numba is imported by fastops' first kernel call).
os.environ.setdefault("NUMBA_CACHE_DIR", "/tmp/numba-cache-tests")

import fastops  # noqa: E402
from fastops.smooth import reference as smooth_reference  # noqa: E402


@functools.cache
def cupy_status() -> tuple[bool, str]:
    """(available, reason) of the cupy backend, as fastops.backends() reports it."""
    info = fastops.backends()["cupy"]
    return bool(info["available"]), str(info["reason"])


def cupy_available() -> bool:
    return cupy_status()[0]


def _cupy_param(value: Any = "cupy", **kwargs: Any) -> Any:
    available, reason = cupy_status()
    return pytest.param(
        value,
        marks=[pytest.mark.gpu, pytest.mark.skipif(not available, reason=f"cupy: {reason}")],
        **kwargs,
    )


#: Parameter list for ``@pytest.mark.parametrize("backend_name", BACKEND_PARAMS)``.
BACKEND_PARAMS = [pytest.param("numba"), pytest.param("numpy"), _cupy_param()]
#: The CPU backends only (layouts CuPy cannot hold, such as big-endian arrays).
CPU_BACKEND_PARAMS = [pytest.param("numba"), pytest.param("numpy")]


def _has_host_only(values: Any) -> bool:
    """Whether some value (or list member) is a NumPy array of strings or objects."""
    for v in values:
        items = v if isinstance(v, list) else [v]
        if any(isinstance(a, np.ndarray) and a.dtype.kind in "USO" for a in items):
            return True
    return False


class Backend:
    """One backend: how to put arrays on its device, call an op there, and read results back.

    ``numba``: NumPy arrays, default dispatch. ``numpy``: NumPy arrays, ``backend="numpy"`` for
    the ops that take it (the reference path) and the smooth reference module itself for the
    smooth backward ops (they have no ``backend=`` argument). ``cupy``: CuPy arrays, default
    dispatch.
    """

    def __init__(self, name: str) -> None:
        self.name = name
        if name == "cupy":
            import cupy

            self.xp = cupy
        else:
            self.xp = np

    def __repr__(self) -> str:
        return f"Backend({self.name!r})"

    @property
    def array_type(self) -> type:
        return self.xp.ndarray

    def asarray(self, value: Any) -> Any:
        """A host array (or None, or a scalar) on this backend's device; views stay views.

        Arrays CuPy cannot hold (strings, objects) stay on the host, so that error tests reach
        the function's own check.
        """
        if self.name == "cupy" and isinstance(value, np.ndarray) and value.dtype.kind not in "USO":
            return self.xp.asarray(value)
        return value

    def asnumpy(self, value: Any) -> Any:
        """A result of this backend as a NumPy array (tuples element by element)."""
        if isinstance(value, tuple):
            return tuple(self.asnumpy(v) for v in value)
        if self.name == "cupy" and isinstance(value, self.xp.ndarray):
            return self.xp.asnumpy(value)
        return value

    def function(self, op: str) -> Any:
        """The callable that runs ``op`` on this backend (arguments already on the device)."""
        fn = getattr(fastops, op)
        if self.name == "numpy":
            if "backend" in inspect.signature(fn).parameters:
                return functools.partial(fn, backend="numpy")
            return getattr(smooth_reference, op)  # the smooth backward ops take no backend=
        return fn

    def call(self, op: str, *args: Any, **kwargs: Any) -> Any:
        """Move array arguments (also inside lists) to the device, run ``op``, return the raw
        (device) result. If an argument is an array CuPy cannot hold (strings, objects: an
        error test), nothing is moved, so that the function's dtype check is what fails, not
        the mixed-device rule."""
        if not _has_host_only((*args, *kwargs.values())):
            args = tuple(self._move(a) for a in args)
            kwargs = {k: self._move(v) for k, v in kwargs.items()}
        return self.function(op)(*args, **kwargs)

    def _move(self, value: Any) -> Any:
        if isinstance(value, list):
            return [self.asarray(v) for v in value]
        return self.asarray(value)

    def run(self, op: str, *args: Any, **kwargs: Any) -> Any:
        """``call`` and bring the result back to the host."""
        return self.asnumpy(self.call(op, *args, **kwargs))


@pytest.fixture(params=BACKEND_PARAMS)
def backend(request: pytest.FixtureRequest) -> Backend:
    """Every backend: numba, numpy (the reference path) and cupy (gpu marker, skipped here)."""
    return Backend(request.param)


@pytest.fixture(params=CPU_BACKEND_PARAMS)
def cpu_backend(request: pytest.FixtureRequest) -> Backend:
    """The two CPU backends (for layouts that only NumPy arrays can have)."""
    return Backend(request.param)


@pytest.fixture(params=[_cupy_param()])
def gpu_backend(request: pytest.FixtureRequest) -> Backend:
    """The cupy backend alone (gpu marker; skipped without a GPU), for the GPU kernels' own
    paths (the column kernels) where the CPU has tests of its own."""
    return Backend(request.param)


@pytest.fixture
def rng() -> np.random.Generator:
    """A seeded generator: every test draws the same numbers on every run."""
    return np.random.default_rng(20240611)


def assert_numpy_backend_runs_the_reference(family: Any, op: str, args: tuple, kwargs: dict,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """``backend="numpy"`` calls ``family.reference.<op>`` and never a kernel module."""
    seen = []
    real = getattr(family.reference, op)
    monkeypatch.setattr(family.reference, op, lambda *a, **k: seen.append(op) or real(*a, **k))
    monkeypatch.setattr(family, "_kernels", lambda name: pytest.fail("a kernel module was used"))
    getattr(fastops, op)(*args, backend="numpy", **kwargs)
    assert seen == [op]


def cpu_backend_results(family: Any, op: str, args: tuple, kwargs: dict,
                        monkeypatch: pytest.MonkeyPatch) -> tuple[Any, Any]:
    """The results of ``op`` with the default and with ``backend="numba"``, checking that both
    went to the family's numba kernel module."""
    seen = []
    real = family._kernels
    monkeypatch.setattr(family, "_kernels", lambda name: seen.append(name) or real(name))
    default = getattr(fastops, op)(*args, **kwargs)
    numba_result = getattr(fastops, op)(*args, backend="numba", **kwargs)
    assert seen and set(seen) == {"numba"}
    return default, numba_result
