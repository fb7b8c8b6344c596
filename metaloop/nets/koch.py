"""The convolutional Siamese twin of Koch, Zemel & Salakhutdinov (ICML DL workshop 2015), Fig. 4.

105x105x1 → conv 64@10x10 → ReLU → max-pool → conv 128@7x7 → ReLU → max-pool → conv 128@4x4 →
ReLU → max-pool → conv 256@4x4 → ReLU → flatten (256·6·6 = 9216) → FC 4096 → sigmoid.
Initialisation follows Sec. 3.2 (conv weights N(0, 1e-2), biases N(0.5, 1e-2), FC weights
N(0, 2e-1)). ``width`` scales every layer for quick experiments (1.0 = the paper).
"""

from __future__ import annotations

from torch import Tensor, nn


class KochNet(nn.Module):
    def __init__(self, in_channels: int = 1, image_size: int = 105, width: float = 1.0,
                 embedding_dim: int = 4096) -> None:
        super().__init__()
        c = [max(1, round(k * width)) for k in (64, 128, 128, 256)]
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, c[0], 10), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(c[0], c[1], 7), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(c[1], c[2], 4), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(c[2], c[3], 4), nn.ReLU(),
        )
        side = ((((image_size - 9) // 2 - 6) // 2 - 3) // 2) - 3
        if side < 1:
            raise ValueError(f"image_size {image_size} is too small for the Koch network (use 105)")
        self.head = nn.Linear(c[3] * side * side, embedding_dim)
        self.embedding_dim = embedding_dim
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.normal_(m.weight, 0.0, 1e-2)
                nn.init.normal_(m.bias, 0.5, 1e-2)
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0.0, 2e-1)
                nn.init.normal_(m.bias, 0.5, 1e-2)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.features(x).flatten(1)).sigmoid()
