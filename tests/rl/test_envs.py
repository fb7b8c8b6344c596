import importlib
import sys

import numpy as np
import pytest
import torch

gym = pytest.importorskip("gymnasium")

from metaloop.rl.classic_control import CartPoleFamily, PendulumFamily, make_vector_env  # noqa: E402
from metaloop.rl.envs import BernoulliBanditEnv, Navigation2DEnv  # noqa: E402


def _run(env, actions, seed):
    obs, _ = env.reset(seed=seed)
    out = [obs]
    for a in actions:
        obs, *_ = env.step(a)
        out.append(obs)
    return np.stack(out)


def test_cartpole_family_reproducible_and_physics_matter():
    fam = CartPoleFamily()
    tasks = fam.sample_tasks(2, torch.Generator().manual_seed(0))
    assert tasks == fam.sample_tasks(2, torch.Generator().manual_seed(0))
    actions = [1] * 10
    a = _run(fam.make(tasks[0]), actions, seed=4)
    b = _run(fam.make(tasks[0]), actions, seed=4)
    c = _run(fam.make(tasks[1]), actions, seed=4)
    assert np.array_equal(a, b)
    assert np.array_equal(a[0], c[0]) and not np.allclose(a[-1], c[-1])  # same start, other physics
    env = fam.make({"length": 0.8, "masspole": 0.3}).unwrapped
    assert env.polemass_length == pytest.approx(0.24) and env.total_mass == pytest.approx(1.3)


def test_pendulum_family_changes_dynamics_and_vector_env_keeps_task_order():
    fam = PendulumFamily()
    tasks = [{"m": 0.5, "l": 0.5}, {"m": 1.5, "l": 1.5}]
    venv = make_vector_env(fam, tasks)
    obs, _ = venv.reset(seed=[1, 1])
    assert np.array_equal(obs[0], obs[1])
    for _ in range(5):
        obs, *_ = venv.step(np.zeros((2, 1), np.float32))
    assert not np.allclose(obs[0], obs[1])
    assert venv.envs[1].unwrapped.m == 1.5


def test_bad_family_ranges_raise():
    with pytest.raises(ValueError, match="no parameter"):
        CartPoleFamily(gravity=(1.0, 2.0))
    with pytest.raises(ValueError, match="0 < low <= high"):
        PendulumFamily(m=(2.0, 1.0))


def test_bandit_env_task_persists_until_new_task_and_is_seeded():
    env = BernoulliBanditEnv(arms=4)
    _, info = env.reset(seed=0)
    _, info2 = env.reset()
    assert np.array_equal(info["means"], info2["means"])
    _, info3 = env.reset(options={"new_task": True})
    assert not np.array_equal(info["means"], info3["means"])
    rewards = [BernoulliBanditEnv(means=[0.0, 1.0]).step(1)[1] for _ in range(3)]
    assert rewards == [1.0, 1.0, 1.0]
    with pytest.raises(ValueError, match="arm index"):
        env.step(7)


def test_navigation_env_terminates_at_goal():
    env = Navigation2DEnv(goal=[0.05, -0.05])
    env.reset(seed=0)
    _, r, terminated, truncated, _ = env.step(np.array([0.5, -0.5]))  # x 0.1 (normalized)
    assert terminated and not truncated and r == pytest.approx(0.0, abs=1e-12)


def test_missing_gymnasium_error_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "gymnasium", None)
    import metaloop.rl.gym_compat as compat

    with pytest.raises(ImportError, match=r"pip install metaloop\[rl\]"):
        importlib.reload(compat).require_gymnasium()
