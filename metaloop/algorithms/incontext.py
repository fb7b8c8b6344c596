"""In-context learner (PFN / MetaICL idea): a transformer reads the support set, no weight update.

See :mod:`metaloop.learned.incontext` for the model. Regression: ``predict`` gives the predictive
mean, ``predict_distribution`` the Gaussian (for ``output="binned"``: the binned predictive's mean
and variance, its full distribution from ``predictive``), and training minimises the query NLL (PFN
Sec. 3, the prior-data NLL). Classification: ``predict`` gives logits, trained by cross-entropy.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from metaloop.algorithms.registry import register
from metaloop.learned.bar_distribution import BarDistribution, quantile_bin_edges
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
            self.task, self.output = "regression", self.model.output

    @staticmethod
    def task_for(args: dict) -> str:
        """The task kind these constructor arguments give (the engine checks it before building)."""
        return "classification" if args.get("output") == "classification" else "regression"

    def bars(self, logits: Tensor) -> BarDistribution:
        if not self.model.has_bin_edges:
            raise ValueError("the bin edges are not set: call model.set_bin_edges("
                             "quantile_bin_edges(prior_y, bins)) or meta-train first (the first "
                             "meta-batch sets them)")
        return BarDistribution(logits, self.model.bin_edges)

    def predictive(self, adapted, query_x: Tensor) -> BarDistribution:
        """The binned predictive of each query point, batch shape ``[n, 1]`` (``output="binned"``)."""
        if self.output != "binned":
            raise AttributeError(f"predictive is for output='binned'; this learner is {self.output!r}"
                                 " (use predict_distribution)")
        sx, sy = adapted
        return self.bars(self.model(sx[None], sy[None], query_x[None])[0])

    def batch_distribution(self, sx: Tensor, sy: Tensor, qx: Tensor):
        if self.task == "classification":
            raise AttributeError("a classifier predicts logits; use predict(...)")
        out = self.model(sx, sy, qx)
        if self.output == "binned":
            dist = self.bars(out)
            return dist.mean, dist.variance
        return out

    def predict(self, adapted, query_x: Tensor) -> Tensor:
        if self.task == "classification":
            sx, sy = adapted
            return self.model(sx[None], sy[None], query_x[None])[0]
        return super().predict(adapted, query_x)

    def batch_loss(self, batch: EpisodeBatch) -> Tensor:
        if self.output == "binned" and not self.model.has_bin_edges:
            # Every target of a meta-batch is a draw from the task prior: its quantiles are the
            # PFN bin edges. A larger prior sample can be passed with set_bin_edges beforehand.
            prior_y = torch.cat([batch.support_y, batch.query_y], dim=1)
            self.model.set_bin_edges(quantile_bin_edges(prior_y, self.model.bins))
        out = self.model(batch.support_x, batch.support_y, batch.query_x)
        if self.task == "classification":
            return F.cross_entropy(out.flatten(0, 1), batch.query_y.flatten())
        if self.output == "binned":
            return self.bars(out).nll(batch.query_y)
        return gaussian_nll(*out, batch.query_y)
