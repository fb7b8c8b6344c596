import pytest
import torch

from metaloop.nets.conv4 import Conv4
from metaloop.nets.fast_conv4 import FastConv4


def test_fast_conv4_is_the_same_function_with_the_same_gradients():
    torch.manual_seed(0)
    ref = Conv4(norm="batch", image_size=40).double()
    fast = FastConv4(Conv4(norm="batch", image_size=40).double())
    fast.conv4.load_state_dict(ref.state_dict())
    x = torch.randn(6, 1, 40, 40, dtype=torch.float64)
    a, b = ref.embed(x), fast(x)
    torch.testing.assert_close(a, b)
    ga = torch.autograd.grad((a * a.detach().cos()).sum(), list(ref.parameters()))
    gb = torch.autograd.grad((b * b.detach().cos()).sum(), list(fast.conv4.parameters()))
    for u, v in zip(ga, gb, strict=True):
        torch.testing.assert_close(u, v)
    with pytest.raises(ValueError, match="max-pool"):
        FastConv4(Conv4(downsample="stride"))


def test_bf16_precision_is_close_trains_the_float32_weights_and_is_opt_in():
    torch.manual_seed(0)
    conv4 = Conv4(1, None, norm="batch")
    x = (torch.rand(20, 1, 28, 28) < 0.2).float()
    exact, approx = FastConv4(conv4)(x), FastConv4(conv4, "bf16")(x)
    assert approx.dtype == torch.float32
    assert not torch.equal(exact, approx)  # it really runs in bf16
    assert (approx - exact).norm() / exact.norm() < 0.05
    approx.pow(2).mean().backward()
    assert all(p.grad is not None and p.grad.dtype == torch.float32 for p in conv4.parameters())
    assert FastConv4(conv4).precision == "fp32"
    with pytest.raises(ValueError, match="precision must be one of"):
        FastConv4(conv4, "fp16")
