"""The package as published: ``python -m build`` makes an sdist and a wheel holding the fastops
package with its ``.cu`` kernel sources, the README and the LICENSE, under the distribution name
``fastops-kernels`` (``fastops`` on the package index is an unrelated project), and no tests,
benchmarks, CI or scripts; every install hint names that distribution.

The build runs on a copy of the source tree (the checkout gets no build/ or egg-info) with
``--no-isolation``: the installed setuptools is used and nothing is downloaded (the ``test``
extra installs ``build`` and a new enough setuptools).
"""

from __future__ import annotations

import email.parser
import importlib.util
import json
import re
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
NAME = "fastops-kernels"
#: Files and folders of the checkout that are never in a distribution.
_NOT_DISTRIBUTED = ("tests", "benchmarks", "scripts", "docs", ".ci", "asv.conf.json")

if not (REPO / "pyproject.toml").is_file():  # pragma: no cover - tests run from a checkout
    pytest.skip("needs the source checkout (pyproject.toml)", allow_module_level=True)


def _pyproject() -> dict:
    try:
        import tomllib
    except ImportError:  # Python 3.10
        tomllib = pytest.importorskip("tomli", reason="reading pyproject.toml needs tomli on 3.10")
    with open(REPO / "pyproject.toml", "rb") as f:
        return tomllib.load(f)


def _source_files(root: Path, suffix: str) -> set[str]:
    """The package's files ending in ``suffix``, as posix paths relative to ``root``."""
    return {p.relative_to(root).as_posix() for p in (root / "fastops").rglob(f"*{suffix}")
            if "__pycache__" not in p.parts}


def _metadata(text: str) -> email.message.Message:
    return email.parser.Parser().parsestr(text, headersonly=True)


@pytest.fixture(scope="module")
def dists(tmp_path_factory):
    """(source copy, sdist path, wheel path, build log) of one ``python -m build``."""
    if importlib.util.find_spec("build") is None:
        pytest.skip("the packaging test needs `build` (pip install build, or the test extra)")
    import setuptools
    from packaging.version import Version  # a dependency of build

    if Version(setuptools.__version__) < Version("77"):
        pytest.skip(f"building needs setuptools>=77 (license as an SPDX string); this is "
                    f"{setuptools.__version__}")
    base = tmp_path_factory.mktemp("packaging")
    src = base / "src"
    shutil.copytree(REPO, src, ignore=shutil.ignore_patterns(
        ".git", "__pycache__", "*.pyc", "*.nbi", "*.nbc", "*.egg-info", "build", "dist", ".asv",
        ".*_cache", ".hypothesis", ".benchmarks", "bench-out"))
    out = base / "dist"
    proc = subprocess.run([sys.executable, "-m", "build", "--no-isolation", "--outdir", str(out),
                           str(src)], capture_output=True, text=True, timeout=300)
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-4000:]
    sdists = list(out.glob("*.tar.gz"))
    wheels = list(out.glob("*.whl"))
    assert len(sdists) == 1 and len(wheels) == 1, sorted(p.name for p in out.iterdir())
    return src, sdists[0], wheels[0], log


def test_pyproject_names_the_distribution_and_license():
    project = _pyproject()["project"]
    assert project["name"] == NAME
    assert project["license"] == "MIT"  # the SPDX string, not the deprecated table
    assert project["license-files"] == ["LICENSE"]
    text = (REPO / "LICENSE").read_text(encoding="utf-8")
    assert text.startswith("MIT License") and "Permission is hereby granted" in text
    from fastops.bench.info import DISTRIBUTION

    assert DISTRIBUTION == NAME  # the name `fastops info` reads the version under
    # asv uninstalls {project} between commits: the old name would leave each build installed
    assert json.loads((REPO / "asv.conf.json").read_text(encoding="utf-8"))["project"] == NAME


def test_build_does_not_warn(dists):
    log = dists[3]
    assert not re.search(r"deprecat|SetuptoolsWarning", log, re.IGNORECASE), log[-4000:]


def test_wheel_contents(dists):
    src, _, wheel, _ = dists
    version = _pyproject()["project"]["version"]
    assert wheel.name == f"fastops_kernels-{version}-py3-none-any.whl"
    info = f"fastops_kernels-{version}.dist-info"
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
        meta = _metadata(zf.read(f"{info}/METADATA").decode())
        license_text = zf.read(f"{info}/licenses/LICENSE").decode()
        entry_points = zf.read(f"{info}/entry_points.txt").decode()
        top_level = zf.read(f"{info}/top_level.txt").decode().split()
    kernels = _source_files(src, ".cu")
    assert len(kernels) >= 5 and all(k.endswith("/kernels.cu") for k in kernels), kernels
    assert kernels <= names, kernels - names
    modules = _source_files(src, ".py")
    assert {n for n in names if n.endswith(".py")} == modules
    strays = {n for n in names if not (n.startswith("fastops/") or n.startswith(f"{info}/"))}
    assert not strays, strays  # no tests/, benchmarks/, conftest.py, ...
    assert top_level == ["fastops"]
    assert meta["Name"] == NAME
    assert meta["License-Expression"] == "MIT"
    assert meta.get_all("License-File") == ["LICENSE"]
    assert license_text == (REPO / "LICENSE").read_text(encoding="utf-8")
    assert re.search(r"^fastops\s*=\s*fastops\.cli:main$", entry_points, re.MULTILINE)


def test_sdist_contents(dists):
    src, sdist, _, _ = dists
    version = _pyproject()["project"]["version"]
    top = f"fastops_kernels-{version}"
    assert sdist.name == f"{top}.tar.gz"
    with tarfile.open(sdist) as tf:
        names = {m.name for m in tf.getmembers() if m.isfile()}
        meta = _metadata(tf.extractfile(f"{top}/PKG-INFO").read().decode())
    rel = {n.removeprefix(f"{top}/") for n in names}
    assert {"LICENSE", "README.md", "pyproject.toml", "PKG-INFO"} <= rel
    kernels = _source_files(src, ".cu")
    assert kernels <= rel, kernels - rel
    assert _source_files(src, ".py") <= rel
    leaked = {n for n in rel if n.split("/", 1)[0] in _NOT_DISTRIBUTED}
    assert not leaked, sorted(leaked)
    assert not {n for n in rel if "__pycache__" in n or n.endswith((".pyc", ".nbi", ".nbc"))}
    assert meta["Name"] == NAME
    assert meta["License-Expression"] == "MIT"


#: ``pip install fastops`` / ``pip install 'fastops[gpu]'``: the unrelated project on the index.
_SQUATTED = re.compile(r"pip install\s+(-U\s+)?['\"]?fastops(?![\w-])")


def test_install_hints_name_the_distribution():
    texts = [*(REPO / "fastops").rglob("*.py"), REPO / "README.md", *(REPO / "docs").glob("*.md")]
    bad = [f"{p.relative_to(REPO)}:{i}: {line.strip()}"
           for p in texts for i, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1)
           if _SQUATTED.search(line)]
    assert not bad, bad
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert f'pip install "{NAME}[gpu]"' in readme and 'pip install -e ".[gpu]"' in readme
