import pytest
import torch
from torch.distributions import Categorical

from metaloop.rl.bandits import BernoulliBanditFamily
from metaloop.rl.rl2 import RL2PPO, RL2Policy, popart_update, restart_value_head, run_trials


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


@pytest.mark.parametrize("value_norm", [None, 0.3])
def test_ppo_learns_two_armed_bandit_quickly(value_norm):
    # a fixed, easy task distribution: arm 1 always pays, arm 0 never; regret must fall to ~0
    from metaloop.rl.bandits import BatchedBernoulliBandit

    torch.manual_seed(0)
    policy = RL2Policy(1, 2, hidden=16)
    ppo = RL2PPO(policy, lr=1e-2, entropy_coef=0.0, minibatches=1, value_norm=value_norm)
    gen = torch.Generator().manual_seed(0)
    means = torch.tensor([[0.0, 1.0]]).expand(16, 2)
    regrets = []
    for _ in range(15):
        env = BatchedBernoulliBandit(means, gen)
        trials = run_trials(policy, env, 5, gen)
        ppo.update(trials, gen)
        regrets.append(float(env.regret(trials.actions.T).mean()))
    assert regrets[0] > 1.5 and sum(regrets[-3:]) / 3 < 0.3


def test_popart_keeps_every_value_and_tracks_the_return_scale():
    torch.manual_seed(0)
    policy = RL2Policy(1, 3, hidden=8).double()
    x = torch.randn(6, 4, 1 + 3 + 2, dtype=torch.float64)
    before = policy(x, policy.initial_state(4).double())[1]
    returns = 70 + 5 * torch.randn(500, dtype=torch.float64)
    for _ in range(40):
        popart_update(policy, returns, beta=0.3)
        torch.testing.assert_close(policy(x, policy.initial_state(4).double())[1], before,
                                   rtol=1e-10, atol=1e-10)  # outputs preserved at every update
    assert abs(float(policy.value_mean) - 70) < 0.5
    assert abs(float(policy.value_std) - 5) < 0.5  # the EMA of the second moment converges


def test_normalized_value_loss_is_the_raw_error_in_std_units():
    # Targets of scale 70: with normalization the head sees errors of order 1, not 70**2.
    torch.manual_seed(0)
    env_family = BernoulliBanditFamily(3)
    gen = torch.Generator().manual_seed(0)
    stats = {}
    for norm in (None, 0.5):
        torch.manual_seed(0)
        policy = RL2Policy(1, 3, hidden=8)
        ppo = RL2PPO(policy, lr=1e-3, value_coef=1.0, entropy_coef=0.0, epochs=1, minibatches=1,
                     gamma=1.0, gae_lambda=1.0, value_norm=norm)
        g = torch.Generator().manual_seed(1)
        env = env_family.make(env_family.sample_tasks(8, g), g)
        trials = run_trials(policy, env, 100, g)
        stats[norm] = ppo.update(trials, gen)["loss"]
    assert stats[None] > 100 and stats[0.5] < 10


def test_old_policies_without_return_statistics_still_load():
    policy = RL2Policy(1, 3, hidden=8)
    old = {k: v for k, v in policy.state_dict().items() if not k.startswith("value_")}
    fresh = RL2Policy(1, 3, hidden=8)
    fresh.load_state_dict(old)  # strict, yet the identity statistics stay
    assert float(fresh.value_mean) == 0.0 and float(fresh.value_std) == 1.0
    policy.value_mean.fill_(3.0)
    fresh.load_state_dict(policy.state_dict())
    assert float(fresh.value_mean) == 3.0
    with pytest.raises(ValueError, match="value_norm must be in"):
        RL2PPO(policy, value_norm=2.0)


def test_restart_value_head_predicts_the_mean_discounted_return():
    torch.manual_seed(0)
    policy = RL2Policy(1, 3, hidden=8)
    rewards = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])  # [T=3, B=2]
    restart_value_head(policy, rewards, gamma=0.5)
    # returns-to-go by hand: column 0: 1 + 0 + .25 = 1.25, 0 + .5 = .5, 1;
    # column 1: 0 + .5 + .25 = .75, 1.5, 1
    by_hand = torch.tensor([1.25, 0.5, 1.0, 0.75, 1.5, 1.0])
    assert float(policy.value_mean) == pytest.approx(float(by_hand.mean()))
    assert float(policy.value_std) == pytest.approx(float(by_hand.std()))
    values = policy(torch.randn(4, 2, 6), policy.initial_state(2))[1]
    torch.testing.assert_close(values, torch.full((4, 2), float(by_hand.mean())))
