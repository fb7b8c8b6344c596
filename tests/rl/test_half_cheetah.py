"""HalfCheetah task families: per-task rewards by hand, batching, seeding, MAML-RL on top."""

import math

import pytest
import torch

pytest.importorskip("mujoco")
pytest.importorskip("gymnasium")

from metaloop.rl import MAMLRL, GaussianMLPPolicy  # noqa: E402
from metaloop.rl.half_cheetah import (  # noqa: E402
    CTRL_COST,
    HalfCheetahDirFamily,
    HalfCheetahVelFamily,
)


@pytest.mark.parametrize("family_cls", [HalfCheetahVelFamily, HalfCheetahDirFamily])
def test_reward_is_the_task_term_on_the_measured_velocity_minus_control_cost(family_cls):
    family = family_cls(horizon=4, seed=1)
    goals = family.sample_tasks(2, torch.Generator().manual_seed(0))
    env = family.make(goals, rollouts=3)
    env.reset()
    action = torch.randn(2, 3, 6, generator=torch.Generator().manual_seed(1)) * 0.8
    before = torch.tensor([e.data.qpos[0] for e in env.envs]).view(2, 3)
    _, reward, done = env.step(action)
    after = torch.tensor([e.data.qpos[0] for e in env.envs]).view(2, 3)
    velocity = (after - before) / env.envs[0].dt
    a = action.clamp(-1, 1)
    goal = goals[:, None, 0].double()
    task = -(velocity - goal).abs() if family_cls is HalfCheetahVelFamily else goal * velocity
    expected = task - CTRL_COST * a.double().pow(2).sum(-1)
    torch.testing.assert_close(reward.double(), expected, rtol=1e-5, atol=1e-5)
    assert not done.any()


def test_episodes_end_together_after_the_horizon_and_shapes_are_task_major():
    family = HalfCheetahVelFamily(horizon=3)
    env = family.make(torch.tensor([[0.5], [1.5]]), rollouts=2)
    obs = env.reset()
    assert obs.shape == (2, 2, 17)
    for t in range(3):
        obs, reward, done = env.step(torch.zeros(2, 2, 6))
        assert reward.shape == (2, 2) and done.all() == (t == 2)
    with pytest.raises(ValueError, match="action must be"):
        env.step(torch.zeros(2, 6))
    with pytest.raises(ValueError, match="goals must be"):
        family.make(torch.zeros(2), rollouts=2)


def test_tasks_and_rollouts_are_reproducible_by_seed():
    def run(seed):
        family = HalfCheetahDirFamily(horizon=5, seed=seed)
        goals = family.sample_tasks(3, torch.Generator().manual_seed(7))
        env = family.make(goals, rollouts=2)
        obs = [env.reset()]
        for _ in range(5):
            obs.append(env.step(torch.full((3, 2, 6), 0.3))[0])
        return goals, torch.stack(obs)

    g1, o1 = run(0)
    g2, o2 = run(0)
    _, o3 = run(1)
    assert torch.equal(g1, g2) and torch.equal(o1, o2)
    assert set(g1.flatten().tolist()) <= {-1.0, 1.0}
    assert not torch.equal(o1, o3)  # another seed: other initial-state noise


def test_velocity_goals_lie_in_the_paper_range():
    goals = HalfCheetahVelFamily().sample_tasks(200, torch.Generator().manual_seed(0))
    assert goals.shape == (200, 1) and 0 <= goals.min() and goals.max() <= 2
    with pytest.raises(ValueError, match="low < high"):
        HalfCheetahVelFamily(low=2.0, high=1.0)


def test_maml_rl_meta_step_runs_on_half_cheetah():
    torch.manual_seed(0)
    family = HalfCheetahVelFamily(horizon=5)
    learner = MAMLRL(GaussianMLPPolicy(17, 6, (16,)), family, rollouts=2, cg_iters=3)
    g = torch.Generator().manual_seed(0)
    before = [p.clone() for p in learner.policy.parameters()]
    info = learner.meta_step(family.sample_tasks(2, g), g)
    assert all(math.isfinite(v) for v in info.values())
    assert any(not torch.equal(a, b) for a, b in zip(before, learner.policy.parameters(), strict=True))
