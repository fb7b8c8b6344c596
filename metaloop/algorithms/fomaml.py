"""First-order MAML (Finn et al. 2017, Sec. 5.2): the inner gradients are treated as constants.

The meta-gradient becomes the query gradient at the adapted parameters, ``dL_q/dphi``; the paper
reports nearly the same accuracy as second order and ~33 % faster iterations.
"""

from __future__ import annotations

from torch import nn

from metaloop.algorithms.registry import register
from metaloop.core.learner import GradientLearner


@register("fomaml")
class FOMAML(GradientLearner):
    def __init__(self, model: nn.Module, **kwargs) -> None:
        if kwargs.pop("first_order", True) is not True:
            raise ValueError("FOMAML is first order by definition; use MAML for second order")
        super().__init__(model, first_order=True, **kwargs)
