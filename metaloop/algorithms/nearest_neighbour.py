"""Nearest neighbour in pixel space or in a pretrained feature space (SimpleShot-style).

The oldest few-shot baseline: label a query with the class of its closest support example. In pixel
space it shows what the raw images alone give; on pretrained features with centring and L2
normalisation it is SimpleShot (Wang et al. 2019, §3), which classifies by the nearest class
*centroid* (for one shot, centroid and example coincide).

Logits are negative squared Euclidean distances (to the nearest support example of each class, or to
each class centroid), so ``argmax`` is the nearest-neighbour decision; ``temperature`` scales them for
calibration and NLL, and never changes the decision.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor, nn

from metaloop.algorithms.base import Algorithm, check_no_steps
from metaloop.algorithms.registry import register
from metaloop.baselines.features import FeatureTransform, TransformKind

Rule = Literal["example", "centroid"]


@register("nearest_neighbour")
class NearestNeighbour(Algorithm):
    """``backbone=None`` compares flattened pixels; otherwise the backbone's (eval-mode) features."""

    task = "classification"

    def __init__(
        self,
        backbone: nn.Module | None = None,
        *,
        transform: TransformKind = "none",
        base_mean: Tensor | None = None,
        rule: Rule = "example",
        temperature: float = 1.0,
    ) -> None:
        super().__init__()
        if rule not in ("example", "centroid"):
            raise ValueError(f"unknown rule {rule!r}; use 'example' (1-NN) or 'centroid' (SimpleShot)")
        if temperature <= 0:
            raise ValueError(f"temperature must be > 0, got {temperature}")
        self.backbone = backbone
        self.transform = FeatureTransform(transform, base_mean)
        self.rule = rule
        self.temperature = float(temperature)

    @classmethod
    def simpleshot(cls, backbone: nn.Module, base_mean: Tensor, temperature: float = 1.0) -> NearestNeighbour:
        """SimpleShot's CL2N nearest-centroid classifier on pretrained features."""
        return cls(backbone, transform="cl2n", base_mean=base_mean, rule="centroid", temperature=temperature)

    def features(self, x: Tensor) -> Tensor:
        if self.backbone is None:
            z = x.flatten(1).float() if x.dtype == torch.uint8 else x.flatten(1)
        else:
            was_training = self.backbone.training
            self.backbone.eval()  # features of a frozen, pretrained network: running BN statistics
            with torch.no_grad():
                z = self.backbone(x)
            self.backbone.train(was_training)
        return self.transform(z)

    def adapt(self, support_x: Tensor, support_y: Tensor, *,
              steps: int | None = None) -> tuple[Tensor, Tensor]:
        check_no_steps("nearest_neighbour", steps)
        ways = int(support_y.max()) + 1
        z = self.features(support_x)
        if self.rule == "centroid":
            centroids = torch.zeros(ways, z.shape[1], dtype=z.dtype, device=z.device)
            centroids.index_add_(0, support_y, z)
            counts = torch.bincount(support_y, minlength=ways).to(z.dtype).unsqueeze(1)
            return centroids / counts, torch.arange(ways, device=z.device)
        return z, support_y

    def predict(self, adapted: tuple[Tensor, Tensor], query_x: Tensor) -> Tensor:
        points, labels = adapted
        q = self.features(query_x)
        d = torch.cdist(q.double(), points.double(),  # exact zeros for identical images
                         compute_mode="donot_use_mm_for_euclid_dist").pow(2)
        ways = int(labels.max()) + 1
        nearest = torch.full((q.shape[0], ways), float("inf"), dtype=d.dtype, device=d.device)
        nearest = nearest.scatter_reduce(1, labels.expand(q.shape[0], -1), d, reduce="amin")
        return (-nearest / self.temperature).to(q.dtype)
