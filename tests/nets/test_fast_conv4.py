import pytest
import torch

from metaloop.nets.conv4 import Conv4
from metaloop.nets.fast_conv4 import ChannelsLastConv4, FastConv4


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


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_channels_last_conv4_is_a_plain_conv4_with_faster_passes(dtype):
    """Same state-dict names (checkpoints load both ways), same outputs, gradients and running
    statistics; activations really are channels-last inside."""
    torch.manual_seed(0)
    ref = Conv4(norm="batch", image_size=40).to(dtype)
    fast = ChannelsLastConv4(norm="batch", image_size=40).to(dtype)
    fast.load_state_dict(ref.state_dict())
    assert list(fast.state_dict()) == list(ref.state_dict())
    assert fast.features[0][0].weight.is_contiguous(memory_format=torch.channels_last)
    seen = []
    fast.features[1][0].register_forward_hook(
        lambda module, args, out: seen.append(out.is_contiguous(memory_format=torch.channels_last)))
    x = torch.randn(6, 1, 40, 40, dtype=dtype)
    a, b = ref(x), fast(x)
    assert seen == [True]
    tol = {} if dtype == torch.float64 else {"rtol": 1e-4, "atol": 1e-5}
    torch.testing.assert_close(a, b, **tol)
    ga = torch.autograd.grad((a * a.detach().cos()).sum(), list(ref.parameters()))
    gb = torch.autograd.grad((b * b.detach().cos()).sum(), list(fast.parameters()))
    # float32: the summation order differs (~1e-4 of the largest gradient; a conv bias before batch
    # norm has a true gradient of 0 and float noise)
    scale = max(float(u.abs().max()) for u in ga)
    grad_tol = {} if dtype == torch.float64 else {"rtol": 1e-3, "atol": 1e-3 * scale}
    for u, v in zip(ga, gb, strict=True):
        torch.testing.assert_close(u, v, **grad_tol)
    for name, buf in ref.named_buffers():
        torch.testing.assert_close(buf, dict(fast.named_buffers())[name], **tol)
    fast.eval(), ref.eval()
    torch.testing.assert_close(ref(x), fast(x), **tol)
