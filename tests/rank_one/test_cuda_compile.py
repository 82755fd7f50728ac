"""Compile-check fastops/rank_one/kernels.cu with nvcc (no GPU needed; skipped without nvcc).

The modules and kernels gpu.py asks for are read from its literals (``_KERNELS``: op -> the
kernel shapes it launches, ``_DTYPES``); the checks themselves are tests/_nvcc.py's. Also
checks that the chain kernels' register counts (``_NPT``) agree between gpu.py and kernels.cu.
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

KERNELS_CU = FASTOPS / "rank_one" / "kernels.cu"
LIT = module_literals(FASTOPS / "rank_one" / "gpu.py", ("_KERNELS", "_DTYPES", "_NPT", "_BLOCK"))


_expected = expected_kernels(LIT["_KERNELS"])


def test_source_is_header_free() -> None:
    assert_header_free(KERNELS_CU)


def test_launch_constants_match_kernels() -> None:
    text = KERNELS_CU.read_text(encoding="utf-8")
    npt = {m.lower(): int(v) for m, v in re.findall(r"#define FO_NPT_(\w+) (\d+)", text)}
    assert npt == LIT["_NPT"]
    assert int(re.search(r"#define FO_MAX_THREADS (\d+)", text).group(1)) == LIT["_BLOCK"]
    code = "\n".join(line.split("//")[0] for line in text.splitlines())  # comments removed
    assert "__expf" not in code and "__exp(" not in code


def test_every_selected_module_compiles_for_sm90(tmp_path: Path) -> None:
    check_selected_modules(KERNELS_CU, LIT["_KERNELS"], LIT["_DTYPES"], _expected, tmp_path)


def test_all_kernels_compile_for_sm80(tmp_path: Path) -> None:
    check_whole_file(KERNELS_CU, LIT["_KERNELS"], LIT["_DTYPES"], _expected, tmp_path)
