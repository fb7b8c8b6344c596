"""``meta_train``: the in-memory entry point to the meta-training loop (no run folder, no resume).

A thin wrapper over :class:`metaloop.engine.trainer.Trainer` for library users and tests; the
``metaloop train`` command drives the same trainer with checkpoints, logs and a progress bar.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from metaloop.engine.trainer import Trainer, TrainHistory, TrainOptions
from metaloop.evaluate import EvalResult

__all__ = ["TrainHistory", "meta_train"]


def meta_train(
    algorithm,
    train_tasks,
    *,
    iterations: int,
    meta_batch: int,
    optimizer: torch.optim.Optimizer | None = None,
    lr: float = 1e-3,
    seed: int = 0,
    val_episodes=None,
    val_every: int = 100,
    val_steps: int | None = None,
    patience: int | None = None,
    grad_clip: float | None = None,
    on_nonfinite: str = "stop",
    scheduler=None,
    device: torch.device | str = "cpu",
    callback: Callable[[int, float, EvalResult | None], None] | None = None,
) -> TrainHistory:
    """Meta-train ``algorithm`` in place; on return it holds the best meta-validation state.

    ``train_tasks`` is any task source with ``sample_batch(n, generator)``. Without ``val_episodes``
    the final state is kept. ``patience`` stops after that many validations without improvement;
    ``on_nonfinite="skip"`` skips updates whose loss or gradient is NaN/inf instead of stopping.
    """
    if optimizer is None:
        optimizer = torch.optim.Adam([p for p in algorithm.parameters() if p.requires_grad], lr=lr)
    options = TrainOptions(iterations=iterations, meta_batch=meta_batch, seed=seed, val_every=val_every,
                           val_steps=val_steps, patience=patience, grad_clip=grad_clip,
                           on_nonfinite=on_nonfinite)
    trainer = Trainer(algorithm, train_tasks, optimizer, options, scheduler=scheduler,
                      val_episodes=val_episodes, device=device, callback=callback)
    return trainer.run()
