"""Prototypical Networks (Snell, Swersky & Zemel, NeurIPS 2017).

Each class is represented by the mean of its support embeddings (the prototype, Eq. 1); a query
is classified by a softmax over negative distances to the prototypes (Eq. 2). Squared Euclidean
distance is the paper's choice (Sec. 2.3: a Bregman divergence, so the prototype is the right
cluster centre, and it beat cosine in their experiments); cosine is offered as an option with a
scale, since a softmax over values in [-1, 1] is too flat to train.

Adaptation is a forward pass, never a gradient step. The paper's "higher way at training" regime
(60-way episodes on Omniglot, Sec. 3.1) is a sampler setting, see ``presets/protonet_*.yaml``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor, nn

from metaloop.algorithms.base import Algorithm, check_no_steps
from metaloop.algorithms.registry import register
from metaloop.metric.distances import (
    check_support_labels,
    class_means,
    cosine_similarity,
    squared_euclidean,
)
from metaloop.nets.conv4 import Conv4
from metaloop.tasks.episode import EpisodeBatch

Distance = Literal["euclidean", "cosine"]


@dataclass(frozen=True)
class Prototypes:
    """What :meth:`ProtoNet.adapt` returns: one embedding per class, ``[ways, d]``."""

    prototypes: Tensor


@register("protonet")
class ProtoNet(Algorithm):
    """ProtoNet around any embedding network (default: Conv-4, 64 filters, batch norm).

    ``distance="euclidean"`` gives logits ``-||f(x) - c_k||^2`` exactly as Eq. 2;
    ``distance="cosine"`` gives ``scale * cos(f(x), c_k)``.
    """

    def __init__(
        self,
        backbone: nn.Module | None = None,
        distance: Distance = "euclidean",
        scale: float = 1.0,
    ) -> None:
        super().__init__()
        if distance not in ("euclidean", "cosine"):
            raise ValueError(f"unknown distance {distance!r}; use 'euclidean' or 'cosine'")
        self.backbone = backbone if backbone is not None else Conv4(norm="batch")
        self.distance = distance
        self.scale = scale

    def embed(self, x: Tensor) -> Tensor:
        z = self.backbone(x)
        return z.flatten(1) if z.dim() > 2 else z

    def adapt(
        self, support_x: Tensor, support_y: Tensor, *, steps: int | None = None
    ) -> Prototypes:
        check_no_steps("ProtoNet", steps)
        return self.adapt_embedded(self.embed(support_x), support_y)

    def adapt_embedded(self, z_support: Tensor, support_y: Tensor) -> Prototypes:
        ways = check_support_labels(support_y)
        return Prototypes(class_means(z_support, support_y, ways))

    def logits(self, z_query: Tensor, prototypes: Tensor) -> Tensor:
        if self.distance == "euclidean":
            return -self.scale * squared_euclidean(z_query, prototypes)
        return self.scale * cosine_similarity(z_query, prototypes)

    def predict(self, adapted: Prototypes, query_x: Tensor) -> Tensor:
        return self.predict_embedded(adapted, self.embed(query_x))

    def predict_embedded(self, adapted: Prototypes, z_query: Tensor) -> Tensor:
        return self.logits(z_query, adapted.prototypes)

    def meta_loss(self, batch: EpisodeBatch) -> Tensor:
        """All tasks' support and query images go through the backbone in one forward pass.

        This is how the reference implementation embeds an episode (support and query
        concatenated), and one large batch is much faster on CPU than many small ones. With
        batch norm in training mode the statistics are therefore those of the whole meta-batch;
        with ``norm="none"`` (or in eval mode) the loss equals the per-task loop exactly.
        """
        tasks, n_s = batch.support_y.shape
        n_q = batch.query_y.shape[1]
        ways = check_support_labels(batch.support_y[0])
        x = torch.cat([batch.support_x.flatten(0, 1), batch.query_x.flatten(0, 1)])
        z = self.embed(x)
        zs = z[: tasks * n_s].view(tasks, n_s, -1)
        zq = z[tasks * n_s :].view(tasks, n_q, -1)
        losses = []
        for t in range(tasks):
            protos = class_means(zs[t], batch.support_y[t], ways)
            losses.append(self.loss(self.logits(zq[t], protos), batch.query_y[t]))
        return torch.stack(losses).mean()
