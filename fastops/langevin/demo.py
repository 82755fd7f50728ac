"""``fastops demo langevin``: annealed Langevin sampling of a 2-D mixture of 8 Gaussians.

The data: 8 equally weighted isotropic Gaussians of std 0.2 on the circle of radius 4. The
sampler: :func:`fastops.annealed_langevin` with :func:`fastops.gmm_score` as the exact noisy
score, 10 geometric noise levels from 1 to 0.01, 100 steps each (Song & Ermon's schedule,
eps = 2e-5), from an isotropic N(0, 3^2 I) start, so that by symmetry every mode should get
1/8 of the particles. Prints the time per step and each mode's fraction with its standard
error; ``--plot`` draws the samples over the density's contours (matplotlib).
"""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np

from ..bench import devices
from ..bench.langevin import DEMO_COMPONENT_STD, DEMO_LEVELS, DEMO_STEPS, demo_means, demo_sigmas
from ..random import normal
from . import annealed_langevin, gmm_score
from .reference import gmm_log_density


def run(backend: str = "numba", particles: int = 100_000, seed: int = 0,
        progress: bool = False) -> dict[str, Any]:
    """Sample, time, and count particles per mode; returns a dict (samples on the host)."""
    if backend == "cupy":
        import cupy as xp

        def sync() -> None:
            xp.cuda.get_current_stream().synchronize()
    else:
        xp = np

        def sync() -> None:
            return None

    means = demo_means(xp, "float32")
    x0 = normal((particles, 2), seed=seed, stream=1 << 40, backend=backend) * np.float32(3.0)

    def score(x: Any, sigma: float) -> Any:
        return gmm_score(x, means, sigma, component_std=DEMO_COMPONENT_STD)

    # one short warm-up run compiles the kernels (Numba / NVRTC), outside the timing
    annealed_langevin(score, x0[:64], demo_sigmas()[:1], n_steps_each=1, seed=seed)
    sync()
    start = time.perf_counter()
    x = annealed_langevin(score, x0, demo_sigmas(), n_steps_each=DEMO_STEPS, seed=seed,
                          progress=progress)
    sync()
    seconds = time.perf_counter() - start
    samples = x.get() if backend == "cupy" else x
    host_means = demo_means(np, "float64")
    d2 = np.sum((samples[:, None, :].astype(np.float64) - host_means[None]) ** 2, axis=-1)
    nearest = np.argmin(d2, axis=1)
    fractions = np.bincount(nearest, minlength=len(host_means)) / particles
    return {
        "backend": backend,
        "particles": particles,
        "steps": DEMO_LEVELS * DEMO_STEPS,
        "seconds": seconds,
        "seconds_per_step": seconds / (DEMO_LEVELS * DEMO_STEPS),
        "fractions": fractions,
        "standard_error": math.sqrt((1 / 8) * (7 / 8) / particles),
        "on_a_mode": float(np.mean(np.min(d2, axis=1) < (4 * DEMO_COMPONENT_STD) ** 2)),
        "samples": samples,
    }


def report(result: dict[str, Any]) -> str:
    """The demo's printout."""
    se = result["standard_error"]
    lines = [
        f"annealed Langevin on a mixture of 8 Gaussians ({result['backend']}): "
        f"{result['particles']} particles, {DEMO_LEVELS} levels from 1 to 0.01, "
        f"{DEMO_STEPS} steps each",
        f"total {result['seconds']:.3g} s, {result['seconds_per_step'] * 1e3:.3g} ms per step "
        "(gmm_score + langevin_step)",
        f"particles within 4 std of a mode: {100 * result['on_a_mode']:.2f}%",
        f"fraction per mode (expected 0.125, standard error {se:.4f}):",
    ]
    for k, f in enumerate(result["fractions"]):
        z = (f - 0.125) / se
        lines.append(f"  mode {k} ({45 * k:3d} deg): {f:.4f}  ({z:+.1f} SE)")
    return "\n".join(lines)


def check_plot_available() -> None:
    """Raise ImportError with an install hint when matplotlib (needed by --plot) is missing."""
    if not devices.installed("matplotlib"):
        raise ImportError(
            "--plot needs matplotlib, which is not installed "
            "(pip install matplotlib, or pip install 'fastops-kernels[bench]', or "
            "pip install -e '.[bench]' in a fastops checkout)"
        )


def plot(result: dict[str, Any], path: str) -> None:
    """Samples (at most 20000) over the contours of the target mixture's density."""
    check_plot_available()
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D

    means = demo_means(np, "float64")
    grid = np.linspace(-6.5, 6.5, 300)
    gx, gy = np.meshgrid(grid, grid)
    pts = np.stack([gx.ravel(), gy.ravel()], axis=1)
    logp = gmm_log_density(pts, means, 0.0, component_std=DEMO_COMPONENT_STD).reshape(gx.shape)
    samples = result["samples"][:20000]
    fig, ax = plt.subplots(figsize=(6, 6))
    # the contours over the samples, so that both stay visible where the samples are dense
    ax.contour(gx, gy, np.exp(logp), levels=8, cmap="viridis", linewidths=0.8, zorder=3)
    ax.scatter(samples[:, 0], samples[:, 1], s=1, alpha=0.3, color="tab:red")
    ax.set_aspect("equal")
    ax.set_xlabel("x₁")
    ax.set_ylabel("x₂")
    # Contour sets and 1-pixel scatter points make poor legend keys: draw proxies instead.
    handles = [
        Line2D([], [], linestyle="none", marker="o", markersize=4, color="tab:red",
               label=f"samples ({len(samples)} of {result['particles']})"),
        Line2D([], [], color=plt.get_cmap("viridis")(0.6), linewidth=1.2,
               label=f"target density: 8 Gaussians, std {DEMO_COMPONENT_STD}"),
    ]
    ax.legend(handles=handles, loc="upper right", fontsize=8, framealpha=0.9)
    ax.set_title(f"fastops annealed Langevin ({result['backend']}): "
                 f"{result['seconds_per_step'] * 1e3:.2g} ms/step")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
