import pytest
import torch

from metaloop.algorithms.anil import ANIL
from metaloop.core.gradcheck import meta_gradient, reference_maml_loss, relative_error
from tests.core.optim_fixtures import bn_mlp, sinusoid_batch


@pytest.mark.parametrize("strategy", ["loop", "vmap", "split"])
def test_only_head_adapts_and_meta_gradient_matches_reference(strategy):
    net = bn_mlp()
    algo = ANIL(net, inner_lr=0.1, inner_steps=2, task="regression", strategy=strategy)
    assert algo.adapted_names == ["head.weight", "head.bias"]
    batch = sinusoid_batch(3, 5, 6)
    adapted = algo.adapt(batch.support_x[0], batch.support_y[0])
    for n, p in net.named_parameters():
        assert (adapted[n] is p) == n.startswith("body.")
    params = list(net.parameters())
    got = meta_gradient(algo.meta_loss(batch), params)
    ref = meta_gradient(
        reference_maml_loss(net, algo.adapted_names, algo.inner_lrs(), algo.loss, batch, 2), params
    )
    assert relative_error(got, ref) < 1e-10
    body = dict(zip([n for n, _ in net.named_parameters()], got, strict=True))
    assert body["body.0.weight"].abs().sum() > 0  # the body is meta-learned in the outer loop


def test_pattern_selection():
    algo = ANIL(bn_mlp(), adapt=["body.3.*", "head.*"], task="regression")
    assert algo.adapted_names == ["body.3.weight", "body.3.bias", "head.weight", "head.bias"]
    assert torch.is_tensor(next(algo.parameters()))
