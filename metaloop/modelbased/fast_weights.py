"""Pieces of Meta Networks' fast-weight machinery (Munkhdalai & Yu 2017).

* :func:`preprocess_gradients`: Andrychowicz et al. (2016, App. A) log-magnitude / sign encoding,
  which Meta Networks applies to loss gradients before the meta learner reads them (Sec. 4).
* :class:`CoordinatewiseGenerator`: the meta learners ``m`` and ``d`` (Sec. 3.1) map each loss
  gradient coordinate to a fast-weight coordinate with one small shared MLP, so the generator works
  for any layer size.
* :func:`per_example_gradients`: the example-level loss gradients ``nabla_i`` (Alg. 1, line 8), one per
  support example, obtained in a single backward pass by giving every example its own zero offset of
  the weights (the gradient with respect to that offset is that example's gradient).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def preprocess_gradients(grad: Tensor, p: float = 10.0) -> Tensor:
    """``(log|g| / p, sign g)`` if ``|g| >= e^-p`` else ``(-1, e^p g)``; output has a trailing dim 2."""
    magnitude = grad.abs()
    big = magnitude >= math.exp(-p)
    first = torch.where(big, torch.log(magnitude.clamp_min(1e-30)) / p, -torch.ones_like(grad))
    second = torch.where(big, torch.sign(grad), math.exp(p) * grad)
    return torch.stack([first, second], dim=-1)


class CoordinatewiseGenerator(nn.Module):
    """Fast weight ``w*`` for each coordinate from its preprocessed gradient: MLP(2 → hidden → 1)."""

    def __init__(self, hidden: int = 20, p: float = 10.0) -> None:
        super().__init__()
        self.p = p
        self.net = nn.Sequential(nn.Linear(2, hidden), nn.ReLU(), nn.Linear(hidden, 1))

    def forward(self, grad: Tensor) -> Tensor:
        return self.net(preprocess_gradients(grad, self.p)).squeeze(-1)


def per_example_gradients(
    loss_fn: Callable[[Sequence[Tensor]], Tensor],
    weights: Sequence[Tensor],
    batch_shape: tuple[int, ...],
    create_graph: bool,
) -> list[Tensor]:
    """Gradients of a summed loss with respect to per-example copies of ``weights``.

    ``loss_fn`` receives tensors of shape ``batch_shape + w.shape`` (``w + 0``) and must return the
    *sum* of independent per-example losses; entry ``[i]`` of each result is example ``i``'s gradient.
    """
    offsets = [torch.zeros(*batch_shape, *w.shape, dtype=w.dtype, device=w.device, requires_grad=True)
               for w in weights]
    loss = loss_fn([w + o for w, o in zip(weights, offsets, strict=True)])
    return list(torch.autograd.grad(loss, offsets, create_graph=create_graph))


def contrastive_loss(embeddings: Tensor, labels: Tensor, margin: float = 1.0) -> Tensor:
    """Per-task contrastive loss over all support pairs (Hadsell et al. 2006), ``[B, S, R] → [B]``.

    Meta Networks' representation loss (Sec. 3.1, ``L_emb``): pull same-class pairs together and push
    different-class pairs at least ``margin`` apart.
    """
    diff = embeddings.unsqueeze(2) - embeddings.unsqueeze(1)
    distance = (diff.pow(2).sum(-1) + 1e-8).sqrt()  # smooth at 0
    same = (labels.unsqueeze(2) == labels.unsqueeze(1)).to(embeddings.dtype)
    pair = same * distance.pow(2) + (1 - same) * F.relu(margin - distance).pow(2)
    count = labels.shape[1]
    off_diagonal = 1 - torch.eye(count, dtype=embeddings.dtype, device=embeddings.device)
    return (pair * off_diagonal).sum((1, 2)) / max(count * (count - 1), 1)
