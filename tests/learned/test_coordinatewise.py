import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from metaloop.learned.coordinatewise import (
    LSTMRule,
    SGDRule,
    gradient_gate,
    load_rule,
    save_rule,
    unroll,
)
from metaloop.learned.flat import ParamSpec, flat_parameters, functional_loss
from metaloop.learned.l2o import Problem, meta_train_optimizer, rule_trajectory


def tiny_net(seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(1, 8), nn.Tanh(), nn.Linear(8, 1)).double()


def test_identity_rule_reproduces_torch_sgd():
    net = tiny_net()
    x = torch.linspace(-2, 2, 12, dtype=torch.float64).unsqueeze(-1)
    y = torch.sin(x)
    loss_fn = functional_loss(net, F.mse_loss, x, y)
    theta0 = flat_parameters(net)
    theta, _, losses = unroll(SGDRule(0.3), loss_fn, theta0, None, 7, differentiable=False)

    ref = [p.detach().clone().requires_grad_(True) for p in net.parameters()]
    opt = torch.optim.SGD(ref, lr=0.3)
    ref_losses = []
    spec = ParamSpec.of(net)
    for _ in range(7):
        opt.zero_grad()
        loss = F.mse_loss(torch.func.functional_call(net, dict(zip(spec.names, ref, strict=True)),
                                                     (x,)), y)
        loss.backward()
        opt.step()
        ref_losses.append(loss.item())
    torch.testing.assert_close(theta, torch.cat([p.detach().reshape(-1) for p in ref]),
                               rtol=0, atol=1e-14)
    torch.testing.assert_close(losses[:-1], torch.tensor(ref_losses, dtype=torch.float64),
                               rtol=0, atol=1e-14)
    assert losses[-1] < losses[0]


def test_meta_gradient_treats_optimizee_gradients_as_inputs():
    """Andrychowicz Sec. 2.1: d grad_t / d phi is dropped. Reference: replay the recorded gradients
    as constants, so the objective is an explicit function of phi, and compare with finite
    differences (float64)."""
    torch.manual_seed(0)
    rule = LSTMRule(hidden=3).double()
    a = torch.randn(6, 6, dtype=torch.float64)
    loss_fn = lambda th: 0.5 * (a @ th).pow(2).sum()  # noqa: E731
    theta0 = torch.randn(6, dtype=torch.float64)
    steps = 3
    _, _, losses = unroll(rule, loss_fn, theta0, rule.init_state(6, theta0), steps,
                          differentiable=True)
    params = list(rule.parameters())
    grads = torch.autograd.grad(losses.sum(), params)

    with torch.no_grad():  # the gradients seen along the trajectory
        th, st, recorded = theta0.clone(), rule.init_state(6, theta0), []
        for _ in range(steps):
            g = a.T @ (a @ th)
            recorded.append(g)
            u, st = rule(g, st)
            th = th + u

    names = [n for n, _ in rule.named_parameters()]

    def replay(*flat):
        p = dict(zip(names, flat, strict=True))
        th, st, total = theta0, rule.init_state(6, theta0), loss_fn(theta0)
        for g in recorded:
            u, st = torch.func.functional_call(rule, p, (g, st))
            th = th + u
            total = total + loss_fn(th)
        return total

    ref = torch.autograd.grad(replay(*params), params)
    for got, want in zip(grads, ref, strict=True):
        torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-12)
    assert torch.autograd.gradcheck(replay, tuple(p.detach().requires_grad_(True) for p in params))


def quadratic_problems(g: torch.Generator) -> Problem:
    """Andrychowicz Sec. 3.1: f(theta) = ||W theta - y||^2 with random W, y (here 5-d)."""
    w = torch.randn(5, 5, generator=g)
    y = torch.randn(5, generator=g)
    return Problem(lambda th: (w @ th - y).pow(2).sum(), torch.randn(5, generator=g))


@pytest.mark.parametrize("objective,cosine", [("loss", False), ("log_loss", True)])
def test_meta_training_improves_the_rule_on_quadratics(objective, cosine):
    torch.manual_seed(0)
    rule = LSTMRule()
    test = [quadratic_problems(torch.Generator().manual_seed(100 + i)) for i in range(20)]
    before = torch.stack([rule_trajectory(rule, p, 20)[-1] for p in test]).mean()
    meta_train_optimizer(rule, quadratic_problems, iterations=60, generator=torch.Generator()
                         .manual_seed(0), horizon=20, truncation=5, meta_lr=0.01,
                         objective=objective, cosine_decay=cosine)
    after = torch.stack([rule_trajectory(rule, p, 20)[-1] for p in test]).mean()
    assert after < 0.5 * before


def test_truncation_must_divide_horizon():
    with pytest.raises(ValueError, match="multiple of truncation"):
        meta_train_optimizer(LSTMRule(), quadratic_problems, iterations=1,
                             generator=torch.Generator(), horizon=10, truncation=3)
    with pytest.raises(ValueError, match="objective must be"):
        meta_train_optimizer(LSTMRule(), quadratic_problems, iterations=1,
                             generator=torch.Generator(), horizon=10, truncation=5, objective="sum")


