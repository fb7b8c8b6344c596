import pytest
import torch

from metaloop.algorithms.fomaml import FOMAML
from metaloop.algorithms.maml import MAML
from metaloop.core.gradcheck import meta_gradient, reference_maml_loss, relative_error
from tests.core.optim_fixtures import bn_mlp, sinusoid_batch


@pytest.mark.parametrize("strategy", ["loop", "vmap", "split"])
def test_meta_gradient_is_query_gradient_at_adapted_weights(strategy):
    net = bn_mlp()
    algo = FOMAML(net, inner_lr=0.05, inner_steps=2, task="regression", strategy=strategy)
    batch = sinusoid_batch(3, 5, 6)
    params = list(net.parameters())
    got = meta_gradient(algo.meta_loss(batch), params)
    ref = meta_gradient(
        reference_maml_loss(
            net, algo.adapted_names, algo.inner_lrs(), algo.loss, batch, 2, first_order=True
        ),
        params,
    )
    assert relative_error(got, ref) < 1e-10
    # by hand: mean over tasks of dL_q/dphi at phi = adapted weights (Finn et al. 2017, 5.2)
    by_hand = [torch.zeros_like(p) for p in params]
    for ep in batch:
        phi = {
            n: t.detach().requires_grad_()
            for n, t in algo.adapt(ep.support_x, ep.support_y).items()
        }
        q = algo.loss(algo.predict(phi, ep.query_x), ep.query_y)
        for acc, g in zip(by_hand, torch.autograd.grad(q, list(phi.values())), strict=True):
            acc += g / len(batch)
    assert relative_error(got, by_hand) < 1e-10
    second = meta_gradient(
        MAML(net, inner_lr=0.05, inner_steps=2, task="regression").meta_loss(batch), params
    )
    assert relative_error(got, second) > 1e-4


def test_second_order_request_is_refused():
    with pytest.raises(ValueError, match="first order"):
        FOMAML(bn_mlp(), first_order=False)
