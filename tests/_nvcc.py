"""Compile-checking a family's kernels.cu with nvcc (no GPU needed; skipped without nvcc).

Each family's gpu.py builds one NVRTC module per (op, dtype) by prepending ``SELECT`` (from
``fastops/_cupy.py``) to its kernels.cu, then asks for kernels by name. The family's test lists
the modules gpu.py builds and the kernels it expects in each; :func:`check_selected_modules`
builds exactly those sources as sm_90 cubins and compares the kernels each defines, and
:func:`check_whole_file` builds the unselected source (every op, every dtype) for sm_80, the
oldest GPU the CUDA 12 wheels target that this code is meant for. Warnings are errors. Names
are read from the modules' literals with ``ast``, because importing gpu.py needs cupy.
"""

from __future__ import annotations

import ast
import os
import re
import shutil
import subprocess
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

NVCC = shutil.which("nvcc")
requires_nvcc = pytest.mark.skipif(NVCC is None, reason="nvcc is not on PATH")
FASTOPS = Path(__file__).resolve().parents[1] / "fastops"


def module_literals(path: Path, names: Iterable[str]) -> dict[str, object]:
    """The module-level literals ``names`` of the Python file ``path`` (without importing it)."""
    wanted = set(names)
    found: dict[str, object] = {}
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            name, value = node.target.id, node.value
        elif (isinstance(node, ast.Assign) and len(node.targets) == 1
              and isinstance(node.targets[0], ast.Name)):
            name, value = node.targets[0].id, node.value
        else:
            continue
        if name in wanted and value is not None:
            found[name] = ast.literal_eval(value)
    missing = wanted - set(found)
    assert not missing, f"{path.name} no longer defines {sorted(missing)} as literals"
    return found


_CUPY_LITERALS = module_literals(FASTOPS / "_cupy.py", ["SELECT", "LIBRARY_ONLY"])
SELECT = str(_CUPY_LITERALS["SELECT"])
LIBRARY_ONLY = tuple(_CUPY_LITERALS["LIBRARY_ONLY"])


def module_source(kernels_cu: Path, library: Path | None = None) -> str:
    """What KernelSource compiles (before SELECT): ``library``'s device functions, then
    kernels_cu."""
    own = kernels_cu.read_text(encoding="utf-8")
    if library is None:
        return own
    head, tail = LIBRARY_ONLY
    return head + library.read_text(encoding="utf-8") + tail + own


def expected_kernels(kernels: dict[str, tuple[str, ...]]) -> Callable[[str, str], set[str]]:
    """``expected(op, dtype)``: the names ``fastops_<op>[_<shape>]_<dtype>`` of the kernels a
    gpu.py ``_KERNELS`` literal (op -> kernel shapes) asks for."""

    def expected(op: str, dtype: str) -> set[str]:
        return {f"fastops_{op}_{shape}_{dtype}" if shape else f"fastops_{op}_{dtype}"
                for shape in kernels[op]}

    return expected


def _nvcc(src: Path, arch: str, kind: str) -> Path:
    """Compile ``src`` for ``arch`` to ``kind`` ("ptx" or "cubin"), warnings as errors."""
    out = src.with_suffix(f".{arch}.{kind}")
    cmd = [NVCC, "-std=c++17", f"-arch={arch}", f"--{kind}", "-Werror", "all-warnings",
           "-o", str(out), str(src)]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, f"{' '.join(cmd)} failed:\n{proc.stdout}\n{proc.stderr}"
    return out


def compile_ptx(src: Path, arch: str) -> str:
    """nvcc's front end and NVVM only (no ptxas): 10.7 s against 17.2 s for a cubin of the
    whole smooth kernels.cu (measured), for the whole-file check whose modules are assembled
    by the sm_90 check anyway."""
    return _nvcc(src, arch, "ptx").read_text()


def compile_cubin(src: Path, arch: str) -> bytes:
    return _nvcc(src, arch, "cubin").read_bytes()


def kernel_names(cubin: bytes) -> set[str]:
    # Kernel names (and the section names derived from them) sit in the ELF string tables.
    return {m.decode() for m in re.findall(rb"fastops_[a-z0-9_]+", cubin)}


def assert_header_free(kernels_cu: Path) -> None:
    # NVRTC, which CuPy compiles with, ships no C/C++ library headers: an #include that nvcc
    # resolves here would fail at run time on the GPU machine.
    assert "#include" not in kernels_cu.read_text(encoding="utf-8")


def check_selected_modules(kernels_cu: Path, ops: Iterable[str], dtypes: Iterable[str],
                           expected: Callable[[str, str], set[str]], tmp_path: Path,
                           library: Path | None = None) -> None:
    """Every (op, dtype) module gpu.py builds compiles for sm_90 and defines exactly
    ``expected(op, dtype)`` (``library``: the device library KernelSource prepends)."""
    source = module_source(kernels_cu, library)
    jobs = []
    for dtype in dtypes:
        for op in ops:
            src = tmp_path / f"{op}_{dtype}.cu"
            src.write_text(SELECT.format(dtype=dtype.upper(), op=op.upper()) + source)
            jobs.append((op, dtype, src))
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        cubins = list(pool.map(lambda job: compile_cubin(job[2], "sm_90"), jobs))
    for (op, dtype, _), cubin in zip(jobs, cubins, strict=True):
        assert kernel_names(cubin) == expected(op, dtype), (op, dtype)


def check_whole_file(kernels_cu: Path, ops: Iterable[str], dtypes: Iterable[str],
                     expected: Callable[[str, str], set[str]], tmp_path: Path,
                     library: Path | None = None) -> None:
    """The unselected kernels.cu compiles for sm_80 (to PTX: see compile_ptx) and defines
    every kernel of every op."""
    src = tmp_path / "all.cu"
    if library is None:
        src.write_text(f'#include "{kernels_cu.as_posix()}"\n')
    else:
        src.write_text(module_source(kernels_cu, library))
    dtypes = list(dtypes)
    want = set().union(*(expected(op, dtype) for op in ops for dtype in dtypes))
    assert set(re.findall(r"\.entry\s+(fastops_[a-z0-9_]+)", compile_ptx(src, "sm_80"))) == want
