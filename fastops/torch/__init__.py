"""fastops for PyTorch: every op as a torch custom op with autograd (``torch.ops.fastops.*``).

``import fastops`` never imports torch; ``import fastops.torch`` does (install the extra:
``pip install "fastops-kernels[torch]"``). The functions take fastops' NumPy-style arguments
(``axis``, ``where``, ``temperature``, ...) on tensors:

- CPU tensors are read in place through ``Tensor.numpy()`` views (strided and transposed
  tensors too, as the fastops kernels read them) and results are wrapped with
  ``torch.from_numpy``: no copies at the boundary. CUDA tensors go through DLPack into CuPy
  and the kernels run on torch's current CUDA stream (written, not yet run on a GPU).
- float16 is computed as fastops computes it (float32 accumulation, float16 result);
  bfloat16, which NumPy and CuPy lack, is converted to float32, computed, and returned as
  bfloat16 (one conversion copy each way, done by torch).
- Gradients come from fastops' own fused backward kernels, registered with
  ``torch.library.register_autograd``; fake kernels make the ops traceable by
  ``torch.compile`` (``fullgraph=True``) and ``torch.export``.
"""

from __future__ import annotations

try:
    import torch as _torch  # noqa: F401
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError("fastops.torch needs PyTorch: pip install 'fastops-kernels[torch]', or "
                      "pip install -e '.[torch]' in a fastops checkout") from exc

from . import _ops as ops  # noqa: F401  (the custom ops, registered on import)
from . import functional
from .functional import *  # noqa: F403  (the functions of functional.__all__)
from .modules import OrthogonalityRegularizer, Rank1ExpFlow, SpectralNorm

__all__ = ["OrthogonalityRegularizer", "Rank1ExpFlow", "SpectralNorm", "ops",
           *functional.__all__]
