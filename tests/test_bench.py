"""The benchmark tooling runs (tiny sizes), so that it cannot rot.

No timing thresholds here: speed is judged by ``fastops bench`` and asv, never by tests.
"""

from __future__ import annotations

import importlib
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from fastops.bench import cases as cases_mod
from fastops.bench import orthogonality as ortho_bench
from fastops.bench import report
from fastops.bench import smooth as smooth_bench
from fastops.bench.cases import Case, Impl, PeerSkipped, get_cases, get_family, register_family
from fastops.bench.devices import installed, resolve_backends
from fastops.bench.runner import SCHEMA, BenchResult, PeerResult, Plan, Row, run_case
from fastops.bench.smooth import OPS, QUICK_OPS, nbytes_floor
from fastops.bench.timing import Budget, Timing, measure, median_settled
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
        "import benchmarks.langevin, benchmarks.torch_ops, benchmarks.dask_ops\n"
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
        if fam == "torch" and not installed("torch"):  # fastops.torch's cases need torch
            continue
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
    assert {c.shape for c in ortho if c.op == "ortho_frobenius" and not c.small_call} == {
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


def _check_agrees_with_peers(case):
    """The case runs, and every peer computes the same thing as fastops."""
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
        # float16: peers that compute in float16 (scipy) are a few float16 ulps off.
        rtol, atol = {"float16": (1e-2, 1e-3), "float32": (1e-4, 1e-5)}.get(case.dtype,
                                                                            (1e-7, 1e-10))
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


@pytest.mark.parametrize("backend", BACKENDS)
def test_tiny_cases_agree_with_peers(backend):
    """Every case runs, and every peer computes the same thing as fastops (the tiny layouts
    cases included: the peers reduce over the same axis of the same F / C arrays)."""
    for case in get_cases("tiny", [backend]):
        _check_agrees_with_peers(case)


def test_layout_peers_of_every_op_reduce_over_the_case_axis():
    """The peer builders take the axis for every op, the backward ones too (the layouts
    grid times them too): each op on each tiny CPU layout agrees with its peers."""
    layouts = smooth_bench.LAYOUTS[("cpu", "tiny")]
    assert {layout.order for layout in layouts} == {"C", "F"}
    for layout in layouts:
        for op in smooth_bench.BACKWARD_OPS:
            case = smooth_bench._case(op, layout, "float64", "numba", "cpu")
            assert case.shape_label == layout.label
            if installed("torch"):
                assert "torch" in {p.name for p in case.peers()}
            _check_agrees_with_peers(case)


def test_layout_cases():
    """The full CPU run has the layouts cases (every op, both dtypes, distinct labels; float16
    over the last axis and axis 0); --quick has none."""
    full = get_cases("full", ["numba"], families=["smooth"])
    layout_cases = [c for c in full if c.shape_label]
    labels = {"4096x4096 ax0", "F 4096x4096", "64x4096x64 ax1"}
    assert {c.shape_label for c in layout_cases} == labels
    assert {(c.op, c.dtype, c.shape_label) for c in layout_cases} == {
        (op, dt, label) for op in smooth_bench.LAYOUT_OPS for dt in ("float32", "float64")
        for label in labels
    } | {(op, "float16", "4096x4096 ax0") for op in smooth_bench.OPS}
    assert {c.op for c in full if c.dtype == "float16" and not c.shape_label} == \
        set(smooth_bench.OPS)
    names = [c.name for c in full]
    assert len(names) == len(set(names))
    assert labels.isdisjoint(c.shape_str for c in full if not c.shape_label)
    by_label = {c.shape_label: c for c in layout_cases
                if c.op == "logsumexp" and c.dtype == "float32"}
    assert by_label["64x4096x64 ax1"].shape == (64, 4096, 64)
    assert by_label["64x4096x64 ax1"].nbytes == nbytes_floor("logsumexp", 64 * 64, 4096, 4)
    plain = next(c for c in full if c.op == "logsumexp" and c.shape_str == "4096x4096"
                 and c.dtype == "float32")
    assert by_label["4096x4096 ax0"].nbytes == by_label["F 4096x4096"].nbytes == plain.nbytes
    # The F-ordered input is F-ordered for fastops and the peers alike.
    (tiny_f,) = [c for c in get_cases("tiny", ["numba"], ops=["softmax"])
                 if c.shape_label == "F 67x129"]
    (x,) = tiny_f.make_inputs(0)
    assert x.shape == (67, 129) and x.flags.f_contiguous and not x.flags.c_contiguous
    assert not any(c.shape_label for c in get_cases("quick", ["numba"], families=["smooth"]))
    assert not any(c.shape_label for c in smooth_bench.smooth_cases("quick", "cupy"))
    assert {c.shape_label for c in smooth_bench.smooth_cases("full", "cupy")} == {
        "", "65536x1024 ax0"}
    # --shape selects them by label; a label no case has is a usage error.
    picked = get_cases("full", ["numba"], families=["smooth"], shapes=sorted(labels))
    assert [c.name for c in picked] == [c.name for c in layout_cases]
    with pytest.raises(ValueError, match="no selected case has shape"):
        get_cases("tiny", ["numba"], shapes=["4096x4096 ax2"])


def test_asv_ids_are_unique_and_include_the_layouts(monkeypatch):
    monkeypatch.syspath_prepend(str(ROOT))
    from benchmarks._suite import make_classes

    classes = make_classes("smooth", "benchmarks.smooth", size="full")
    for cls in classes.values():
        (ids,) = cls.params
        assert len(ids) == len(set(ids)), cls.__name__
    (ids,) = classes["Logsumexp"].params
    assert {"numba:float32:4096x4096 ax0", "numba:float64:F 4096x4096",
            "numba:float32:64x4096x64 ax1", "numba:float32:4096x4096"} <= set(ids)
    (ids,) = classes["SoftmaxBackward"].params
    assert "numba:float32:4096x4096 ax0" in ids  # the backward ops have the layouts too


@pytest.mark.parametrize("family", ["smooth", "orthogonality", "rank_one", "langevin", "torch",
                                    "dask"])
def test_asv_benchmarks_run_once(monkeypatch, family):
    """Every asv benchmark class runs setup / time / teardown once at tiny size."""
    if family in ("torch", "dask") and not installed(family):
        pytest.skip(f"the {family} family needs {family}")
    monkeypatch.setenv("FASTOPS_BENCH_SIZE", "tiny")
    monkeypatch.syspath_prepend(str(ROOT))
    module = {"torch": "torch_ops", "dask": "dask_ops"}.get(family, family)
    for name in ("benchmarks._suite", f"benchmarks.{module}"):
        sys.modules.pop(name, None)
    suite = importlib.import_module(f"benchmarks.{module}")
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
    for name in ("benchmarks._suite", f"benchmarks.{module}"):
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
                                                "langevin"} | ({"torch"} if installed("torch")
                                                               else set()) \
        | ({"dask"} if installed("dask") else set())
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
    assert "logsumexp" in out and "numpy" in out and "copy bandwidth" in out
    assert "speed-up of fastops" in out and "±IQR" in out
    # Without rich: the plain-text table.
    monkeypatch.setattr("fastops.bench.devices.installed", lambda m: m != "rich" and installed(m))
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "speed-up of fastops" in out and "numpy" in out and "━" not in out


