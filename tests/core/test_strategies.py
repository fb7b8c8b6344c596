"""Every strategy's meta-gradient against a clone-style reference in float64, and the BN trap."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from metaloop.algorithms.maml import MAML
from metaloop.core import strategies
from metaloop.core.gradcheck import meta_gradient, reference_maml_loss, relative_error
from metaloop.nets.batchnorm import TaskBatchNorm
from tests.core.optim_fixtures import image_batch, sinusoid_batch, tiny_conv, tiny_mlp

TOL = 1e-10


def reference_grads(algo, batch):
    net = algo.model
    loss = reference_maml_loss(
        net,
        algo.adapted_names,
        algo.inner_lrs(),
        algo.loss,
        batch,
        algo.inner_steps,
        algo.first_order,
    )
    return meta_gradient(loss, list(net.parameters()))


@pytest.mark.parametrize("strategy", ["loop", "vmap", "split", "split:autograd"])
@pytest.mark.parametrize("first_order", [False, True])
def test_conv_with_task_batchnorm_matches_reference(strategy, first_order):
    net = tiny_conv("task")
    strategy, _, support = strategy.partition(":")
    algo = MAML(net, inner_lr=0.3, inner_steps=2, first_order=first_order, strategy=strategy)
    algo.split_chunk = 2  # 3 tasks: one chunk of 2 and one of 1
    algo.split_support = support or "vmap"  # autograd: native batch norm in a second-order step
    batch = image_batch(3, 3, 1, 2)
    ref = reference_grads(algo, batch)
    loss = algo.meta_loss(batch)
    assert relative_error(meta_gradient(loss, list(net.parameters())), ref) < TOL
    ref_value = reference_maml_loss(net, algo.adapted_names, algo.inner_lrs(), algo.loss, batch, 2)
    assert abs(loss.item() - ref_value.item()) < 1e-12


@pytest.mark.parametrize("strategy", ["loop", "vmap", "split"])
@pytest.mark.parametrize("downsample", ["max", "stride"])
def test_post_activation_task_batchnorm_matches_reference(strategy, downsample):
    """hypergrad's block order (conv → ReLU → pool → norm): the norm's input is no longer a
    convolution's output, which is where a wrong batch-norm gradient would show differently."""
    net = tiny_conv("task", norm_position="post", downsample=downsample)
    assert isinstance(net.features[0][-1], TaskBatchNorm)  # norm last
    algo = MAML(net, inner_lr=0.3, inner_steps=2, strategy=strategy)
    algo.split_chunk = 2
    batch = image_batch(3, 3, 1, 2)
    got = meta_gradient(algo.meta_loss(batch), list(net.parameters()))
    assert relative_error(got, reference_grads(algo, batch)) < TOL


@pytest.mark.parametrize("strategy", ["vmap", "split"])
def test_native_batchnorm_under_vmap_is_caught_by_the_checker(strategy):
    """torch 2.13's batch_norm under vmap: second-order meta-gradients are wrong (~1e-1 here).

    The runner is called directly (bypassing the refusal) to show that the float64 check flags it;
    with TaskBatchNorm the same check passes at 1e-10 (test above).
    """
    net = tiny_conv("batch")
    algo = MAML(net, inner_lr=0.3, inner_steps=2, strategy="loop")
    batch = image_batch(3, 3, 1, 2)
    ref = reference_grads(algo, batch)
    loop = meta_gradient(strategies.meta_loss_loop(algo, batch), list(net.parameters()))
    assert relative_error(loop, ref) < TOL
    algo.split_support = "vmap"  # split's vmapped support step (on CPU "auto" avoids vmap)
    wrong = meta_gradient(strategies.RUNNERS[strategy](algo, batch), list(net.parameters()))
    assert relative_error(wrong, ref) > 1e-4


def test_native_batchnorm_is_refused_by_vmap_and_routed_to_loop_by_auto():
    batch = image_batch(2, 3, 1, 2)
    for forced in ("vmap", "split"):
        with pytest.raises(ValueError, match="TaskBatchNorm"):
            MAML(tiny_conv("batch"), strategy=forced).meta_loss(batch)
    assert strategies.resolve_strategy(MAML(tiny_conv("batch")), batch) == "loop"


