"""A few-shot learner whose inner loop is a learned optimizer (Andrychowicz et al. 2016).

``adapt`` trains ``model`` on the support set for ``steps`` updates of a coordinate-wise
:class:`~metaloop.learned.coordinatewise.LSTMRule`, from the model's own weights (a fixed start) or,
with ``learn_init=True``, from a meta-learned initialisation (then it is MAML with a learned update
rule). The meta-gradient flows through the updates, with the optimizee gradients treated as inputs
as in the paper (Sec. 2.1).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn

from metaloop.algorithms.base import Algorithm
from metaloop.algorithms.registry import register
from metaloop.learned.coordinatewise import LSTMRule, UpdateRule, unroll
from metaloop.learned.flat import FlatWeightsLearner, flat_parameters


@register("lstm_optimizer")
class LSTMOptimizer(FlatWeightsLearner, Algorithm):
    def __init__(
        self,
        model: nn.Module,
        rule: UpdateRule | None = None,
        steps: int = 10,
        learn_init: bool = False,
        task: str = "classification",
        loss: Callable[[Tensor, Tensor], Tensor] | None = None,
    ) -> None:
        super().__init__()
        if steps < 1:
            raise ValueError(f"steps must be >= 1, got {steps}")
        self.task = task
        self.steps = steps
        self.rule = rule if rule is not None else LSTMRule()
        self.bind_model(model, loss)  # the architecture; weights live in theta0
        theta0 = flat_parameters(model)
        if learn_init:
            self.theta0 = nn.Parameter(theta0)
        else:
            self.register_buffer("theta0", theta0)

    def adapt(self, support_x: Tensor, support_y: Tensor, *, steps: int | None = None) -> Tensor:
        steps = self.steps if steps is None else steps
        differentiable = self.training and torch.is_grad_enabled()
        theta, _, _ = unroll(
            self.rule,
            lambda t: self.loss(self._forward(t, support_x), support_y),
            self.theta0,
            self.rule.init_state(self.theta0.numel(), self.theta0),
            steps,
            differentiable=differentiable,
        )
        return theta

    def predict(self, adapted: Tensor, query_x: Tensor) -> Tensor:
        return self._forward(adapted, query_x)