def test_gemm_column_and_skipped_peers(monkeypatch):
    """The "% GEMM" column appears only with GEMM-bound rows; a peer whose k x k Gram is over
    the limit is recorded as skipped (with the reason), not as an error."""
    plan = Plan.for_size("tiny")
    smooth_case = get_cases("tiny", ["numba"], ops=["logsumexp"], dtypes=["float64"])[0]
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
    assert main(["bench", "--tiny", "--plain", "--shape", "67x129 ax2"]) == 2
    assert "no selected case has shape" in capsys.readouterr().err
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


# --------------------------------------------------------------------------------------------
# Settled medians and their spread
# --------------------------------------------------------------------------------------------


class FakeClock:
    """A clock that 'times' each call as the next of ``durations`` (seconds) and calls fn."""

    def __init__(self, durations):
        self.durations = list(durations)
        self.calls = 0

    def time(self, fn):
        fn()
        self.calls += 1
        return self.durations[min(self.calls, len(self.durations)) - 1]


def test_median_settled():
    assert not median_settled([1.0, 1.0, 1.0], 0.02, 3)  # needs window + 1 medians
    assert median_settled([1.0, 1.0, 1.0, 1.0], 0.02, 3)
    assert median_settled([1.0, 1.01, 0.99, 1.0], 0.02, 3)
    assert not median_settled([1.0, 1.1, 1.0, 1.0], 0.02, 3)  # moved 10% within the window
    assert median_settled([5.0, 1.1, 1.0, 1.0, 1.0, 1.0], 0.02, 3)  # older history does not count
    assert not median_settled([0.0, 0.0, 0.0, 0.0], 0.02, 3)


