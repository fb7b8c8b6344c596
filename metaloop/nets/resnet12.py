"""ResNet-12, the larger few-shot backbone (Oreshkin et al. 2018 TADAM; Lee et al. 2019 MetaOptNet).

Four residual blocks; each has three 3x3 convolutions with batch norm and LeakyReLU(0.1), a 1x1
convolution + batch norm shortcut, and a 2x2 max-pool. Widths 64-160-320-640 are MetaOptNet's
(TADAM used 64-128-256-512). An 84x84 image leaves 5x5 maps; ``pool="avg"`` averages them into a
640-d embedding, ``pool="none"`` flattens (MetaOptNet's ProtoNet uses the flat 16000-d map).
DropBlock, used by MetaOptNet as a regulariser, is not included.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from torch import Tensor, nn

from metaloop.nets.conv4 import Norm, _norm_layer


class ResidualBlock(nn.Module):
    def __init__(self, in_ch: int, out_ch: int, norm: Norm, slope: float = 0.1) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(in_ch, out_ch, 3, padding=1, bias=False), _norm_layer(norm, out_ch),
            nn.LeakyReLU(slope),
            nn.Conv2d(out_ch, out_ch, 3, padding=1, bias=False), _norm_layer(norm, out_ch),
            nn.LeakyReLU(slope),
            nn.Conv2d(out_ch, out_ch, 3, padding=1, bias=False), _norm_layer(norm, out_ch),
        )
        self.shortcut = nn.Sequential(
            nn.Conv2d(in_ch, out_ch, 1, bias=False), _norm_layer(norm, out_ch)
        )
        self.act = nn.LeakyReLU(slope)
        self.pool = nn.MaxPool2d(2)

    def forward(self, x: Tensor) -> Tensor:
        return self.pool(self.act(self.body(x) + self.shortcut(x)))


class ResNet12(nn.Module):
    """ResNet-12 embedding, optionally followed by a linear head named ``head``."""

    def __init__(
        self,
        in_channels: int = 3,
        out_features: int | None = None,
        widths: Sequence[int] = (64, 160, 320, 640),
        image_size: int = 84,
        norm: Norm = "batch",
        pool: Literal["avg", "none"] = "avg",
    ) -> None:
        super().__init__()
        if len(widths) != 4:
            raise ValueError(f"ResNet-12 has 4 blocks; got {len(widths)} widths")
        if pool not in ("avg", "none"):
            raise ValueError(f"unknown pool {pool!r}; use 'avg' or 'none'")
        chans = [in_channels, *widths]
        blocks = [ResidualBlock(chans[i], chans[i + 1], norm) for i in range(4)]
        self.blocks = nn.Sequential(*blocks)
        side = image_size // 16
        if side < 1:
            raise ValueError(f"image_size {image_size} is too small for 4 max-pools (need >= 16)")
        self.pool = pool
        self.embedding_dim = widths[-1] * (1 if pool == "avg" else side * side)
        self.head = nn.Linear(self.embedding_dim, out_features) if out_features else None
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="leaky_relu")

    def embed(self, x: Tensor) -> Tensor:
        z = self.blocks(x)
        return z.mean(dim=(2, 3)) if self.pool == "avg" else z.flatten(1)

    def forward(self, x: Tensor) -> Tensor:
        z = self.embed(x)
        return self.head(z) if self.head is not None else z
