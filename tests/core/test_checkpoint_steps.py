"""Checkpointed inner steps: the same meta-gradient, without keeping every step's graph."""

import pytest
import torch

from metaloop.algorithms.imaml import IMAML
from metaloop.algorithms.maml import MAML
from metaloop.algorithms.metasgd import MetaSGD
from metaloop.algorithms.reptile import Reptile
from metaloop.core import strategies
from metaloop.core.gradcheck import meta_gradient, reference_maml_loss, relative_error
from metaloop.core.inner import adapt_autograd
from tests.core.optim_fixtures import image_batch, sinusoid_batch, tiny_conv, tiny_mlp


@pytest.mark.parametrize("algo_cls", [MAML, MetaSGD])
# split recomputes under its native-kernel and channels-last modes; "batch" = nn.BatchNorm2d (loop)
@pytest.mark.parametrize(("norm", "strategy"), [("task", "loop"), ("task", "split"), ("batch", "loop")])
def test_checkpointed_meta_gradient_matches_the_reference(algo_cls, norm, strategy):
    net = tiny_conv(norm)
    algo = algo_cls(net, inner_lr=0.3, inner_steps=3, strategy=strategy, checkpoint_steps=True)
    batch = image_batch(3, 3, 1, 2)
    loss = algo.meta_loss(batch)
    ref_loss = reference_maml_loss(
        net, algo.adapted_names, algo.inner_lrs(), algo.loss, batch, algo.inner_steps
    )
    params = [p for p in algo.parameters() if p.requires_grad]
    assert relative_error(meta_gradient(loss, params), meta_gradient(ref_loss, params)) < 1e-10
    assert abs(loss.item() - ref_loss.item()) < 1e-12


def _saved_bytes(steps: int, checkpoint: bool) -> int:
    """Bytes autograd keeps for the backward of one task's second-order query loss."""
    net = tiny_conv("task")
    algo = MAML(net, inner_lr=0.3, inner_steps=steps)
    ep = image_batch(1, 3, 1, 2)[0]
    total = 0

    def pack(t: torch.Tensor):
        nonlocal total
        total += t.numel() * t.element_size()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        phi = adapt_autograd(
            algo.forward_fn,
            algo.loss,
            algo.meta_params(),
            algo.adapted_names,
            ep.support_x,
            ep.support_y,
            steps,
            algo.inner_lrs(),
            create_graph=True,
            checkpoint=checkpoint,
        )
        algo.loss(algo.forward_fn(phi, ep.query_x), ep.query_y)
    return total


def test_checkpointing_keeps_no_inner_step_graph():
    """Without it the saved activations grow with every step; with it only the query pass's stay."""
    plain = [_saved_bytes(s, checkpoint=False) for s in (1, 4)]
    ckpt = [_saved_bytes(s, checkpoint=True) for s in (1, 4)]
    assert plain[1] > 2.5 * plain[0]
    assert ckpt[0] == ckpt[1]  # independent of the number of steps
    assert ckpt[1] < plain[1] / 4


def test_checkpoint_steps_refuses_what_it_cannot_do():
    with pytest.raises(ValueError, match="checkpoint_steps=True needs strategy"):
        MAML(tiny_mlp(), strategy="vmap", checkpoint_steps=True)
    with pytest.raises(ValueError, match="second-order"):
        MAML(tiny_mlp(), first_order=True, checkpoint_steps=True)
    with pytest.raises(ValueError, match="second-order"):
        Reptile(tiny_mlp(), checkpoint_steps=True)
    with pytest.raises(ValueError, match="implicit"):
        IMAML(tiny_mlp(), checkpoint_steps=True)
    algo = MAML(tiny_conv("task"), strategy="split", checkpoint_steps=True)
    algo.split_support = "vmap"
    with pytest.raises(ValueError, match="split_support 'autograd'"):
        algo.meta_loss(image_batch(2, 3, 1, 2))


def test_auto_never_vmaps_checkpointed_steps():
    small = MAML(tiny_mlp(), task="regression", checkpoint_steps=True)
    assert strategies.resolve_strategy(small, sinusoid_batch(2, 5, 5)) == "loop"
    conv = MAML(tiny_conv("task"), checkpoint_steps=True)
    assert strategies.resolve_strategy(conv, image_batch(2, 3, 1, 2)) == "split"


def test_config_key_reaches_the_learner():
    from metaloop.config import build, load_config

    config = load_config("maml_sinusoid", ["algorithm.checkpoint_steps=true"])
    algo = build.build_algorithm(config, build.build_model(config))
    assert algo.checkpoint_steps and "checkpoint_steps=True" in repr(algo)
