import math

import torch

from metaloop.learned.coordinatewise import SGDRule
from metaloop.learned.l2o import Problem, rule_trajectory, torch_trajectory, tune_learning_rate


def quadratic(a: float) -> Problem:
    return Problem(lambda th: 0.5 * a * th.pow(2).sum(), torch.ones(3, dtype=torch.float64))


def test_tuning_picks_the_exact_step_and_marks_divergence_inf():
    problems = [quadratic(4.0), quadratic(4.0)]
    lr, scores = tune_learning_rate("sgd", problems, steps=3, grid=[0.05, 0.25, 1.0, 1e6])
    assert lr == 0.25  # 1/a: the minimum is reached in one step
    assert scores[0.25] == 0.0
    # lr = 0.05: theta_3 = 0.8^3, loss = 0.5 * 4 * 3 * 0.8^6
    assert math.isclose(scores[0.05], 6 * 0.8**6, rel_tol=1e-12)
    assert scores[1e6] == float("inf") or scores[1e6] > 1e20


def test_torch_sgd_and_sgd_rule_trajectories_agree():
    p = quadratic(2.0)
    a = torch_trajectory(lambda params: torch.optim.SGD(params, lr=0.1), p, 5)
    b = rule_trajectory(SGDRule(0.1), p, 5)
    torch.testing.assert_close(a, b, rtol=0, atol=1e-15)
    torch.testing.assert_close(a, 3.0 * 0.8 ** (2 * torch.arange(6, dtype=torch.float64)))
