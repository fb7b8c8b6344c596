import torch
import torch.nn.functional as F
from torch import nn

from metaloop.algorithms import get_algorithm
from metaloop.learned.coordinatewise import SGDRule
from metaloop.learned.flat import flat_parameters, functional_loss


def test_with_sgd_rule_adapt_is_gradient_descent(sine_batch):
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(1, 5), nn.Tanh(), nn.Linear(5, 1)).double()
    alg = get_algorithm("lstm_optimizer")(net, rule=SGDRule(0.1), steps=3, task="regression")
    ep = sine_batch(1, dtype=torch.float64)[0]
    alg.eval()
    theta = alg.adapt(ep.support_x, ep.support_y)
    f = functional_loss(net, F.mse_loss, ep.support_x, ep.support_y)
    ref = flat_parameters(net)
    for _ in range(3):
        r = ref.requires_grad_(True)
        ref = (r - 0.1 * torch.autograd.grad(f(r), r)[0]).detach()
    torch.testing.assert_close(theta, ref, rtol=0, atol=1e-14)


def test_lstm_rule_meta_gradient_and_fixed_init(sine_batch):
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(1, 5), nn.Tanh(), nn.Linear(5, 1))
    alg = get_algorithm("lstm_optimizer")(net, steps=2, task="regression")
    assert "theta0" not in dict(alg.named_parameters())  # init is fixed unless learn_init=True
    alg.train()
    alg.meta_loss(sine_batch(2)).backward()
    assert alg.rule.out.weight.grad.abs().sum() > 0
    learn = get_algorithm("lstm_optimizer")(net, steps=2, task="regression", learn_init=True)
    learn.meta_loss(sine_batch(2)).backward()
    assert learn.theta0.grad.abs().sum() > 0
