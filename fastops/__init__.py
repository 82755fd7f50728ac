"""fastops: fused numerical kernels behind one NumPy-style API.

Numba kernels run on NumPy arrays, CUDA kernels on CuPy arrays; the result lives where the input
lives. Importing fastops compiles nothing and never imports CuPy.
"""

from . import random  # noqa: F401  (the fastops.random namespace)
from ._dispatch import backends
from ._threads import get_num_threads, set_num_threads, threads
from .langevin import annealed_langevin, gmm_score, langevin_step, mala_step
from .orthogonality import (
    orthogonality_penalties_and_grads,
    orthogonality_penalty,
    orthogonality_penalty_and_grad,
    som_penalty,
    som_penalty_and_grad,
    spectral_norm,
)
from .rank_one import (
    expm_rank1,
    expm_rank1_apply,
    expm_rank1_apply_backward,
    expm_rank1_chain_apply,
    expm_rank1_chain_apply_backward,
    expm_rank1_logdet,
)
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
    "annealed_langevin",
    "backends",
    "expm_rank1",
    "expm_rank1_apply",
    "expm_rank1_apply_backward",
    "expm_rank1_chain_apply",
    "expm_rank1_chain_apply_backward",
    "expm_rank1_logdet",
    "get_num_threads",
    "gmm_score",
    "langevin_step",
    "log_softmax",
    "log_softmax_backward",
    "logsumexp",
    "logsumexp_backward",
    "mala_step",
    "orthogonality_penalties_and_grads",
    "orthogonality_penalty",
    "orthogonality_penalty_and_grad",
    "set_num_threads",
    "smooth_max",
    "smooth_max_backward",
    "soft_argmax",
    "soft_argmax_backward",
    "softmax",
    "softmax_backward",
    "som_penalty",
    "som_penalty_and_grad",
    "spectral_norm",
    "threads",
]
