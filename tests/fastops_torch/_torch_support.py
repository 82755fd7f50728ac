"""Shared helpers of the fastops.torch tests.

The folder is ``tests/fastops_torch`` (no ``__init__.py``), not ``tests/torch``: pytest puts
``tests/`` on sys.path for the family packages, and there a folder named ``torch`` would be
found by ``importlib.util.find_spec("torch")`` as a namespace package on machines without
torch (so the bench would think torch installed), or would shadow torch as a package.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

torch = pytest.importorskip("torch", minversion="2.4")

F64 = torch.float64


def randn(*shape: int, seed: int = 0, dtype: Any = F64, grad: bool = False) -> Any:
    g = torch.Generator().manual_seed(seed)
    t = torch.randn(shape, generator=g, dtype=torch.float64).to(dtype)
    return t.requires_grad_(grad)


def mask(*shape: int, seed: int = 1, empty_row: int | None = 1) -> Any:
    """A random mask with one fully masked row (the semantics' special row)."""
    g = torch.Generator().manual_seed(seed)
    m = torch.rand(shape, generator=g) > 0.3
    if empty_row is not None:
        m[empty_row] = False
    return m


def assert_same(t: Any, a: Any) -> None:
    """A tensor equal, bit for bit (NaN equal to NaN), to a NumPy result."""
    got = t.detach().numpy()
    want = np.asarray(a)
    assert got.dtype == want.dtype, (got.dtype, want.dtype)
    assert got.shape == want.shape, (got.shape, want.shape)
    np.testing.assert_array_equal(got, want)


def record(monkeypatch: Any, name: str) -> list:
    """Wrap ``fastops.<name>`` so the arrays it gets and returns are kept (zero-copy checks)."""
    import fastops

    calls: list = []
    original = getattr(fastops, name)

    def spy(*args: Any, **kwargs: Any) -> Any:
        out = original(*args, **kwargs)
        calls.append((args, kwargs, out))
        return out

    monkeypatch.setattr(fastops, name, spy)
    return calls


cuda_only = [pytest.mark.gpu,
             pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")]
