import pytest
import torch
from torch import nn

from metaloop.nets import Conv4
from metaloop.nets.batchnorm import native_batch_norm_kernel
from metaloop.nets.fused import fused_norm_pool_relu
from metaloop.nets.layout import channels_last_activations, to_channels_last


@pytest.mark.parametrize("channels_last", [False, True])
@pytest.mark.parametrize("affine", [True, False])
def test_fused_block_is_the_same_function_and_gradient(channels_last, affine):
    torch.manual_seed(0)
    net = Conv4(1, 3, hidden=5, image_size=12, blocks=2).double()
    if not affine:
        for block in net.features:
            block[1].register_parameter("weight", None)
            block[1].register_parameter("bias", None)
    x = torch.randn(7, 1, 12, 12, dtype=torch.float64)
    x = to_channels_last(x) if channels_last else x
    params = [p for p in net.parameters()]
    w = torch.randn(7, 3, dtype=torch.float64)
    with native_batch_norm_kernel():
        plain = net(x)
        g_plain = torch.autograd.grad((plain * w).sum(), params)
        with fused_norm_pool_relu(), channels_last_activations():
            fused = net(x)
            g_fused = torch.autograd.grad((fused * w).sum(), params)
    assert torch.allclose(fused, plain, rtol=0, atol=1e-13)
    for a, b in zip(g_fused, g_plain, strict=True):
        assert torch.allclose(a, b, rtol=1e-11, atol=1e-12)


def test_fused_block_only_inside_its_context_and_first_order_only():
    net = Conv4(1, 3, hidden=4, image_size=8, blocks=1)
    x = torch.randn(4, 1, 8, 8)
    names = {type(n).__name__ for n in _graph(net(x))}
    assert "_NormPoolReLUBackward" not in names
    with native_batch_norm_kernel(), fused_norm_pool_relu():
        out = net(x)
        assert "_NormPoolReLUBackward" in {type(n).__name__ for n in _graph(out)}
        conv = net.features[0][0].weight
        (g,) = torch.autograd.grad(out.square().sum(), [conv], create_graph=True)
    with pytest.raises(RuntimeError):  # a second-order pass must not get a silent wrong answer
        torch.autograd.grad(g.sum(), [conv])


def _graph(t):
    seen, todo = [], [t.grad_fn]
    while todo:
        f = todo.pop()
        if f is not None and f not in seen:
            seen.append(f)
            todo += [n for n, _ in f.next_functions]
    return seen


def test_to_channels_last_gives_one_channel_tensors_nhwc_strides():
    x = torch.randn(2, 1, 3, 4)
    y = to_channels_last(x)
    assert y.stride() == (12, 1, 4, 1) and torch.equal(x, y)
    assert x.contiguous(memory_format=torch.channels_last).stride() == x.stride()  # why it exists
    w = torch.randn(6, 1, 3, 3)
    out = nn.functional.conv2d(to_channels_last(x), to_channels_last(w), padding=1)
    assert out.is_contiguous(memory_format=torch.channels_last)