def test_measure_stops_when_the_median_settles():
    budget = Budget(repeats=100, min_repeats=5, max_time=1e9, settle_tolerance=0.02,
                    settle_window=3)
    # warm-up 9 (not counted), then steady calls: the median settles as soon as allowed
    clock = FakeClock([9.0] + [1.0] * 200)
    t = measure(lambda: None, clock=clock, budget=budget)
    assert t.settled and len(t.times) == 5 and t.median == 1.0 and clock.calls == 6
    # a median that keeps moving runs until the repeats are used up
    drifting = FakeClock([1.0] + [1.0 + 0.5 * i for i in range(200)])
    t = measure(lambda: None, clock=drifting, budget=budget)
    assert not t.settled and len(t.times) == 100
    # ... or until the time budget (timed calls only, here) is spent
    t = measure(lambda: None, clock=FakeClock([1.0 + 0.5 * i for i in range(200)]),
                budget=Budget(100, 5, 20.0), warmup=0)
    assert not t.settled and 5 <= len(t.times) < 100 and sum(t.times) <= 1.5 * 20.0 + 1e-9


def test_measure_idle_gap_sleeps_outside_the_timing_and_counts_in_the_budget():
    slept = []
    clock = FakeClock([0.001 * (1 + i % 2) for i in range(1000)])  # never settles (50% moves)
    t = measure(lambda: None, clock=clock, budget=Budget(1000, 3, 1.0, 0.0001), warmup=0,
                idle_gap=0.1, sleep=slept.append)
    assert slept == [0.1] * len(t.times)  # one sleep before each timed call, none timed
    assert max(t.times) <= 0.002 and t.idle_gap == 0.1
    assert len(t.times) < 20  # the gaps used up the one-second budget


def test_spread_and_noisy_flag():
    steady = Timing(times=[1.0, 1.01, 1.02, 0.98, 0.99])
    assert steady.spread_pct == pytest.approx(2.0) and not steady.noisy
    noisy = Timing(times=[1.0, 1.0, 2.0, 2.0, 1.5])
    q1, median, q3 = noisy.quartiles
    assert (q1, median, q3) == (1.0, 1.5, 2.0)
    assert noisy.spread_pct == pytest.approx(100 * 1.0 / 1.5) and noisy.noisy
    assert Timing(times=[1.0]).spread_pct is None and not Timing(times=[1.0]).noisy
    j = noisy.to_json()
    assert j["q1_s"] == 1.0 and j["q3_s"] == 2.0 and j["noisy"] is True
    assert {"median_s", "spread_pct", "settled", "repeats", "idle_gap_s"} <= set(j)


def _case(op="logsumexp", family="smooth", **kw):
    (case,) = [c for c in get_cases("full", ["numba"], families=[family], ops=[op])
               if all(getattr(c, k) == v for k, v in kw.items())][:1]
    return case


def _fake_row(case, fastops_s, peers=(), noisy=False):
    """A Row with made-up timings (no kernel runs)."""
    spread = [0.5, 1.0, 1.5, 2.0] if noisy else [1.0, 1.0, 1.0, 1.0]
    row = Row(case=case, bandwidth=None, timing=Timing([fastops_s * f for f in spread]))
    for name, seconds in peers:
        row.peers.append(PeerResult(name, name, Timing([seconds] * 4)))
    if case.floor_impl is not None:
        row.gemm = PeerResult("gemm", "gemm", Timing([0.9 * fastops_s] * 4))
    return row


