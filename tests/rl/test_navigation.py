import pytest
import torch

from metaloop.rl.navigation import BatchedNavigation2D, Navigation2DFamily


def test_tasks_reproducible_by_seed_and_in_square():
    fam = Navigation2DFamily()
    a = fam.sample_tasks(50, torch.Generator().manual_seed(7))
    b = fam.sample_tasks(50, torch.Generator().manual_seed(7))
    c = fam.sample_tasks(50, torch.Generator().manual_seed(8))
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert a.min() >= -0.5 and a.max() <= 0.5


def test_dynamics_clip_reward_and_early_stop_by_hand():
    goals = torch.tensor([[0.3, 0.0], [0.05, 0.0]])
    env = BatchedNavigation2D(goals, rollouts=1, horizon=100, action_scale=1.0)
    env.reset()
    obs, r, done = env.step(torch.tensor([[[1.0, -0.02]], [[0.05, 0.0]]]))
    # task 0: clipped to (0.1, -0.02): distance to (0.3, 0) = sqrt(0.04 + 0.0004)
    assert torch.allclose(obs[0, 0], torch.tensor([0.1, -0.02]))
    assert torch.isclose(r[0, 0], -torch.tensor(0.0404).sqrt())
    # task 1 reached its goal: reward -0, done, and it stays put afterwards earning 0
    assert done.tolist() == [[False], [True]] and r[1, 0] == 0
    obs2, r2, _ = env.step(torch.full((2, 1, 2), 0.1))
    assert torch.allclose(obs2[1, 0], torch.tensor([0.05, 0.0])) and r2[1, 0] == 0
    assert torch.allclose(obs2[0, 0], torch.tensor([0.2, 0.08]))


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match="low < high"):
        Navigation2DFamily(low=1.0, high=0.0)
    with pytest.raises(ValueError, match=r"\[tasks, 2\]"):
        BatchedNavigation2D(torch.zeros(3), rollouts=2)


def test_gymnasium_env_matches_batched_env_and_is_seeded():
    pytest.importorskip("gymnasium")
    import numpy as np

    from metaloop.rl.envs import Navigation2DEnv

    env = Navigation2DEnv(action_scale=1.0)
    _, info_a = env.reset(seed=3)
    _, info_b = Navigation2DEnv(action_scale=1.0).reset(seed=3)
    assert np.array_equal(info_a["goal"], info_b["goal"])
    goal = torch.tensor(info_a["goal"], dtype=torch.float64)[None]
    batched = BatchedNavigation2D(goal, rollouts=1, action_scale=1.0)
    batched.reset()
    actions = np.random.default_rng(0).normal(scale=0.2, size=(30, 2))
    total_gym = total_batched = 0.0
    for a in actions:
        obs, r, terminated, truncated, _ = env.step(a)
        bobs, br, _ = batched.step(torch.tensor(a)[None, None])
        total_gym += r
        total_batched += float(br)
        assert np.allclose(obs, bobs[0, 0].numpy(), atol=1e-6)
    assert total_gym == pytest.approx(total_batched, rel=1e-6)


def test_normalized_actions_are_scaled_then_clipped_as_rllab_normalize():
    # MAML's released code: the policy acts in [-1, 1] units, times 0.1, clipped to [-0.1, 0.1]
    env = BatchedNavigation2D(torch.tensor([[0.4, 0.4]]), rollouts=1, action_scale=0.1)
    env.reset()
    obs, _, _ = env.step(torch.tensor([[[0.5, -3.0]]]))
    assert torch.allclose(obs[0, 0], torch.tensor([0.05, -0.1]))
    assert Navigation2DFamily(action_scale=0.1).make(torch.zeros(2, 2), 3).action_scale == 0.1
    with pytest.raises(ValueError, match="action_scale"):
        Navigation2DFamily(action_scale=0.0)


def test_gymnasium_env_with_normalized_actions_matches_batched_env():
    pytest.importorskip("gymnasium")
    from metaloop.rl.envs import Navigation2DEnv

    env = Navigation2DEnv(goal=[0.3, -0.2], action_scale=0.1)
    assert env.action_space.high.tolist() == pytest.approx([1.0, 1.0])
    batched = BatchedNavigation2D(torch.tensor([[0.3, -0.2]], dtype=torch.float64), rollouts=1,
                                  action_scale=0.1)
    env.reset(seed=0)
    batched.reset()
    for a in ([0.7, -1.5], [2.0, 0.2], [-0.3, 0.0]):
        obs, r, *_ = env.step(a)
        bobs, br, _ = batched.step(torch.tensor(a, dtype=torch.float64)[None, None])
        assert obs.tolist() == pytest.approx(bobs[0, 0].tolist(), abs=1e-6)
        assert r == pytest.approx(float(br), rel=1e-6)
