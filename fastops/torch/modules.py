"""nn.Module building blocks over the fastops.torch ops.

- :class:`OrthogonalityRegularizer`: the orthogonality penalty of every >= 2-D weight of a
  model, as one differentiable loss term (batched by shape, gradients fused with the value);
- :class:`Rank1ExpFlow`: an exactly invertible linear flow layer ``z = E_L ⋯ E_1 v``,
  ``E_l = exp(x_l y_lᵀ)``, with its log-determinant ``Σ_l y_lᵀx_l`` for free;
- :class:`SpectralNorm`: a ``torch.nn.utils.parametrize`` parametrization ``W / σ(W)`` with σ
  from fastops' power iteration (Miyato et al.), as ``torch.nn.utils.parametrizations.
  spectral_norm`` does with torch ops.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from . import functional as F

__all__ = ["OrthogonalityRegularizer", "Rank1ExpFlow", "SpectralNorm"]


class OrthogonalityRegularizer:
    """``weight · Σ_W penalty(W)`` over a model's weights of >= 2 dimensions.

    Each weight ``(out, ...)`` is viewed (no copy) as the ``(d, k)`` kernel whose k = out
    columns are its filters, ``w.reshape(out, -1).T``, as fastops' orthogonality functions
    take it; biases and norm scales (1-D) are skipped. All kernels go into one
    :func:`fastops.torch.orthogonality_penalties` call, which stacks same-shaped kernels into
    batched GEMMs and computes the gradients with the value.

    The model is read at every call (parameters added later are included); the regularizer
    holds no parameters of its own, so it is a plain callable, not a module::

        reg = fastops.torch.OrthogonalityRegularizer(model, "offdiag", 1e-4)
        loss = criterion(model(x), target) + reg()
    """

    def __init__(self, model: nn.Module, kind: str = "frobenius", weight: float = 1e-4) -> None:
        if not isinstance(model, nn.Module):
            raise TypeError("fastops.torch.OrthogonalityRegularizer: model must be an "
                            f"nn.Module; got {type(model).__name__}")
        if kind not in ("frobenius", "offdiag", "spectral"):
            raise ValueError("fastops.torch.OrthogonalityRegularizer: kind must be one of "
                             f"'frobenius', 'offdiag', 'spectral'; got {kind!r}")
        self.model = model
        self.kind = kind
        self.weight = float(weight)

    def kernels(self) -> list[tuple[str, Tensor]]:
        """``(name, (d, k) view)`` of every regularised weight, in the model's order."""
        return [(name, p.reshape(p.shape[0], -1).T)
                for name, p in self.model.named_parameters() if p.ndim >= 2]

    def __call__(self) -> Tensor:
        Ws = [W for _, W in self.kernels()]
        if not Ws:
            p = next(iter(self.model.parameters()), None)
            return torch.zeros((), device=None if p is None else p.device)
        return F.orthogonality_penalties(Ws, self.kind, weights=[self.weight] * len(Ws))

    def __repr__(self) -> str:
        return f"OrthogonalityRegularizer(kind={self.kind!r}, weight={self.weight})"


