"""RL² (Duan et al. 2016): a recurrent policy that learns to explore and exploit across the
episodes of one task.

§2.2: the policy receives ``(s_t, a_{t-1}, r_{t-1}, d_{t-1})``; its hidden state is kept across the
episodes of a *trial* (one task) and reset only when a new task starts, so the GRU state is the
learned "fast" learner. §3: trained on the whole trial as one long episode; we use PPO (clipped
surrogate, Schulman et al. 2017 eq. 7) with GAE instead of the paper's TRPO, as the issue asks.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.distributions import Categorical

from metaloop.rl.returns import discounted_returns, gae, normalize


class RL2Policy(nn.Module):
    """GRU policy with a categorical action head and a value head (Duan et al. §4: GRU, 256 units)."""

    def __init__(self, obs_dim: int, num_actions: int, hidden: int = 256) -> None:
        super().__init__()
        self.obs_dim, self.num_actions, self.hidden = obs_dim, num_actions, hidden
        self.gru = nn.GRU(obs_dim + num_actions + 2, hidden)
        self.logits = nn.Linear(hidden, num_actions)
        self.value = nn.Linear(hidden, 1)  # predicts the return in normalized units (see PopArt)
        # Return statistics: values = head * value_std + value_mean. Identity (0, 1) unless the
        # trainer normalizes values, so policies saved before these buffers existed load unchanged.
        self.register_buffer("value_mean", torch.zeros(()))
        self.register_buffer("value_std", torch.ones(()))

    def initial_state(self, batch: int) -> Tensor:
        return torch.zeros(1, batch, self.hidden)

    def encode(self, obs: Tensor, prev_action: Tensor, prev_reward: Tensor, prev_done: Tensor) -> Tensor:
        """The RL² input ``[obs, one_hot(a_{t-1}), r_{t-1}, d_{t-1}]``; ``prev_action < 0`` = none."""
        one_hot = F.one_hot(prev_action.clamp_min(0), self.num_actions).to(obs.dtype)
        one_hot = one_hot * (prev_action >= 0).unsqueeze(-1)
        return torch.cat([obs, one_hot, prev_reward.unsqueeze(-1), prev_done.to(obs.dtype).unsqueeze(-1)], -1)

    def forward(self, inputs: Tensor, state: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """``inputs`` ``[T, B, in]`` from ``state`` ``[1, B, H]`` → (logits, values, final state)."""
        out, state = self.gru(inputs, state)
        return self.logits(out), self.value(out).squeeze(-1) * self.value_std + self.value_mean, state

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys,
                              unexpected_keys, error_msgs):
        # Weights saved before the return statistics existed: keep the identity (0, 1).
        for name in ("value_mean", "value_std"):
            state_dict.setdefault(prefix + name, getattr(self, name).clone())
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing_keys,
                                      unexpected_keys, error_msgs)


@torch.no_grad()
def popart_update(policy: RL2Policy, returns: Tensor, beta: float) -> None:
    """Move the return statistics towards this batch's and rescale the value head so that every
    value it outputs stays the same (PopArt, van Hasselt et al. 2016, eqs. 6-7).

    Why: a trial of n pulls has returns of order n (≈ 70 at n = 100, γ = 0.995) while the policy
    surrogate is of order 1; unnormalized, the value regression dominates the shared GRU's gradient
    (and the global norm clip), and a value head fitted at another horizon needs thousands of steps
    to reach the new scale. Normalized targets keep both losses of order 1.
    """
    old_mean, old_std = policy.value_mean.clone(), policy.value_std.clone()
    second = old_std**2 + old_mean**2
    mean = (1 - beta) * old_mean + beta * returns.mean()
    second = (1 - beta) * second + beta * returns.pow(2).mean()
    std = (second - mean**2).clamp_min(1e-8).sqrt()
    policy.value.weight.mul_(old_std / std)
    policy.value.bias.mul_(old_std).add_(old_mean - mean).div_(std)
    policy.value_mean.copy_(mean)
    policy.value_std.copy_(std)


@torch.no_grad()
def restart_value_head(policy: RL2Policy, rewards: Tensor, gamma: float) -> None:
    """Zero the value head and set the return statistics to those of ``rewards`` ``[T, B]``'s
    discounted returns-to-go, so every value starts at their mean.

    Why: a policy warm-started from another horizon has a value head fitted to returns of another
    scale (n = 10: ~5; n = 100: ~70). PopArt preserves outputs, so it would keep those wrong values;
    restarting gives a Monte Carlo baseline at once and leaves errors of order 1 to fit.
    """
    returns = discounted_returns(rewards, gamma)
    policy.value.weight.zero_()
    policy.value.bias.zero_()
    policy.value_mean.copy_(returns.mean())
    policy.value_std.copy_(returns.std().clamp_min(1e-8))


@dataclass
class TrialBatch:
    """One trial per task, time-major ``[T, B]`` (T = episodes × episode length)."""

    inputs: Tensor
    actions: Tensor
    log_probs: Tensor
    values: Tensor
    rewards: Tensor
    episode_starts: Tensor  # bool [T, B]: step t opens an episode (environment reset)


@torch.no_grad()
def run_trials(
    policy: RL2Policy, env, episodes: int, generator: torch.Generator, greedy: bool = False
) -> TrialBatch:
    """Roll out one trial per task of the batched ``env``: ``episodes`` episodes of
    ``env.episode_length`` steps. The hidden state starts at zero for the new tasks and is carried
    unchanged across episode boundaries (only the environment is reset there)."""
    batch = env.means.shape[0] if hasattr(env, "means") else env.batch_size
    state = policy.initial_state(batch)
    prev_a = torch.full((batch,), -1, dtype=torch.long)
    prev_r = torch.zeros(batch)
    prev_d = torch.zeros(batch, dtype=torch.bool)
    rec: dict[str, list[Tensor]] = {
        k: [] for k in ("inputs", "actions", "log_probs", "values", "rewards", "starts")
    }
    for _ in range(episodes):
        obs = env.reset()
        for t in range(env.episode_length):
            x = policy.encode(obs, prev_a, prev_r, prev_d)
            logits, value, state = policy(x.unsqueeze(0), state)
            dist = Categorical(logits=logits[0])
            if greedy:
                action = logits[0].argmax(-1)
            else:
                u = torch.rand(batch, 1, generator=generator)
                action = (dist.probs.cumsum(-1) < u).sum(-1).clamp_max(policy.num_actions - 1)
            obs, reward, done = env.step(action)
            for k, v in zip(
                rec,
                (x, action, dist.log_prob(action), value[0], reward, torch.full((batch,), t == 0)),
                strict=True,
            ):
                rec[k].append(v)
            prev_a, prev_r, prev_d = action, reward, done
    s = {k: torch.stack(v) for k, v in rec.items()}
    return TrialBatch(s["inputs"], s["actions"], s["log_probs"], s["values"], s["rewards"], s["starts"])


class RL2PPO:
    """PPO on whole trials: minibatches are sets of trials replayed from a zero hidden state,
    which reproduces the rollout's hidden states exactly (no truncated BPTT)."""

    def __init__(
        self,
        policy: RL2Policy,
        lr: float = 1e-3,
        gamma: float = 0.99,
        gae_lambda: float = 0.3,
        clip: float = 0.2,
        epochs: int = 4,
        minibatches: int = 4,
        value_coef: float = 0.5,
        entropy_coef: float = 0.01,
        max_grad_norm: float = 0.5,
        value_norm: float | None = None,
    ) -> None:
        """``value_norm``: PopArt step size for the return statistics (e.g. 0.1; None = raw
        returns, as the n = 10 presets were trained)."""
        if value_norm is not None and not 0.0 < value_norm <= 1.0:
            raise ValueError(f"value_norm must be in (0, 1] (a statistics step size) or None, "
                             f"got {value_norm}")
        self.value_norm = value_norm
        self.policy = policy
        self.optimizer = torch.optim.Adam(policy.parameters(), lr=lr)
        self.gamma, self.gae_lambda, self.clip = gamma, gae_lambda, clip
        self.epochs, self.minibatches = epochs, minibatches
        self.value_coef, self.entropy_coef, self.max_grad_norm = (
            value_coef,
            entropy_coef,
            max_grad_norm,
        )

    def update(self, trials: TrialBatch, generator: torch.Generator) -> dict[str, float]:
        # The trial is one MDP (§3): no episode boundary cuts the return or the advantage.
        advantages = gae(trials.rewards, trials.values, self.gamma, self.gae_lambda)
        returns = advantages + trials.values
        advantages = normalize(advantages)
        if self.value_norm is not None:
            popart_update(self.policy, returns, self.value_norm)
        # The value loss in the head's units: the raw squared error divided by std² (std = 1 without
        # normalization, so that case is unchanged).
        scale = self.policy.value_std.detach()
        batch = trials.actions.shape[1]
        stats = {"loss": 0.0, "entropy": 0.0, "clip_frac": 0.0}
        for _ in range(self.epochs):
            order = torch.randperm(batch, generator=generator)
            for idx in order.chunk(self.minibatches):
                logits, values, _ = self.policy(trials.inputs[:, idx], self.policy.initial_state(len(idx)))
                dist = Categorical(logits=logits)
                ratio = torch.exp(dist.log_prob(trials.actions[:, idx]) - trials.log_probs[:, idx])
                adv = advantages[:, idx]
                surrogate = torch.min(ratio * adv, ratio.clamp(1 - self.clip, 1 + self.clip) * adv)
                value_loss = ((values - returns[:, idx]) / scale).pow(2).mean()
                entropy = dist.entropy().mean()
                loss = -surrogate.mean() + self.value_coef * value_loss - self.entropy_coef * entropy
                self.optimizer.zero_grad()
                loss.backward()
                nn.utils.clip_grad_norm_(self.policy.parameters(), self.max_grad_norm)
                self.optimizer.step()
                stats["loss"] += float(loss.detach()) / (self.epochs * self.minibatches)
                stats["entropy"] += float(entropy.detach()) / (self.epochs * self.minibatches)
                stats["clip_frac"] += float(((ratio.detach() - 1).abs() > self.clip).float().mean()) / (
                    self.epochs * self.minibatches
                )
        return stats
