"""Conv-4, the standard few-shot backbone (Vinyals et al. 2016; Finn et al. 2017; Snell et al. 2017).

Four blocks of 3x3 convolution (64 filters) → batch norm → ReLU → 2x2 max-pool. The MAML paper's
Omniglot variant replaces max-pooling by stride-2 convolutions (``downsample="stride"``).
``norm_position="post"`` moves the norm after the ReLU and pooling, the block of hypergrad's iMAML
Omniglot net. With that net's init (``model.init: hypergrad``) and batches our iMAML preset went from
72.8 to 92.5 % at 100 meta-iterations; the order alone is worth nothing measurable there
(docs/optimization.md).

The block is stored as conv → norm → max-pool → ReLU: the same function and the same gradients
(ReLU is monotone, so ``relu(maxpool(x)) == maxpool(relu(x))``, and both route a window's gradient
to the same element), but the ReLU then runs on a quarter of the values. Parameter names are those
of the textbook order, so checkpoints are interchangeable.
"""

from __future__ import annotations

import math
from typing import Literal

from torch import Tensor, nn

from metaloop.nets.batchnorm import TaskBatchNorm
from metaloop.nets.fused import norm_pool_relu_block
from metaloop.nets.layout import preferred_layout

Norm = Literal["task", "batch", "group", "none"]
NormPosition = Literal["pre", "post"]


def _norm_layer(norm: Norm, channels: int) -> nn.Module:
    if norm == "task":
        return TaskBatchNorm(channels)
    if norm == "batch":
        return nn.BatchNorm2d(channels)
    if norm == "group":  # per example: no prediction depends on the rest of the batch
        return nn.GroupNorm(math.gcd(8, channels), channels)
    if norm == "none":
        return nn.Identity()
    raise ValueError(f"unknown norm {norm!r}; use 'task', 'batch', 'group' or 'none'")


def conv_block(in_ch: int, out_ch: int, norm: Norm, downsample: str,
               norm_position: NormPosition = "pre") -> nn.Sequential:
    """``pre``: conv → norm → ReLU (→ pool), the usual Conv-4. ``post``: conv → ReLU (→ pool) → norm,
    the block of hypergrad's iMAML Omniglot net (Grazzi et al. 2020): the next layer (or the head)
    sees normalised features, so their scale is the norm's, not the ReLU's."""
    if norm_position not in ("pre", "post"):
        raise ValueError(f"unknown norm_position {norm_position!r}; use 'pre' or 'post'")
    stride = 2 if downsample == "stride" else 1
    layers: list[nn.Module] = [nn.Conv2d(in_ch, out_ch, 3, stride=stride, padding=1)]
    if norm_position == "pre":
        layers.append(_norm_layer(norm, out_ch))
    if downsample == "max":
        layers.append(nn.MaxPool2d(2))  # before the ReLU: same function, a quarter of the work
    layers.append(nn.ReLU())
    if norm_position == "post":
        layers.append(_norm_layer(norm, out_ch))
    return nn.Sequential(*layers)


def conv4_output_size(image_size: int, blocks: int = 4, downsample: str = "max") -> int:
    """Spatial side after the blocks: 28 → 1 (max-pool), 84 → 5, 28 → 2 (stride)."""
    size = image_size
    for _ in range(blocks):
        size = size // 2 if downsample == "max" else (size + 1) // 2
    return size


class Conv4(nn.Module):
    """Conv-4 embedding, optionally followed by a linear classifier head named ``head``.

    ``out_features=None`` gives the flattened embedding (metric learners); an integer adds the head
    (MAML, ANIL adapts only ``head.*``).
    """

    def __init__(
        self,
        in_channels: int = 1,
        out_features: int | None = None,
        hidden: int = 64,
        image_size: int = 28,
        norm: Norm = "task",
        downsample: Literal["max", "stride"] = "max",
        blocks: int = 4,
        norm_position: NormPosition = "pre",
    ) -> None:
        super().__init__()
        if downsample not in ("max", "stride"):
            raise ValueError(f"unknown downsample {downsample!r}; use 'max' or 'stride'")
        chans = [in_channels] + [hidden] * blocks
        self.features = nn.Sequential(
            *[conv_block(chans[i], chans[i + 1], norm, downsample, norm_position) for i in range(blocks)]
        )
        side = conv4_output_size(image_size, blocks, downsample)
        if side < 1:
            raise ValueError(f"image_size {image_size} is too small for {blocks} downsampling blocks")
        self.embedding_dim = hidden * side * side
        self.head = nn.Linear(self.embedding_dim, out_features) if out_features else None

    def embed(self, x: Tensor) -> Tensor:
        h = x
        for conv, *rest in self.features:
            h = preferred_layout(conv(h))  # NHWC on CPU query passes (see metaloop.nets.layout)
            fused = norm_pool_relu_block(rest, h)  # None unless split's query pass enabled it
            if fused is not None:
                h = fused
                continue
            for layer in rest:
                h = layer(h)
        return h.flatten(1)

    def forward(self, x: Tensor) -> Tensor:
        z = self.embed(x)
        return self.head(z) if self.head is not None else z
