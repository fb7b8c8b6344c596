"""The Algorithm shape for learners that adapt by *reading* the support set (ICL, CNP, NP).

``adapt`` only stores the support set (no gradient steps: ``steps`` is refused); ``predict`` runs
the network on support and queries together. Probabilistic regressors keep ``predict`` returning the
point prediction (the predictive mean, ``[n, y_dim]``) so MSE-based evaluation works unchanged, and
add ``predict_distribution(adapted, query_x) -> (mean, variance)`` for NLL and calibration (``output
= "gaussian"`` marks them). ``output = "binned"`` marks learners whose predictive is a histogram
(:class:`~metaloop.learned.bar_distribution.BarDistribution`, from ``predictive(adapted, query_x)``):
they are scored by its own density, ``predict_distribution`` giving its mean and variance.
``meta_loss`` runs a whole :class:`EpisodeBatch` in one batched forward pass; the per-episode
default of the base class gives the same value.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor

from metaloop.algorithms.base import Algorithm, check_no_steps
from metaloop.tasks.episode import Episode, EpisodeBatch


class ContextLearner(Algorithm):
    """Subclasses implement ``batch_distribution`` and ``batch_loss`` on ``[tasks, n, ...]``."""

    output: Literal["gaussian", "binned", "logits"] = "gaussian"

    def adapt(self, support_x: Tensor, support_y: Tensor, *, steps: int | None = None):
        check_no_steps(type(self).__name__, steps)
        return support_x, support_y

    def batch_distribution(self, sx: Tensor, sy: Tensor, qx: Tensor) -> tuple[Tensor, Tensor]:
        raise NotImplementedError

    def batch_loss(self, batch: EpisodeBatch) -> Tensor:
        raise NotImplementedError

    def predict_distribution(self, adapted, query_x: Tensor) -> tuple[Tensor, Tensor]:
        """Predictive ``(mean, variance)`` per query point, each ``[n, y_dim]``."""
        sx, sy = adapted
        mean, var = self.batch_distribution(sx[None], sy[None], query_x[None])
        return mean[0], var[0]

    def predict(self, adapted, query_x: Tensor) -> Tensor:
        return self.predict_distribution(adapted, query_x)[0]

    def loss(self, predictions: Tensor, targets: Tensor) -> Tensor:
        if self.task == "classification":
            return F.cross_entropy(predictions, targets)
        return F.mse_loss(predictions, targets)

    def episode_loss(self, episode: Episode) -> Tensor:
        return self.batch_loss(EpisodeBatch.stack([episode]))

    def meta_loss(self, batch: EpisodeBatch) -> Tensor:
        return self.batch_loss(batch)


def gaussian_nll(mean: Tensor, var: Tensor, target: Tensor) -> Tensor:
    """Mean Gaussian negative log-likelihood with the constant (comparable across models)."""
    return F.gaussian_nll_loss(mean, target, var, full=True, eps=0.0)


def as_targets(batch: EpisodeBatch) -> tuple[Tensor, Tensor]:
    """Training targets = context ∪ queries, as neural processes are trained (Garnelo 2018a/b)."""
    return (torch.cat([batch.support_x, batch.query_x], dim=1),
            torch.cat([batch.support_y, batch.query_y], dim=1))
