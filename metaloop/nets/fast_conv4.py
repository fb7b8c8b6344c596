"""A CPU-fast view of a :class:`~metaloop.nets.conv4.Conv4` embedding: same parameters, same function.

Three exact rewrites, no approximation:
* channels-last memory layout for activations and weights (oneDNN's fast convolution path on CPU;
  about 2x on Conv-4 training steps in ``cpu_speed_notes.md`` and in our benchmark);
* TaskBatchNorm through torch's fused ``batch_norm`` kernel (same statistics, no buffers; this view
  is for plain autograd, never under ``vmap`` where that kernel's second-order gradients are wrong);
* max-pool before ReLU (Conv4 itself stores its blocks in that order: ReLU is monotone, so
  ``maxpool(relu(x)) == relu(maxpool(x))``, and the ReLU runs on a quarter of the values).

The wrapped Conv4 is shared, not copied: training through the fast view trains the Conv4.

One opt-in approximation, ``precision="bf16"``: the convolutions run under ``torch.autocast`` in
bfloat16 (weights stay float32, the embedding comes back as float32). On a CPU with AVX-512 BF16
a Conv-4 training step on an 80-image episode took 31.5 ms against 63.7 ms in float32
(channels-last both; 73.3 ms in plain NCHW float32). It changes the numbers, so it is never the
default; ``benchmarks/bench_metric.py`` times both precisions against the same reference and
``benchmarks/repro_metric.py PRESET --precision bf16`` trains with it for an accuracy check.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from metaloop.nets.batchnorm import native_batch_norm_kernel
from metaloop.nets.conv4 import Conv4
from metaloop.nets.layout import channels_last_activations, to_channels_last

PRECISIONS = {"fp32": None, "bf16": torch.bfloat16}


class FastConv4(nn.Module):
    def __init__(self, conv4: Conv4, precision: str = "fp32") -> None:
        super().__init__()
        if precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {sorted(PRECISIONS)}, got {precision!r}")
        self.precision = precision
        for block in conv4.features:
            kinds = [type(m).__name__ for m in block]
            if len(block) != 4 or not isinstance(block[0], nn.Conv2d) or not isinstance(
                block[2], nn.MaxPool2d
            ):
                raise ValueError(
                    f"FastConv4 needs max-pool Conv4 blocks [conv, norm, pool, relu], got {kinds}; "
                    "use Conv4(downsample='max', norm_position='pre')"
                )
        self.conv4 = conv4.to(memory_format=torch.channels_last)
        self.embedding_dim = conv4.embedding_dim

    def forward(self, x: Tensor) -> Tensor:
        # Conv4.embed asks metaloop.nets.layout for NHWC after every convolution (the 1-channel
        # image cannot carry the layout itself); TaskBatchNorm runs on the fused kernel (not vmap)
        dtype = PRECISIONS[self.precision]
        with native_batch_norm_kernel(), channels_last_activations(), torch.autocast(
            x.device.type, dtype=dtype or torch.float32, enabled=dtype is not None
        ):
            z = self.conv4.embed(x.contiguous(memory_format=torch.channels_last))
        return z.float() if dtype is not None else z


class ChannelsLastConv4(Conv4):
    """A :class:`Conv4` whose CPU passes run channels-last, with the state-dict names of a plain one.

    For learners that call their embedding with plain autograd and keep ordinary batch norm (the
    model-based family): the first exact rewrite of :class:`FastConv4` without the wrapper, so
    their checkpoints stay loadable both ways. Measured on one core, forward + backward of a 5-way
    SNAIL batch (240 images) 0.378 → 0.270 CPU s, 960 images (20-way) 2.28 → 1.44. Other devices
    and non-image inputs take the plain path.
    """

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.to(memory_format=torch.channels_last)

    def embed(self, x: Tensor) -> Tensor:
        if x.device.type != "cpu" or x.dim() != 4:
            return super().embed(x)
        with channels_last_activations():
            return super().embed(to_channels_last(x))
