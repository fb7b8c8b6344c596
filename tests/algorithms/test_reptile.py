import copy

import pytest
import torch

from metaloop.algorithms.reptile import Reptile, minibatch_schedule
from metaloop.core.gradcheck import clone_adapt, meta_gradient, relative_error
from tests.core.optim_fixtures import bn_mlp, sinusoid_batch


def reference_phis(net, algo, batch):
    """Graph-free clone-style SGD per task (Nichol et al. 2018, Alg. 2 inner loop)."""
    out = []
    for ep in batch:
        weights = {n: p.detach().requires_grad_() for n, p in net.named_parameters()}
        _, phi = clone_adapt(
            net,
            weights,
            algo.adapted_names,
            algo.inner_lrs(),
            algo.loss,
            ep.support_x,
            ep.support_y,
            algo.inner_steps,
            create_graph=False,
        )
        out.append(phi)
    return out


@pytest.mark.parametrize("strategy", ["loop", "vmap"])
def test_meta_gradient_is_theta_minus_mean_adapted(strategy):
    net = bn_mlp()
    algo = Reptile(net, inner_lr=0.05, inner_steps=4, task="regression", strategy=strategy)
    batch = sinusoid_batch(3, 5, 6)
    names = [n for n, _ in net.named_parameters()]
    phis = reference_phis(net, algo, batch)
    expected = [
        p.detach() - sum(phi[n] for phi in phis).detach() / len(phis)
        for n, p in zip(names, net.parameters(), strict=True)
    ]
    loss = algo.meta_loss(batch)
    assert relative_error(meta_gradient(loss, list(net.parameters())), expected) < 1e-10
    dist = sum(((e) ** 2).sum() for e in expected)  # value check: 1/2 mean ||theta - phi||^2
    per_task = sum(
        sum(((p.detach() - phi[n]) ** 2).sum() for n, p in net.named_parameters()) for phi in phis
    ) / len(phis)
    assert abs(loss.item() - 0.5 * per_task.item()) < 1e-12
    assert dist > 0


def test_outer_sgd_step_is_reptile_update():
    net = bn_mlp()
    algo = Reptile(net, inner_lr=0.05, inner_steps=3, task="regression")
    batch = sinusoid_batch(2, 5, 6)
    phis = reference_phis(net, algo, batch)
    theta = {n: p.detach().clone() for n, p in net.named_parameters()}
    eps = 0.25
    opt = torch.optim.SGD(algo.parameters(), lr=eps)
    algo.meta_loss(batch).backward()
    opt.step()
    for n, p in net.named_parameters():
        mean_phi = sum(phi[n] for phi in phis).detach() / 2
        assert torch.allclose(p, theta[n] + eps * (mean_phi - theta[n]), rtol=0, atol=1e-14)


def test_adapt_is_graph_free_in_train_mode():
    algo = Reptile(bn_mlp(), task="regression")
    ep = sinusoid_batch(1, 5, 5)[0]
    assert all(not t.requires_grad for t in algo.adapt(ep.support_x, ep.support_y).values())
    with pytest.raises(ValueError, match="first order"):
        Reptile(bn_mlp(), first_order=False)
    with pytest.raises(ValueError, match="strategy"):
        Reptile(bn_mlp(), strategy="split")


def test_minibatch_schedule_covers_each_pass_before_repeating():
    torch.manual_seed(0)
    index = minibatch_schedule(10, 7, 4)  # 28 draws: passes of 10, 10 and the first 8 of a third
    assert index.shape == (7, 4)
    flat = index.flatten()
    for start in (0, 10):
        assert sorted(flat[start : start + 10].tolist()) == list(range(10))
    assert len(set(flat[20:].tolist())) == 8
    state = torch.random.get_rng_state()
    full = minibatch_schedule(5, 3, 5)  # full batch: every step all examples, no random draw
    assert torch.equal(full, torch.arange(5).expand(3, 5))
    assert torch.equal(torch.random.get_rng_state(), state)


def seeded_schedules(algo, batch, seed):
    """The per-task minibatch schedules ``meta_loss`` draws after ``torch.manual_seed(seed)``."""
    torch.manual_seed(seed)
    n = batch.support_x.shape[1]
    return [minibatch_schedule(n, algo.inner_steps, algo.inner_batch) for _ in batch]


