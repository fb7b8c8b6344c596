"""Latent Neural Process (Garnelo et al. 2018b) as a metaloop regression learner.

The predictive distribution is a mixture over ``samples`` latent draws z ~ q(z | support);
``predict`` returns its mean, ``predict_distribution`` its moment-matched Gaussian, and
``predictive_log_prob`` the exact mixture log-density (a Monte Carlo estimate with ``samples``
draws). Draws come from a generator seeded by ``seed`` on every call, so evaluation is
deterministic.
"""

from __future__ import annotations

import torch
from torch import Tensor

from metaloop.algorithms.registry import register
from metaloop.learned.context_learner import ContextLearner, as_targets
from metaloop.learned.neural_process import NeuralProcess
from metaloop.tasks.episode import EpisodeBatch


@register("np")
class NP(ContextLearner):
    task = "regression"

    def __init__(self, model: NeuralProcess | None = None, samples: int = 32, seed: int = 0,
                 **model_kwargs) -> None:
        super().__init__()
        self.model = model if model is not None else NeuralProcess(**model_kwargs)
        self.samples = samples
        self.seed = seed

    def _draws(self, sx: Tensor, sy: Tensor, qx: Tensor):
        g = torch.Generator(device=sx.device).manual_seed(self.seed)
        return self.model.predictive(sx, sy, qx, self.samples, generator=g)

    def batch_distribution(self, sx: Tensor, sy: Tensor, qx: Tensor):
        means, _, var = self._draws(sx, sy, qx)
        return means.mean(0), var

    def predictive_log_prob(self, adapted, query_x: Tensor, query_y: Tensor) -> Tensor:
        """Per-point log density of the sampled mixture, ``[n, y_dim]``."""
        sx, sy = adapted
        means, variances, _ = self._draws(sx[None], sy[None], query_x[None])
        return self.model.mixture_log_prob(means, variances, query_y[None])[0]

    def batch_loss(self, batch: EpisodeBatch) -> Tensor:
        tx, ty = as_targets(batch)
        return self.model.loss(batch.support_x, batch.support_y, tx, ty)
