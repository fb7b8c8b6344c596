"""nDCG@k for users who rank candidates rather than classify them.

For each class of an episode, the query set is ranked by that class's score (the logit column); a
query is relevant (gain 1) when it belongs to the class. DCG@k = Σ_{i≤k} gain_i / log2(i + 1)
(Järvelin & Kekäläinen 2002), normalised by the DCG of the ideal ranking. Ties in the scores are
broken pessimistically (relevant items last) so a constant scorer earns no credit from the order in
which the queries happen to be stored.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from metaloop import metrics


def ndcg_at_k(scores: Tensor, relevance: Tensor, k: int) -> float:
    """nDCG@k of one ranking: ``scores [n]`` (higher ranks first), graded ``relevance [n]`` ≥ 0."""
    if scores.shape != relevance.shape or scores.dim() != 1:
        raise ValueError(f"scores and relevance must be matching 1-D tensors, got {tuple(scores.shape)} "
                         f"and {tuple(relevance.shape)}")
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    rel = relevance.double()
    # sort by score descending, ties: lower relevance first (pessimistic)
    order = sorted(range(len(scores)), key=lambda i: (-float(scores[i]), float(rel[i])))
    k = min(k, len(scores))
    discount = 1.0 / torch.log2(torch.arange(2, k + 2, dtype=torch.float64))
    dcg = float((rel[order[:k]] * discount).sum())
    ideal = float((rel.sort(descending=True).values[:k] * discount).sum())
    return dcg / ideal if ideal > 0 else math.nan


def episode_ndcg(logits: Tensor, targets: Tensor, k: int) -> float:
    """Mean over classes of nDCG@k when the query set is ranked against each class."""
    values = [ndcg_at_k(logits[:, c], (targets == c).double(), k) for c in range(logits.shape[1])]
    values = [v for v in values if not math.isnan(v)]
    return sum(values) / len(values) if values else math.nan


def ranking_ndcg(algorithm, episodes, k: int = 5) -> tuple[float, float]:
    """Mean ± 95 % CI over episodes of the per-episode nDCG@k."""
    was_training = algorithm.training
    algorithm.eval()
    values = []
    try:
        for e in episodes:
            with torch.enable_grad():
                adapted = algorithm.adapt(e.support_x, e.support_y)
            with torch.no_grad():
                values.append(episode_ndcg(algorithm.predict(adapted, e.query_x), e.query_y, k))
    finally:
        algorithm.train(was_training)
    return metrics.mean_ci95(values)