def test_noisy_rows_are_flagged_and_speedups_use_the_same_medians():
    quiet = _fake_row(_case(dtype="float32", shape=(4096, 4096)), 0.01, [("torch", 0.03)])
    noisy = _fake_row(_case("softmax", dtype="float32", shape=(4096, 4096)), 0.01,
                      [("torch", 0.02)], noisy=True)
    result = BenchResult("quick", ["numba"], {}, {}, [quiet, noisy], "", 1.0)
    times = report.times_table(result)
    col = times.header.index("±IQR")
    assert times.body[0][col] == "0%" and times.body[1][col].endswith(report.NOISY_MARK)
    (speedups,) = report.speedup_tables(result)
    torch_col = speedups.header.index("torch")
    assert speedups.body[0][torch_col] == "3.00x"  # 0.03 / the median 0.01
    assert noisy.speedup("torch") == pytest.approx(0.02 / noisy.time_s)
    footer = "\n".join(report.footer_lines(result))
    assert "spread over 20%" in footer and report.QUICK_CPU_LEAVES_OUT in footer
    j = noisy.to_json()
    assert j["noisy"] is True and j["timing"]["q3_s"] > j["timing"]["q1_s"]


# --------------------------------------------------------------------------------------------
# The 80-column tables
# --------------------------------------------------------------------------------------------


def _wide_result():
    """Every family's longest names, every CPU peer, and GPU-only peers on some rows (more
    peer columns than fit: the speed-up table is split by family)."""
    cpu = ["numpy", "scipy", "torch", "torch_autograd"]
    rows = [
        _fake_row(_case("log_softmax_backward", dtype="float64", shape=(1048576, 16)), 0.02,
                  [(p, 0.05) for p in cpu]),
        _fake_row(_case("log_softmax", dtype="float64", shape_label="64x4096x64 ax1"), 0.02,
                  [(p, 0.05) for p in cpu]),
        _fake_row(_case("expm_rank1_chain_apply", "rank_one", dtype="float64"), 123.4,
                  [(p, 1e4) for p in cpu]),
        _fake_row(_case("som_penalty_and_grad", "orthogonality", dtype="float32",
                        shape=(16, 1024, 256)), 0.05, [(p, 0.1) for p in cpu], noisy=True),
        _fake_row(_case("ortho_model", "orthogonality", dtype="float64"), 0.4,
                  [("numpy", 0.5), ("torch", 0.6), ("torch_autograd", 0.9), ("numba", 4.0)]),
        _fake_row(_case("annealed_langevin", "langevin"), 0.9, [("numpy", 13.0), ("cupy", 1.0),
                                                                ("cupyx", 1.0)]),
        _fake_row(_case("ortho_frobenius", "orthogonality", shape=(256, 64)), 2e-5,
                  [(p, 3e-5) for p in cpu]),
    ]
    result = BenchResult("full", ["numba"], {}, {}, rows, "", 12.0,
                         missing_peers={"scipy": "pip install scipy"}, idle_gap=0.02)
    return result


def test_tables_fit_80_columns():
    from rich.console import Console

    result = _wide_result()
    assert len(report.speedup_tables(result)) > 1  # split by family
    buf = io.StringIO()
    report.render_rich(result, Console(file=buf, width=80, color_system=None))
    out = buf.getvalue()
    assert max(len(line) for line in out.splitlines()) <= 80
    assert "…" not in out  # nothing truncated
    for text in ("rank1_chain", "123 s", "(idle)", "peers not installed: scipy",
                 "64x4096x64 ax1"):
        assert text in out
    buf = io.StringIO()
    report.render_plain(result, buf)
    assert max(len(line) for line in buf.getvalue().splitlines()) <= 80


# --------------------------------------------------------------------------------------------
# Input checks before anything runs
# --------------------------------------------------------------------------------------------


@pytest.fixture
def no_timing(monkeypatch):
    """Fail the test if a benchmark starts running."""

    def refuse(*args, **kwargs):
        raise AssertionError("the benchmark started")

    monkeypatch.setattr("fastops.bench.runner.run_bench", refuse)
    monkeypatch.setattr("fastops.bench.contention.run_contention", refuse)


def test_unknown_and_missing_peers_are_usage_errors(capsys, monkeypatch, no_timing):
    assert main(["bench", "--tiny", "--peers", "numpy,pytorch"]) == 2
    err = capsys.readouterr().err
    assert "unknown peer(s) pytorch" in err and "numpy, scipy, torch" in err
    monkeypatch.setattr("fastops.bench.peers.installed", lambda m: m not in ("cupy", "torch"))
    assert main(["bench", "--tiny", "--peers", "cupyx"]) == 2
    assert "pip install cupy-cuda12x" in capsys.readouterr().err
    assert main(["bench", "--tiny", "--peers", "numpy,torch_autograd"]) == 2
    assert "pip install torch" in capsys.readouterr().err


