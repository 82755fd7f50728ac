"""Compile-check fastops/random/kernels.cu with nvcc (no GPU needed; skipped without nvcc), and
check that its hex constants are the reference's polynomial coefficients."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from _nvcc import (
    FASTOPS,
    assert_header_free,
    check_selected_modules,
    compile_cubin,
    expected_kernels,
    kernel_names,
    module_literals,
)
from _nvcc import requires_nvcc as _requires_nvcc

from fastops.random import reference

KERNELS_CU = FASTOPS / "random" / "kernels.cu"
LIT = module_literals(FASTOPS / "random" / "gpu.py", ("_KERNELS", "_DTYPES"))


_expected = expected_kernels(LIT["_KERNELS"])


def test_source_is_header_free() -> None:
    assert_header_free(KERNELS_CU)


def _hex_literals(body: str, suffix: str) -> list[float]:
    pattern = r"(-?0x[0-9a-f.]+p[-+]?\d+)" + suffix + r"\b"
    return [float.fromhex(v) for v in re.findall(pattern, body)]


def _function(source: str, name: str) -> str:
    start = source.index(name + "(")
    return source[start:source.index("\n}\n", start)]


@pytest.mark.parametrize(("func", "coeffs", "suffix", "dtype"), [
    ("fo_log_count32", reference.LOG_COEFFS_32, "f", np.float32),
    ("fo_log_count64", reference.LOG_COEFFS_64, "", np.float64),
    ("fo_sincos_turns32", reference.SIN_COEFFS_32 + reference.COS_COEFFS_32, "f", np.float32),
    ("fo_sincos_turns64", reference.SIN_COEFFS_64 + reference.COS_COEFFS_64, "", np.float64),
])
def test_polynomial_constants_match_the_reference(func, coeffs, suffix, dtype) -> None:
    body = _function(KERNELS_CU.read_text(encoding="utf-8"), func)
    found = {dtype(v) for v in _hex_literals(body, suffix)}
    assert {dtype(c) for c in coeffs} <= found, sorted({dtype(c) for c in coeffs} - found)


@_requires_nvcc
def test_every_selected_module_compiles_for_sm90(tmp_path: Path) -> None:
    for op in LIT["_KERNELS"]:
        check_selected_modules(KERNELS_CU, [op], LIT["_DTYPES"][op], _expected, tmp_path)


@_requires_nvcc
def test_all_kernels_compile_for_sm80(tmp_path: Path) -> None:
    # dtypes differ per op here, so the whole-file check is spelled out (tests/_nvcc.py's
    # check_whole_file takes one dtype list for all ops)
    src = tmp_path / "all.cu"
    src.write_text(f'#include "{KERNELS_CU.as_posix()}"\n')
    want = set().union(*(_expected(op, dt) for op in LIT["_KERNELS"] for dt in LIT["_DTYPES"][op]))
    assert kernel_names(compile_cubin(src, "sm_80")) == want