class Rank1ExpFlow(nn.Module):
    """An invertible flow layer of ``n_layers`` rank-one matrix exponentials on vectors of k.

    ``forward(v)`` returns ``(z, logdet)`` with ``z = E_L ⋯ E_1 v`` and ``logdet = Σ_l s_l``
    (``s_l = y_lᵀx_l``, the exact log-determinant: no determinant is ever formed), one value
    per vector; ``inverse(z)`` returns ``(v, −logdet)``. One fused kernel per direction
    (``fastops.expm_rank1_chain_apply``), O(L·k) per vector, and a fused backward for
    training. Each factor is always invertible, whatever its parameters.

    Parameters ``xs``, ``ys`` of shape (n_layers, k) start at ``init_scale / sqrt(k)`` times a
    standard normal (close to the identity, s_l small).
    """

    def __init__(self, k: int, n_layers: int, *, init_scale: float = 0.5,
                 dtype: torch.dtype | None = None, device: torch.device | str | None = None,
                 generator: torch.Generator | None = None) -> None:
        super().__init__()
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise ValueError(f"fastops.torch.Rank1ExpFlow: k must be an int >= 1; got {k!r}")
        if isinstance(n_layers, bool) or not isinstance(n_layers, int) or n_layers < 0:
            raise ValueError("fastops.torch.Rank1ExpFlow: n_layers must be an int >= 0; "
                             f"got {n_layers!r}")
        self.k, self.n_layers = k, n_layers
        scale = init_scale / math.sqrt(k)
        shape = (n_layers, k)
        self.xs = nn.Parameter(torch.randn(shape, dtype=dtype, device=device,
                                           generator=generator) * scale)
        self.ys = nn.Parameter(torch.randn(shape, dtype=dtype, device=device,
                                           generator=generator) * scale)

    def forward(self, v: Tensor) -> tuple[Tensor, Tensor]:
        return F.expm_rank1_chain_apply(self.xs, self.ys, v)

    def inverse(self, z: Tensor) -> tuple[Tensor, Tensor]:
        return F.expm_rank1_chain_apply(self.xs, self.ys, z, inverse=True)

    def log_det(self) -> Tensor:
        """``log det`` of the whole layer (the same for every vector): ``Σ_l y_lᵀx_l``."""
        return F.expm_rank1_logdet(self.xs, self.ys).sum()

    def extra_repr(self) -> str:
        return f"k={self.k}, n_layers={self.n_layers}"


class SpectralNorm(nn.Module):
    """Parametrization ``W ↦ W / σ(W)`` for ``torch.nn.utils.parametrize``.

    σ comes from ``n_power_iterations`` power-iteration steps of fastops
    (:func:`fastops.torch.spectral_norm`) from the buffer ``_u``, which is updated in training
    mode (kept as is in eval mode, so evaluation is deterministic); as in torch's own
    ``spectral_norm`` no gradient flows through the iteration, σ is differentiable as
    ``uᵀ W v``. ``dim`` is the output dimension (0 for Linear and conv weights); the weight is
    viewed as ``(shape[dim], -1)``::

        layer = nn.Linear(20, 40)
        parametrize.register_parametrization(layer, "weight", SpectralNorm(layer.weight))
    """

    def __init__(self, weight: Tensor, n_power_iterations: int = 1, dim: int = 0,
                 eps: float = 1e-12) -> None:
        super().__init__()
        if weight.ndim < 2:
            raise ValueError("fastops.torch.SpectralNorm: weight must have >= 2 dimensions; "
                             f"got shape {tuple(weight.shape)}")
        if isinstance(n_power_iterations, bool) or not isinstance(n_power_iterations, int) \
                or n_power_iterations < 1:
            raise ValueError("fastops.torch.SpectralNorm: n_power_iterations must be an int "
                             f">= 1; got {n_power_iterations!r}")
        self.dim = dim % weight.ndim
        self.n_power_iterations = n_power_iterations
        self.eps = float(eps)
        with torch.no_grad():
            W = self._matrix(weight)
            u = torch.randn(W.shape[0], dtype=W.dtype, device=W.device)
            u = u / u.norm().clamp_min(self.eps)
            # a few steps up front, as torch does, so the first forward is already close
            _, u, _ = F.spectral_norm(W, u, n_iter=15, eps=self.eps)
        self.register_buffer("_u", u)

    def _matrix(self, weight: Tensor) -> Tensor:
        if self.dim != 0:
            weight = weight.movedim(self.dim, 0)
        return weight.reshape(weight.shape[0], -1)

    def forward(self, weight: Tensor) -> Tensor:
        W = self._matrix(weight)
        sigma, u, _ = F.spectral_norm(W, self._u, n_iter=self.n_power_iterations, eps=self.eps)
        if self.training:
            with torch.no_grad():
                self._u.copy_(u)
        return weight / sigma
