import torch

from metaloop.nets import TaskBatchNorm
from metaloop.nets.batchnorm import native_batch_norm_kernel


def test_fused_kernel_context_computes_the_same_function_and_gradient():
    torch.manual_seed(0)
    bn = TaskBatchNorm(3).double()
    with torch.no_grad():
        bn.weight.uniform_(0.5, 1.5)
        bn.bias.uniform_(-1, 1)
    x = torch.randn(6, 3, 4, 4, dtype=torch.float64, requires_grad=True)
    w = torch.randn(6, 3, 4, 4, dtype=torch.float64)
    plain = bn(x)
    g_plain = torch.autograd.grad((plain * w).sum(), [x, bn.weight, bn.bias])
    with native_batch_norm_kernel():
        fused = bn(x)
        g_fused = torch.autograd.grad((fused * w).sum(), [x, bn.weight, bn.bias])
    assert fused.grad_fn.name() != plain.grad_fn.name()  # really a different kernel
    assert torch.allclose(fused, plain, rtol=0, atol=1e-13)
    for a, b in zip(g_fused, g_plain, strict=True):
        assert torch.allclose(a, b, rtol=0, atol=1e-12)
    assert torch.allclose(bn(x), plain)  # the context is off again afterwards
