import pytest
import torch

from metaloop.algorithms.metasgd import MetaSGD
from metaloop.core.gradcheck import meta_gradient, reference_maml_loss, relative_error
from tests.core.optim_fixtures import bn_mlp, sinusoid_batch


@pytest.mark.parametrize("strategy", ["loop", "vmap", "split"])
def test_meta_gradient_including_learned_rates(strategy):
    net = bn_mlp()
    algo = MetaSGD(net, inner_lr=0.05, inner_steps=2, task="regression", strategy=strategy)
    with torch.no_grad():  # distinct rates per element, so a transposed or shared rate would show
        for p in algo.lrs.values():
            p.uniform_(0.01, 0.1)
    batch = sinusoid_batch(3, 5, 6)
    params = list(algo.parameters())
    assert len(params) == 2 * len(list(net.parameters()))
    got = meta_gradient(algo.meta_loss(batch), params)
    ref = meta_gradient(
        reference_maml_loss(net, algo.adapted_names, algo.inner_lrs(), algo.loss, batch, 2), params
    )
    assert relative_error(got, ref) < 1e-10


def test_rate_gradient_by_hand_one_step():
    # phi = theta - a * g_s(theta)  =>  dL_q/da = -g_q(phi) * g_s(theta) (element-wise), Li et al. Eq. 3
    net = bn_mlp()
    algo = MetaSGD(net, inner_lr=0.03, inner_steps=1, task="regression", strategy="vmap")
    batch = sinusoid_batch(1, 5, 6)
    ep = batch[0]
    theta = dict(net.named_parameters())
    g_s = torch.autograd.grad(algo.loss(net(ep.support_x), ep.support_y), list(theta.values()))
    phi = {
        n: (p - 0.03 * g).detach().requires_grad_()
        for (n, p), g in zip(theta.items(), g_s, strict=True)
    }
    g_q = torch.autograd.grad(
        algo.loss(algo.predict(phi, ep.query_x), ep.query_y), list(phi.values())
    )
    got = meta_gradient(algo.meta_loss(batch), list(algo.inner_lrs().values()))  # model order
    expected = [-a * b for a, b in zip(g_q, g_s, strict=True)]
    assert relative_error(got, expected) < 1e-10
