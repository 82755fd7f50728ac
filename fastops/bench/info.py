"""Machine and backend information for ``fastops info`` and the bench JSON.

Versions are read from package metadata where possible, so that asking for torch's version
does not import torch; CuPy is imported only when it is installed and a backend needs it.
"""

from __future__ import annotations

import importlib.metadata
import os
import platform
import sys
from functools import cache
from typing import Any

from .devices import cupy_usable, installed

#: The distribution fastops is published as (the name ``fastops`` on the package index is an
#: unrelated project); the import name is ``fastops``.
DISTRIBUTION = "fastops-kernels"

#: Distributions reported by ``fastops info`` (import name -> distribution names to try).
_PACKAGES: dict[str, tuple[str, ...]] = {
    "numpy": ("numpy",),
    "numba": ("numba",),
    "llvmlite": ("llvmlite",),
    "scipy": ("scipy",),
    "cupy": ("cupy", "cupy-cuda12x", "cupy-cuda13x", "cupy-cuda11x"),
    "torch": ("torch",),
    "rich": ("rich",),
    "matplotlib": ("matplotlib",),
    "asv": ("asv",),
    "threadpoolctl": ("threadpoolctl",),
}


def package_version(module: str) -> str | None:
    """The installed version of ``module``'s distribution, or None (never imports it)."""
    for dist in _PACKAGES.get(module, (module,)):
        try:
            return importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            continue
    if installed(module):  # importable but no metadata (e.g. a source checkout on sys.path)
        return "unknown"
    return None


def cpu_model() -> str:
    """The CPU model name (``/proc/cpuinfo`` on Linux, ``platform.processor()`` elsewhere)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


@cache
def numba_threading() -> dict[str, Any]:
    """Numba's threading layer and thread count.

    ``numba.threading_layer()`` only answers after a parallel kernel has run, so a tiny
    ``prange`` function is compiled and run first (a fraction of a second, once).
    """
    if not installed("numba"):
        return {"available": False}
    import numba

    from .. import _numba as scheduling

    out: dict[str, Any] = {
        "configured_layer": numba.config.THREADING_LAYER,
        "num_threads": numba.get_num_threads(),
        "NUMBA_NUM_THREADS": numba.config.NUMBA_NUM_THREADS,
        # fastops' scheduling (fastops/_numba.py): serial below this much estimated work,
        # dynamic chunks of about CHUNK_NS each above it
        "parallel_min_ns": scheduling.PARALLEL_MIN_NS,
        "chunk_ns": scheduling.CHUNK_NS,
    }
    try:

        @numba.njit(parallel=True, cache=False)
        def _touch(n: int) -> int:  # pragma: no cover - compiled
            s = 0
            for i in numba.prange(n):
                s += i
            return s

        _touch(64)
        out["layer"] = numba.threading_layer()
    except Exception as exc:  # no usable threading layer: report why instead of failing
        out["layer"] = None
        out["layer_error"] = f"{type(exc).__name__}: {exc}"
    return out


def numba_cache_dir() -> dict[str, Any]:
    """Where Numba writes ``cache=True`` kernels."""
    import numba

    configured = numba.config.CACHE_DIR
    if configured:
        return {"dir": configured, "source": "NUMBA_CACHE_DIR"}
    try:
        from numba.misc.appdirs import AppDirs

        fallback = AppDirs(appname="numba", appauthor=False).user_cache_dir
    except Exception:
        fallback = os.path.join("~", ".cache", "numba")
    return {
        "dir": None,
        "source": "default: __pycache__ beside each kernel module; "
        f"{fallback} when that directory is read-only",
        "fallback": fallback,
    }


def cupy_cache_dir() -> dict[str, Any]:
    """Where CuPy writes compiled kernels (without importing CuPy)."""
    env = os.environ.get("CUPY_CACHE_DIR")
    if env:
        return {"dir": env, "source": "CUPY_CACHE_DIR"}
    return {"dir": os.path.expanduser("~/.cupy/kernel_cache"), "source": "default"}


def gpu_info() -> dict[str, Any]:
    """GPU name, memory and CUDA versions through CuPy, or why there is none."""
    ok, reason = cupy_usable()
    if not ok:
        return {"available": False, "reason": reason}
    import cupy

    rt = cupy.cuda.runtime
    dev = cupy.cuda.Device()
    props = rt.getDeviceProperties(dev.id)
    name = props["name"]
    free, total = dev.mem_info

    def cuda_version(v: int) -> str:
        return f"{v // 1000}.{(v % 1000) // 10}"

    return {
        "available": True,
        "device_count": rt.getDeviceCount(),
        "device": dev.id,
        "name": name.decode() if isinstance(name, bytes) else str(name),
        "compute_capability": f"{props['major']}.{props['minor']}",
        "memory_total_bytes": int(total),
        "memory_free_bytes": int(free),
        "cuda_runtime": cuda_version(rt.runtimeGetVersion()),
        "cuda_driver": cuda_version(rt.driverGetVersion()),
    }


def fastops_backends() -> dict[str, Any]:
    """``fastops.backends()``, or the error that prevented calling it."""
    try:
        import fastops

        return dict(fastops.backends())
    except Exception as exc:
        return {"error": f"{type(exc).__name__}: {exc}"}


#: Environment variables that change how the CPU thread pools (Numba's OpenMP / TBB layer, the
#: BLAS behind numpy.matmul) share the cores, hence the GEMM-bound timings.
_THREADING_ENV: tuple[str, ...] = (
    "OMP_NUM_THREADS",
    "OMP_WAIT_POLICY",
    "GOMP_SPINCOUNT",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "NUMBA_NUM_THREADS",
    "NUMBA_THREADING_LAYER",
)


def thread_pools() -> list[dict[str, Any]] | None:
    """The native thread pools loaded in this process (BLAS, OpenMP runtimes) with their
    thread counts, through threadpoolctl (None when it is not installed)."""
    if not installed("threadpoolctl"):
        return None
    import threadpoolctl

    keep = ("user_api", "internal_api", "num_threads", "version", "filepath")
    return [{k: pool.get(k) for k in keep} for pool in threadpoolctl.threadpool_info()]


def machine_info(backends: list[str] | tuple[str, ...] = ()) -> dict[str, Any]:
    """What a benchmark result depends on: host, versions, threads, and the GPU if used."""
    try:
        fastops_version = importlib.metadata.version(DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        fastops_version = None
    info: dict[str, Any] = {
        "platform": platform.platform(),
        "python": sys.version.split()[0],
        "cpu": cpu_model(),
        "logical_cpus": os.cpu_count(),
        "fastops": fastops_version,
        "versions": {m: package_version(m) for m in _PACKAGES},
        "threading_env": {k: os.environ[k] for k in _THREADING_ENV if k in os.environ},
    }
    if installed("numba"):
        info["numba_threading"] = numba_threading()
    info["thread_pools"] = thread_pools()
    if "cupy" in backends:
        info["gpu"] = gpu_info()
    return info


def full_info() -> dict[str, Any]:
    """Everything ``fastops info`` prints."""
    info = machine_info()
    info["backends"] = fastops_backends()
    info["gpu"] = gpu_info()
    info["caches"] = {
        "numba": numba_cache_dir() if installed("numba") else None,
        "cupy": cupy_cache_dir(),
    }
    return info
