"""Meta-training a learned optimizer on a family of optimization problems, and its baselines.

A *problem* is "train this model from this initialisation on this task": a loss of a flat parameter
vector plus a starting point. Andrychowicz et al. (2016, Sec. 2) meta-train the rule by minimising
the summed loss along the optimization trajectory, ``L(phi) = E[sum_t f(theta_t)]`` (Eq. 3 with
w_t = 1), cut into truncation windows of ``truncation`` steps (truncated BPTT, Sec. 3: 100 steps
unrolled 20 at a time). SGD and Adam are the baselines, each with its learning rate tuned on
separate problems for the same horizon, which is the comparison the paper reports (Fig. 4).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from metaloop.learned.coordinatewise import UpdateRule, detach_state, unroll
from metaloop.learned.flat import functional_loss, init_parameters
from metaloop.tasks.episode import Episode


@dataclass(frozen=True)
class Problem:
    """Minimise ``loss_fn`` (a function of the flat parameters) starting from ``theta0``."""

    loss_fn: Callable[[Tensor], Tensor]
    theta0: Tensor


def problem_from_episode(model: nn.Module, episode: Episode, generator: torch.Generator,
                         loss: Callable[[Tensor, Tensor], Tensor]) -> Problem:
    """Train a fresh draw of ``model``'s initialisation on the episode's support set."""
    theta0 = init_parameters(model, generator)
    return Problem(functional_loss(model, loss, episode.support_x, episode.support_y), theta0)


def meta_train_optimizer(
    rule: UpdateRule,
    sample_problem: Callable[[torch.Generator], Problem],
    *,
    iterations: int,
    generator: torch.Generator,
    horizon: int = 100,
    truncation: int = 20,
    meta_lr: float = 1e-3,
    clip: float = 1.0,
    objective: str = "loss",
    cosine_decay: bool = False,
    log: Callable[[int, float], None] | None = None,
) -> list[float]:
    """Adam on the rule's parameters, one problem per iteration, ``horizon // truncation`` updates.

    ``objective="loss"`` is the paper's mean loss along the trajectory; ``"log_loss"`` averages
    ``log f(theta_t)`` instead (Metz et al. 2019), so a problem that starts at a large loss does not
    drown the late, small-loss steps where a rule trained on raw losses stalls. ``cosine_decay``
    anneals the meta learning rate to zero over ``iterations``.
    Returns the mean trajectory loss of each iteration (the meta-training curve).
    """
    if horizon % truncation:
        raise ValueError(f"horizon ({horizon}) must be a multiple of truncation ({truncation})")
    if objective not in ("loss", "log_loss"):
        raise ValueError(f"objective must be 'loss' or 'log_loss', got {objective!r}")
    opt = torch.optim.Adam(rule.parameters(), lr=meta_lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, iterations) if cosine_decay else None
    curve = []
    rule.train()
    for it in range(iterations):
        problem = sample_problem(generator)
        theta, state = problem.theta0, rule.init_state(problem.theta0.numel(), problem.theta0)
        total = 0.0
        for _ in range(horizon // truncation):
            theta, state, losses = unroll(rule, problem.loss_fn, theta, state, truncation,
                                          differentiable=True)
            meta = losses[1:].mean()
            target = losses[1:].clamp_min(1e-12).log().mean() if objective == "log_loss" else meta
            opt.zero_grad()
            target.backward()
            nn.utils.clip_grad_norm_(rule.parameters(), clip)
            opt.step()
            theta, state = theta.detach(), detach_state(state)
            total += float(meta.detach())
        if sched is not None:
            sched.step()
        curve.append(total / (horizon // truncation))
        if log is not None:
            log(it, curve[-1])
    return curve


def rule_trajectory(rule: UpdateRule, problem: Problem, steps: int) -> Tensor:
    """Training losses ``f(theta_0..theta_T)`` under ``rule`` (no meta-gradient)."""
    rule.eval()
    state = rule.init_state(problem.theta0.numel(), problem.theta0)
    _, _, losses = unroll(rule, problem.loss_fn, problem.theta0, state, steps, differentiable=False)
    return losses


def torch_trajectory(make_optimizer: Callable[[list[Tensor]], torch.optim.Optimizer],
                     problem: Problem, steps: int) -> Tensor:
    """Training losses ``f(theta_0..theta_T)`` under a ``torch.optim`` optimizer (the baselines)."""
    theta = problem.theta0.clone().requires_grad_(True)
    opt = make_optimizer([theta])
    losses = []
    for _ in range(steps):
        opt.zero_grad()
        loss = problem.loss_fn(theta)
        loss.backward()
        opt.step()
        losses.append(loss.detach())
    with torch.no_grad():
        losses.append(problem.loss_fn(theta))
    return torch.stack(losses)


BASELINES: dict[str, Callable[[float], Callable[[list[Tensor]], torch.optim.Optimizer]]] = {
    "sgd": lambda lr: (lambda p: torch.optim.SGD(p, lr=lr)),
    "adam": lambda lr: (lambda p: torch.optim.Adam(p, lr=lr)),
}


def tune_learning_rate(name: str, problems: Sequence[Problem], steps: int,
                       grid: Sequence[float]) -> tuple[float, dict[float, float]]:
    """The grid learning rate with the lowest mean final loss on ``problems`` (non-finite = inf)."""
    scores = {}
    for lr in grid:
        make = BASELINES[name](lr)
        finals = torch.stack([torch_trajectory(make, p, steps)[-1] for p in problems])
        mean = float(finals.mean())
        scores[lr] = mean if mean == mean and mean < float("inf") else float("inf")
    return min(scores, key=scores.get), scores


def timed(fn: Callable[[], Tensor]) -> tuple[Tensor, float]:
    """Run ``fn`` and return its result with the process CPU seconds it took."""
    start = time.process_time()
    out = fn()
    return out, time.process_time() - start
