"""Conditional Neural Process (Garnelo et al. 2018a) as a metaloop regression learner."""

from __future__ import annotations

from torch import Tensor

from metaloop.algorithms.registry import register
from metaloop.learned.context_learner import ContextLearner, as_targets
from metaloop.learned.neural_process import ConditionalNeuralProcess
from metaloop.tasks.episode import EpisodeBatch


@register("cnp")
class CNP(ContextLearner):
    task = "regression"

    def __init__(self, model: ConditionalNeuralProcess | None = None, **model_kwargs) -> None:
        super().__init__()
        self.model = model if model is not None else ConditionalNeuralProcess(**model_kwargs)

    def batch_distribution(self, sx: Tensor, sy: Tensor, qx: Tensor):
        return self.model(sx, sy, qx)

    def batch_loss(self, batch: EpisodeBatch) -> Tensor:
        tx, ty = as_targets(batch)
        return self.model.loss(batch.support_x, batch.support_y, tx, ty)
