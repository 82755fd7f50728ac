"""Tensors <-> arrays for the custom ops, and the argument checks shared by the wrappers.

CPU tensors become NumPy arrays through ``Tensor.numpy()``: a view of the same memory with the
same strides (the fastops kernels read strided and transposed arrays where they lie), never a
copy. CUDA tensors become CuPy arrays through DLPack, and the kernels are launched on torch's
current CUDA stream, wrapped as a ``cupy.cuda.ExternalStream`` for the duration of the call, so
no synchronisation between the two libraries' streams is needed. Results come back the same way:
``torch.from_numpy`` (no copy) or ``torch.from_dlpack``.

The CUDA path is written against CuPy's documented DLPack and external-stream API; it has not
been run on a GPU yet (its tests carry the ``gpu`` marker).
"""

from __future__ import annotations

import contextlib
import math
import numbers
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import torch

#: dtypes every op takes; bfloat16 is computed in float32 (NumPy has no bfloat16).
FLOAT_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)
#: dtypes that cross to NumPy/CuPy as they are.
_ARRAY_DTYPES = (torch.float16, torch.float32, torch.float64, torch.bool)
_DTYPE_NAMES = "float16, bfloat16, float32 or float64"


def prefix(func: str) -> str:
    """The name errors start with: the public function the user called."""
    return f"fastops.torch.{func}"


# --------------------------------------------------------------------------------------------
# Checks (tensor metadata only, so that torch.compile traces them without a graph break)
# --------------------------------------------------------------------------------------------


def check_tensor(func: str, name: str, t: Any, *, kind: str = "float",
                 optional: bool = False) -> torch.Tensor | None:
    """``t`` as a dense CPU/CUDA tensor of a supported dtype, else a TypeError naming it.

    ``kind`` is ``"float"`` (float16, bfloat16, float32, float64) or ``"bool"`` (masks).
    """
    if t is None:
        if optional:
            return None
        raise TypeError(f"{prefix(func)}: {name} must be a torch.Tensor; got None")
    if not isinstance(t, torch.Tensor):
        raise TypeError(f"{prefix(func)}: {name} must be a torch.Tensor; got {type(t).__name__}")
    if t.layout != torch.strided:
        raise TypeError(f"{prefix(func)}: {name} must be a dense (strided) tensor; "
                        f"got layout {t.layout}")
    kind_of_device = t.device.type
    if kind_of_device == "meta":
        if not torch.compiler.is_compiling():
            raise TypeError(f"{prefix(func)}: {name} is on the meta device, which is supported "
                            "only while torch.compile traces; got a meta tensor in eager mode")
    elif kind_of_device not in ("cpu", "cuda"):
        raise TypeError(f"{prefix(func)}: {name} must be on a cpu or cuda device; "
                        f"got device {t.device}")
    if kind == "bool":
        if t.dtype != torch.bool:
            raise TypeError(f"{prefix(func)}: {name} must be a boolean tensor; got {t.dtype}")
    elif t.dtype not in FLOAT_DTYPES:
        raise TypeError(f"{prefix(func)}: {name} must be a floating tensor ({_DTYPE_NAMES}); "
                        f"got {t.dtype}")
    return t


def check_devices(func: str, named: Sequence[tuple[str, torch.Tensor | None]]) -> None:
    """All tensors on one device (no silent host/device copies), else a TypeError."""
    first: tuple[str, torch.device] | None = None
    for name, t in named:
        if t is None:
            continue
        if first is None:
            first = (name, t.device)
        elif t.device != first[1]:
            raise TypeError(f"{prefix(func)}: all tensors must be on one device; got "
                            f"{first[0]} on {first[1]} and {name} on {t.device}")


