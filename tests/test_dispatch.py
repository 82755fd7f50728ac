"""Backend dispatch: array type -> backend, backend= argument, fastops.backends(), and that
``import fastops`` and CPU calls neither import CuPy nor compile anything up front."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import fastops
import fastops.langevin as langevin_mod
import fastops.orthogonality as orthogonality_mod
import fastops.random as random_mod
import fastops.rank_one as rank_one_mod
import fastops.smooth as smooth_mod

ROOT = Path(__file__).resolve().parents[1]
FORWARD = ("logsumexp", "softmax", "log_softmax", "smooth_max", "soft_argmax")
BACKWARD = tuple(f"{op}_backward" for op in FORWARD)
ORTHOGONALITY_OPS = (
    "orthogonality_penalty",
    "orthogonality_penalty_and_grad",
    "orthogonality_penalties_and_grads",
    "som_penalty",
    "som_penalty_and_grad",
    "spectral_norm",
)
RANK_ONE_OPS = (
    "expm_rank1",
    "expm_rank1_apply",
    "expm_rank1_apply_backward",
    "expm_rank1_logdet",
    "expm_rank1_chain_apply",
    "expm_rank1_chain_apply_backward",
)
LANGEVIN_OPS = ("langevin_step", "mala_step", "annealed_langevin", "gmm_score")
PUBLIC_OPS = FORWARD + BACKWARD + ORTHOGONALITY_OPS + RANK_ONE_OPS + LANGEVIN_OPS
_CUPY = fastops.backends()["cupy"]
NO_GPU = pytest.mark.skipif(not _CUPY["available"], reason=f"cupy: {_CUPY['reason']}")


def _run_python(code: str, env_extra: dict | None = None, pythonpath: list | None = None):
    env = dict(os.environ)
    env.setdefault("NUMBA_CACHE_DIR", "/tmp/numba-cache-tests")
    env["PYTHONPATH"] = os.pathsep.join([*(pythonpath or []), str(ROOT)])
    env.update(env_extra or {})
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)


ALL_CPU_CALLS = """
    import numpy as np
    import fastops
    x = np.array([[0.5, -1.0, 2.0], [1.0, 1.0, 1.0]])
    y = fastops.softmax(x)
    fastops.logsumexp(x, axis=-1, b=np.ones(3), return_sign=True)
    fastops.logsumexp(np.ones(3))
    fastops.log_softmax(x, where=x > 0)
    fastops.smooth_max(x, temperature=0.5)
    fastops.soft_argmax(x)
    fastops.logsumexp_backward(x, fastops.logsumexp(x, axis=-1), np.ones(2), axis=-1)
    fastops.softmax_backward(y, np.ones_like(y))
    fastops.log_softmax_backward(np.log(y), np.ones_like(y))
    fastops.smooth_max_backward(x, np.ones(2))
    fastops.soft_argmax_backward(x, np.ones(2))
    fastops.softmax(x, backend="numpy")
    W = np.random.default_rng(0).standard_normal((2, 6, 4))
    for kind in ("frobenius", "offdiag", "spectral"):
        fastops.orthogonality_penalty_and_grad(W, kind)
        fastops.orthogonality_penalty(np.swapaxes(W, -1, -2), kind)
    fastops.orthogonality_penalties_and_grads([W, W[0]], "offdiag")
    fastops.som_penalty_and_grad(W)
    fastops.spectral_norm(W, np.ones((2, 6)))
    xr, yr, vr = W[0, 0], W[0, 1], W[1, 0]
    fastops.expm_rank1(xr, yr)
    fastops.expm_rank1_logdet(xr, yr)
    fastops.expm_rank1_apply(xr, yr, vr, inverse=True)
    fastops.expm_rank1_apply_backward(xr, yr, vr, vr)
    z, ld = fastops.expm_rank1_chain_apply(W[0, :2], W[1, :2], vr)
    fastops.expm_rank1_chain_apply_backward(W[0, :2], W[1, :2], vr, z, ld)
