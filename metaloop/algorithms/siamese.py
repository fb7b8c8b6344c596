"""Siamese Neural Networks for one-shot recognition (Koch, Zemel & Salakhutdinov 2015).

Twin embeddings ``h1, h2`` are compared by a learned weighted L1 distance,
``p(same) = sigmoid(sum_j alpha_j |h1_j - h2_j| + b)`` (Sec. 3.1, Eq. 1 of the paper's Fig. 3
network); symmetric in its two inputs by construction. Training is pairwise verification with
binary cross-entropy (Sec. 3.1); one-shot classification picks the class of the support image
with the highest verification score (Sec. 4.3).

``predict`` returns, per way, the best verification logit over that class's support images, so
the argmax is Koch's one-shot rule and ``evaluate`` scores it like every other learner.
Training: :meth:`verification_loss` on pairs from :class:`~metaloop.metric.pairs.PairSampler`
(the paper's regime), or :meth:`meta_loss` on episodes (query-support pairs of each episode,
positives re-weighted to balance the ``ways - 1`` negatives per query).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from metaloop.algorithms.base import Algorithm, check_no_steps
from metaloop.algorithms.registry import register
from metaloop.metric.distances import check_support_labels
from metaloop.nets.koch import KochNet
from metaloop.tasks.episode import EpisodeBatch


@dataclass(frozen=True)
class SupportImages:
    """What :meth:`SiameseNet.adapt` returns: support embeddings, labels and the number of ways."""

    embeddings: Tensor
    labels: Tensor
    ways: int


@register("siamese")
class SiameseNet(Algorithm):
    """Siamese verification network around any embedding (default: Koch's 105x105 network)."""

    def __init__(self, backbone: nn.Module | None = None, embedding_dim: int | None = None) -> None:
        super().__init__()
        self.backbone = backbone if backbone is not None else KochNet()
        dim = embedding_dim or getattr(self.backbone, "embedding_dim", None)
        if dim is None:
            raise ValueError("pass embedding_dim=... or a backbone with an embedding_dim attribute")
        # alpha_j of Eq. 1; Koch initialises the output layer like his FC layers, N(0, 0.2).
        self.alpha = nn.Linear(dim, 1)
        nn.init.normal_(self.alpha.weight, 0.0, 0.2)
        nn.init.normal_(self.alpha.bias, 0.5, 1e-2)

    def embed(self, x: Tensor) -> Tensor:
        z = self.backbone(x)
        return z.flatten(1) if z.dim() > 2 else z

    def pair_logits(self, h1: Tensor, h2: Tensor) -> Tensor:
        """Verification logits for all pairs, ``[n1, n2]`` (pre-sigmoid Eq. 1)."""
        diff = (h1.unsqueeze(1) - h2.unsqueeze(0)).abs()
        return self.alpha(diff).squeeze(-1)

    def verify(self, x1: Tensor, x2: Tensor) -> Tensor:
        """Elementwise verification logits for aligned pairs ``x1[i], x2[i]`` → ``[n]``."""
        h = self.embed(torch.cat([x1, x2]))
        h1, h2 = h.chunk(2)
        return self.alpha((h1 - h2).abs()).squeeze(-1)

    def verification_loss(self, x1: Tensor, x2: Tensor, same: Tensor) -> Tensor:
        """Koch's training objective: binary cross-entropy on same/different pairs."""
        return F.binary_cross_entropy_with_logits(self.verify(x1, x2), same.to(x1.dtype))

    def adapt(
        self, support_x: Tensor, support_y: Tensor, *, steps: int | None = None
    ) -> SupportImages:
        check_no_steps("SiameseNet", steps)
        return self.adapt_embedded(self.embed(support_x), support_y)

    def adapt_embedded(self, z_support: Tensor, support_y: Tensor) -> SupportImages:
        return SupportImages(z_support, support_y, check_support_labels(support_y))

    def class_logits(self, pair_logits: Tensor, support_y: Tensor, ways: int) -> Tensor:
        """Max verification logit over each class's support images, ``[n_query, ways]``."""
        masked = pair_logits.unsqueeze(-1).masked_fill(
            F.one_hot(support_y, ways).unsqueeze(0) == 0, float("-inf")
        )
        return masked.amax(dim=1)

    def predict(self, adapted: SupportImages, query_x: Tensor) -> Tensor:
        return self.predict_embedded(adapted, self.embed(query_x))

    def predict_embedded(self, adapted: SupportImages, z_query: Tensor) -> Tensor:
        logits = self.pair_logits(z_query, adapted.embeddings)
        return self.class_logits(logits, adapted.labels, adapted.ways)

    def meta_loss(self, batch: EpisodeBatch) -> Tensor:
        """Verification BCE over every (query, support) pair of each episode, classes balanced."""
        losses = []
        for episode in batch:
            ways = check_support_labels(episode.support_y)
            h = self.embed(torch.cat([episode.support_x, episode.query_x]))
            hs, hq = h[: len(episode.support_y)], h[len(episode.support_y) :]
            logits = self.pair_logits(hq, hs)
            same = (episode.query_y.unsqueeze(1) == episode.support_y.unsqueeze(0)).to(logits.dtype)
            pos_weight = torch.tensor(float(max(ways - 1, 1)), dtype=logits.dtype)
            losses.append(F.binary_cross_entropy_with_logits(logits, same, pos_weight=pos_weight))
        return torch.stack(losses).mean()
