"""Distances between query and support embeddings, and class means (prototypes).

Everything works on ``[n, d]`` x ``[m, d]`` and returns ``[n, m]``; written with a matrix product so
one episode costs one GEMM (Snell et al. 2017, Eq. 2 is the squared Euclidean distance to the
class mean).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def squared_euclidean(a: Tensor, b: Tensor) -> Tensor:
    """``d[i, j] = ||a_i - b_j||^2`` via ``|a|^2 + |b|^2 - 2 a.b`` (clamped at 0)."""
    if a.shape[-1] != b.shape[-1]:
        raise ValueError(f"embedding sizes differ: {a.shape[-1]} vs {b.shape[-1]}")
    sq = (a * a).sum(-1).unsqueeze(-1) + (b * b).sum(-1).unsqueeze(-2) - 2 * a @ b.transpose(-1, -2)
    return sq.clamp_min(0)


def cosine_similarity(a: Tensor, b: Tensor, eps: float = 1e-8) -> Tensor:
    """``c[i, j] = cos(a_i, b_j)`` (Vinyals et al. 2016, Sec. 2.1.1)."""
    if a.shape[-1] != b.shape[-1]:
        raise ValueError(f"embedding sizes differ: {a.shape[-1]} vs {b.shape[-1]}")
    return F.normalize(a, dim=-1, eps=eps) @ F.normalize(b, dim=-1, eps=eps).transpose(-1, -2)


def check_support_labels(support_y: Tensor) -> int:
    """Validate labels ``0 .. ways-1`` with every class present; return ``ways``."""
    if support_y.dim() != 1 or torch.is_floating_point(support_y):
        raise ValueError(
            f"support_y must be a 1-D integer tensor of class labels, got {tuple(support_y.shape)} "
            f"{support_y.dtype}; metric learners classify, they do not regress"
        )
    if support_y.numel() == 0:
        raise ValueError("empty support set: every class needs at least one support example")
    ways = int(support_y.max()) + 1
    counts = torch.bincount(support_y, minlength=ways)
    if int(support_y.min()) < 0 or bool((counts == 0).any()):
        raise ValueError(
            f"support labels must cover 0..{ways - 1} with every class present, got counts "
            f"{counts.tolist()}; remap labels per episode (the sampler does this)"
        )
    return ways


def class_means(z: Tensor, y: Tensor, ways: int) -> Tensor:
    """Mean embedding per class ``[ways, d]`` (Snell et al. 2017, Eq. 1), as one matrix product."""
    onehot = F.one_hot(y, ways).to(z.dtype)
    return (onehot.t() @ z) / onehot.sum(0).unsqueeze(1)


def class_sums(z: Tensor, y: Tensor, ways: int) -> Tensor:
    """Sum of embeddings per class (Sung et al. 2018, Sec. 3.2: K-shot features are summed)."""
    onehot = F.one_hot(y, ways).to(z.dtype)
    return torch.einsum("nw,n...->w...", onehot, z)
