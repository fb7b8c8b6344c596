"""Baseline++ (Chen et al. 2019, §3.2): the fine-tuning baseline with a cosine-similarity classifier.

Pretrain the backbone with a cosine head (``pretrain_backbone(..., head="cosine")``), then fit a new
cosine head ``logits_c = s · cos(w_c, z)`` on each support set. Normalising both features and class
weights makes the weights act as class prototypes and reduces intra-class variation, which is why
Baseline++ closes much of the gap to meta-learners in Chen et al.'s Table 3.
"""

from __future__ import annotations

from torch import nn

from metaloop.algorithms.finetune import FineTune
from metaloop.algorithms.registry import register


@register("baseline_pp")
class BaselinePlusPlus(FineTune):
    """:class:`FineTune` with ``head="cosine"`` fixed; other arguments as there."""

    def __init__(self, backbone: nn.Module, **kwargs) -> None:
        if kwargs.pop("head", "cosine") != "cosine":
            raise ValueError("baseline_pp always uses the cosine head; use 'finetune' for a linear head")
        super().__init__(backbone, head="cosine", **kwargs)
