"""Reptile (Nichol, Achiam & Schulman, 2018): move the initialisation towards adapted weights.

Each task runs ``k`` graph-free SGD steps from theta to phi_t; the update is
``theta <- theta + eps * mean_t (phi_t - theta)`` (Alg. 2, batched version). So that the generic
outer optimizer drives it, :meth:`meta_loss` returns the surrogate
``mean_t 1/2 ||theta - stopgrad(phi_t)||^2``, whose gradient is exactly ``mean_t (theta - phi_t)``;
outer SGD with lr eps is then Reptile's update. Its value is that surrogate, not a query loss.
The paper's inner loop takes each step on a different minibatch of the support set
(``inner_batch``): Reptile's benefit comes from the inner product between gradients of
*different* minibatches of a task (Sec. 5); full-batch steps (the default, ``inner_batch=None``)
only see one. Steps here are SGD; the paper's are Adam.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from metaloop.algorithms.registry import register
from metaloop.core.inner import Params, adapt_autograd, adapt_func, detached_leaves
from metaloop.core.learner import GradientLearner
from metaloop.core.strategies import resolve_strategy
from metaloop.tasks.episode import EpisodeBatch


@register("reptile")
class Reptile(GradientLearner):
    supported_strategies = ("auto", "loop", "vmap")

    def __init__(
        self,
        model: nn.Module,
        *,
        inner_lr: float = 0.1,
        inner_steps: int = 5,
        inner_batch: int | None = None,
        **kwargs,
    ) -> None:
        if kwargs.pop("first_order", True) is not True:
            raise ValueError("Reptile is first order by construction; first_order=False is invalid")
        if inner_batch is not None and inner_batch < 1:
            raise ValueError(f"inner_batch must be >= 1 or None (full batch), got {inner_batch}")
        super().__init__(model, inner_lr=inner_lr, inner_steps=inner_steps, first_order=True, **kwargs)
        #: support examples per meta-training inner step (None: the whole support set); test-time
        #: adaptation always uses the whole support set, as the paper's 1-shot evaluation.
        self.inner_batch = None if inner_batch is None else int(inner_batch)

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
        # [tasks, steps, examples]: drawn here, outside vmap, so both strategies see the same steps
        n_support = batch.support_x.shape[1]
        size = n_support if self.inner_batch is None else min(self.inner_batch, n_support)
        index = torch.stack(
            [
                minibatch_schedule(n_support, self.inner_steps, size, batch.support_x.device)
                for _ in range(len(batch))
            ]
        )
        if strategy == "vmap":
            theta = {n: p.detach() for n, p in params.items()}
            with torch.no_grad():
                phi = torch.func.vmap(
                    lambda sx, sy, ix: self._inner_sgd(theta, sx, sy, ix, batched=True),
                    randomness="different",
                )(batch.support_x, batch.support_y, index)
        else:
            theta = detached_leaves(params)
            tasks = [
                self._inner_sgd(theta, batch.support_x[i], batch.support_y[i], index[i], batched=False)
                for i in range(len(batch))
            ]
            phi = {n: torch.stack([t[n].detach() for t in tasks]) for n in self.adapted_names}
        dist = sum(((params[n] - phi[n]) ** 2).sum() for n in self.adapted_names)
        return 0.5 * dist / len(batch)

    def _inner_sgd(self, theta: Params, sx: Tensor, sy: Tensor, index: Tensor, *, batched: bool) -> Params:
        """One graph-free SGD step per row of ``index`` (that step's support examples);
        ``batched``: the vmap-able ``torch.func`` step instead of ``autograd.grad``."""
        lrs = {n: float(lr) for n, lr in self.inner_lrs().items()}
        names, params = self.adapted_names, theta
        for rows in index:
            x, y = sx[rows], sy[rows]
            if batched:
                params = adapt_func(self.forward_fn, self.loss, params, names, x, y, 1, lrs, first_order=True)
            else:
                params = detached_leaves(
                    adapt_autograd(
                        self.forward_fn, self.loss, params, names, x, y, 1, lrs, create_graph=False
                    )
                )
        return params


def minibatch_schedule(n: int, steps: int, size: int, device=None) -> Tensor:
    """``[steps, size]`` indices: consecutive slices of shuffled passes over ``n`` examples.

    As the paper's sampler: each pass is a fresh permutation, so consecutive steps cover the whole
    set before any example is seen again. With ``size == n`` every step is the whole set, in order.
    """
    if size == n:  # full batch: no shuffling, so no draw from the random stream
        return torch.arange(n, device=device).expand(steps, n)
    passes = -(-steps * size // n)
    order = torch.cat([torch.randperm(n, device=device) for _ in range(passes)])
    return order[: steps * size].view(steps, size)
