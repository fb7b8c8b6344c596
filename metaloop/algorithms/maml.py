"""MAML: model-agnostic meta-learning (Finn, Abbeel & Levine, ICML 2017).

The meta-parameters theta minimise the query loss after a few gradient steps on the support loss,
``min_theta sum_T L_T(theta - alpha grad L_T^support(theta))`` (Eq. 1, Alg. 2), differentiated
through the inner steps (second order). Batch norm uses per-task batch statistics (Sec. 5.2).
"""

from __future__ import annotations

from metaloop.algorithms.registry import register
from metaloop.core.learner import GradientLearner


@register("maml")
class MAML(GradientLearner):
    """Second-order MAML; every option of :class:`~metaloop.core.learner.GradientLearner` applies.

    Example: ``MAML(Conv4(1, 5), inner_lr=0.4, inner_steps=1, eval_steps=3)`` is the paper's
    Omniglot 5-way setting (App. A.1).
    """
