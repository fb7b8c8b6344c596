"""ANIL: almost no inner loop (Raghu et al., ICLR 2020).

Only the classifier head adapts in the inner loop (Sec. 4); the body is meta-learned through the
outer loop alone. The paper shows this matches MAML, which suggests MAML mostly reuses features.
"""

from __future__ import annotations

from torch import nn

from metaloop.algorithms.registry import register
from metaloop.core.learner import GradientLearner
from metaloop.core.params import AdaptSpec


@register("anil")
class ANIL(GradientLearner):
    """``adapt="head"`` by default: parameters named ``head.*`` (Conv4/MLP's classifier)."""

    def __init__(self, model: nn.Module, *, adapt: AdaptSpec = "head", **kwargs) -> None:
        super().__init__(model, adapt=adapt, **kwargs)
