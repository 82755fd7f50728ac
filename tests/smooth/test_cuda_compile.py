"""Compile-check fastops/smooth/kernels.cu with nvcc (no GPU needed; skipped without nvcc).

The modules and kernels gpu.py asks for are read from its literals (``_SECOND``,
``_STATELESS``, ``_DTYPES``); the checks themselves are tests/_nvcc.py's.
"""

from __future__ import annotations

from pathlib import Path

from _nvcc import (
    FASTOPS,
    assert_header_free,
    check_selected_modules,
    check_whole_file,
    module_literals,
    requires_nvcc,
)

pytestmark = requires_nvcc

KERNELS_CU = FASTOPS / "smooth" / "kernels.cu"
LIT = module_literals(FASTOPS / "smooth" / "gpu.py",
                      ("_SECOND", "_STATELESS", "_COLUMNS", "_DTYPES"))


def _expected(op: str, dtype: str) -> set[str]:
    """The rows kernel, the second kernel of the split path, (unless stateless) the
    partial-statistics kernel and (for the _COLUMNS ops) the column kernel."""
    names = {f"fastops_{op}_{dtype}", f"fastops_{op}_{LIT['_SECOND'][op]}_{dtype}"}
    if op not in LIT["_STATELESS"]:
        names.add(f"fastops_{op}_partial_{dtype}")
    if op in LIT["_COLUMNS"]:
        names.add(f"fastops_{op}_columns_{dtype}")
    return names


def test_source_is_header_free() -> None:
    assert_header_free(KERNELS_CU)


def test_every_selected_module_compiles_for_sm90(tmp_path: Path) -> None:
    check_selected_modules(KERNELS_CU, LIT["_SECOND"], LIT["_DTYPES"], _expected, tmp_path)


def test_all_kernels_compile_for_sm80(tmp_path: Path) -> None:
    check_whole_file(KERNELS_CU, LIT["_SECOND"], LIT["_DTYPES"], _expected, tmp_path)
