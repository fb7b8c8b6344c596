"""Reptile (Nichol, Achiam & Schulman, 2018): move the initialisation towards adapted weights.

Each task runs ``k`` graph-free SGD steps from theta to phi_t; the update is
``theta <- theta + eps * mean_t (phi_t - theta)`` (Alg. 2, batched version). So that the generic
outer optimizer drives it, :meth:`meta_loss` returns the surrogate
``mean_t 1/2 ||theta - stopgrad(phi_t)||^2``, whose gradient is exactly ``mean_t (theta - phi_t)``;
outer SGD with lr eps is then Reptile's update. Its value is that surrogate, not a query loss.
The paper's inner loop uses Adam on minibatches; here it is full-batch SGD on the support set.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from metaloop.algorithms.registry import register
from metaloop.core.inner import Params, adapt_func
from metaloop.core.learner import GradientLearner
from metaloop.core.strategies import resolve_strategy
from metaloop.tasks.episode import EpisodeBatch


@register("reptile")
class Reptile(GradientLearner):
    supported_strategies = ("auto", "loop", "vmap")

    def __init__(
        self, model: nn.Module, *, inner_lr: float = 0.1, inner_steps: int = 5, **kwargs
    ) -> None:
        if kwargs.pop("first_order", True) is not True:
            raise ValueError("Reptile is first order by construction; first_order=False is invalid")
        super().__init__(
            model, inner_lr=inner_lr, inner_steps=inner_steps, first_order=True, **kwargs
        )

    def adapt(self, support_x: Tensor, support_y: Tensor, *, steps: int | None = None) -> Params:
        was_training = self.training
        try:
            self.training = False  # graph-free adaptation in both modes; restored below
            n = (self.inner_steps if was_training else self.eval_steps) if steps is None else steps
            return super().adapt(support_x, support_y, steps=n)
        finally:
            self.training = was_training

    def meta_loss(self, batch: EpisodeBatch) -> Tensor:
        if not self.training:
            return super().meta_loss(batch)
        strategy = resolve_strategy(self, batch, self.supported_strategies)
        params = self.meta_params()
        if strategy == "vmap":
            theta = {n: p.detach() for n, p in params.items()}
            with torch.no_grad():
                phi = torch.func.vmap(
                    lambda sx, sy: adapt_func(
                        self.forward_fn,
                        self.loss,
                        theta,
                        self.adapted_names,
                        sx,
                        sy,
                        self.inner_steps,
                        self.inner_lrs(),
                        first_order=True,
                    ),
                    randomness="different",
                )(batch.support_x, batch.support_y)
        else:
            tasks = [self.adapt(batch.support_x[i], batch.support_y[i]) for i in range(len(batch))]
            phi = {n: torch.stack([t[n] for t in tasks]) for n in self.adapted_names}
        dist = sum(((params[n] - phi[n]) ** 2).sum() for n in self.adapted_names)
        return 0.5 * dist / len(batch)