class FunctionalBN(nn.Module):
    """Calls F.batch_norm directly (no BatchNorm module to find): the probe must still see it."""

    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(1, 4)
        self.out = nn.Linear(4, 1)

    def forward(self, x):
        return self.out(F.batch_norm(self.lin(x), None, None, training=True))


def test_functional_batch_norm_detected_by_probe():
    batch = sinusoid_batch(2, 5, 5)
    algo = MAML(FunctionalBN().double(), task="regression", strategy="vmap")
    with pytest.raises(ValueError, match="native batch norm"):
        algo.meta_loss(batch)
    assert not strategies.calls_native_batch_norm(
        MAML(tiny_mlp(), task="regression"), batch.support_x[0]
    )


def test_auto_rule_on_cpu():
    reg = sinusoid_batch(2, 5, 5)
    img = image_batch(2, 3, 1, 2)
    assert strategies.resolve_strategy(MAML(tiny_mlp(), task="regression"), reg) == "vmap"
    assert strategies.resolve_strategy(MAML(tiny_conv("task")), img) == "split"
    assert strategies.resolve_strategy(MAML(tiny_conv("task"), strategy="loop"), img) == "loop"
    big = MAML(nn.Sequential(nn.Linear(1, 2000), nn.Linear(2000, 1000)).double(), task="regression")
    assert strategies.resolve_strategy(big, reg) == "loop"


def test_finite_differences_second_order_maml():
    """Directional derivative of the meta-loss (central differences) equals <grad, d>."""
    net = tiny_mlp(hidden=(3,))
    algo = MAML(net, inner_lr=0.1, inner_steps=2, task="regression", strategy="vmap")
    batch = sinusoid_batch(2, 4, 4, seed=3)
    params = list(net.parameters())
    grads = meta_gradient(algo.meta_loss(batch), params)
    g = torch.Generator().manual_seed(0)
    for _ in range(3):
        d = [torch.randn(p.shape, generator=g, dtype=p.dtype) for p in params]
        eps = 1e-5
        with torch.no_grad():
            vals = []
            for sign in (1, -1):
                for p, u in zip(params, d, strict=True):
                    p.add_(sign * eps * u)
                with torch.enable_grad():
                    vals.append(algo.meta_loss(batch).item())
                for p, u in zip(params, d, strict=True):
                    p.sub_(sign * eps * u)
        fd = (vals[0] - vals[1]) / (2 * eps)
        analytic = sum((gi * u).sum() for gi, u in zip(grads, d, strict=True)).item()
        assert abs(fd - analytic) < 1e-7 * max(1.0, abs(analytic))
    # and the first-order variant is measurably different: FD catches a dropped Hessian term
    fo = MAML(net, inner_lr=0.1, inner_steps=2, task="regression", first_order=True)
    fo_grads = meta_gradient(fo.meta_loss(batch), params)
    assert relative_error(fo_grads, grads) > 1e-3


def test_split_keeps_no_query_graph_and_gives_the_meta_loss_value():
    net = tiny_conv("task")
    batch = image_batch(2, 3, 1, 2)
    split = MAML(net, strategy="split").meta_loss(batch)
    loop = MAML(net, strategy="loop").meta_loss(batch)
    assert abs(split.item() - loop.item()) < 1e-12


def test_compiled_vmap_matches_eager_and_other_strategies_refuse_compile():
    torch.manual_seed(0)
    net = tiny_mlp()
    batch = sinusoid_batch(4, 5, 5)
    eager = MAML(net, inner_lr=0.05, strategy="vmap", task="regression")
    compiled = MAML(net, inner_lr=0.05, strategy="vmap", task="regression", compile=True)
    try:
        got = meta_gradient(compiled.meta_loss(batch), list(net.parameters()))
    except Exception as exc:  # no C++ compiler on this machine: nothing to compare
        pytest.skip(f"torch.compile unavailable here: {exc}")
    ref = meta_gradient(eager.meta_loss(batch), list(net.parameters()))
    assert relative_error(got, ref) < 1e-10
    with pytest.raises(ValueError, match="compile=True needs strategy"):
        MAML(net, strategy="loop", compile=True)


def test_split_support_mode_is_checked():
    algo = MAML(tiny_conv("task"), inner_lr=0.3, inner_steps=1, strategy="split")
    assert algo.split_support == "auto"
    algo.split_support = "batched"
    with pytest.raises(ValueError, match="split_support must be"):
        algo.meta_loss(image_batch(2, 3, 1, 2))
