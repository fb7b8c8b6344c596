"""The channels-last hint changes strides only, never values or gradients."""

import torch

from metaloop.nets import Conv4
from metaloop.nets.layout import channels_last_activations, preferred_layout


def test_preferred_layout_only_inside_the_context():
    x = torch.randn(2, 3, 4, 4)
    assert preferred_layout(x) is x
    with channels_last_activations():
        y = preferred_layout(x)
    assert y.is_contiguous(memory_format=torch.channels_last) and torch.equal(x, y)


def test_conv4_same_function_and_gradients_in_channels_last():
    torch.manual_seed(0)
    net = Conv4(1, 5).double()
    x = torch.randn(6, 1, 28, 28, dtype=torch.float64)
    out = net(x)
    grads = torch.autograd.grad(out.square().sum(), list(net.parameters()))
    seen = []
    hook = net.features[0][2].register_forward_hook(lambda m, i, o: seen.append(i[0]))
    with channels_last_activations():
        out_cl = net(x.contiguous(memory_format=torch.channels_last))
        grads_cl = torch.autograd.grad(out_cl.square().sum(), list(net.parameters()))
    hook.remove()
    # the 1-channel image cannot carry the layout: the hint is what makes block 1's pool NHWC
    assert seen[0].is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(out_cl, out, rtol=1e-12, atol=1e-12)
    for a, b in zip(grads_cl, grads, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)


def test_block_order_is_pool_before_relu_with_textbook_parameter_names():
    net = Conv4(1, 5)
    kinds = [type(m).__name__ for m in net.features[0]]
    assert kinds == ["Conv2d", "TaskBatchNorm", "MaxPool2d", "ReLU"]
    assert "features.0.1.weight" in dict(net.named_parameters())
