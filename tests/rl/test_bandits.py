import pytest
import torch

from metaloop.rl.bandit_references import (
    REFERENCES,
    gittins_table,
    play,
    thompson_policy,
    ucb1_policy,
)
from metaloop.rl.bandits import BatchedBernoulliBandit, BernoulliBanditFamily


def test_regret_hand_computed():
    env = BatchedBernoulliBandit(torch.tensor([[0.2, 0.9, 0.5]]))
    arms = torch.tensor([[0, 1, 2, 1]])
    assert env.regret(arms).item() == pytest.approx(0.7 + 0 + 0.4 + 0)


def test_pulls_reproducible_by_seed_and_match_means():
    fam = BernoulliBanditFamily(3)
    means = fam.sample_tasks(4, torch.Generator().manual_seed(0))
    assert torch.equal(means, fam.sample_tasks(4, torch.Generator().manual_seed(0)))
    env = BatchedBernoulliBandit(torch.tensor([[0.1, 0.8]]).expand(20000, 2))
    r1 = env.pull(torch.ones(20000, dtype=torch.long), torch.Generator().manual_seed(1))
    r2 = env.pull(torch.ones(20000, dtype=torch.long), torch.Generator().manual_seed(1))
    assert torch.equal(r1, r2) and r1.mean().item() == pytest.approx(0.8, abs=0.01)


def test_bad_bandits_raise():
    with pytest.raises(ValueError, match="at least 2 arms"):
        BernoulliBanditFamily(1)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        BatchedBernoulliBandit(torch.tensor([[0.5, 1.5]]))


def test_gittins_index_matches_published_tables():
    # Gittins (1989) tables, Bernoulli arm with uniform Beta(1, 1) prior: 0.7029 (γ=0.9), 0.8699 (γ=0.99)
    assert gittins_table(60, 0.9, 2000)[0, 0] == pytest.approx(0.7029, abs=5e-4)
    assert gittins_table(150, 0.99, 2000)[0, 0] == pytest.approx(0.8699, abs=5e-4)
    t = gittins_table(50, 0.9, 2000)
    # the index exceeds the posterior mean a / (a + b) (value of information) ...
    a, b = torch.meshgrid(torch.arange(1, 20), torch.arange(1, 20), indexing="ij")
    assert (torch.from_numpy(t[:19, :19]) > a / (a + b)).all()
    # ... and grows with successes, shrinks with failures
    assert t[3, 2] > t[2, 2] > t[2, 3]


def test_ucb1_tries_every_arm_first():
    s = torch.zeros(1, 4)
    f = torch.zeros(1, 4)
    seen = []
    gen = torch.Generator().manual_seed(0)
    for t in range(4):
        a = int(ucb1_policy(s, f, t + 1, gen))
        seen.append(a)
        s[0, a] += 1
    assert sorted(seen) == [0, 1, 2, 3]


def test_references_ordering_on_5_arms_100_pulls():
    fam = BernoulliBanditFamily(5)
    gen = torch.Generator().manual_seed(0)
    env = fam.make(fam.sample_tasks(400, gen), gen)
    regret = {k: env.regret(play(REFERENCES[k](100), env, 100, gen)).mean().item() for k in REFERENCES}
    # random regret is 100 (E max − E mean) = 100 (5/6 − 1/2) ≈ 33.3
    assert regret["random"] == pytest.approx(100 / 3, rel=0.1)
    assert regret["gittins"] < regret["thompson"] < regret["ucb1"] < regret["random"]


def test_thompson_is_reproducible_by_generator():
    s = torch.tensor([[3.0, 1.0, 0.0]])
    f = torch.tensor([[1.0, 3.0, 0.0]])
    a = [int(thompson_policy(s, f, 1, torch.Generator().manual_seed(i))) for i in range(5)]
    b = [int(thompson_policy(s, f, 1, torch.Generator().manual_seed(i))) for i in range(5)]
    assert a == b
