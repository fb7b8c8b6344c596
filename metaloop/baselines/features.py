"""Feature transforms for nearest-neighbour and centroid classifiers (SimpleShot, Wang et al. 2019).

SimpleShot (§3.2) shows that nearest-neighbour classification on pretrained features works far better
after *centring* (subtracting the mean feature of the base, i.e. meta-train, classes) and *L2
normalisation* ("CL2N"). ``"l2n"`` normalises only; ``"none"`` leaves features as they are.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from metaloop.data.base import ClassDataset
from metaloop.tasks.sampler import to_float

TransformKind = Literal["none", "l2n", "cl2n"]


class FeatureTransform(nn.Module):
    """``z ↦ (z - mean) / ‖z - mean‖`` for ``"cl2n"``; the base-class mean is a buffer."""

    def __init__(self, kind: TransformKind = "cl2n", mean: Tensor | None = None) -> None:
        super().__init__()
        if kind not in ("none", "l2n", "cl2n"):
            raise ValueError(f"unknown feature transform {kind!r}; use 'none', 'l2n' or 'cl2n'")
        if kind == "cl2n" and mean is None:
            raise ValueError("'cl2n' centres on the base-class mean feature: "
                             "pass mean=base_feature_mean(...)")
        self.kind = kind
        self.register_buffer("mean", None if mean is None else mean.detach().clone())

    def forward(self, z: Tensor) -> Tensor:
        if self.kind == "cl2n":
            z = z - self.mean.to(z.dtype)
        if self.kind in ("l2n", "cl2n"):
            z = F.normalize(z, dim=-1)
        return z


@torch.no_grad()
def base_feature_mean(backbone: nn.Module, dataset: ClassDataset, batch_size: int = 512,
                      max_examples: int | None = None, seed: int = 0) -> Tensor:
    """Mean feature of (a random subset of) the base-class examples, with the backbone in eval mode."""
    was_training = backbone.training
    backbone.eval()
    index = torch.arange(len(dataset))
    if max_examples is not None and max_examples < len(dataset):
        index = torch.randperm(len(dataset), generator=torch.Generator().manual_seed(seed))[:max_examples]
    total, count = None, 0
    for chunk in index.split(batch_size):
        z = backbone(to_float(dataset.data[chunk])).double()
        total = z.sum(0) if total is None else total + z.sum(0)
        count += len(chunk)
    backbone.train(was_training)
    return (total / count).float()
