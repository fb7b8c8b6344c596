"""Conv-4's norm → max-pool → ReLU as one autograd node, for first-order passes that keep less.

Run layer by layer, autograd keeps the batch norm's input *and* output (max-pool saves its input,
of which its backward only reads the shape) plus 64-bit pool indices. On the ``split`` strategy's
query pass (75 Omniglot images) the first block's normalised output alone is 15 MB of the ~52 MB
kept for the backward. This node keeps the norm's input, the pool indices and the ReLU output (the
next convolution's input, kept anyway), and frees the indices as soon as its backward has used
them: the same function and the same gradient from the same kernels, about 20 MB less at the
peak. Only first-order (``once_differentiable``), outside ``vmap``, with native batch norm's
batch statistics; so only inside :func:`fused_norm_pool_relu`, which ``split`` enables.
"""

from __future__ import annotations

import contextvars
from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import Tensor, nn
from torch.autograd.function import once_differentiable

from metaloop.nets.batchnorm import TaskBatchNorm

_FUSED = contextvars.ContextVar("metaloop_fused_norm_pool_relu", default=False)


@contextmanager
def fused_norm_pool_relu() -> Iterator[None]:
    """Inside this block :func:`norm_pool_relu_block` fuses TaskBatchNorm → MaxPool2d → ReLU."""
    token = _FUSED.set(True)
    try:
        yield
    finally:
        _FUSED.reset(token)


class _NormPoolReLU(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, weight, bias, eps, kernel, stride, padding, dilation, ceil_mode):
        y, mean, invstd = torch.ops.aten.native_batch_norm(
            x, weight, bias, None, None, True, 0.0, eps
        )
        pooled, indices = torch.ops.aten.max_pool2d_with_indices(
            y, kernel, stride, padding, dilation, ceil_mode
        )
        del y
        out = pooled.relu_()
        ctx.save_for_backward(weight, out)
        # Attributes, not saved tensors, so that backward can free them early.
        ctx.x, ctx.indices, ctx.mean, ctx.invstd = x, indices, mean, invstd
        ctx.config = (eps, kernel, stride, padding, dilation, ceil_mode)
        return out

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_out):
        weight, out = ctx.saved_tensors
        eps, kernel, stride, padding, dilation, ceil_mode = ctx.config
        grad = torch.ops.aten.threshold_backward(grad_out, out, 0)
        # The pool's backward reads only the shape and layout of its input: x has both.
        grad = torch.ops.aten.max_pool2d_with_indices_backward(
            grad, ctx.x, kernel, stride, padding, dilation, ceil_mode, ctx.indices
        )
        del ctx.indices
        gx, gw, gb = _batch_norm_backward_inplace(grad, ctx.x, weight, ctx.mean, ctx.invstd)
        del ctx.x
        return gx, gw, gb, None, None, None, None, None, None


#: elements per slice in :func:`_batch_norm_backward_inplace` (2 MB of float32: small temporaries).
_SLICE_ELEMENTS = 1 << 19


def _batch_norm_backward_inplace(grad: Tensor, x: Tensor, weight, mean: Tensor, invstd: Tensor):
    """Batch norm's backward (batch statistics) written into ``grad``, which the caller owns.

    ``native_batch_norm_backward`` allocates the input gradient and a full-size temporary (29 MB
    at the peak on the first query block, twice the 15 MB activation); here the per-channel sums
    run over slices of images and the input gradient overwrites ``grad``, so nothing full-size is
    allocated. ``gx = w * invstd * (g - mean(g) - xhat * mean(g * xhat))``.
    """
    dims, shape = [0, 2, 3], (1, -1, 1, 1)
    step = max(1, _SLICE_ELEMENTS // max(1, x[0].numel()))
    slices = [slice(i, i + step) for i in range(0, x.size(0), step)]
    centred = lambda s: x[s] - mean.view(shape)  # noqa: E731
    count = x.numel() // x.size(1)
    g_sum = grad.sum(dims)
    g_xhat = sum((grad[s] * centred(s)).sum(dims) for s in slices) * invstd
    scale = invstd if weight is None else weight * invstd
    grad.mul_(scale.view(shape)).sub_((scale * g_sum / count).view(shape))
    coef = (-scale * invstd * g_xhat / count).view(shape)
    for s in slices:
        grad[s].addcmul_(centred(s), coef)
    return grad, (None if weight is None else g_xhat), (None if weight is None else g_sum)


def _as_list(v) -> list[int]:
    return list(v) if isinstance(v, tuple | list) else [v, v]


def norm_pool_relu_block(layers: list[nn.Module], x: Tensor) -> Tensor | None:
    """``layers`` applied to ``x`` as one node, or None when not enabled or not that block."""
    if not _FUSED.get() or x.dim() != 4 or [type(m) for m in layers] != [
        TaskBatchNorm,
        nn.MaxPool2d,
        nn.ReLU,
    ]:
        return None
    norm, pool, _ = layers
    if pool.return_indices:
        return None
    stride = pool.stride if pool.stride is not None else pool.kernel_size
    return _NormPoolReLU.apply(
        x,
        norm.weight,
        norm.bias,
        norm.eps,
        _as_list(pool.kernel_size),
        _as_list(stride),
        _as_list(pool.padding),
        _as_list(pool.dilation),
        pool.ceil_mode,
    )
