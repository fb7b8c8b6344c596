"""MAML for reinforcement learning (Finn et al. 2017, §3.2 Alg. 3, §5.3, App. A.2).

Inner loop: one (or more) vanilla policy-gradient steps per task with a linear feature baseline,
``θ'_i = θ − α ∇_θ L_i(θ)`` on rollouts of the pre-update policy. Outer loop: TRPO on the
post-update surrogate ``E[π_{θ'(θ)}(a|s) / π_{θ'_old}(a|s) · Â]`` with the KL between adapted
policies as trust region, differentiating *through* the inner step (second order, as in the
paper: the Fisher-vector products are Hessian-vector products through θ'(θ)).

Weights are plain dicts passed to ``torch.func.functional_call`` (see policies.py), the same
representation as the shared functional core (:mod:`metaloop.core.inner`), whose ``sgd_update``
takes the inner step. The tasks of a meta-batch are one leading dimension of every weight
(``expand_params``), so summing the per-task losses and differentiating once gives every task its
own gradient in one backward pass: the batched strategy of the core, written for trajectories.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn
from torch.distributions import Normal, kl_divergence

from metaloop.core.inner import sgd_update
from metaloop.rl.policies import Params, expand_params, params_of, task_distribution
from metaloop.rl.rollout import Trajectories, rollout, task_advantages
from metaloop.rl.trpo import trust_region_step


@dataclass
class MetaBatch:
    """Rollouts of one meta-iteration: ``pre[j]`` = (trajectories, advantages) used by inner step
    j, ``post`` those of the adapted policies, ``old`` their action distributions (detached)."""

    pre: list[tuple[Trajectories, Tensor]]
    post: Trajectories
    post_advantages: Tensor
    old: Normal
    #: action distributions (detached) of ``pre[1:]``: the policies after 1 .. K−1 inner steps
    pre_old: list[Normal] = field(default_factory=list)


class MAMLRL:
    """MAML-RL around a user's Gaussian policy module (its parameters are the meta-parameters).

    ``inner_steps=0`` turns the same TRPO loop into plain multi-task training of one policy, the
    "pretrained" baseline of MAML §5.3. ``inner_lr`` may give one step size per inner step (the
    released code adapts with 0.5 then 0.25 at test time; meta-training more than one step with
    those sizes lets the meta-objective see the later steps, which one-step training leaves free
    to overshoot). ``meta_objective="every_step"`` scores the policy after *each* inner step (mean
    of the surrogates and of the KLs) instead of after the last only: with the last only, the
    meta-learner is free to make the first step catastrophic and let the second repair it, which it
    did (docs/rl.md, two meta-trained steps).
    """

    def __init__(
        self,
        policy: nn.Module,
        family,
        inner_lr: float | Sequence[float] = 0.1,
        inner_steps: int = 1,
        rollouts: int = 20,
        gamma: float = 0.99,
        gae_lambda: float = 1.0,
        first_order: bool = False,
        max_kl: float = 1e-2,
        cg_iters: int = 10,
        cg_damping: float = 1e-5,
        ls_max_steps: int = 15,
        ls_backtrack: float = 0.8,
        meta_objective: str = "last",
    ) -> None:
        if meta_objective not in ("last", "every_step"):
            raise ValueError(f"meta_objective must be 'last' or 'every_step', got {meta_objective!r}")
        if inner_steps < 0:
            raise ValueError(f"inner_steps must be >= 0, got {inner_steps}")
        if rollouts < 2:
            raise ValueError(f"rollouts must be >= 2 (the baseline is fitted on them), got {rollouts}")
        lrs = [float(inner_lr)] * inner_steps if isinstance(inner_lr, int | float) else list(inner_lr)
        if len(lrs) != inner_steps:
            raise ValueError(
                f"inner_lr gives {len(lrs)} step sizes for inner_steps={inner_steps}; give one "
                "number for every step, or a single number"
            )
        self.policy, self.family = policy, family
        self.inner_lrs, self.inner_steps, self.rollouts = lrs, inner_steps, rollouts
        self.gamma, self.gae_lambda, self.first_order = gamma, gae_lambda, first_order
        self.meta_objective = meta_objective
        self.trpo = dict(
            max_kl=max_kl,
            cg_iters=cg_iters,
            cg_damping=cg_damping,
            ls_max_steps=ls_max_steps,
            ls_backtrack=ls_backtrack,
        )

    # ---- inner loop ---------------------------------------------------------------------------
    def _dist(self, params: Params, traj: Trajectories) -> Normal:
        return task_distribution(self.policy, params, traj.task_first(traj.obs))

    def inner_loss(self, params: Params, traj: Trajectories, advantages: Tensor) -> Tensor:
        """REINFORCE loss with baseline per task, ``[tasks]`` (MAML eq. 4 with Â for R)."""
        logp = self._dist(params, traj).log_prob(traj.task_first(traj.actions)).sum(-1)
        adv, mask = traj.task_first(advantages), traj.task_first(traj.mask)
        return -(logp * adv * mask).sum((1, 2)) / mask.sum((1, 2))

    def adapt(
        self, params: Params, traj: Trajectories, advantages: Tensor, lr: float, create_graph: bool
    ) -> Params:
        """One policy-gradient step per task; ``params`` carry a leading task dimension."""
        with torch.enable_grad():
            loss = self.inner_loss(params, traj, advantages).sum()
            grads = torch.autograd.grad(loss, list(params.values()), create_graph=create_graph)
        return sgd_update(params, dict(zip(params, grads, strict=True)), dict.fromkeys(params, lr))

    def sample(self, params: Params, goals: Tensor, rollouts: int, generator: torch.Generator):
        traj = rollout(self.family.make(goals, rollouts), self.policy, params, generator)
        return traj, task_advantages(traj, self.gamma, self.gae_lambda)

    # ---- outer loop ---------------------------------------------------------------------------
    def collect(self, goals: Tensor, generator: torch.Generator) -> MetaBatch:
        """Pre-update rollouts for each inner step, then post-update rollouts (MAML Alg. 3)."""
        theta = {k: v.detach().requires_grad_() for k, v in params_of(self.policy).items()}
        adapted = expand_params(theta, goals.shape[0])
        pre, pre_old = [], []
        for step, lr in enumerate(self.inner_lrs):
            traj, adv = self.sample(adapted, goals, self.rollouts, generator)
            pre.append((traj, adv))
            if step > 0:
                pre_old.append(self._detached_dist(adapted, traj))
            adapted = self.adapt(adapted, traj, adv, lr, False)
            adapted = {k: v.detach().requires_grad_() for k, v in adapted.items()}
        post, post_adv = self.sample(adapted, goals, self.rollouts, generator)
        return MetaBatch(pre, post, post_adv, self._detached_dist(adapted, post), pre_old)

    def _detached_dist(self, params: Params, traj: Trajectories) -> Normal:
        with torch.no_grad():
            dist = self._dist(params, traj)
        return Normal(dist.loc.detach(), dist.scale.detach())

    def _surrogate(
        self, params: Params, traj: Trajectories, advantages: Tensor, old: Normal
    ) -> tuple[Tensor, Tensor]:
        """TRPO's (importance-weighted loss, mean KL to ``old``) of ``params`` on ``traj``."""
        dist = self._dist(params, traj)
        actions = traj.task_first(traj.actions)
        ratio = torch.exp(dist.log_prob(actions).sum(-1) - old.log_prob(actions).sum(-1))
        adv, mask = traj.task_first(advantages), traj.task_first(traj.mask)
        denom = mask.sum((1, 2))
        loss = (-(ratio * adv * mask).sum((1, 2)) / denom).mean()
        kl = ((kl_divergence(old, dist).sum(-1) * mask).sum((1, 2)) / denom).mean()
        return loss, kl

    def objective(self, theta: Params, batch: MetaBatch, create_graph: bool) -> tuple[Tensor, Tensor]:
        """(surrogate loss, mean KL) of the adapted policies θ'_i(θ) on the post-update rollouts
        (``every_step``: averaged with those after each earlier inner step, on the rollouts that
        step's policy drew); ``create_graph`` keeps the inner steps differentiable (second order)."""
        p = expand_params(theta, batch.post.obs.shape[1])
        scored = []
        for step, ((traj, a), lr) in enumerate(zip(batch.pre, self.inner_lrs, strict=True)):
            if step > 0 and self.meta_objective == "every_step":
                scored.append(self._surrogate(p, traj, a, batch.pre_old[step - 1]))
            p = self.adapt(p, traj, a, lr, create_graph)
        scored.append(self._surrogate(p, batch.post, batch.post_advantages, batch.old))
        losses, kls = zip(*scored, strict=True)
        return torch.stack(losses).mean(), torch.stack(kls).mean()

    def meta_step(self, goals: Tensor, generator: torch.Generator) -> dict[str, float]:
        """One TRPO meta-update on a meta-batch of tasks; updates the policy in place."""
        batch = self.collect(goals, generator)
        theta = {k: v.detach().requires_grad_() for k, v in params_of(self.policy).items()}

        def evaluate(candidate: Params) -> tuple[float, float]:
            th = {k: v.detach().requires_grad_() for k, v in candidate.items()}
            loss, kl = self.objective(th, batch, create_graph=False)
            return float(loss.detach()), float(kl.detach())

        loss, kl = self.objective(theta, batch, create_graph=not self.first_order)
        new, info = trust_region_step(loss, kl, theta, evaluate, **self.trpo)
        with torch.no_grad():
            for k, v in self.policy.named_parameters():
                v.copy_(new[k])
        info["post_return"] = float(batch.post.episode_returns().mean())
        if batch.pre:
            info["pre_return"] = float(batch.pre[0][0].episode_returns().mean())
        for step, (traj, _) in enumerate(batch.pre[1:], start=1):
            info[f"return_after_{step}"] = float(traj.episode_returns().mean())
        return info

    # ---- evaluation ---------------------------------------------------------------------------
    def evaluate_adaptation(
        self, goals: Tensor, lrs: Sequence[float], rollouts: int, generator: torch.Generator
    ) -> Tensor:
        """Mean return per task before adaptation and after each of ``len(lrs)`` policy-gradient
        steps (fresh rollouts of the current policy before each step), ``[len(lrs)+1, tasks]``."""
        params = expand_params(
            {k: v.detach().requires_grad_() for k, v in params_of(self.policy).items()},
            goals.shape[0],
        )
        out = []
        for lr in [*lrs, None]:
            traj, adv = self.sample(params, goals, rollouts, generator)
            out.append(traj.episode_returns().mean(dim=1))
            if lr is not None:
                params = {
                    k: v.detach().requires_grad_()
                    for k, v in self.adapt(params, traj, adv, lr, False).items()
                }
        return torch.stack(out)