"""


def test_cpu_use_never_imports_cupy():
    """Nor torch, where it is installed (fastops.torch is the only module that imports it;
    one subprocess for both checks: each costs seconds of imports)."""
    code = ("import sys\n" + textwrap.dedent(ALL_CPU_CALLS)
            + "assert 'cupy' not in sys.modules, 'cupy was imported'\n"
            + "assert not any(m.startswith('cupy') for m in sys.modules)\n"
            + "assert 'fastops.smooth.gpu' not in sys.modules\n"
            + "assert 'torch' not in sys.modules, 'torch was imported'\n"
            + "assert 'fastops.torch' not in sys.modules\n")
    proc = _run_python(code)
    assert proc.returncode == 0, proc.stderr


def test_cpu_use_never_imports_cupy_even_when_installed(tmp_path):
    """With an (empty) package named cupy on the path, CPU calls still leave it alone."""
    fake = tmp_path / "cupy"
    fake.mkdir()
    (fake / "__init__.py").write_text("import sys\nsys.stderr.write('FAKE CUPY IMPORTED\\n')\n")
    code = ("import sys, importlib.util\n"
            "assert importlib.util.find_spec('cupy') is not None\n"
            + textwrap.dedent(ALL_CPU_CALLS)
            + "assert 'cupy' not in sys.modules, 'cupy was imported'\n")
    proc = _run_python(code, pythonpath=[str(tmp_path)])
    assert proc.returncode == 0, proc.stderr
    assert "FAKE CUPY IMPORTED" not in proc.stderr


def test_backends_with_unusable_cupy(tmp_path):
    """A cupy that cannot reach a GPU is reported unavailable, with a reason, not an error."""
    fake = tmp_path / "cupy"
    fake.mkdir()
    (fake / "__init__.py").write_text("__version__ = '0.0-fake'\n")
    code = """
        import fastops
        info = fastops.backends()["cupy"]
        assert info["available"] is False, info
        assert isinstance(info["reason"], str) and info["reason"], info
        print(info)
    """
    proc = _run_python(code, pythonpath=[str(tmp_path)])
    assert proc.returncode == 0, proc.stderr


def test_import_compiles_nothing():
    code = """
        import numba
        import fastops
        import fastops.langevin.cpu as langevin_cpu
        import fastops.orthogonality.cpu as ortho_cpu
        import fastops.random.cpu as random_cpu
        import fastops.rank_one.cpu as rank_one_cpu
        import fastops.smooth.cpu as cpu

        def dispatchers(module):
            for name, value in vars(module).items():
                items = value if isinstance(value, tuple) else (value,)
                for item in items:
                    if isinstance(item, numba.core.dispatcher.Dispatcher):
                        yield name, item

        for module, least in ((cpu, 10), (ortho_cpu, 8), (rank_one_cpu, 7), (random_cpu, 2),
                              (langevin_cpu, 3)):
            found = list(dispatchers(module))
            assert len(found) >= least, [n for n, _ in found]
            compiled = [name for name, d in found if d.signatures]
            assert not compiled, f"compiled at import: {compiled}"
        assert cpu._reduce_rows[0].signatures == []
    """
    proc = _run_python(code)
    assert proc.returncode == 0, proc.stderr


def test_import_fastops_does_not_load_kernels():
    code = """
        import sys
        import fastops
        for name in ("fastops.smooth.cpu", "fastops.orthogonality.cpu",
                     "fastops.rank_one.cpu", "fastops.random.cpu", "fastops.langevin.cpu"):
            assert name not in sys.modules or not any(
                d.signatures for d in vars(sys.modules[name]).values()
                if hasattr(d, "signatures"))
        assert "cupy" not in sys.modules
    """
    proc = _run_python(code)
    assert proc.returncode == 0, proc.stderr


def test_public_names():
    expected = {"backends", "get_num_threads", "set_num_threads", "threads", *PUBLIC_OPS}
    assert set(fastops.__all__) == expected
    assert len(fastops.__all__) == len(expected), "duplicates in fastops.__all__"
    for name in fastops.__all__:
        assert callable(getattr(fastops, name)), name
    # nothing else public at the top level, besides submodules and __version__
    public = {n for n in dir(fastops) if not n.startswith("_")
              and not isinstance(getattr(fastops, n), type(sys))}
    assert public == expected, public ^ expected
    assert set(smooth_mod.__all__) == set(FORWARD + BACKWARD)
    assert set(orthogonality_mod.__all__) == {"KINDS", *ORTHOGONALITY_OPS}
    assert set(rank_one_mod.__all__) == set(RANK_ONE_OPS)
    assert set(langevin_mod.__all__) == {"MALA_UNIFORM_OFFSET", *LANGEVIN_OPS}
    assert set(random_mod.__all__) == {"STREAM_VERSION", "normal", "philox4x32", "uniform"}


def test_backends_dict():
    info = fastops.backends()
    assert set(info) == {"numba", "numpy", "cupy"}
    for name, entry in info.items():
        assert set(entry) == {"available", "reason", "version"}, (name, entry)
        assert isinstance(entry["available"], bool)
        assert isinstance(entry["reason"], str) and entry["reason"], (name, entry)
        assert entry["version"] is None or isinstance(entry["version"], str)
    assert info["numpy"]["available"] is True and info["numpy"]["version"] == np.__version__
    assert info["numba"]["available"] is True
    import numba

    assert info["numba"]["version"] == numba.__version__
    if not info["cupy"]["available"]:
        assert info["cupy"]["reason"]


def test_backends_without_cupy_package():
    """Where CuPy is not installed the reason says so (checked in a clean interpreter with
    cupy hidden from the import system)."""
    code = """
        import sys
        class Hide:
            def find_spec(self, name, path=None, target=None):
                if name == "cupy" or name.startswith("cupy."):
                    raise ModuleNotFoundError(name)
                return None
        sys.meta_path.insert(0, Hide())
        import importlib.util
        _find_spec = importlib.util.find_spec
        def find_spec(name, package=None):
            return None if name == "cupy" else _find_spec(name, package)
        importlib.util.find_spec = find_spec
        import fastops
        info = fastops.backends()["cupy"]
        assert info["available"] is False and "not installed" in info["reason"], info
        assert "pip install 'fastops-kernels[gpu]'" in info["reason"], info  # not `fastops`
        assert "pip install -e '.[gpu]'" in info["reason"], info
        assert info["version"] is None
    """
    proc = _run_python(code)
    assert proc.returncode == 0, proc.stderr


@pytest.mark.parametrize("op", FORWARD)
def test_numpy_backend_runs_the_reference(op, monkeypatch):
    sentinel = object()
    calls = []

    def fake(*args, **kwargs):
        calls.append((args, kwargs))
        return sentinel

    def no_kernels(name):
        raise AssertionError(f"backend='numpy' reached the {name} kernels")

    monkeypatch.setattr(smooth_mod.reference, op, fake)
    monkeypatch.setattr(smooth_mod, "_kernels", no_kernels)
    assert getattr(fastops, op)(np.ones((2, 3)), backend="numpy") is sentinel
    assert len(calls) == 1


@pytest.mark.parametrize("op", FORWARD)
def test_default_and_numba_backend_use_the_kernels(op, monkeypatch):
    seen = []
    real = smooth_mod._kernels

    def spy(name):
        seen.append(name)
        return real(name)

    monkeypatch.setattr(smooth_mod, "_kernels", spy)
    x = np.array([[0.5, 1.0, -2.0]])
    a = getattr(fastops, op)(x)
    b = getattr(fastops, op)(x, backend="numba")
    np.testing.assert_array_equal(a, b)
    assert seen == ["numba", "numba"]


@pytest.mark.parametrize("op", BACKWARD)
def test_backward_on_numpy_arrays_use_the_kernels(op, monkeypatch):
    seen = []
    real = smooth_mod._kernels
    monkeypatch.setattr(smooth_mod, "_kernels", lambda name: seen.append(name) or real(name))
    x = np.array([[0.5, 1.0, -2.0]])
    if op == "logsumexp_backward":
        getattr(fastops, op)(x, np.array([1.0]), np.array([1.0]), axis=-1)
    else:
        getattr(fastops, op)(x, np.ones(x.shape) if "softmax_" in op else np.ones(1))
    assert seen == ["numba"]


@pytest.mark.parametrize("op", FORWARD)
def test_cupy_backend_with_numpy_arrays(op):
    with pytest.raises(TypeError, match=rf"(?s){op}\b.*backend"):
        getattr(fastops, op)(np.ones(3), backend="cupy")


@pytest.mark.parametrize("op", FORWARD)
@pytest.mark.parametrize("value", ["gpu", "torch", "Numba", ""])
def test_wrong_backend_string(op, value):
    with pytest.raises(ValueError, match=rf"(?s){op}\b.*backend"):
        getattr(fastops, op)(np.ones(3), backend=value)


def test_non_array_arguments_resolve_to_cpu():
    """Lists and scalars are CPU inputs (numba backend)."""
    got = fastops.logsumexp([0.0, 0.0])
    assert isinstance(got, np.ndarray | np.generic)
    assert abs(float(got) - np.log(2.0)) < 1e-15


# ----------------------------------------------------------------------------------------------
# GPU: mixed devices, results on the device, backend="numba"/"numpy" with CuPy arrays
# ----------------------------------------------------------------------------------------------


def _mixed_calls(cp):
    xg = cp.asarray(np.ones((2, 3)))
    xc = np.ones((2, 3))
    return [
        ("logsumexp", lambda: fastops.logsumexp(xg, b=np.ones(3))),
        ("logsumexp", lambda: fastops.logsumexp(xc, b=cp.ones(3))),
        ("softmax", lambda: fastops.softmax(xg, where=np.ones((2, 3), bool))),
        ("log_softmax", lambda: fastops.log_softmax(xc, where=cp.ones((2, 3), bool))),
        ("smooth_max", lambda: fastops.smooth_max(xg, where=np.ones(3, bool))),
        ("soft_argmax", lambda: fastops.soft_argmax(xc, where=cp.ones(3, bool))),
        ("logsumexp_backward", lambda: fastops.logsumexp_backward(xg, np.ones(2), 1.0, -1)),
        ("logsumexp_backward", lambda: fastops.logsumexp_backward(xc, 0.0, cp.ones(2), -1)),
        ("softmax_backward", lambda: fastops.softmax_backward(xg, xc)),
        ("log_softmax_backward", lambda: fastops.log_softmax_backward(xc, xg)),
        ("smooth_max_backward", lambda: fastops.smooth_max_backward(xg, np.ones(2))),
        ("soft_argmax_backward", lambda: fastops.soft_argmax_backward(xc, cp.ones(2))),
    ]


@pytest.mark.parametrize("index", range(12))
@pytest.mark.gpu
@NO_GPU
def test_mixed_numpy_cupy_arguments(index):
    import cupy as cp

    op, call = _mixed_calls(cp)[index]
    with pytest.raises(TypeError, match=rf"(?s){op}\b.*same device"):
        call()


@pytest.mark.gpu
@NO_GPU
@pytest.mark.parametrize("backend", ["numba", "numpy"])
def test_cpu_backend_with_cupy_arrays(backend):
    import cupy as cp

    with pytest.raises(TypeError, match="backend"):
        fastops.softmax(cp.ones(3), backend=backend)


@pytest.mark.gpu
@NO_GPU
def test_cupy_results_stay_on_device():
    import cupy as cp

    x = cp.asarray(np.array([[2.0, 1.0, 4.0, 5.0, 3.0]]))
    for op in FORWARD:
        out = getattr(fastops, op)(x, axis=-1)
        assert isinstance(out, cp.ndarray), op
        out2 = getattr(fastops, op)(x, axis=-1, backend="cupy")
        cp.testing.assert_array_equal(out, out2)


@pytest.mark.gpu
@NO_GPU
def test_cupy_on_another_device():
    """An array on device 1 while device 0 is current: computed there, result there."""
    import cupy as cp

    if cp.cuda.runtime.getDeviceCount() < 2:
        # a single GPU: the same check on device 0 with another device current is impossible;
        # check instead that the result lives on the input's device
        x = cp.asarray(np.array([[0.5, 1.5]]))
        assert fastops.softmax(x).device.id == x.device.id
        return
    with cp.cuda.Device(1):
        x = cp.asarray(np.array([[0.5, 1.5, -1.0]]))
    with cp.cuda.Device(0):
        out = fastops.softmax(x)
        lse = fastops.logsumexp(x, axis=-1)
    assert out.device.id == 1 and lse.device.id == 1
    np.testing.assert_allclose(cp.asnumpy(out), fastops.softmax(cp.asnumpy(x)), rtol=1e-13)
