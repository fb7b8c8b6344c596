"""Classifier heads fitted on a support set: linear and the cosine classifier of Baseline++.

Chen et al. 2019 ("A Closer Look at Few-shot Classification", §3.1-3.2) show that a plain classifier
pretrained on all base classes, with a *new head fitted on each support set*, is a strong baseline.
Baseline++ replaces the linear head by cosine similarities between the feature and one weight vector
per class, scaled by a temperature: ``logits_c = s · cos(w_c, z)``, which reduces intra-class variance.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

HeadKind = Literal["linear", "cosine"]


def chen_scale(classes: int) -> float:
    """The scale factor of Chen et al.'s ``distLinear`` (``2`` up to 200 classes, else ``10``)."""
    return 2.0 if classes <= 200 else 10.0


class CosineClassifier(nn.Module):
    """``logits = scale · normalise(z) · normalise(W)ᵀ`` (Baseline++, Chen et al. 2019 §3.2)."""

    def __init__(self, in_features: int, classes: int, scale: float | None = None) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.empty(classes, in_features))
        nn.init.kaiming_uniform_(self.weight, a=5**0.5)  # nn.Linear's default initialisation
        self.scale = float(chen_scale(classes) if scale is None else scale)

    def forward(self, z: Tensor) -> Tensor:
        return self.scale * F.normalize(z, dim=-1) @ F.normalize(self.weight, dim=-1).T


def make_head(kind: HeadKind, in_features: int, classes: int, scale: float | None = None) -> nn.Module:
    if kind == "linear":
        return nn.Linear(in_features, classes)
    if kind == "cosine":
        return CosineClassifier(in_features, classes, scale)
    raise ValueError(f"unknown head {kind!r}; use 'linear' or 'cosine'")


def fit_head(
    features: Tensor,
    labels: Tensor,
    classes: int,
    *,
    kind: HeadKind = "linear",
    steps: int = 100,
    lr: float = 0.01,
    momentum: float = 0.9,
    weight_decay: float = 1e-3,
    batch_size: int | None = None,
    scale: float | None = None,
    seed: int = 0,
) -> nn.Module:
    """Train a fresh head on fixed support features with SGD (Chen et al.'s fine-tuning recipe:
    momentum 0.9, weight decay 1e-3, lr 0.01). ``batch_size=None`` takes full-batch steps.

    The head's initialisation and the mini-batch order come from ``seed``, so the same support set
    always gives the same head.
    """
    if steps < 0:
        raise ValueError(f"steps must be >= 0, got {steps}")
    g = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(torch.randint(0, 2**62, (), generator=g)))
        head = make_head(kind, features.shape[-1], classes, scale).to(features.device, features.dtype)
    features = features.detach()
    opt = torch.optim.SGD(head.parameters(), lr=lr, momentum=momentum, dampening=0.0,
                          weight_decay=weight_decay)
    with torch.enable_grad():  # a fit, even when the caller is inside no_grad
        _sgd_steps(head, opt, features, labels, steps, batch_size, g)
    return head


def _sgd_steps(head, opt, features, labels, steps, batch_size, g) -> None:
    n = features.shape[0]
    for _ in range(steps):
        if batch_size is None or batch_size >= n:
            xb, yb = features, labels
        else:
            pick = torch.randperm(n, generator=g)[:batch_size].to(features.device)
            xb, yb = features[pick], labels[pick]
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(head(xb), yb)
        check_finite(loss)
        loss.backward()
        opt.step()


def check_finite(loss: Tensor) -> None:
    """Stop a diverged fit with a clear message instead of scoring NaN logits."""
    if not torch.isfinite(loss):
        raise FloatingPointError(f"support-set fit diverged (loss {loss.item()}); lower the learning rate")
