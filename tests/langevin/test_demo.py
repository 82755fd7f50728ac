"""``fastops demo langevin``: runs, reports every mode, and draws its plot."""

from __future__ import annotations

import importlib.util

import pytest

from fastops.cli import main


def test_demo_runs_and_reports(capsys, tmp_path):
    args = ["demo", "langevin", "--backend", "numba", "--particles", "2000"]
    plot = tmp_path / "samples.png"
    if importlib.util.find_spec("matplotlib") is not None:
        args += ["--plot", str(plot)]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "2000 particles, 10 levels from 1 to 0.01, 100 steps each" in out
    assert out.count(" (expected") == 1 and out.count("  mode ") == 8
    on_mode = float(out.split("particles within 4 std of a mode: ")[1].split("%")[0])
    assert on_mode > 99.0
    if "--plot" in args:
        assert plot.stat().st_size > 10_000


def test_demo_rejects_bad_particles(capsys):
    assert main(["demo", "langevin", "--backend", "numba", "--particles", "0"]) == 2
    assert "--particles must be >= 1" in capsys.readouterr().err


def test_demo_needs_a_usable_backend(capsys):
    from conftest import cupy_status

    if cupy_status()[0]:
        pytest.skip("cupy is usable here")
    assert main(["demo", "langevin", "--backend", "cupy"]) == 2
    assert "backend cupy is not usable" in capsys.readouterr().err


def test_demo_plot_has_labels_and_a_legend(tmp_path, monkeypatch):
    """The picture names its axes and tells the samples from the target density's contours."""
    pytest.importorskip("matplotlib")
    import matplotlib.pyplot as plt
    import numpy as np

    from fastops.langevin import demo

    figures = []
    monkeypatch.setattr(plt, "close", figures.append)  # keep the figure to look at it
    result = {"backend": "numba", "particles": 3, "seconds_per_step": 1e-3,
              "samples": np.array([[4.0, 0.0], [0.0, 4.0], [-4.0, 0.0]])}
    path = tmp_path / "samples.png"
    demo.plot(result, str(path))
    assert path.stat().st_size > 0
    (ax,) = figures[0].axes
    assert ax.get_xlabel() and ax.get_ylabel()
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert len(labels) == 2 and "samples" in labels[0] and "target density" in labels[1]
    figures[0].clf()