def test_save_load_roundtrip(tmp_path):
    torch.manual_seed(1)
    rule = LSTMRule(hidden=7, output_scale=0.05)
    save_rule(rule, tmp_path / "rule.pt")
    back = load_rule(tmp_path / "rule.pt")
    g = torch.randn(11)
    u1, _ = rule(g, rule.init_state(11, g))
    u2, _ = back(g, back.init_state(11, g))
    torch.testing.assert_close(u1, u2, rtol=0, atol=0)
    assert back.hidden == 7 and back.output_scale == 0.05 and back.gradient_gate
    ungated = LSTMRule(hidden=7, gradient_gate=False)
    save_rule(ungated, tmp_path / "ungated.pt")
    assert not load_rule(tmp_path / "ungated.pt").gradient_gate
    blob = torch.load(tmp_path / "rule.pt", weights_only=True)  # a file from before the gate
    del blob["config"]["gradient_gate"]
    torch.save(blob, tmp_path / "old.pt")
    assert not load_rule(tmp_path / "old.pt").gradient_gate
    torch.save({"x": 1}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="not a saved LSTM optimizer"):
        load_rule(tmp_path / "other.pt")


def test_gradient_gate_by_hand():
    p = 10.0
    t = math.exp(-p)
    g = torch.tensor([0.0, t / 2, -t / 4, t, -2 * t, 1e-3, -5.0], dtype=torch.float64)
    torch.testing.assert_close(gradient_gate(g, p),
                               torch.tensor([0, 0.5, 0.25, 1, 1, 1, 1], dtype=torch.float64))
    assert gradient_gate(torch.tensor([0.5]), 2.0).item() == pytest.approx(min(1, 0.5 * math.e**2))


def drifting_rule(gate: bool) -> LSTMRule:
    """An LSTM rule whose ungated output for a zero gradient is far from zero (output bias 1)."""
    torch.manual_seed(3)
    rule = LSTMRule(hidden=5, gradient_gate=gate).double()
    with torch.no_grad():
        rule.out.bias.fill_(1.0)
    return rule


def test_gate_zeroes_only_zero_gradient_coordinates_and_keeps_the_state():
    gated, ungated = drifting_rule(True), drifting_rule(False)
    g = torch.tensor([0.0, 0.3, 0.0, -2.0, 1e-3], dtype=torch.float64)
    sg, su = gated.init_state(5, g), ungated.init_state(5, g)
    for _ in range(4):
        ug, sg = gated(g, sg)
        uu, su = ungated(g, su)
        assert uu[0].abs() > 0.01  # without the gate a zero gradient still moves the coordinate
        assert ug[0] == 0 and ug[2] == 0
        torch.testing.assert_close(ug[[1, 3, 4]], uu[[1, 3, 4]], rtol=0, atol=0)
        for (hg, cg), (hu, cu) in zip(sg, su, strict=True):
            torch.testing.assert_close(hg, hu, rtol=0, atol=0)
            torch.testing.assert_close(cg, cu, rtol=0, atol=0)


def test_stationary_point_is_a_fixed_point_only_with_the_gate():
    theta0 = torch.randn(6, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    loss_fn = lambda th: (th - theta0).pow(2).sum()  # noqa: E731  minimum at theta0, gradient 0
    for gate, moves in ((True, False), (False, True)):
        rule = drifting_rule(gate)
        theta, _, _ = unroll(rule, loss_fn, theta0, rule.init_state(6, theta0), 10,
                             differentiable=False)
        assert bool((theta - theta0).abs().max() > 0.1) is moves


def test_gate_freezes_a_dead_relu_unit():
    """The failure it fixes: a dead unit's weights get no gradient; ungated, they drift."""
    net = nn.Sequential(nn.Linear(1, 2), nn.ReLU(), nn.Linear(2, 1)).double()
    with torch.no_grad():
        net[0].weight.copy_(torch.tensor([[1.0], [0.5]]))
        net[0].bias.copy_(torch.tensor([0.0, -100.0]))  # unit 1 is off for every x in [-2, 2]
    x = torch.linspace(-2, 2, 9, dtype=torch.float64).unsqueeze(-1)
    loss_fn = functional_loss(net, F.mse_loss, x, torch.sin(x))
    spec, theta0 = ParamSpec.of(net), flat_parameters(net)
    for gate in (True, False):
        rule = drifting_rule(gate)
        theta, _, _ = unroll(rule, loss_fn, theta0, rule.init_state(theta0.numel(), theta0), 5,
                             differentiable=False)
        d = {n: v - w for (n, v), w in zip(spec.unflatten(theta).items(),
                                           spec.unflatten(theta0).values(), strict=True)}
        dead = torch.stack([d["0.weight"][1, 0], d["0.bias"][1], d["2.weight"][0, 1]])
        live = torch.stack([d["0.weight"][0, 0], d["0.bias"][0], d["2.weight"][0, 0]])
        assert bool(dead.abs().max() == 0) is gate
        assert bool(live.abs().min() > 0)
