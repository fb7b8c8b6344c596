import torch
from torch.distributions import Categorical

from metaloop.rl.bandits import BernoulliBanditFamily
from metaloop.rl.rl2 import RL2PPO, RL2Policy, run_trials


class CountingEnv:
    """Three-step episodes; observation = step index, reward = action (makes states nonzero)."""

    episode_length = 3

    def __init__(self, batch_size: int) -> None:
        self.batch_size = batch_size
        self.t = 0

    def reset(self):
        self.t = 0
        return torch.zeros(self.batch_size, 1)

    def step(self, action):
        self.t += 1
        done = torch.full((self.batch_size,), self.t == self.episode_length)
        return torch.full((self.batch_size, 1), float(self.t)), action.float(), done


class SpyPolicy(RL2Policy):
    def __init__(self, *a, **k):
        super().__init__(*a, **k)
        self.states_in: list[torch.Tensor] = []
        self.states_out: list[torch.Tensor] = []

    def forward(self, inputs, state):
        self.states_in.append(state.clone())
        logits, values, new = super().forward(inputs, state)
        self.states_out.append(new.clone())
        return logits, values, new


def test_hidden_state_persists_across_episodes_and_resets_between_tasks():
    torch.manual_seed(0)
    policy = SpyPolicy(1, 2, hidden=16)
    gen = torch.Generator().manual_seed(0)
    run_trials(policy, CountingEnv(4), episodes=2, generator=gen)  # task batch 1: 6 steps
    run_trials(policy, CountingEnv(4), episodes=2, generator=gen)  # task batch 2
    ins, outs = policy.states_in, policy.states_out
    assert len(ins) == 12
    assert torch.equal(ins[0], torch.zeros(1, 4, 16)) and torch.equal(ins[6], torch.zeros(1, 4, 16))
    for t in range(1, 6):  # includes t = 3, the first step of the second episode
        assert torch.equal(ins[t], outs[t - 1]) and ins[t].abs().sum() > 0
    for t in range(7, 12):
        assert torch.equal(ins[t], outs[t - 1])
    assert outs[5].abs().sum() > 0  # the state that was dropped at the task boundary was not zero


def test_input_is_obs_prev_action_reward_done():
    policy = RL2Policy(1, 3, hidden=8)
    gen = torch.Generator().manual_seed(0)
    trials = run_trials(policy, CountingEnv(2), episodes=2, generator=gen)
    x, a = trials.inputs, trials.actions
    assert torch.equal(x[0], torch.zeros(2, 6))  # obs 0, no previous action/reward/done
    for t in range(1, 6):
        one_hot = torch.nn.functional.one_hot(a[t - 1], 3).float()
        assert torch.equal(x[t, :, 1:4], one_hot)
        assert torch.equal(x[t, :, 4], a[t - 1].float())  # reward of CountingEnv = action
        assert torch.equal(x[t, :, 5], torch.full((2,), float(t % 3 == 0)))  # done after step 3
    assert trials.episode_starts[:, 0].tolist() == [True, False, False, True, False, False]


def test_replaying_whole_trials_reproduces_rollout_log_probs():
    torch.manual_seed(0)
    fam = BernoulliBanditFamily(4)
    gen = torch.Generator().manual_seed(0)
    policy = RL2Policy(1, 4, hidden=32)
    trials = run_trials(policy, fam.make(fam.sample_tasks(8, gen), gen), episodes=12, generator=gen)
    logits, values, _ = policy(trials.inputs, policy.initial_state(8))
    logp = Categorical(logits=logits).log_prob(trials.actions)
    assert torch.allclose(logp, trials.log_probs, atol=1e-6)
    assert torch.allclose(values, trials.values, atol=1e-6)


def test_trials_reproducible_by_seed():
    fam = BernoulliBanditFamily(3)
    policy = RL2Policy(1, 3, hidden=8)
    outs = []
    for _ in range(2):
        gen = torch.Generator().manual_seed(5)
        env = fam.make(fam.sample_tasks(4, gen), gen)
        outs.append(run_trials(policy, env, 5, gen))
    assert torch.equal(outs[0].actions, outs[1].actions)
    assert torch.equal(outs[0].rewards, outs[1].rewards)


def test_ppo_learns_two_armed_bandit_quickly():
    # a fixed, easy task distribution: arm 1 always pays, arm 0 never; regret must fall to ~0
    from metaloop.rl.bandits import BatchedBernoulliBandit

    torch.manual_seed(0)
    policy = RL2Policy(1, 2, hidden=16)
    ppo = RL2PPO(policy, lr=1e-2, entropy_coef=0.0, minibatches=1)
    gen = torch.Generator().manual_seed(0)
    means = torch.tensor([[0.0, 1.0]]).expand(16, 2)
    regrets = []
    for _ in range(15):
        env = BatchedBernoulliBandit(means, gen)
        trials = run_trials(policy, env, 5, gen)
        ppo.update(trials, gen)
        regrets.append(float(env.regret(trials.actions.T).mean()))
    assert regrets[0] > 1.5 and sum(regrets[-3:]) / 3 < 0.3
