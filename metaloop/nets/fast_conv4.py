"""A CPU-fast view of a :class:`~metaloop.nets.conv4.Conv4` embedding: same parameters, same function.

Three exact rewrites, no approximation:
* channels-last memory layout for activations and weights (oneDNN's fast convolution path on CPU;
  about 2x on Conv-4 training steps in ``cpu_speed_notes.md`` and in our benchmark);
* TaskBatchNorm through torch's fused ``batch_norm`` kernel (same statistics, no buffers; this view
  is for plain autograd, never under ``vmap`` where that kernel's second-order gradients are wrong);
* max-pool before ReLU (Conv4 itself stores its blocks in that order: ReLU is monotone, so
  ``maxpool(relu(x)) == relu(maxpool(x))``, and the ReLU runs on a quarter of the values).

The wrapped Conv4 is shared, not copied: training through the fast view trains the Conv4.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from metaloop.nets.batchnorm import native_batch_norm_kernel
from metaloop.nets.conv4 import Conv4
from metaloop.nets.layout import channels_last_activations


class FastConv4(nn.Module):
    def __init__(self, conv4: Conv4) -> None:
        super().__init__()
        for block in conv4.features:
            kinds = [type(m).__name__ for m in block]
            if len(block) != 4 or not isinstance(block[0], nn.Conv2d) or not isinstance(
                block[2], nn.MaxPool2d
            ):
                raise ValueError(
                    f"FastConv4 needs max-pool Conv4 blocks [conv, norm, pool, relu], got {kinds}; "
                    "use Conv4(downsample='max')"
                )
        self.conv4 = conv4.to(memory_format=torch.channels_last)
        self.embedding_dim = conv4.embedding_dim

    def forward(self, x: Tensor) -> Tensor:
        # Conv4.embed asks metaloop.nets.layout for NHWC after every convolution (the 1-channel
        # image cannot carry the layout itself); TaskBatchNorm runs on the fused kernel (not vmap)
        with native_batch_norm_kernel(), channels_last_activations():
            return self.conv4.embed(x.contiguous(memory_format=torch.channels_last))
