"""Meta-SGD (Li, Zhou, Chen & Li, 2017): the inner learning rate is learned too.

The inner step is ``phi = theta - alpha ∘ grad L_support(theta)`` with ``alpha`` a tensor of the
same shape as each adapted parameter (element-wise product, Eq. 3), meta-learned jointly with
theta by the outer optimizer (Alg. 1). The rates live in :attr:`lrs` and are ordinary parameters.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from metaloop.algorithms.registry import register
from metaloop.core.learner import GradientLearner


@register("metasgd")
class MetaSGD(GradientLearner):
    """``inner_lr`` is the initial value of every learned rate (the paper samples U[0.005, 0.1])."""

    def __init__(self, model: nn.Module, *, inner_lr: float = 0.1, **kwargs) -> None:
        super().__init__(model, inner_lr=inner_lr, **kwargs)
        params = dict(model.named_parameters())
        self.lrs = nn.ParameterDict(
            {
                _key(n): nn.Parameter(torch.full_like(params[n].detach(), self.inner_lr))
                for n in self.adapted_names
            }
        )

    def inner_lrs(self) -> dict[str, Tensor | float]:
        return {n: self.lrs[_key(n)] for n in self.adapted_names}


def _key(name: str) -> str:
    # ParameterDict keys may not contain '.'.
    return name.replace(".", "__")
