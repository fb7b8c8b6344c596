"""Transfer learning: a backbone pretrained as a plain classifier, a new head fitted per support set.

The "Baseline" of Chen et al. 2019 (§3.1): pretrain on all meta-train classes
(:func:`metaloop.baselines.pretrain_backbone`), then for each episode freeze the backbone and train a
fresh linear head on the support features with SGD. ``finetune_backbone=True`` also updates the whole
network on the support set (batch norm keeps its pretrained statistics; a copy of the backbone is
adapted, the pretrained one is never modified). ``head="cosine"`` gives the Baseline++ test-time
classifier (see :mod:`metaloop.algorithms.baseline_pp`).
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from metaloop.algorithms.base import Algorithm
from metaloop.algorithms.registry import register
from metaloop.baselines.heads import HeadKind, check_finite, fit_head, make_head


@register("finetune")
class FineTune(Algorithm):
    """``adapt`` returns ``(adapted backbone or None, head)``; ``steps`` counts SGD updates."""

    task = "classification"

    def __init__(
        self,
        backbone: nn.Module,
        *,
        head: HeadKind = "linear",
        finetune_backbone: bool = False,
        steps: int = 100,
        lr: float = 0.01,
        backbone_lr: float | None = None,
        momentum: float = 0.9,
        weight_decay: float = 1e-3,
        batch_size: int | None = None,
        scale: float | None = None,
        seed: int = 0,
    ) -> None:
        super().__init__()
        if not isinstance(backbone, nn.Module):
            raise TypeError(f"backbone must be an nn.Module mapping images to features, got {type(backbone)}")
        if head not in ("linear", "cosine"):
            raise ValueError(f"unknown head {head!r}; use 'linear' or 'cosine'")
        if steps < 0 or lr <= 0:
            raise ValueError(f"steps must be >= 0 and lr > 0, got steps={steps}, lr={lr}")
        self.backbone = backbone
        self.head_kind, self.finetune_backbone = head, finetune_backbone
        self.steps, self.lr, self.momentum, self.weight_decay = steps, lr, momentum, weight_decay
        self.backbone_lr = lr if backbone_lr is None else backbone_lr
        self.batch_size, self.scale, self.seed = batch_size, scale, seed

    def _features(self, net: nn.Module, x: Tensor) -> Tensor:
        was_training = net.training
        net.eval()
        try:
            return net(x)
        finally:
            net.train(was_training)

    def adapt(self, support_x: Tensor, support_y: Tensor, *, steps: int | None = None):
        steps = self.steps if steps is None else steps
        ways = int(support_y.max()) + 1
        if not self.finetune_backbone:
            with torch.no_grad():
                z = self._features(self.backbone, support_x)
            head = fit_head(z, support_y, ways, kind=self.head_kind, steps=steps, lr=self.lr,
                            momentum=self.momentum, weight_decay=self.weight_decay,
                            batch_size=self.batch_size, scale=self.scale, seed=self.seed)
            return None, head
        return self._finetune_all(support_x, support_y, ways, steps)

    @torch.enable_grad()
    def _finetune_all(self, support_x: Tensor, support_y: Tensor, ways: int, steps: int):
        net = copy.deepcopy(self.backbone).eval()  # eval: pretrained BN statistics stay fixed
        for p in net.parameters():
            p.requires_grad_(True)
        g = torch.Generator().manual_seed(self.seed)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(torch.randint(0, 2**62, (), generator=g)))
            dim = self._features(net, support_x[:1]).shape[-1]
            head = make_head(self.head_kind, dim, ways, self.scale).to(support_x.device, support_x.dtype)
        opt = torch.optim.SGD([{"params": head.parameters(), "lr": self.lr},
                               {"params": net.parameters(), "lr": self.backbone_lr}],
                              momentum=self.momentum, weight_decay=self.weight_decay)
        n = support_x.shape[0]
        for _ in range(steps):
            if self.batch_size is None or self.batch_size >= n:
                xb, yb = support_x, support_y
            else:
                pick = torch.randperm(n, generator=g)[: self.batch_size].to(support_x.device)
                xb, yb = support_x[pick], support_y[pick]
            opt.zero_grad(set_to_none=True)
            loss = F.cross_entropy(head(net(xb)), yb)
            check_finite(loss)
            loss.backward()
            opt.step()
        return net, head

    def predict(self, adapted, query_x: Tensor) -> Tensor:
        net, head = adapted
        return head(self._features(self.backbone if net is None else net, query_x))