def minibatch_reference_phis(net, algo, batch, seed):
    """Clone-style SGD, one step per minibatch of the schedule drawn with ``seed``."""
    schedules = seeded_schedules(algo, batch, seed)
    out = []
    for ep, schedule in zip(batch, schedules, strict=True):
        weights = {n: p.detach().requires_grad_() for n, p in net.named_parameters()}
        for rows in schedule:
            _, weights = clone_adapt(
                net,
                weights,
                algo.adapted_names,
                algo.inner_lrs(),
                algo.loss,
                ep.support_x[rows],
                ep.support_y[rows],
                1,
                create_graph=False,
            )
            weights = {n: w.detach().requires_grad_() for n, w in weights.items()}
        out.append(weights)
    return out


@pytest.mark.parametrize("strategy", ["loop", "vmap"])
def test_minibatch_steps_match_a_per_step_reference(strategy):
    """Each inner step sees only its minibatch (with its own batch statistics), in both strategies."""
    net = bn_mlp()
    algo = Reptile(net, inner_lr=0.05, inner_steps=4, inner_batch=3, task="regression", strategy=strategy)
    batch = sinusoid_batch(3, 5, 6)
    phis = minibatch_reference_phis(net, algo, batch, seed=7)
    expected = [
        p.detach() - sum(phi[n].detach() for phi in phis) / len(phis) for n, p in net.named_parameters()
    ]
    torch.manual_seed(7)
    loss = algo.meta_loss(batch)
    assert relative_error(meta_gradient(loss, list(net.parameters())), expected) < 1e-10
    full = Reptile(bn_mlp(), inner_lr=0.05, inner_steps=4, task="regression", strategy=strategy)
    full_grad = meta_gradient(full.meta_loss(batch), list(full.parameters()))
    assert relative_error(full_grad, expected) > 1e-3  # minibatches really change the steps


def test_inner_batch_is_validated():
    with pytest.raises(ValueError, match="inner_batch"):
        Reptile(bn_mlp(), inner_batch=0)


def torch_adam_steps(module, opt, loss, batches):
    """``opt.step()`` on ``module`` once per ``(x, y)`` of ``batches``; the weights reached."""
    for x, y in batches:
        opt.zero_grad()
        loss(module(x), y).backward()
        opt.step()
    return {k: p.detach().clone() for k, p in module.named_parameters()}


def torch_adam_phis(net, algo, batch, seed):
    """Per task: a deep copy trained by torch.optim.Adam(betas=(0, 0.999)) on the same minibatches."""
    schedules = seeded_schedules(algo, batch, seed)
    out = []
    for ep, schedule in zip(batch, schedules, strict=True):
        fast = copy.deepcopy(net).train()
        opt = torch.optim.Adam(fast.parameters(), lr=algo.inner_lr, betas=(0.0, 0.999), eps=1e-8)
        out.append(
            torch_adam_steps(fast, opt, algo.loss, [(ep.support_x[r], ep.support_y[r]) for r in schedule])
        )
    return out


@pytest.mark.parametrize("strategy", ["loop", "vmap"])
def test_inner_adam_matches_torch_adam_per_task(strategy):
    # no batch norm here: a bias in front of one has a zero gradient up to rounding, which Adam's
    # division by |g| + eps turns into steps of arbitrary sign in any two implementations
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(1, 8), torch.nn.Tanh(), torch.nn.Linear(8, 1)).double()
    algo = Reptile(
        net,
        inner_lr=0.01,
        inner_steps=4,
        inner_batch=3,
        inner_optimizer="adam",
        task="regression",
        strategy=strategy,
    )
    batch = sinusoid_batch(3, 5, 6)
    phis = torch_adam_phis(net, algo, batch, seed=3)
    expected = [p.detach() - sum(phi[n] for phi in phis) / len(phis) for n, p in net.named_parameters()]
    torch.manual_seed(3)
    loss = algo.meta_loss(batch)
    assert relative_error(meta_gradient(loss, list(net.parameters())), expected) < 1e-10
    # test-time adaptation: full-batch Adam steps, from a fresh state
    algo.eval()
    ep = batch[0]
    adapted = algo.adapt(ep.support_x, ep.support_y, steps=3)
    fast = copy.deepcopy(net).train()
    opt = torch.optim.Adam(fast.parameters(), lr=0.01, betas=(0.0, 0.999), eps=1e-8)
    expected = torch_adam_steps(fast, opt, algo.loss, [(ep.support_x, ep.support_y)] * 3)
    for n, p in expected.items():
        assert torch.allclose(adapted[n], p, rtol=0, atol=1e-12), n
    with pytest.raises(ValueError, match="inner_optimizer"):
        Reptile(bn_mlp(), inner_optimizer="rmsprop")


