"""Compile-check fastops/orthogonality/kernels.cu with nvcc (no GPU needed; skipped without nvcc).

gpu.py builds one NVRTC module per (op, dtype) by prepending its ``_SELECT`` defines to
kernels.cu and then asks for kernels by name (``_KERNELS``). This test builds exactly those
sources as sm_90 cubins and checks that each defines exactly the kernels gpu.py will request; it
also builds the unselected source (every op, every dtype) for sm_80, the oldest GPU the CUDA 12
wheels target that this code is meant for. Warnings are errors. The names are read from gpu.py's
literals with ``ast``, because importing gpu.py needs cupy.
"""

from __future__ import annotations

import ast
import os
import re
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

NVCC = shutil.which("nvcc")
pytestmark = pytest.mark.skipif(NVCC is None, reason="nvcc is not on PATH")

FAMILY = Path(__file__).resolve().parents[2] / "fastops" / "orthogonality"
KERNELS_CU = FAMILY / "kernels.cu"
GPU_PY = FAMILY / "gpu.py"
LITERALS = ("_KERNELS", "_DTYPES", "_SELECT", "_DIAG")


def _gpu_literals() -> dict[str, object]:
    """The module-level literals of gpu.py that name its kernels and selection defines."""
    found: dict[str, object] = {}
    for node in ast.parse(GPU_PY.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            name, value = node.target.id, node.value
        elif (
            isinstance(node, ast.Assign)
            and len(node.targets) == 1
            and isinstance(node.targets[0], ast.Name)
        ):
            name, value = node.targets[0].id, node.value
        else:
            continue
        if name in LITERALS and value is not None:
            found[name] = ast.literal_eval(value)
    missing = set(LITERALS) - set(found)
    assert not missing, f"gpu.py no longer defines {sorted(missing)} as literals"
    return found


LIT = _gpu_literals()


def _expected(op: str, dtype: str) -> set[str]:
    return {
        f"fastops_{op}_{shape}_{dtype}" if shape else f"fastops_{op}_{dtype}"
        for shape in LIT["_KERNELS"][op]
    }


def _compile(src: Path, arch: str) -> bytes:
    cubin = src.with_suffix(f".{arch}.cubin")
    cmd = [
        NVCC,
        "-std=c++17",
        f"-arch={arch}",
        "--cubin",
        "-Werror",
        "all-warnings",
        "-o",
        str(cubin),
        str(src),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, f"{' '.join(cmd)} failed:\n{proc.stdout}\n{proc.stderr}"
    return cubin.read_bytes()


def _kernel_names(cubin: bytes) -> set[str]:
    # Kernel names (and the section names derived from them) sit in the ELF string tables.
    return {m.decode() for m in re.findall(rb"fastops_[a-z0-9_]+", cubin)}


def test_source_is_header_free() -> None:
    # NVRTC, which CuPy compiles with, ships no C/C++ library headers: an #include that nvcc
    # resolves here would fail at run time on the GPU machine.
    assert "#include" not in KERNELS_CU.read_text(encoding="utf-8")


def test_diag_codes_match_kernels() -> None:
    # gpu.py passes gram_reduce's diag string as an int; the kernel compares with FO_DIAG_*.
    defines = re.findall(r"#define FO_DIAG_(\w+) (\d+)", KERNELS_CU.read_text(encoding="utf-8"))
    assert {name.lower(): int(v) for name, v in defines} == LIT["_DIAG"]


def test_every_selected_module_compiles_for_sm90(tmp_path: Path) -> None:
    source = KERNELS_CU.read_text(encoding="utf-8")
    jobs = []
    for dtype in LIT["_DTYPES"]:
        for op in LIT["_KERNELS"]:
            src = tmp_path / f"{op}_{dtype}.cu"
            src.write_text(LIT["_SELECT"].format(dtype=dtype.upper(), op=op.upper()) + source)
            jobs.append((op, dtype, src))
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        cubins = list(pool.map(lambda job: _compile(job[2], "sm_90"), jobs))
    for (op, dtype, _), cubin in zip(jobs, cubins, strict=True):
        assert _kernel_names(cubin) == _expected(op, dtype), (op, dtype)


def test_all_kernels_compile_for_sm80(tmp_path: Path) -> None:
    src = tmp_path / "all.cu"
    src.write_text(f'#include "{KERNELS_CU.as_posix()}"\n')
    names = _kernel_names(_compile(src, "sm_80"))
    expected = set().union(
        *(_expected(op, dtype) for op in LIT["_KERNELS"] for dtype in LIT["_DTYPES"])
    )
    assert names == expected
