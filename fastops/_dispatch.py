"""Backend resolution: array type -> backend name.

``numpy.ndarray`` -> ``"numba"`` (CPU kernels), ``cupy.ndarray`` -> ``"cupy"`` (GPU kernels);
``backend="numpy"`` forces the NumPy reference. This module never imports cupy: it looks for
an already imported cupy in ``sys.modules``, so that ``import fastops`` and CPU calls stay free
of CUDA initialisation.
"""

from __future__ import annotations

import importlib.util
import sys
from functools import lru_cache
from typing import Any

import numpy as np

BACKENDS = ("numba", "cupy", "numpy")
_DEVICE_OF_BACKEND = {"numba": "cpu", "numpy": "cpu", "cupy": "gpu"}


@lru_cache(maxsize=64)
def _device_of_class(cls: type) -> str | None:
    """'cpu' for NumPy arrays, 'gpu' for CuPy arrays, None for anything else (scalars, lists)."""
    if issubclass(cls, np.ndarray):
        return "cpu"
    cupy = sys.modules.get("cupy")
    if cupy is not None and issubclass(cls, cupy.ndarray):
        return "gpu"
    return None


def device_of(arrays: tuple[Any, ...], func: str) -> str:
    """The device shared by every array argument ('cpu' when none is an array).

    Raises TypeError when NumPy and CuPy arrays are mixed: fastops never copies between host and
    device behind the caller's back.
    """
    found = None
    for arr in arrays:
        if arr is None:
            continue
        dev = _device_of_class(type(arr))
        if dev is None:
            continue
        if found is None:
            found = dev
        elif dev != found:
            raise TypeError(
                f"{func}: all array arguments must be on the same device; got NumPy and CuPy "
                "arrays in one call (move them with cupy.asarray / cupy.asnumpy first)"
            )
    return found or "cpu"


def resolve_backend(func: str, arrays: tuple[Any, ...], backend: str | None) -> str:
    """Pick the backend for a call from its array arguments and the ``backend=`` argument."""
    device = device_of(arrays, func)
    if backend is None:
        return "cupy" if device == "gpu" else "numba"
    if not isinstance(backend, str) or backend not in BACKENDS:
        raise ValueError(
            f"{func}: backend must be None or one of {', '.join(map(repr, BACKENDS))}; "
            f"got {backend!r}"
        )
    if _DEVICE_OF_BACKEND[backend] != device:
        where = "CuPy (GPU)" if device == "gpu" else "NumPy (CPU)"
        raise TypeError(
            f"{func}: backend={backend!r} does not match the arrays given, which are {where} "
            f"arrays; use backend={'cupy' if device == 'gpu' else 'numba'!r} or None"
        )
    return backend


def array_module(backend: str) -> Any:
    """numpy for the CPU backends, cupy for the GPU backend (imported only here, on demand)."""
    if backend == "cupy":
        import cupy

        return cupy
    return np


def backends() -> dict[str, dict[str, Any]]:
    """Which backends this installation can run.

    Returns a dict ``name -> {"available": bool, "reason": str, "version": str | None}``.
    Checking for CuPy does not import it unless it is installed, and a GPU is looked for only
    when it is.

    >>> fastops.backends()["numpy"]["available"]
    True
    """
    result: dict[str, dict[str, Any]] = {
        "numpy": {"available": True, "reason": "NumPy reference", "version": np.__version__}
    }
    try:
        import numba

        result["numba"] = {"available": True, "reason": "Numba CPU kernels",
                           "version": numba.__version__}
    except ImportError as exc:  # pragma: no cover - numba is a hard dependency
        result["numba"] = {"available": False, "reason": f"numba not importable: {exc}",
                           "version": None}
    result["cupy"] = _cupy_status()
    return result


def _cupy_status() -> dict[str, Any]:
    if importlib.util.find_spec("cupy") is None:
        return {"available": False,
                "reason": "cupy is not installed (pip install 'fastops-kernels[gpu]', or "
                          "pip install -e '.[gpu]' in a fastops checkout)",
                "version": None}
    try:
        import cupy

        count = cupy.cuda.runtime.getDeviceCount()
    except Exception as exc:  # noqa: BLE001 - any CUDA failure means "not available"
        return {"available": False, "reason": f"cupy cannot reach a GPU: {exc}", "version": None}
    if count == 0:
        return {"available": False, "reason": "no CUDA device found", "version": cupy.__version__}
    return {"available": True, "reason": f"{count} CUDA device(s)", "version": cupy.__version__}