def tanh_net():
    # no batch norm, for the reason given in test_inner_adam_matches_torch_adam_per_task
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(1, 8), torch.nn.Tanh(), torch.nn.Linear(8, 1)).double()


def test_persistent_adam_matches_one_torch_adam_carried_across_tasks():
    """The original code's inner Adam: one optimizer state through every task of every meta-batch."""
    net = tanh_net()
    algo = Reptile(
        copy.deepcopy(net),
        inner_lr=0.01,
        inner_steps=3,
        inner_batch=2,
        inner_optimizer="adam_persistent",
        task="regression",
    )
    batches, seeds, eps = [sinusoid_batch(3, 5, 6), sinusoid_batch(2, 5, 6)], [3, 4], 0.5
    # reference: torch.optim.Adam on one module, its weights reset to theta before each task
    fast = copy.deepcopy(net).train()
    inner = torch.optim.Adam(fast.parameters(), lr=0.01, betas=(0.0, 0.999), eps=1e-8)
    theta = {n: p.detach().clone() for n, p in net.named_parameters()}
    outer = torch.optim.SGD(algo.parameters(), lr=eps)
    for batch, seed in zip(batches, seeds, strict=True):
        phis = []
        for ep, schedule in zip(batch, seeded_schedules(algo, batch, seed), strict=True):
            with torch.no_grad():
                for n, p in fast.named_parameters():
                    p.copy_(theta[n])
            phis.append(
                torch_adam_steps(
                    fast, inner, algo.loss, [(ep.support_x[r], ep.support_y[r]) for r in schedule]
                )
            )
        theta = {n: t + eps * (sum(phi[n] for phi in phis) / len(phis) - t) for n, t in theta.items()}
        torch.manual_seed(seed)
        outer.zero_grad()
        algo.meta_loss(batch).backward()
        outer.step()
    for n, p in algo.model.named_parameters():
        assert torch.allclose(p, theta[n], rtol=0, atol=1e-12), n
    assert int(algo.inner_adam.step) == 3 * 3 + 2 * 3
    # test time: full-batch steps from a copy of the carried state, which stays unchanged
    algo.eval()
    before = {k: v.clone() for k, v in algo.inner_adam.state_dict().items()}
    ep = batches[0][1]
    adapted = algo.adapt(ep.support_x, ep.support_y, steps=4)
    test_inner = torch.optim.Adam(fast.parameters(), lr=0.01, betas=(0.0, 0.999), eps=1e-8)
    test_inner.load_state_dict(inner.state_dict())
    with torch.no_grad():
        for n, p in fast.named_parameters():
            p.copy_(theta[n])
    expected = torch_adam_steps(fast, test_inner, algo.loss, [(ep.support_x, ep.support_y)] * 4)
    for n, p in expected.items():
        assert torch.allclose(adapted[n], p, rtol=0, atol=1e-12), n
    for k, v in algo.inner_adam.state_dict().items():
        assert torch.equal(v, before[k]), k
    # a fresh Adam per task takes different steps: the carried state matters
    fresh = Reptile(
        copy.deepcopy(net), inner_lr=0.01, inner_steps=4, inner_optimizer="adam", task="regression"
    ).eval()
    fresh_adapted = fresh.adapt(ep.support_x, ep.support_y)
    assert relative_error(list(fresh_adapted.values()), list(adapted.values())) > 1e-3


def test_persistent_adam_state_is_saved_and_restored():
    algo = Reptile(
        tanh_net(), inner_lr=0.01, inner_steps=2, inner_optimizer="adam_persistent", task="regression"
    )
    algo.meta_loss(sinusoid_batch(2, 5, 6)).backward()
    state = algo.state_dict()
    assert int(state["inner_adam.step"]) == 4 and state["inner_adam.v_0"].abs().sum() > 0
    other = Reptile(
        tanh_net(), inner_lr=0.01, inner_steps=2, inner_optimizer="adam_persistent", task="regression"
    )
    other.load_state_dict(state)
    for k, v in other.inner_adam.state_dict().items():
        assert torch.equal(v, state[f"inner_adam.{k}"]), k
    # learners without it keep their old state_dict keys, so earlier checkpoints still load
    assert not any(k.startswith("inner_adam") for k in Reptile(tanh_net(), task="regression").state_dict())


def test_persistent_adam_refuses_vmap():
    with pytest.raises(ValueError, match="in sequence"):
        Reptile(tanh_net(), inner_optimizer="adam_persistent", strategy="vmap")
