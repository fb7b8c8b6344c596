"""The one shape every meta-learner has: adapt on a support set, predict a query, and a meta-loss.

Optimization-based learners adapt by gradient steps, metric-based ones by computing prototypes or
support embeddings, model-based ones by reading the episode into their state. Whatever ``adapt``
returns is opaque to the caller and only handed back to ``predict``; so ``evaluate`` and the trainer
drive every family the same way and never know which algorithm they hold (easyfsl's "fit on the
support set, predict the query" model).

``self.training`` decides whether adaptation keeps the graph needed for a meta-gradient: in
``train()`` mode ``adapt`` is differentiable with respect to the meta-parameters, in ``eval()``
mode it may drop second-order terms (it still runs gradient steps if it needs them).
"""

from __future__ import annotations

from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from metaloop.tasks.episode import Episode, EpisodeBatch

TaskKind = Literal["classification", "regression"]


class Algorithm(nn.Module):
    """Base class: subclasses implement :meth:`adapt` and :meth:`predict`.

    The meta-parameters are this module's parameters; an outer optimizer over ``parameters()``
    minimises :meth:`meta_loss` over batches of episodes.
    """

    #: "classification" (predict returns logits ``[n, ways]``) or "regression" (``[n, out_dim]``).
    task: TaskKind = "classification"

    def adapt(self, support_x: Tensor, support_y: Tensor, *, steps: int | None = None) -> Any:
        """Fit to one task's support set; ``steps`` overrides the number of inner steps (if any)."""
        raise NotImplementedError

    def predict(self, adapted: Any, query_x: Tensor) -> Tensor:
        """Logits (classification) or predictions (regression) for the query inputs."""
        raise NotImplementedError

    def loss(self, predictions: Tensor, targets: Tensor) -> Tensor:
        """The task loss: cross-entropy on logits or mean squared error."""
        if self.task == "classification":
            return F.cross_entropy(predictions, targets)
        return F.mse_loss(predictions, targets)

    def episode_loss(self, episode: Episode) -> Tensor:
        adapted = self.adapt(episode.support_x, episode.support_y)
        return self.loss(self.predict(adapted, episode.query_x), episode.query_y)

    def meta_loss(self, batch: EpisodeBatch) -> Tensor:
        """Mean query loss after adaptation over a batch of tasks (differentiable in train mode).

        The default loops over tasks; algorithms with a faster batched path override this, and their
        meta-gradient is tested against this reference.
        """
        losses = [self.episode_loss(batch[i]) for i in range(len(batch))]
        return torch.stack(losses).mean()


def check_no_steps(name: str, steps: int | None) -> None:
    """Learners that adapt without gradient steps refuse a step count rather than ignore it."""
    if steps is not None:
        raise ValueError(f"{name} adapts without gradient steps; call adapt(...) without 'steps'")
