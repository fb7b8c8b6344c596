import pytest
import torch
from torch import nn

from metaloop.algorithms.maml import MAML
from metaloop.core.params import select_adapted, stateless_buffers
from tests.core.optim_fixtures import image_batch, tiny_conv


def test_select_adapted_specs():
    net = tiny_conv()
    names = [n for n, _ in net.named_parameters()]
    assert select_adapted(net, "all") == names
    assert select_adapted(net, "head") == ["head.weight", "head.bias"]
    assert select_adapted(net, ["features.1.*"]) == [
        n for n in names if n.startswith("features.1.")
    ]
    assert select_adapted(net, lambda n: n.endswith("bias")) == [
        n for n in names if n.endswith("bias")
    ]
    with pytest.raises(ValueError, match="selects no parameter"):
        select_adapted(net, ["nothing.*"])
    with pytest.raises(ValueError, match="unknown adapt spec"):
        select_adapted(net, "body")


def test_native_batchnorm_is_transductive_and_side_effect_free():
    net = tiny_conv(norm="batch")
    bn = net.features[0][1]
    before = {n: b.clone() for n, b in net.named_buffers()}
    bufs = stateless_buffers(net)
    assert all(bufs[n] is None for n in bufs if "running" in n or "num_batches" in n)
    maml = MAML(net, inner_lr=0.1, inner_steps=2, eval_steps=3, strategy="loop")
    batch = image_batch(2, 3, 1, 2)
    maml.meta_loss(batch).backward()
    maml.eval()
    adapted = maml.adapt(batch.support_x[0], batch.support_y[0])
    for n, b in net.named_buffers():
        assert torch.equal(b, before[n]), f"buffer {n} changed"
    # eval mode still normalises with the query batch's own statistics (transductive, MAML 5.2)
    h = torch.func.functional_call(
        net.features[0][0],
        {
            k.removeprefix("features.0.0."): v
            for k, v in adapted.items()
            if k.startswith("features.0.0.")
        },
        (batch.query_x[0],),
    )
    out = torch.func.functional_call(
        bn,
        (
            {"weight": adapted["features.0.1.weight"], "bias": adapted["features.0.1.bias"]},
            {"running_mean": None, "running_var": None, "num_batches_tracked": None},
        ),
        (h,),
    )
    mean = (out - adapted["features.0.1.bias"].view(1, -1, 1, 1)).mean(dim=(0, 2, 3))
    assert mean.abs().max() < 1e-12
    assert isinstance(bn, nn.BatchNorm2d)
