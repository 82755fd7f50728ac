"""The benchmark tooling runs (tiny sizes), so that it cannot rot.

No timing thresholds here: speed is judged by ``fastops bench`` and asv, never by tests.
"""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from fastops.bench import cases as cases_mod
from fastops.bench import report
from fastops.bench.cases import Case, Impl, get_cases, register_family
from fastops.bench.devices import installed, resolve_backends
from fastops.bench.runner import SCHEMA, Plan, run_case
from fastops.bench.smooth import OPS, QUICK_OPS, nbytes_floor
from fastops.bench.timing import Budget, measure
from fastops.cli import main

ROOT = Path(__file__).resolve().parents[1]
BACKENDS = resolve_backends("all")[0]


def _host(a):
    """A NumPy view of a result (torch tensor, cupy array or NumPy array)."""
    if hasattr(a, "detach"):
        a = a.detach().cpu().numpy()
    if hasattr(a, "__cuda_array_interface__"):
        import cupy

        a = cupy.asnumpy(a)
    return np.asarray(a)


def test_import_is_light():
    """Importing the bench and the CLI and building CPU cases never imports cupy or torch (nor
    rich or matplotlib); the asv suite may import cupy (to list GPU cases) but never torch.
    scipy is not checked: numba imports it when installed."""
    code = (
        "import sys, fastops.bench, fastops.bench.smooth, fastops.cli\n"
        "from fastops.bench.cases import get_cases\n"
        "get_cases('tiny', ['numba'])\n"
        "heavy = [m for m in ('cupy', 'torch', 'rich', 'matplotlib') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
        "import benchmarks.smooth\n"
        "assert 'torch' not in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


def test_nbytes_floor():
    rows, n, s = 3, 5, 8
    assert nbytes_floor("logsumexp", rows, n, s) == rows * n * s + rows * s
    assert nbytes_floor("softmax", rows, n, s) == 2 * rows * n * s
    assert nbytes_floor("softmax_backward", rows, n, s) == 3 * rows * n * s
    assert nbytes_floor("logsumexp_backward", rows, n, s) == 2 * rows * n * s + 2 * rows * s
    with pytest.raises(ValueError):
        nbytes_floor("nope", rows, n, s)


def test_case_selection():
    quick = get_cases("quick", ["numba"])
    assert {c.op for c in quick} == set(QUICK_OPS)
    assert {c.op for c in get_cases("full", ["numba"])} == set(OPS)
    # Naming an op times it even where --quick would leave it out.
    assert {c.op for c in get_cases("quick", ["numba"], ops=["logsumexp_backward"])} == {
        "logsumexp_backward"
    }
    assert all(c.dtype == "float32" for c in get_cases("full", ["numba"], dtypes=["float32"]))
    with pytest.raises(ValueError, match="unknown op"):
        get_cases("quick", ["numba"], ops=["not_an_op"])
    with pytest.raises(ValueError, match="unknown benchmark family"):
        get_cases("quick", ["numba"], families=["not_a_family"])


def test_measure_respects_budget():
    calls = []
    t = measure(lambda: calls.append(1), budget=Budget(repeats=4, min_repeats=2, max_time=10.0))
    assert len(t.times) == 4 and len(calls) == 5  # one warm-up, never timed
    t = measure(lambda: None, budget=Budget(repeats=50, min_repeats=2, max_time=0.0), warmup=0)
    assert len(t.times) == 2  # the budget is spent at once: min_repeats only


def test_register_family(monkeypatch):
    """A family registered by other code is run like a built-in one."""
    monkeypatch.setattr(cases_mod, "_FAMILIES", dict(cases_mod._FAMILIES))

    def double_cases(size, backend, ops):
        x = np.arange(1.0, 9.0)
        return [
            Case(
                family="toy",
                op="double",
                shape=x.shape,
                dtype="float64",
                backend=backend,
                nbytes=2 * x.nbytes,
                make_inputs=lambda seed: (x + seed,),
                impl=Impl("fastops", "2 * x", lambda a: 2 * a),
                peer_fn=lambda wanted: (Impl("numpy", "x + x", lambda a: a + a),),
            )
        ]

    register_family("toy", double_cases, ops=["double"])
    assert "toy" in cases_mod.family_names()
    (case,) = get_cases("tiny", ["numba"], families=["toy"])
    assert len(case.input_sets) == 0
    row = run_case(case, Plan.for_size("tiny"), bandwidth=None)
    assert row.error is None and row.time_s > 0
    assert row.speedup("numpy") > 0
    assert row.pct_of_copy is None  # no bandwidth measured: no percentage invented


@pytest.mark.parametrize("backend", BACKENDS)
def test_tiny_cases_agree_with_peers(backend):
    """Every case runs, and every peer computes the same thing as fastops."""
    for case in get_cases("tiny", [backend]):
        case.setup()
        try:
            got = _host(case.run())
            case.sync()
            args = case.input_sets[0]
            first = _host(case.impl.call(*args))
            np.testing.assert_array_equal(got.shape, first.shape)
            # Loose: this checks that each peer computes the same function (the wiring),
            # accuracy is the smooth tests' job.
            rtol, atol = (1e-4, 1e-5) if case.dtype == "float32" else (1e-7, 1e-10)
            for peer in case.peers():
                want = _host(peer.call(*peer.prepare(args)))
                np.testing.assert_allclose(
                    want, first, rtol=rtol, atol=atol, err_msg=f"{case.name} vs {peer.label}"
                )
        finally:
            case.teardown()


def test_asv_benchmarks_run_once(monkeypatch):
    """Every asv benchmark class runs setup / time / teardown once at tiny size."""
    monkeypatch.setenv("FASTOPS_BENCH_SIZE", "tiny")
    monkeypatch.syspath_prepend(str(ROOT))
    sys.modules.pop("benchmarks.smooth", None)
    suite = importlib.import_module("benchmarks.smooth")
    classes = [v for k, v in vars(suite).items() if isinstance(v, type) and not k.startswith("_")]
    assert {c.op for c in classes} == set(OPS)
    for cls in classes:
        (ids,) = cls.params
        assert ids
        for case_id in ids:
            bench = cls()
            bench.setup(case_id)
            bench.time_op(case_id)
            bench.teardown(case_id)
    with pytest.raises(NotImplementedError):
        classes[0]().setup("nobackend:float64:1x1")
    sys.modules.pop("benchmarks.smooth", None)


@pytest.fixture(scope="module")
def tiny_json(tmp_path_factory):
    path = tmp_path_factory.mktemp("bench") / "tiny.json"
    assert main(["bench", "--quick", "--tiny", "--plain", "--json", str(path)]) == 0
    return json.loads(path.read_text())


def test_cli_bench_json(tiny_json):
    d = tiny_json
    assert d["schema"] == SCHEMA
    assert d["size"] == "tiny"
    assert d["backends"] == BACKENDS
    assert {"cpu", "python", "versions", "logical_cpus"} <= set(d["machine"])
    for device, bw in d["bandwidth"].items():
        assert device in ("cpu", "cuda") and bw["GBps"] > 0
    expected = get_cases("tiny", BACKENDS)
    assert [(r["op"], r["backend"]) for r in d["rows"]] == [(c.op, c.backend) for c in expected]
    for r in d["rows"]:
        assert r["error"] is None, r["error"]
        assert r["time_s"] > 0 and r["bytes"] > 0 and r["GBps"] > 0
        assert r["pct_of_copy_bandwidth"] > 0
        assert r["timing"]["repeats"] >= 1
        assert "numpy" in r["peers"]  # the reference is always there
        for name, peer in r["peers"].items():
            assert "error" not in peer, (name, peer)
            assert peer["speedup"] == pytest.approx(peer["median_s"] / r["time_s"])


def test_cli_bench_rich_and_plain(capsys, monkeypatch):
    args = ["bench", "--tiny", "--op", "logsumexp", "--peers", "numpy"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "logsumexp" in out and "x numpy" in out and "copy bandwidth" in out
    # Without rich: the plain-text table.
    monkeypatch.setattr("fastops.bench.devices.installed", lambda m: m != "rich" and installed(m))
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "x numpy" in out and "┃" not in out


def test_cli_bench_plot(tmp_path, capsys, monkeypatch):
    png = tmp_path / "bench.png"
    args = ["bench", "--tiny", "--op", "logsumexp,softmax", "--plot", str(png)]
    if installed("matplotlib"):
        assert main(args) == 0
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # Without matplotlib: a clear error before any timing.
    monkeypatch.setattr(report, "installed", lambda m: m != "matplotlib" and installed(m))
    assert main(args) == 2
    assert "matplotlib" in capsys.readouterr().err


def test_cli_bench_usage_errors(capsys):
    assert main(["bench", "--tiny", "--op", "not_an_op"]) == 2
    assert "unknown op" in capsys.readouterr().err
    if not installed("cupy"):
        assert main(["bench", "--tiny", "--backend", "cupy"]) == 2
        assert "cupy" in capsys.readouterr().err


def test_cli_info(capsys):
    assert main(["info"]) == 0
    out = capsys.readouterr().out
    assert "numba" in out and "threading" in out and "cache" in out
    assert main(["info", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert {"backends", "versions", "gpu", "caches", "numba_threading"} <= set(info)
