"""fastops: fused numerical kernels behind one NumPy-style API.

Numba kernels run on NumPy arrays, CUDA kernels on CuPy arrays; the result lives where the input
lives. Importing fastops compiles nothing and never imports CuPy.
"""

from ._dispatch import backends
from .smooth import (
    log_softmax,
    log_softmax_backward,
    logsumexp,
    logsumexp_backward,
    smooth_max,
    smooth_max_backward,
    soft_argmax,
    soft_argmax_backward,
    softmax,
    softmax_backward,
)

__version__ = "0.1.0"

__all__ = [
    "backends",
    "log_softmax",
    "log_softmax_backward",
    "logsumexp",
    "logsumexp_backward",
    "smooth_max",
    "smooth_max_backward",
    "soft_argmax",
    "soft_argmax_backward",
    "softmax",
    "softmax_backward",
]