def test_missing_peers_are_listed(monkeypatch):
    from fastops.bench.peers import missing_peers

    monkeypatch.setattr("fastops.bench.peers.installed", lambda m: m not in ("scipy", "torch"))
    missing = missing_peers({"cpu"})
    assert set(missing) == {"scipy", "torch", "torch_autograd"}
    assert report.missing_peers_line(missing) == (
        "peers not installed: scipy (pip install scipy); torch, torch_autograd "
        "(pip install torch)"
    )
    assert report.missing_peers_line({}) == ""


def test_bench_without_peers_names_the_missing_ones(monkeypatch, capsys):
    monkeypatch.setattr("fastops.bench.peers.installed", lambda m: m != "scipy" and installed(m))
    assert main(["bench", "--tiny", "--plain", "--op", "logsumexp"]) == 0
    out = capsys.readouterr().out
    assert "peers not installed: scipy (pip install scipy)" in out
    assert main(["bench", "--tiny", "--plain", "--op", "logsumexp", "--peers", "numpy"]) == 0
    assert "peers not installed" not in capsys.readouterr().out  # peers named: no hint


def test_output_paths_are_checked_before_timing(tmp_path, capsys, no_timing):
    missing_dir = tmp_path / "nope" / "out.json"
    assert main(["bench", "--tiny", "--json", str(missing_dir)]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["bench", "--tiny", "--json", str(tmp_path)]) == 2
    assert "is a directory" in capsys.readouterr().err
    if installed("matplotlib"):
        assert main(["bench", "--tiny", "--plot", str(tmp_path / "nope" / "b.png")]) == 2
        assert "does not exist" in capsys.readouterr().err
    assert main(["bench", "--tiny", "--contend", "1", "--plot", str(tmp_path / "b.png")]) == 2
    assert "--plot is not available with --contend" in capsys.readouterr().err
    assert main(["bench", "--tiny", "--idle-gap", "-1"]) == 2
    assert "--idle-gap" in capsys.readouterr().err


def test_demo_plot_checks_before_sampling(tmp_path, capsys, monkeypatch):
    from fastops.langevin import demo

    def refuse(*args, **kwargs):
        raise AssertionError("the sampler ran")

    monkeypatch.setattr(demo, "run", refuse)
    args = ["demo", "langevin", "--backend", "numba", "--particles", "10", "--plot"]
    assert main([*args, str(tmp_path / "nope" / "samples.png")]) == 2
    assert "does not exist" in capsys.readouterr().err
    monkeypatch.setattr("fastops.bench.devices.installed",
                        lambda m: m != "matplotlib" and installed(m))
    assert main([*args, str(tmp_path / "samples.png")]) == 2
    assert "pip install matplotlib" in capsys.readouterr().err


# --------------------------------------------------------------------------------------------
# --quick: what it keeps and what it says it leaves out
# --------------------------------------------------------------------------------------------


def test_quick_selection_matches_its_description(capsys):
    from fastops.bench import quick

    cases = get_cases("quick", ["numba"])
    assert len({c.dtype for c in cases if c.family == "smooth" and not c.small_call}) == 1
    described = " ".join(quick.QUICK_CPU.values())
    for c in cases:
        name = "orthogonality_penalty_and_grad" if c.small_call and c.family == (
            "orthogonality") else c.op
        assert name in described, c.name
    # the rows the README's targets are about, and the small calls
    names = {(c.op, c.shape) for c in cases}
    assert {("logsumexp", (4096, 4096)), ("softmax", (4096, 4096)),
            ("logsumexp", (64, 128)), ("softmax", (64, 128)), ("langevin_step", (4096,)),
            ("ortho_frobenius", (256, 64))} <= names
    assert {"langevin_step", "ortho_frobenius", "expm_rank1_apply"} <= {c.op for c in cases}
    small = [c for c in cases if c.small_call]
    assert len(small) == 4 and all(c.dtype == "float32" for c in small)
    with pytest.raises(SystemExit):
        main(["bench", "--help"])
    assert "leaves out" in " ".join(capsys.readouterr().out.split())


# --------------------------------------------------------------------------------------------
# --contend: quiet, single-thread and contended timings; no competitor left behind
# --------------------------------------------------------------------------------------------