def real_number(func: str, name: str, value: Any, *, positive: bool = False,
                nonnegative: bool = False) -> float:
    """A Python float from a real number (bool and tensors are TypeErrors), range-checked."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{prefix(func)}: {name} must be a real number; "
                        f"got {type(value).__name__}")
    value = float(value)
    if positive and not (math.isfinite(value) and value > 0):
        raise ValueError(f"{prefix(func)}: {name} must be a finite number > 0; got {value!r}")
    if nonnegative and not (math.isfinite(value) and value >= 0):
        raise ValueError(f"{prefix(func)}: {name} must be a finite number >= 0; got {value!r}")
    return value


def flag(func: str, name: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"{prefix(func)}: {name} must be True or False; "
                        f"got {type(value).__name__}")
    return value


def normalize_axes(func: str, axis: Any, ndim: int, *, none_means_all: bool) -> list[int] | None:
    """``axis`` (None, an int or a sequence of ints) as a sorted list of non-negative axes.

    The custom ops take ``int[]`` (their schemas cannot hold None-or-int-or-tuple); None is
    kept only for a 0-d input, which fastops treats as a row of one element.
    """
    if axis is None:
        if ndim == 0:
            return None
        if none_means_all:
            return list(range(ndim))
        raise TypeError(f"{prefix(func)}: axis must be an int or a sequence of ints; got None")
    items = [axis] if isinstance(axis, numbers.Integral) else axis
    if isinstance(axis, bool) or not isinstance(items, Sequence) or any(
            isinstance(a, bool) or not isinstance(a, numbers.Integral) for a in items):
        raise TypeError(f"{prefix(func)}: axis must be None, an int or a sequence of ints; "
                        f"got {axis!r}")
    bound = max(ndim, 1)
    out = []
    for a in items:
        a = int(a)
        if not -bound <= a < bound:
            raise np.exceptions.AxisError(a, bound, prefix(func))
        out.append(a % bound)
    if len(set(out)) != len(out):
        raise ValueError(f"{prefix(func)}: axis must not repeat an axis; got {axis!r}")
    if ndim == 0:
        return None
    return sorted(out)


def reduced_shape(shape: Sequence[int], axis: list[int] | None, keepdims: bool) -> list[int]:
    """The shape of a reduction of ``shape`` over ``axis`` (None: the 0-d one-element row)."""
    if axis is None:
        return [1] if keepdims else []
    if keepdims:
        return [1 if i in axis else int(n) for i, n in enumerate(shape)]
    return [int(n) for i, n in enumerate(shape) if i not in axis]


def promote(func: str, *tensors: torch.Tensor | None) -> list[torch.Tensor | None]:
    """Bring the tensors to their promoted dtype (torch's rule), differentiably."""
    present = [t for t in tensors if t is not None]
    dtype = present[0].dtype
    for t in present[1:]:
        dtype = torch.promote_types(dtype, t.dtype)
    return [None if t is None else (t if t.dtype == dtype else t.to(dtype)) for t in tensors]


def compute_dtype(t: torch.Tensor) -> torch.Tensor:
    """bfloat16 is computed in float32 (a differentiable copy); the others as they are."""
    return t.float() if t.dtype == torch.bfloat16 else t


def restore_dtype(t: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    return t if t.dtype == dtype else t.to(dtype)


# --------------------------------------------------------------------------------------------
# Conversion inside the ops' real kernels
# --------------------------------------------------------------------------------------------


def _cupy(func: str) -> Any:
    try:
        import cupy
    except ImportError as exc:  # pragma: no cover - depends on the machine
        raise ImportError(f"{prefix(func)}: CUDA tensors need CuPy "
                          "(pip install 'fastops-kernels[gpu]')") from exc
    return cupy


@contextlib.contextmanager
def on_device_of(func: str, t: torch.Tensor) -> Iterator[None]:
    """For a CUDA tensor: its device current in CuPy and torch's current stream as CuPy's.

    Every CuPy kernel fastops launches inside runs on the stream torch would use, so ordering
    with torch's own work needs no event or synchronisation (unverified on a GPU so far).
    """
    if t.device.type != "cuda":
        yield
        return
    cp = _cupy(func)
    index = t.device.index if t.device.index is not None else torch.cuda.current_device()
    stream = torch.cuda.current_stream(t.device)
    with cp.cuda.Device(index), cp.cuda.ExternalStream(stream.cuda_stream, index):
        yield


def to_array(func: str, name: str, t: torch.Tensor | None) -> Any:
    """A NumPy (CPU) or CuPy (CUDA) view of ``t``: same memory, same strides, no copy."""
    if t is None:
        return None
    if t.dtype not in _ARRAY_DTYPES:
        raise TypeError(f"{prefix(func)}: {name} must be float16, float32, float64 or bool at "
                        f"the kernel boundary; got {t.dtype} (call the fastops.torch function, "
                        "which computes bfloat16 in float32)")
    t = t.detach()
    if t.device.type == "cpu":
        return t.resolve_neg().numpy()
    if t.device.type == "cuda":
        cp = _cupy(func)
        if t.dtype == torch.bool:  # DLPack bool support varies across versions
            return cp.asarray(t)  # __cuda_array_interface__, also zero-copy
        return cp.from_dlpack(t)
    raise TypeError(f"{prefix(func)}: {name} must be on a cpu or cuda device; got {t.device}")


def from_array(arr: Any) -> torch.Tensor:
    """A tensor over a kernel's result: ``torch.from_numpy`` / ``torch.from_dlpack``, no copy
    (NumPy results that torch cannot wrap, read-only, negative strides or non-native byte
    order, are copied first)."""
    if isinstance(arr, np.ndarray | np.generic):
        a = np.asarray(arr)
        if not a.flags.writeable or not a.dtype.isnative or any(s < 0 for s in a.strides):
            a = np.array(a, dtype=a.dtype.newbyteorder("="), order="C", copy=True)
        return torch.from_numpy(a)
    return torch.from_dlpack(arr)


def _same_strides(shape: Sequence[int], a: Sequence[int], b: Sequence[int]) -> bool:
    return all(n <= 1 or sa == sb for n, sa, sb in zip(shape, a, b, strict=True))


def with_layout(out: torch.Tensor, expected: tuple[int, ...]) -> torch.Tensor:
    """``out`` with exactly the strides ``expected`` (what the op's fake kernel promises).

    A view when only the strides of length-1 dims differ (they address nothing), else a copy
    (a kernel that returned another layout than its input's).
    """
    if tuple(out.stride()) == tuple(expected):
        return out
    if _same_strides(out.shape, out.stride(), expected):
        return out.as_strided(out.shape, expected)
    result = torch.empty_strided(out.shape, expected, dtype=out.dtype, device=out.device)
    result.copy_(out)
    return result


def result_like(arr: Any, like: torch.Tensor) -> torch.Tensor:
    """An elementwise result in the layout ``torch.empty_like(like)`` has (the fake's)."""
    expected = torch.empty_like(like, device="meta").stride()
    return with_layout(from_array(arr), tuple(expected))


def result_contiguous(arr: Any, shape: Sequence[int] | None = None) -> torch.Tensor:
    """A reduction's result, C-contiguous (the fake's layout), of ``shape`` if given."""
    out = from_array(arr)
    if shape is not None and list(out.shape) != list(shape):
        out = out.reshape(shape)
    expected = torch.empty(out.shape, device="meta").stride()
    return with_layout(out, tuple(expected))


def int64_seed(value: int) -> int:
    """A uint64 seed as the int64 with its bits (custom-op schemas hold 64-bit signed ints)."""
    return value - (1 << 64) if value >= (1 << 63) else value


def uint64_seed(value: int) -> int:
    return value & ((1 << 64) - 1)


def check_uint64(func: str, name: str, value: Any) -> int:
    """fastops' rule: an int in [0, 2^64), else ValueError (whatever the type)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or \
            not 0 <= int(value) < (1 << 64):
        raise ValueError(f"{prefix(func)}: {name} must be an int in [0, 2^64); got {value!r}")
    return int(value)
