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