def _gone(pid):
    """The process is gone (reaped: no /proc entry, os.kill finds nothing)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return not Path(f"/proc/{pid}").exists()
    return False


def test_competitors_are_stopped_also_on_errors():
    from fastops.bench.contention import Competitors

    with Competitors(2, seconds=60) as competitors:
        pids = competitors.pids
        assert len(pids) == 2 and competitors.running() == 2
    assert all(_gone(pid) for pid in pids)
    with pytest.raises(KeyboardInterrupt), Competitors(1, seconds=60) as competitors:
        pids = competitors.pids
        raise KeyboardInterrupt
    assert all(_gone(pid) for pid in pids)
    # their own deadline ends them too (the safety net if the bench is SIGKILLed)
    competitors = Competitors(1, seconds=0.1)
    competitors.start()
    assert competitors.procs[0].wait(timeout=30) == 0
    competitors.stop()


def test_cli_contend_tiny(tmp_path, capsys):
    path = tmp_path / "contend.json"
    args = ["bench", "--tiny", "--contend", "1", "--op", "logsumexp", "--plain", "--json",
            str(path)]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "contended" in out and "1 thread" in out and "÷1 thr" in out
    d = json.loads(path.read_text())
    assert d["competitors"] == 1 and len(d["competitor_pids"]) == 1
    assert all(_gone(pid) for pid in d["competitor_pids"])
    assert {r["small_call"] for r in d["rows"]} == {True, False}
    for r in d["rows"]:
        assert r["error"] is None, r["error"]
        for phase in ("quiet", "single_thread", "contended"):
            assert r[phase]["median_s"] > 0 and "q1_s" in r[phase]
        assert r["contended_vs_single_thread"] == pytest.approx(
            r["contended"]["median_s"] / r["single_thread"]["median_s"])


def test_contention_run_that_raises_leaves_no_competitor():
    from fastops.bench.contention import run_contention

    pids = []

    def interrupt(description, done):
        if "contended" in description:
            raise KeyboardInterrupt  # as Ctrl-C would, in the middle of the contended phase

    with pytest.raises(KeyboardInterrupt):
        run_contention(2, size="tiny", ops=["logsumexp"], dtypes=["float32"],
                       on_step=interrupt, on_competitors=pids.extend)
    assert len(pids) == 2 and all(_gone(pid) for pid in pids)


def test_contention_table_ratios_and_targets():
    from rich.console import Console

    from fastops.bench.contention import ContendedRow, ContentionResult

    def t(seconds):
        return Timing([seconds] * 4)

    big = ContendedRow(_case(dtype="float32", shape=(4096, 4096)), t(0.01), t(0.02), t(0.03))
    small = ContendedRow(_case(dtype="float32", shape=(64, 128)), t(1e-5), t(2e-5), t(2.4e-5))
    assert big.vs_single_thread == pytest.approx(1.5) and big.misses_target
    assert small.vs_single_thread == pytest.approx(1.2) and small.vs_quiet == pytest.approx(2.4)
    assert small.case.small_call and not small.misses_target
    noisy = Timing([0.01, 0.02, 0.03, 0.04])
    widest = [  # the longest names, flagged times and missed targets
        ContendedRow(_case("ortho_frobenius", "orthogonality", shape=(256, 64)), noisy, noisy,
                     Timing([0.5, 0.6, 0.7, 0.8])),
        ContendedRow(_case("annealed_langevin", "langevin"), noisy, noisy, noisy),
        ContendedRow(_case("ortho_model", "orthogonality", dtype="float64"), noisy, noisy,
                     noisy),
    ]
    result = ContentionResult("full", 1, 2, [big, small, *widest], "", [123], idle_gap=0.02)
    table = report.contention_table(result)
    assert table.body[0][-2] == "1.50x" + report.MISSED_MARK and table.body[1][-1] == "2.40x"
    assert table.body[2][-1].endswith(report.MISSED_MARK)  # a small call 26x its quiet time
    buf = io.StringIO()
    report.render_rich(result, Console(file=buf, width=80, color_system=None))
    out = buf.getvalue()
    assert max(len(line) for line in out.splitlines()) <= 80 and "…" not in out
    buf = io.StringIO()
    report.render_plain(result, buf)
    assert max(len(line) for line in buf.getvalue().splitlines()) <= 80
    assert result.to_json()["rows"][0]["misses_target"] is True
