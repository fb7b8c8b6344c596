"""The shared base of the gradient-based learners (MAML, FOMAML, ANIL, Meta-SGD).

Adapt = a few gradient steps on the support loss from the meta-parameters (Finn et al. 2017,
Alg. 2); predict = the model at the adapted parameters; the meta-loss is the mean query loss after
adaptation, computed by one of the strategies in :mod:`metaloop.core.strategies`. Subclasses change
only what differs: which parameters adapt, the learning rates, first or second order.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from metaloop.algorithms.base import Algorithm, TaskKind
from metaloop.core.inner import Params, adapt_autograd, detached_leaves, functional_forward
from metaloop.core.params import AdaptSpec, select_adapted
from metaloop.core.strategies import RUNNERS, STRATEGIES, resolve_strategy
from metaloop.tasks.episode import EpisodeBatch


class GradientLearner(Algorithm):
    """Model-agnostic gradient-step learner over any ``nn.Module`` (never mutated).

    Args:
        model: the network; its parameters are the meta-parameters.
        inner_lr: step size alpha of the inner loop.
        inner_steps: inner steps during meta-training.
        eval_steps: inner steps in ``eval()`` mode (MAML uses more at test, App. A.1); default
            ``inner_steps``.
        adapt: which parameters the inner loop updates (``"all"``, ``"head"``, name patterns).
        first_order: drop the second-order terms (FOMAML).
        strategy: ``"auto"``, ``"loop"``, ``"vmap"`` or ``"split"`` (see strategies module).
        task: ``"classification"`` (cross-entropy) or ``"regression"`` (MSE).
        compile: run the ``vmap`` meta-loss through :func:`torch.compile` (first call compiles,
            ~10 s; measured 1.7x faster on the sinusoid MLP on CPU). The other strategies take
            gradients inside the loss with ``autograd.grad``, which the compiler cannot
            differentiate again, so they refuse it (``auto`` then runs them uncompiled).
        checkpoint_steps: recompute each second-order inner step's graph in the backward pass
            instead of keeping it (``torch.utils.checkpoint``): memory of about one step's graph
            instead of ``inner_steps`` of them, the same meta-gradient, about one more support
            forward and backward per step. Runs in the ``loop`` and ``split`` (per-task support)
            strategies; ``auto`` never picks ``vmap`` with it.
    """

    supported_strategies: tuple[str, ...] = STRATEGIES

    def __init__(
        self,
        model: nn.Module,
        *,
        inner_lr: float = 0.4,
        inner_steps: int = 1,
        eval_steps: int | None = None,
        adapt: AdaptSpec = "all",
        first_order: bool = False,
        strategy: str = "auto",
        task: TaskKind = "classification",
        compile: bool = False,
        checkpoint_steps: bool = False,
    ) -> None:
        super().__init__()
        if inner_steps < 1 or (eval_steps is not None and eval_steps < 0):
            raise ValueError(
                f"inner_steps must be >= 1 and eval_steps >= 0, got {inner_steps} and {eval_steps}"
            )
        if strategy not in self.supported_strategies:
            raise ValueError(
                f"unknown strategy {strategy!r}; use one of {self.supported_strategies}"
            )
        if compile and strategy not in ("auto", "vmap"):
            raise ValueError(
                f"compile=True needs strategy 'vmap' or 'auto', got {strategy!r}: the loop and "
                "split strategies call autograd.grad inside the loss, which torch.compile "
                "cannot differentiate again"
            )
        if checkpoint_steps and first_order:
            raise ValueError(
                "checkpoint_steps=True only applies to second-order steps (first-order steps keep "
                "no inner graph to recompute); drop it or set first_order=False"
            )
        if checkpoint_steps and strategy == "vmap":
            raise ValueError(
                "checkpoint_steps=True needs strategy 'loop', 'split' or 'auto': torch.utils."
                "checkpoint does not run under vmap"
            )
        if task not in ("classification", "regression"):
            raise ValueError(f"task must be 'classification' or 'regression', got {task!r}")
        self.model = model
        self.task = task
        self.inner_lr = float(inner_lr)
        self.inner_steps = int(inner_steps)
        self.eval_steps = self.inner_steps if eval_steps is None else int(eval_steps)
        self.first_order = bool(first_order)
        self.checkpoint_steps = bool(checkpoint_steps)
        self.strategy = strategy
        self.adapted_names = select_adapted(model, adapt)
        self.forward_fn = functional_forward(model)
        self._native_bn: bool | None = None
        #: tasks per batched support step in the ``split`` strategy (memory vs. batching).
        self.split_chunk = 4
        #: ``split``'s support step: ``"vmap"`` (chunks of ``split_chunk`` tasks), ``"autograd"``
        #: (one task at a time, native batch norm, NHWC: the least memory, see strategies module)
        #: or ``"auto"``: autograd for CPU batches or with ``checkpoint_steps``, vmap elsewhere
        #: (batching over tasks pays on GPUs).
        self.split_support = "auto"
        self.use_compile = bool(compile)
        self._compiled_vmap = None

    def meta_params(self) -> Params:
        return dict(self.model.named_parameters())

    def inner_lrs(self) -> dict[str, Tensor | float]:
        return {n: self.inner_lr for n in self.adapted_names}

    def adapt(self, support_x: Tensor, support_y: Tensor, *, steps: int | None = None) -> Params:
        steps = (self.inner_steps if self.training else self.eval_steps) if steps is None else steps
        if steps < 0:
            raise ValueError(f"steps must be >= 0, got {steps}")
        if self.training:
            return adapt_autograd(
                self.forward_fn,
                self.loss,
                self.meta_params(),
                self.adapted_names,
                support_x,
                support_y,
                steps,
                self.inner_lrs(),
                create_graph=not self.first_order,
                checkpoint=self.checkpoint_steps,
            )
        params = detached_leaves(self.meta_params())
        lrs = {
            n: lr.detach() if isinstance(lr, Tensor) else lr for n, lr in self.inner_lrs().items()
        }
        out = adapt_autograd(
            self.forward_fn,
            self.loss,
            params,
            self.adapted_names,
            support_x,
            support_y,
            steps,
            lrs,
            create_graph=False,
        )
        return {n: p.detach() for n, p in out.items()}

    def predict(self, adapted: Params, query_x: Tensor) -> Tensor:
        return self.forward_fn(adapted, query_x)

    def forward(self, x: Tensor) -> Tensor:
        return self.model(x)

    def meta_loss(self, batch: EpisodeBatch) -> Tensor:
        if not self.training:
            return super().meta_loss(batch)
        strategy = resolve_strategy(self, batch, self.supported_strategies)
        if self.use_compile and strategy == "vmap":
            if self._compiled_vmap is None:
                self._compiled_vmap = torch.compile(RUNNERS["vmap"], dynamic=False)
            return self._compiled_vmap(self, batch)
        return RUNNERS[strategy](self, batch)

    def extra_repr(self) -> str:
        return (
            f"inner_lr={self.inner_lr}, inner_steps={self.inner_steps}, eval_steps="
            f"{self.eval_steps}, first_order={self.first_order}, strategy={self.strategy!r}, "
            f"checkpoint_steps={self.checkpoint_steps}, "
            f"adapted={len(self.adapted_names)} tensors"
        )
