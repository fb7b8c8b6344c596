import torch
import torch.nn.functional as F
from torch import nn

from metaloop.algorithms import get_algorithm
from metaloop.learned.flat import flat_parameters, functional_loss


def make(steps=4, seed=0):
    torch.manual_seed(seed)
    net = nn.Sequential(nn.Linear(1, 6), nn.ReLU(), nn.Linear(6, 1)).double()
    alg = get_algorithm("ravi_larochelle")(net, steps=steps, task="regression").double()
    return net, alg


def test_fixed_gates_reproduce_gradient_descent(sine_batch):
    """Sec. 3.1: with f_t = 1 and i_t = lr the cell update is exactly an SGD step."""
    net, alg = make(steps=4)
    alg.meta_learner.fix_gates(lr=0.05)
    ep = sine_batch(1, shots=8, dtype=torch.float64)[0]
    alg.eval()
    theta = alg.adapt(ep.support_x, ep.support_y)
    loss_fn = functional_loss(net, F.mse_loss, ep.support_x, ep.support_y)
    ref = flat_parameters(net).requires_grad_(True)
    for _ in range(4):
        (g,) = torch.autograd.grad(loss_fn(ref), ref)
        ref = (ref - 0.05 * g).detach().requires_grad_(True)
    torch.testing.assert_close(theta, ref.detach(), rtol=0, atol=1e-14)


def test_meta_gradient_reaches_init_and_gates(sine_batch):
    _, alg = make(steps=3)
    batch = sine_batch(2, shots=5, dtype=torch.float64)
    alg.train()
    alg.meta_loss(batch).backward()
    ml = alg.meta_learner
    for p in (ml.c0, ml.forget.weight, ml.input.bias, ml.lstm.weight_ih):
        assert p.grad is not None and p.grad.abs().sum() > 0
    alg.eval()
    theta = alg.adapt(batch.support_x[0], batch.support_y[0])
    assert not theta.requires_grad  # eval mode keeps no graph


def test_initial_gates_start_near_sgd_and_steps_override(sine_batch):
    _, alg = make(steps=2)
    ep = sine_batch(1, dtype=torch.float64)[0]
    alg.eval()
    th0 = alg.adapt(ep.support_x, ep.support_y, steps=0)
    torch.testing.assert_close(th0, alg.meta_learner.c0.detach())
    assert not torch.equal(alg.adapt(ep.support_x, ep.support_y), th0)
    loss0 = F.mse_loss(alg.predict(th0, ep.query_x), ep.query_y)
    assert torch.isfinite(loss0)


def test_batched_meta_loss_equals_per_task_reference(sine_batch):
    from metaloop.algorithms import Algorithm

    _, alg = make(steps=3)
    alg.train()
    batch = sine_batch(3, shots=5, dtype=torch.float64)
    fast = alg.meta_loss(batch)
    g_fast = torch.autograd.grad(fast, list(alg.parameters()))
    ref = Algorithm.meta_loss.__get__(alg)(batch)
    g_ref = torch.autograd.grad(ref, list(alg.parameters()))
    torch.testing.assert_close(fast, ref, rtol=1e-12, atol=1e-12)
    for a, b in zip(g_fast, g_ref, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-12)
