"""From scratch: a freshly initialised network trained on the support set alone.

The floor every learner must clear: no meta-training, no pretraining, just ``steps`` Adam steps of
cross-entropy on the K·N support images. Steps and learning rate are hyper-parameters to choose on
meta-val episodes (:func:`metaloop.baselines.tuning.grid_search`), never on meta-test.

The network is rebuilt from the same seed for every episode, so results do not depend on episode
order. Batch norm normalises the query with the support set's statistics (no transduction from the
query batch).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from metaloop.algorithms.base import Algorithm
from metaloop.algorithms.registry import register
from metaloop.nets.conv4 import Conv4


@register("scratch")
class FromScratch(Algorithm):
    """``make_model(ways) -> nn.Module`` builds the fresh network (default: Conv-4 with batch norm)."""

    task = "classification"

    def __init__(
        self,
        make_model: Callable[[int], nn.Module] | None = None,
        *,
        in_channels: int = 1,
        image_size: int = 28,
        hidden: int = 64,
        steps: int = 100,
        lr: float = 1e-3,
        weight_decay: float = 0.0,
        seed: int = 0,
    ) -> None:
        super().__init__()
        if steps < 0 or lr <= 0:
            raise ValueError(f"steps must be >= 0 and lr > 0, got steps={steps}, lr={lr}")
        if make_model is None:
            def make_model(ways: int) -> nn.Module:
                return Conv4(in_channels, ways, hidden=hidden, image_size=image_size, norm="batch")
        self.make_model = make_model
        self.steps, self.lr, self.weight_decay, self.seed = steps, lr, weight_decay, seed

    @torch.enable_grad()
    def adapt(self, support_x: Tensor, support_y: Tensor, *, steps: int | None = None) -> nn.Module:
        steps = self.steps if steps is None else steps
        if steps < 0:
            raise ValueError(f"steps must be >= 0, got {steps}")
        ways = int(support_y.max()) + 1
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed)
            model = self.make_model(ways).to(support_x.device, support_x.dtype)
        opt = torch.optim.Adam(model.parameters(), lr=self.lr, weight_decay=self.weight_decay)
        model.train()
        for _ in range(steps):
            opt.zero_grad(set_to_none=True)
            F.cross_entropy(model(support_x), support_y).backward()
            opt.step()
        support_statistics(model, support_x)
        model.eval()
        return model

    def predict(self, adapted: nn.Module, query_x: Tensor) -> Tensor:
        return adapted(query_x)


@torch.no_grad()
def support_statistics(model: nn.Module, support_x: Tensor) -> None:
    """Set every batch-norm layer's running statistics to the exact support-set statistics.

    Running averages after a few steps (momentum 0.1) are still mostly their initial values; one
    cumulative pass over the support set with the final weights makes eval mode use the statistics
    of the data the network was fitted on.
    """
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if not norms:
        return
    saved = [m.momentum for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # cumulative average: after one pass, exactly this batch's statistics
    model.train()
    model(support_x)
    for m, momentum in zip(norms, saved, strict=True):
        m.momentum = momentum
