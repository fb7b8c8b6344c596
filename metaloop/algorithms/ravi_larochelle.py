"""Optimization as a model for few-shot learning (Ravi & Larochelle, ICLR 2017).

``adapt`` runs ``steps`` updates of :class:`~metaloop.learned.meta_learner_lstm.MetaLearnerLSTM` on
the support loss, starting from the meta-learned ``c_0``; ``predict`` evaluates the learner with
the final cell state as its weights. The meta-parameters are the meta-learner (gates, first LSTM
layer and ``c_0``); the wrapped ``model`` only supplies the architecture and is never modified.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn
from torch.func import vmap

from metaloop.algorithms.base import Algorithm
from metaloop.algorithms.registry import register
from metaloop.learned.flat import FlatWeightsLearner, flat_parameters
from metaloop.learned.meta_learner_lstm import MetaLearnerLSTM
from metaloop.tasks.episode import EpisodeBatch


@register("ravi_larochelle")
class RaviLarochelle(FlatWeightsLearner, Algorithm):
    def __init__(
        self,
        model: nn.Module,
        steps: int = 5,
        hidden: int = 20,
        task: str = "classification",
        loss: Callable[[Tensor, Tensor], Tensor] | None = None,
    ) -> None:
        super().__init__()
        if steps < 1:
            raise ValueError(f"steps must be >= 1, got {steps}")
        self.task = task
        self.steps = steps
        self.bind_model(model, loss)
        self.meta_learner = MetaLearnerLSTM(flat_parameters(model), hidden=hidden)

    def adapt(self, support_x: Tensor, support_y: Tensor, *, steps: int | None = None) -> Tensor:
        steps = self.steps if steps is None else steps
        differentiable = self.training and torch.is_grad_enabled()
        ml = self.meta_learner
        theta = ml.c0 if differentiable else ml.c0.detach()
        state = ml.init_state()
        for _ in range(steps):
            with torch.enable_grad():
                leaf = theta.detach().requires_grad_(True)
                loss = self.loss(self._forward(leaf, support_x), support_y)
                (grad,) = torch.autograd.grad(loss, leaf)
            with torch.set_grad_enabled(differentiable):
                theta, state = ml.step(theta, grad, loss.detach(), state)
        return theta

    def predict(self, adapted: Tensor, query_x: Tensor) -> Tensor:
        return self._forward(adapted, query_x)

    def meta_loss(self, batch: EpisodeBatch) -> Tensor:
        """All tasks at once: the meta-learner is coordinate-wise, so the learners of a meta-batch
        are one long vector of coordinates, and their forward passes are vmapped."""
        tasks, n = len(batch), self.spec.numel
        ml = self.meta_learner
        task_loss = vmap(lambda th, x, y: self.loss(self._forward(th, x), y))
        theta = ml.c0.repeat(tasks)
        state = ml.init_state(tasks)
        for _ in range(self.steps):
            with torch.enable_grad():
                leaf = theta.detach().view(tasks, n).requires_grad_(True)
                losses = task_loss(leaf, batch.support_x, batch.support_y)
                (grad,) = torch.autograd.grad(losses.sum(), leaf)
            per_coord = losses.detach().repeat_interleave(n)
            theta, state = ml.step(theta, grad.reshape(-1), per_coord, state)
        return task_loss(theta.view(tasks, n), batch.query_x, batch.query_y).mean()
