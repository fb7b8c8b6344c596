"""In-context learner (PFN / MetaICL idea): a transformer reads the support set, no weight update.

See :mod:`metaloop.learned.incontext` for the model. Regression: ``predict`` gives the predictive
mean, ``predict_distribution`` the Gaussian, and training minimises the query NLL (PFN Sec. 3, the
prior-data NLL). Classification: ``predict`` gives logits, trained by cross-entropy.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

from metaloop.algorithms.registry import register
from metaloop.learned.context_learner import ContextLearner, gaussian_nll
from metaloop.learned.incontext import InContextTransformer
from metaloop.tasks.episode import EpisodeBatch


@register("incontext")
class InContext(ContextLearner):
    def __init__(self, model: InContextTransformer | None = None, **model_kwargs) -> None:
        super().__init__()
        self.model = model if model is not None else InContextTransformer(**model_kwargs)
        if self.model.output == "classification":
            self.task, self.output = "classification", "logits"
        else:
            self.task, self.output = "regression", "gaussian"

    def batch_distribution(self, sx: Tensor, sy: Tensor, qx: Tensor):
        if self.task == "classification":
            raise AttributeError("a classifier predicts logits; use predict(...)")
        return self.model(sx, sy, qx)

    def predict(self, adapted, query_x: Tensor) -> Tensor:
        if self.task == "classification":
            sx, sy = adapted
            return self.model(sx[None], sy[None], query_x[None])[0]
        return super().predict(adapted, query_x)

    def batch_loss(self, batch: EpisodeBatch) -> Tensor:
        out = self.model(batch.support_x, batch.support_y, batch.query_x)
        if self.task == "classification":
            return F.cross_entropy(out.flatten(0, 1), batch.query_y.flatten())
        return gaussian_nll(*out, batch.query_y)
