"""Relation Networks (Sung, Yang, Zhang, Xiang, Torr & Hospedales, CVPR 2018).

Instead of a fixed distance, a learned relation module scores each (query, class) pair of feature
maps (Eq. 1): ``r_ij = g(C(f(x_i), f(x_j)))``, ``C`` = channel concatenation. For K-shot the
class feature map is the element-wise *sum* of its support feature maps (Sec. 3.2). Training
regresses the relation scores onto one-hot match targets with mean squared error (Eq. 3): the
paper treats the score as a similarity, not a class probability.

``predict`` returns the relation scores ``[n_query, ways]`` in [0, 1]; their argmax is the
prediction and ``loss`` is the paper's MSE to one-hot targets.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from metaloop.algorithms.base import Algorithm, check_no_steps
from metaloop.algorithms.registry import register
from metaloop.metric.distances import check_support_labels, class_sums
from metaloop.nets.relation_net import RelationEmbedding, RelationModule


@dataclass(frozen=True)
class ClassFeatures:
    """What :meth:`RelationNet.adapt` returns: summed support feature maps, ``[ways, C, s, s]``."""

    features: Tensor


@register("relation")
class RelationNet(Algorithm):
    """Relation Network; ``backbone`` must return feature maps ``[n, C, s, s]``.

    Default: the paper's embedding for 28x28 Omniglot and a matching relation module. With another
    backbone pass ``relation=RelationModule(C, s)``.
    """

    def __init__(
        self,
        backbone: nn.Module | None = None,
        relation: nn.Module | None = None,
        image_size: int = 28,
        in_channels: int = 1,
    ) -> None:
        super().__init__()
        if backbone is None:
            backbone = RelationEmbedding(in_channels=in_channels, image_size=image_size)
        if relation is None:
            channels = getattr(backbone, "out_channels", None)
            side = getattr(backbone, "out_side", None)
            if channels is None or side is None:
                raise ValueError(
                    "with a custom backbone pass relation=RelationModule(channels, feature_side) "
                    "matching its output feature maps"
                )
            relation = RelationModule(channels, side)
        self.backbone = backbone
        self.relation = relation

    def embed(self, x: Tensor) -> Tensor:
        z = self.backbone(x)
        if z.dim() != 4:
            raise ValueError(
                f"relation networks compare feature maps, but the backbone returned shape "
                f"{tuple(z.shape)}; use a backbone returning [n, C, H, W] "
                "(e.g. Conv4(...).features or RelationEmbedding)"
            )
        return z

    def adapt(
        self, support_x: Tensor, support_y: Tensor, *, steps: int | None = None
    ) -> ClassFeatures:
        check_no_steps("RelationNet", steps)
        return self.adapt_embedded(self.embed(support_x), support_y)

    def adapt_embedded(self, z_support: Tensor, support_y: Tensor) -> ClassFeatures:
        ways = check_support_labels(support_y)
        return ClassFeatures(class_sums(z_support, support_y, ways))

    def scores(self, z_query: Tensor, class_features: Tensor) -> Tensor:
        """Relation logits (pre-sigmoid) for every (query, class) pair, ``[n_query, ways]``."""
        n, ways = z_query.shape[0], class_features.shape[0]
        q = z_query.unsqueeze(1).expand(n, ways, *z_query.shape[1:])
        c = class_features.unsqueeze(0).expand(n, ways, *class_features.shape[1:])
        pairs = torch.cat([c, q], dim=2).flatten(0, 1)
        return self.relation(pairs).view(n, ways)

    def predict(self, adapted: ClassFeatures, query_x: Tensor) -> Tensor:
        """Relation scores in [0, 1] (Eq. 1), ``[n_query, ways]``."""
        return self.predict_embedded(adapted, self.embed(query_x))

    def predict_embedded(self, adapted: ClassFeatures, z_query: Tensor) -> Tensor:
        return torch.sigmoid(self.scores(z_query, adapted.features))

    def loss(self, predictions: Tensor, targets: Tensor) -> Tensor:
        """Eq. 3: squared error between relation scores and one-hot match indicators.

        Averaged over all (query, class) pairs; the paper's sum differs by a constant factor.
        """
        onehot = F.one_hot(targets, predictions.shape[-1]).to(predictions.dtype)
        return F.mse_loss(predictions, onehot)
