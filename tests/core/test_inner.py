import torch

from metaloop.core.inner import adapt_autograd, adapt_func, functional_forward
from tests.core.optim_fixtures import sinusoid_batch, tiny_mlp


def mse(p, y):
    return ((p - y) ** 2).mean()


def test_one_step_matches_hand_computation():
    # f(x) = w x + b, L = mean((w x + b - y)^2); dL/dw = 2 mean(x r), dL/db = 2 mean(r)
    lin = torch.nn.Linear(1, 1).double()
    with torch.no_grad():
        lin.weight.fill_(0.5)
        lin.bias.fill_(-1.0)
    x = torch.tensor([[1.0], [2.0], [-1.0]], dtype=torch.float64)
    y = torch.tensor([[0.0], [1.0], [2.0]], dtype=torch.float64)
    r = 0.5 * x - 1.0 - y  # residuals -0.5, -1, -3.5
    w_new = 0.5 - 0.1 * 2 * (x * r).mean()
    b_new = -1.0 - 0.1 * 2 * r.mean()
    assert abs(float(w_new) - (0.5 - 0.2 / 3)) < 1e-15  # mean(x r) = (-0.5 - 2 + 3.5) / 3
    assert abs(float(b_new) - (-1.0 + 0.2 * 5 / 3)) < 1e-15
    params = dict(lin.named_parameters())
    lrs = {"weight": 0.1, "bias": 0.1}
    out = adapt_autograd(
        functional_forward(lin), mse, params, ["weight", "bias"], x, y, 1, lrs, create_graph=True
    )
    assert torch.allclose(out["weight"], w_new.view(1, 1), atol=1e-15)
    assert torch.allclose(out["bias"], b_new.view(1), atol=1e-15)
    assert lin.weight.item() == 0.5  # module untouched


def test_func_and_autograd_steps_agree_including_second_order():
    net = tiny_mlp()
    ep = sinusoid_batch(1, 5, 5)[0]
    params = dict(net.named_parameters())
    names = list(params)
    lrs = dict.fromkeys(names, 0.05)
    fwd = functional_forward(net)
    a = adapt_autograd(
        fwd, mse, params, names, ep.support_x, ep.support_y, 3, lrs, create_graph=True
    )
    b = adapt_func(fwd, mse, params, names, ep.support_x, ep.support_y, 3, lrs, first_order=False)
    for n in names:
        assert torch.allclose(a[n], b[n], rtol=0, atol=1e-14)
    ga = torch.autograd.grad(mse(fwd(a, ep.query_x), ep.query_y), list(params.values()))
    gb = torch.autograd.grad(mse(fwd(b, ep.query_x), ep.query_y), list(params.values()))
    for u, v in zip(ga, gb, strict=True):
        assert torch.allclose(u, v, rtol=1e-11, atol=1e-14)
