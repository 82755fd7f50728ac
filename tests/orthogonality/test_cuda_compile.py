"""Compile-check fastops/orthogonality/kernels.cu with nvcc (no GPU needed; skipped without
nvcc).

The modules and kernels gpu.py asks for are read from its literals (``_KERNELS``: op -> the
kernel shapes it launches, ``_DTYPES``); the checks themselves are tests/_nvcc.py's. Also
checks that gram_reduce's diag codes agree between gpu.py and the kernels.
"""

from __future__ import annotations

import re
from pathlib import Path

from _nvcc import (
    FASTOPS,
    assert_header_free,
    check_selected_modules,
    check_whole_file,
    expected_kernels,
    module_literals,
    requires_nvcc,
)

pytestmark = requires_nvcc

KERNELS_CU = FASTOPS / "orthogonality" / "kernels.cu"
LIT = module_literals(FASTOPS / "orthogonality" / "gpu.py", ("_KERNELS", "_DTYPES", "_DIAG"))


_expected = expected_kernels(LIT["_KERNELS"])


def test_source_is_header_free() -> None:
    assert_header_free(KERNELS_CU)


def test_diag_codes_match_kernels() -> None:
    # gpu.py passes gram_reduce's diag string as an int; the kernel compares with FO_DIAG_*.
    defines = re.findall(r"#define FO_DIAG_(\w+) (\d+)", KERNELS_CU.read_text(encoding="utf-8"))
    assert {name.lower(): int(v) for name, v in defines} == LIT["_DIAG"]


def test_every_selected_module_compiles_for_sm90(tmp_path: Path) -> None:
    check_selected_modules(KERNELS_CU, LIT["_KERNELS"], LIT["_DTYPES"], _expected, tmp_path)


def test_all_kernels_compile_for_sm80(tmp_path: Path) -> None:
    check_whole_file(KERNELS_CU, LIT["_KERNELS"], LIT["_DTYPES"], _expected, tmp_path)
