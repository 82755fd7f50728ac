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
from fastops.bench import orthogonality as ortho_bench
from fastops.bench import report
from fastops.bench.cases import Case, Impl, PeerSkipped, get_cases, get_family, register_family
from fastops.bench.devices import installed, resolve_backends
from fastops.bench.runner import SCHEMA, BenchResult, Plan, run_case
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


def _flat(result):
    """The arrays of a result, in order: ops return an array, a tuple (value, gradient) or
    nested ones (a total and a list of gradients)."""
    if isinstance(result, tuple | list):
        return [a for item in result for a in _flat(item)]
    return [_host(result)]


def test_import_is_light():
    """Importing the bench and the CLI and building CPU cases never imports cupy or torch (nor
    rich or matplotlib); the asv suite may import cupy (to list GPU cases) but never torch.
    scipy is not checked: numba imports it when installed."""
    code = (
        "import sys, fastops.bench, fastops.bench.smooth, fastops.bench.orthogonality\n"
        "import fastops.bench.rank_one, fastops.bench.langevin\n"
        "import fastops.cli\n"
        "from fastops.bench.cases import get_cases\n"
        "for size in ('tiny', 'quick', 'full'):\n"
        "    get_cases(size, ['numba'])\n"
        "heavy = [m for m in ('cupy', 'torch', 'rich', 'matplotlib') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
        "import benchmarks.smooth, benchmarks.orthogonality, benchmarks.rank_one\n"
        "import benchmarks.langevin\n"
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


def test_orthogonality_nbytes_floor():
    s = 4
    nb = ortho_bench.nbytes_floor
    assert nb("ortho_frobenius", (6, 5), s) == 2 * 30 * s + s  # read W, write dW + value
    assert nb("ortho_spectral", (3, 6, 5), s) == 2 * 90 * s + 3 * s
    assert nb("som_penalty_and_grad", (7, 5), s) == 2 * 35 * s + s
    assert nb("spectral_norm", (6, 5), s) == (30 + 6 + 1 + 6 + 5) * s  # W, u; sigma, u, v
    shapes = ortho_bench.MODELS["50 kernels w/16"]
    assert len(shapes) == 50 and len(set(shapes)) < 50  # several layers share a shape
    assert (
        nb("ortho_model", (50,), s, "50 kernels w/16") == sum(2 * d * k * s for d, k in shapes) + s
    )
    with pytest.raises(ValueError):
        nb("nope", (2, 2), s)


def test_rank_one_nbytes_floor():
    from fastops.bench import rank_one as rank_one_bench

    nb = rank_one_bench.nbytes_floor
    assert nb("expm_rank1", (3, 5), 8) == (2 * 15 + 75) * 8  # read x, y; write E
    assert nb("expm_rank1_apply", (3, 5), 4) == 4 * 15 * 4  # read x, y, v; write z
    assert nb("expm_rank1_chain_apply", (3, 5), 4, L=2) == (2 * 10 + 2 * 15 + 3) * 4
    with pytest.raises(ValueError):
        nb("nope", (2, 2), 4)


def test_case_selection():
    quick = get_cases("quick", ["numba"], families=["smooth"])
    assert {c.op for c in quick} == set(QUICK_OPS)
    # Every family's full size covers all its ops; quick is a subset of them.
    for fam in cases_mod.family_names():
        ops = set(get_family(fam).ops)
        assert {c.op for c in get_cases("full", ["numba"], families=[fam])} == ops
        assert {c.op for c in get_cases("quick", ["numba"], families=[fam])} <= ops
        assert {c.op for c in get_cases("tiny", ["numba"], families=[fam])} == ops
    assert {c.op for c in get_cases("full", ["numba"], families=["smooth"])} == set(OPS)
    assert "orthogonality" in cases_mod.family_names()
    ortho = get_cases("full", ["numba"], families=["orthogonality"])
    assert all(c.floor_impl is not None for c in ortho)
    # eigh is O(min(d, k)^3): the spectral kind only where the smaller side is small.
    assert all(
        min(c.shape[-2:]) <= ortho_bench.SPECTRAL_MAX_SIDE
        for c in ortho
        if c.op == "ortho_spectral"
    )
    assert {c.shape for c in ortho if c.op == "ortho_frobenius"} == {
        (4096, 4096),
        (65536, 512),
        (512, 65536),
        (256, 64, 64),
    }
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
            got = _flat(case.run())
            case.sync()
            args = case.input_sets[0]
            first = _flat(case.impl.call(*args))
            assert [a.shape for a in got] == [a.shape for a in first]
            # Loose: this checks that each peer computes the same function (the wiring),
            # accuracy is the op families' own tests' job. Peers may form a product from the
            # other Gram side, so near-zero entries are compared against the array's scale.
            rtol, atol = (1e-4, 1e-5) if case.dtype == "float32" else (1e-7, 1e-10)
            for peer in case.peers():
                want = _flat(peer.call(*peer.prepare(args)))
                assert len(want) == len(first), f"{case.name} vs {peer.label}"
                if case.stochastic:  # other generators: the same shapes, not the same values
                    assert [w.shape for w in want] == [f.shape for f in first], peer.label
                    continue
                for w, f in zip(want, first, strict=True):
                    scale = float(np.abs(f).max(initial=0.0))
                    np.testing.assert_allclose(
                        w,
                        f,
                        rtol=rtol,
                        atol=atol + rtol * scale,
                        err_msg=f"{case.name} vs {peer.label}",
                    )
            if case.floor_impl is not None:  # the GEMM floor runs on the same inputs
                floor = case.floor_impl
                assert _flat(floor.call(*floor.prepare(args)))
                case.sync()
        finally:
            case.teardown()


@pytest.mark.parametrize("family", ["smooth", "orthogonality", "rank_one", "langevin"])
def test_asv_benchmarks_run_once(monkeypatch, family):
    """Every asv benchmark class runs setup / time / teardown once at tiny size."""
    monkeypatch.setenv("FASTOPS_BENCH_SIZE", "tiny")
    monkeypatch.syspath_prepend(str(ROOT))
    for name in ("benchmarks._suite", f"benchmarks.{family}"):
        sys.modules.pop(name, None)
    suite = importlib.import_module(f"benchmarks.{family}")
    classes = [v for k, v in vars(suite).items() if isinstance(v, type) and not k.startswith("_")]
    ops = set(get_family(family).ops)
    assert {c.op for c in classes} == ops
    # GEMM-bound families also time their floor, one class per op.
    floors = [c for c in classes if c.__name__.endswith("GemmFloor")]
    assert {c.op for c in floors} == (ops if family == "orthogonality" else set())
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
    for name in ("benchmarks._suite", f"benchmarks.{family}"):
        sys.modules.pop(name, None)


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
    assert {r["family"] for r in d["rows"]} == {"smooth", "orthogonality", "rank_one",
                                                "langevin"}
    for r in d["rows"]:
        assert r["error"] is None, r["error"]
        assert r["time_s"] > 0 and r["bytes"] > 0 and r["GBps"] > 0
        assert r["pct_of_copy_bandwidth"] > 0
        assert r["timing"]["repeats"] >= 1
        assert "numpy" in r["peers"]  # the reference is always there
        for name, peer in r["peers"].items():
            assert "error" not in peer and "skipped" not in peer, (name, peer)
            assert peer["speedup"] == pytest.approx(peer["median_s"] / r["time_s"])
        if r["family"] == "orthogonality":  # GEMM-bound: timed against its GEMMs
            assert r["gemm_floor_s"] > 0 and "error" not in r["gemm_floor"]
            assert r["pct_of_gemm_floor"] == pytest.approx(100 * r["gemm_floor_s"] / r["time_s"])
            if installed("torch"):
                assert {"torch", "torch_autograd"} <= set(r["peers"]) or r["op"] == (
                    "spectral_norm"
                )
        else:
            assert r["gemm_floor_s"] is None and r["pct_of_gemm_floor"] is None


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


def test_gemm_column_and_skipped_peers(monkeypatch):
    """The "% GEMM" column appears only with GEMM-bound rows; a peer whose k x k Gram is over
    the limit is recorded as skipped (with the reason), not as an error."""
    plan = Plan.for_size("tiny")
    (smooth_case,) = get_cases("tiny", ["numba"], ops=["logsumexp"])
    smooth_row = run_case(smooth_case, plan, bandwidth=None, peers=["numpy"])
    header, _ = report.table_rows(BenchResult("tiny", ["numba"], {}, {}, [smooth_row], "", 0.0))
    assert "% GEMM" not in header and smooth_row.gemm is None

    monkeypatch.setattr(ortho_bench, "PEER_GRAM_LIMIT_BYTES", 1000)  # 23 x 41 float64: 13 kB
    case = next(
        c for c in get_cases("tiny", ["numba"], ops=["ortho_frobenius"]) if c.shape == (23, 41)
    )
    row = run_case(case, plan, bandwidth=None)
    assert row.error is None and row.gemm is not None and row.gemm_floor_s > 0
    assert row.pct_of_gemm_floor == pytest.approx(100 * row.gemm_floor_s / row.time_s)
    assert row.peers and all(p.skipped and p.error is None for p in row.peers)
    assert "41 x 41" in row.peers[0].skipped and "GB" in row.peers[0].skipped
    result = BenchResult("tiny", ["numba"], {}, {}, [smooth_row, row], "", 0.0)
    header, body = report.table_rows(result)
    assert "% GEMM" in header
    gemm_col = header.index("% GEMM")
    assert body[0][gemm_col] == "-" and body[1][gemm_col].endswith("%")
    assert "skip" in body[1]
    footer = "\n".join(report.footer_lines(result))
    assert "skipped" in footer and "% GEMM" in footer and "1.3x" in footer
    assert row.to_json()["peers"]["numpy"]["skipped"]

    # A peer may also raise PeerSkipped itself.
    def refuse(*args):
        raise PeerSkipped("too big")

    case.peer_fn = lambda wanted: (Impl("numpy", "refuses", refuse),)
    (peer,) = run_case(case, plan, bandwidth=None).peers
    assert peer.skipped == "too big" and peer.error is None


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
