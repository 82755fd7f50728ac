"""Compile-check fastops/langevin/kernels.cu (after the random family's device library, as
gpu.py builds it) with nvcc (no GPU needed; skipped without nvcc)."""

from __future__ import annotations

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

KERNELS_CU = FASTOPS / "langevin" / "kernels.cu"
LIBRARY = FASTOPS / "random" / "kernels.cu"
LIT = module_literals(FASTOPS / "langevin" / "gpu.py", ("_KERNELS", "_DTYPES"))


_expected = expected_kernels(LIT["_KERNELS"])


def test_source_is_header_free() -> None:
    assert_header_free(KERNELS_CU)


@requires_nvcc
def test_every_selected_module_compiles_for_sm90(tmp_path: Path) -> None:
    check_selected_modules(KERNELS_CU, LIT["_KERNELS"], LIT["_DTYPES"], _expected, tmp_path,
                           library=LIBRARY)


@requires_nvcc
def test_all_kernels_compile_for_sm80(tmp_path: Path) -> None:
    check_whole_file(KERNELS_CU, LIT["_KERNELS"], LIT["_DTYPES"], _expected, tmp_path,
                     library=LIBRARY)
