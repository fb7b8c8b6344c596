import pytest
import torch

from metaloop.algorithms import get_algorithm
from metaloop.algorithms.maml import MAML
from metaloop.core.gradcheck import meta_gradient, reference_maml_loss, relative_error
from tests.core.optim_fixtures import bn_mlp, sinusoid_batch


@pytest.mark.parametrize("strategy", ["loop", "vmap", "split"])
def test_meta_gradient_matches_clone_reference_with_batchnorm(strategy):
    net = bn_mlp()
    algo = MAML(net, inner_lr=0.05, inner_steps=3, task="regression", strategy=strategy)
    batch = sinusoid_batch(4, 5, 6)
    params = list(net.parameters())
    ref = meta_gradient(
        reference_maml_loss(net, algo.adapted_names, algo.inner_lrs(), algo.loss, batch, 3), params
    )
    assert relative_error(meta_gradient(algo.meta_loss(batch), params), ref) < 1e-10


def test_eval_mode_uses_eval_steps_and_returns_constants():
    net = bn_mlp()
    algo = get_algorithm("maml")(net, inner_lr=0.05, inner_steps=1, eval_steps=4, task="regression")
    ep = sinusoid_batch(1, 5, 5)[0]
    algo.eval()
    with torch.no_grad():  # evaluation may run under no_grad: adaptation must still happen
        adapted = algo.adapt(ep.support_x, ep.support_y)
    assert all(not t.requires_grad for t in adapted.values())
    algo.train()
    four = algo.adapt(ep.support_x, ep.support_y, steps=4)
    for n in adapted:
        assert torch.allclose(adapted[n], four[n], rtol=0, atol=1e-14)
    one = algo.adapt(ep.support_x, ep.support_y)
    assert not torch.allclose(one["head.weight"], four["head.weight"])
    loss0 = algo.loss(algo.predict(dict(net.named_parameters()), ep.support_x), ep.support_y)
    loss4 = algo.loss(algo.predict(four, ep.support_x), ep.support_y)
    assert loss4 < loss0  # gradient steps decrease the support loss


def test_bad_arguments_raise_clear_errors():
    with pytest.raises(ValueError, match="strategy"):
        MAML(bn_mlp(), strategy="batched")
    with pytest.raises(ValueError, match="inner_steps"):
        MAML(bn_mlp(), inner_steps=0)
    with pytest.raises(ValueError, match="task"):
        MAML(bn_mlp(), task="ranking")
