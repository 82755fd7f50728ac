"""Train a density model on a 2-D Gaussian mixture with fastops.torch (CPU, a few seconds).

The model is an exactly invertible flow, ``z = E_L ⋯ E_1 x`` with ``E_l = exp(x_l y_lᵀ)``
(:class:`fastops.torch.Rank1ExpFlow`, whose log-determinant ``Σ_l y_lᵀx_l`` costs nothing),
followed by a learned Gaussian mixture as the base density:

    log p(x) = logsumexp_k(log_softmax(logits)_k + log N(z; mu_k, s_k² I)) + logdet

with ``fastops.torch.logsumexp`` over the components and ``fastops.torch.log_softmax`` for the
weights. The loss (mean negative log-likelihood, nats) goes down as the flow learns the
clusters' shared shape and the base their positions and weights.

    python examples/flow_density.py                 # 400 steps
    python examples/flow_density.py --steps 20 --batch 128
"""

from __future__ import annotations

import argparse
import math
import time

import torch

import fastops.torch as ft


def sample_data(n: int, generator: torch.Generator) -> torch.Tensor:
    """Four elongated, rotated clusters of unequal weight."""
    centres = torch.tensor([[2.0, 2.0], [-2.0, 1.5], [1.0, -2.5], [-1.5, -1.5]])
    weights = torch.tensor([0.4, 0.3, 0.2, 0.1])
    which = torch.multinomial(weights, n, replacement=True, generator=generator)
    shape = torch.tensor([[0.6, 0.0], [0.45, 0.15]])  # the clusters' common covariance factor
    noise = torch.randn(n, 2, generator=generator) @ shape.T
    return centres[which] + noise


class FlowMixture(torch.nn.Module):
    """Rank1ExpFlow into a K-component isotropic Gaussian mixture."""

    def __init__(self, n_layers: int = 8, components: int = 4, seed: int = 0) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.flow = ft.Rank1ExpFlow(2, n_layers, init_scale=0.3, generator=g)
        self.means = torch.nn.Parameter(torch.randn(components, 2, generator=g) * 2.0)
        self.log_std = torch.nn.Parameter(torch.zeros(components))
        self.logits = torch.nn.Parameter(torch.zeros(components))

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        z, logdet = self.flow(x)
        d = z.shape[-1]
        sq = (z[:, None, :] - self.means).square().sum(-1)  # (n, K)
        log_normal = (-0.5 * sq * torch.exp(-2 * self.log_std) - d * self.log_std
                      - 0.5 * d * math.log(2 * math.pi))
        log_w = ft.log_softmax(self.logits, axis=0)
        return ft.logsumexp(log_w + log_normal, axis=1) + logdet


def main(argv: list[str] | None = None) -> list[float]:
    """Train and print the loss; returns the losses printed (for the test)."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=400)
    p.add_argument("--batch", type=int, default=512)
    p.add_argument("--layers", type=int, default=8)
    p.add_argument("--lr", type=float, default=0.05)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    p.add_argument("--every", type=int, default=0, help="print every N steps (default: 10 lines)")
    args = p.parse_args(argv)
    dtype = getattr(torch, args.dtype)
    g = torch.Generator().manual_seed(args.seed)
    model = FlowMixture(args.layers, seed=args.seed).to(dtype)
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    every = args.every or max(1, args.steps // 10)
    losses: list[float] = []
    start = time.perf_counter()
    for step in range(args.steps + 1):
        x = sample_data(args.batch, g).to(dtype)
        loss = -model.log_prob(x).mean()
        if step % every == 0 or step == args.steps:
            losses.append(loss.item())
            print(f"step {step:5d}  nll {loss.item():.4f} nats")
        if step == args.steps:
            break
        opt.zero_grad()
        loss.backward()
        opt.step()
    print(f"{args.steps} steps in {time.perf_counter() - start:.1f} s")
    return losses


if __name__ == "__main__":
    main()
