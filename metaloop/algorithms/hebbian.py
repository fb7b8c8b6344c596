"""Hebbian fast weights: a plastic classifier layer with learned plasticity (Miconi et al. 2018).

"Differentiable plasticity" (Sec. 2, eqs. 1-2; Omniglot experiment Sec. 4.3): every connection has a
slow weight ``w_ij`` and a plasticity coefficient ``alpha_ij``, both meta-learned; its effective
weight is ``w_ij + alpha_ij * Hebb_ij``. The Hebbian trace starts at zero in every episode and, while
the support set is shown with its label clamped on the output units, accumulates
``Hebb <- (1 - eta) Hebb + eta * y_t z_t^T`` (``eta`` meta-learned too). Queries are then classified
by the plastic layer without changing it, so they are scored independently.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from metaloop.algorithms.base import Algorithm, check_no_steps
from metaloop.algorithms.registry import register
from metaloop.modelbased.episode_sequence import (
    check_episode_labels,
    default_embedding,
    embed_pair,
    embedding_dim,
    one_hot,
    shuffle_support,
)
from metaloop.tasks.episode import EpisodeBatch


@dataclass
class HebbianState:
    trace: Tensor  # [ways, features] Hebbian trace after the support set (the fast weights)


def hebbian_trace(features: Tensor, targets: Tensor, eta: Tensor) -> Tensor:
    """Run eq. 2 step by step over a support sequence ``features [S, F]``, ``targets [S, ways]``."""
    trace = features.new_zeros(targets.shape[1], features.shape[1])
    for z, y in zip(features, targets, strict=True):
        trace = (1 - eta) * trace + eta * torch.outer(y, z)
    return trace


def hebbian_trace_batched(features: Tensor, targets: Tensor, eta: Tensor) -> Tensor:
    """The same recursion in closed form for ``[B, S, ...]``: ``sum_t eta (1-eta)^(S-1-t) y_t z_t^T``."""
    steps = features.shape[1]
    powers = torch.arange(steps - 1, -1, -1, device=features.device, dtype=features.dtype)
    decay = eta * (1 - eta) ** powers  # [S]
    return torch.einsum("s,bsw,bsf->bwf", decay, targets, features)


@register("hebbian")
class HebbianFastWeights(Algorithm):
    """A plastic linear layer on top of an embedding (Conv-4 by default, any module works)."""

    def __init__(self, ways: int, embedding: nn.Module | None = None, *, in_channels: int = 1,
                 image_size: int = 28, input_shape: tuple[int, ...] | None = None,
                 init_alpha: float = 0.1, init_eta: float = 0.5) -> None:
        super().__init__()
        if ways < 2:
            raise ValueError(f"ways must be >= 2, got {ways}")
        if not 0.0 < init_eta < 1.0:
            raise ValueError(f"init_eta must be in (0, 1), got {init_eta}")
        self.ways = ways
        self.embedding = embedding if embedding is not None else default_embedding(in_channels, image_size)
        features = embedding_dim(self.embedding, input_shape)
        self.weight = nn.Parameter(torch.zeros(ways, features))  # slow weights w
        self.bias = nn.Parameter(torch.zeros(ways))
        self.alpha = nn.Parameter(torch.full((ways, features), init_alpha))  # plasticity coefficients
        self.eta_logit = nn.Parameter(torch.logit(torch.tensor(init_eta)))  # eta = sigmoid, in (0, 1)

    @property
    def eta(self) -> Tensor:
        return torch.sigmoid(self.eta_logit)

    def logits(self, trace: Tensor, features: Tensor) -> Tensor:
        """Eq. 1 with the clamped output read out: ``(w + alpha * Hebb) z + b`` (batched over traces)."""
        weight = self.weight + self.alpha * trace
        if trace.dim() == 2:
            return features @ weight.T + self.bias
        return torch.einsum("bqf,bwf->bqw", features, weight) + self.bias

    def adapt(self, support_x: Tensor, support_y: Tensor, *, steps: int | None = None) -> HebbianState:
        check_no_steps("HebbianFastWeights", steps)
        check_episode_labels("HebbianFastWeights", support_y, self.ways)
        features = self.embedding(support_x).flatten(1)
        return HebbianState(hebbian_trace(features, one_hot(support_y, self.ways, features.dtype), self.eta))

    def predict(self, adapted: HebbianState, query_x: Tensor) -> Tensor:
        return self.logits(adapted.trace, self.embedding(query_x).flatten(1))

    def batch_logits(self, batch: EpisodeBatch) -> Tensor:
        """All tasks at once with the closed-form trace (support order shuffled in training)."""
        sx, sy = batch.support_x, batch.support_y
        check_episode_labels("HebbianFastWeights", sy, self.ways)
        if self.training:
            sx, sy = shuffle_support(sx, sy)
        zs, zq = embed_pair(self.embedding, sx, batch.query_x, batch_dims=2)
        trace = hebbian_trace_batched(zs, one_hot(sy, self.ways, zs.dtype), self.eta)
        return self.logits(trace, zq)

    def meta_loss(self, batch: EpisodeBatch) -> Tensor:
        return F.cross_entropy(self.batch_logits(batch).flatten(0, 1), batch.query_y.flatten())
