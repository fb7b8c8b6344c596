"""The minimal meta-training loop every algorithm can use.

Meta-batch of tasks → ``algorithm.meta_loss`` → outer optimizer step; every ``val_every`` iterations
the learner is scored on fixed meta-validation episodes (held-out classes) and the best state is kept
(model selection on meta-val, never on meta-test), with optional early stopping. The loop does not
know which algorithm it drives.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from metaloop.evaluate import EvalResult, evaluate
from metaloop.tasks.seeding import generator_for


@dataclass
class TrainHistory:
    iterations: list[int] = field(default_factory=list)
    train_loss: list[float] = field(default_factory=list)
    validations: list[tuple[int, float, float]] = field(default_factory=list)  # (iteration, mean, ci95)
    best_iteration: int | None = None
    best_value: float | None = None
    stopped_early: bool = False
    seconds: float = 0.0


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
    device: torch.device | str = "cpu",
    callback: Callable[[int, float, EvalResult | None], None] | None = None,
) -> TrainHistory:
    """Meta-train ``algorithm`` in place; on return it holds the best meta-validation state.

    ``train_tasks`` is any task source with ``sample_batch(n, generator)``. Without ``val_episodes``
    the final state is kept. ``patience`` stops after that many validations without improvement.
    """
    if iterations < 1 or meta_batch < 1:
        raise ValueError(f"iterations and meta_batch must be >= 1, got {iterations} and {meta_batch}")
    params = [p for p in algorithm.parameters() if p.requires_grad]
    if optimizer is None:
        optimizer = torch.optim.Adam(params, lr=lr)
    generator = generator_for(seed, 0x7A11)
    lower_is_better = algorithm.task == "regression"
    history = TrainHistory()
    best_state = None
    stale = 0
    start = time.perf_counter()
    algorithm.train()
    for it in range(1, iterations + 1):
        batch = train_tasks.sample_batch(meta_batch, generator).to(device)
        optimizer.zero_grad(set_to_none=True)
        loss = algorithm.meta_loss(batch)
        if not torch.isfinite(loss):
            raise FloatingPointError(
                f"meta-loss is {loss.item()} at iteration {it}; lower the learning rate or enable "
                "grad_clip (the best state so far is kept in the algorithm)"
            )
        loss.backward()
        if grad_clip is not None:
            torch.nn.utils.clip_grad_norm_(params, grad_clip)
        optimizer.step()
        history.iterations.append(it)
        history.train_loss.append(loss.item())
        result = None
        if val_episodes is not None and (it % val_every == 0 or it == iterations):
            result = evaluate(algorithm, val_episodes, steps=val_steps, device=device)
            history.validations.append((it, result.mean, result.ci95))
            better = history.best_value is None or (
                result.mean < history.best_value if lower_is_better else result.mean > history.best_value
            )
            if better and math.isfinite(result.mean):
                history.best_iteration, history.best_value = it, result.mean
                best_state = copy.deepcopy(algorithm.state_dict())
                stale = 0
            else:
                stale += 1
        if callback is not None:
            callback(it, history.train_loss[-1], result)
        if patience is not None and stale >= patience:
            history.stopped_early = True
            break
    if best_state is not None:
        algorithm.load_state_dict(best_state)
    history.seconds = time.perf_counter() - start
    return history
