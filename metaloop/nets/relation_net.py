"""The two networks of Relation Networks (Sung et al., CVPR 2018, Sec. 3.4 and Fig. 2).

Embedding module: four 3x3 conv blocks with 64 filters, batch norm and ReLU; only the first two
max-pool, so the output is a feature map (64 x 5 x 5 on 28x28 Omniglot, 64 x 19 x 19 on 84x84),
which the relation module compares. The official code uses padding 0 in the first two blocks.

Relation module: two more conv blocks (with max-pool) on the channel-wise concatenation of a query
and a class feature map, then FC(8) + ReLU and FC(1) + sigmoid: a relation score in [0, 1].
"""

from __future__ import annotations

from torch import Tensor, nn


def _block(in_ch: int, out_ch: int, padding: int, pool: bool) -> nn.Sequential:
    layers: list[nn.Module] = [
        nn.Conv2d(in_ch, out_ch, 3, padding=padding),
        nn.BatchNorm2d(out_ch),
        nn.ReLU(),
    ]
    if pool:
        layers.append(nn.MaxPool2d(2))
    return nn.Sequential(*layers)


class RelationEmbedding(nn.Module):
    """``f_phi``: returns feature maps ``[n, hidden, s, s]`` (s = 5 for 28x28 inputs)."""

    def __init__(self, in_channels: int = 1, hidden: int = 64, image_size: int = 28) -> None:
        super().__init__()
        self.features = nn.Sequential(
            _block(in_channels, hidden, 0, True),
            _block(hidden, hidden, 0, True),
            _block(hidden, hidden, 1, False),
            _block(hidden, hidden, 1, False),
        )
        side = ((image_size - 2) // 2 - 2) // 2
        if side < 1:
            raise ValueError(f"image_size {image_size} is too small for the relation embedding")
        self.out_channels = hidden
        self.out_side = side

    def forward(self, x: Tensor) -> Tensor:
        return self.features(x)


class RelationModule(nn.Module):
    """``g_phi``: relation score in [0, 1] for concatenated pairs ``[n, 2C, s, s]``."""

    def __init__(self, in_channels: int = 64, feature_side: int = 5, hidden: int = 8) -> None:
        super().__init__()
        self.convs = nn.Sequential(
            _block(2 * in_channels, in_channels, 1, True),
            _block(in_channels, in_channels, 1, True),
        )
        side = max(feature_side // 2 // 2, 1)
        if feature_side < 4:
            raise ValueError(
                f"feature maps of side {feature_side} are too small for two 2x2 max-pools; "
                "use an embedding that keeps at least 4x4"
            )
        self.fc = nn.Sequential(
            nn.Flatten(),
            nn.Linear(in_channels * side * side, hidden),
            nn.ReLU(),
            nn.Linear(hidden, 1),
        )

    def forward(self, pairs: Tensor) -> Tensor:
        """Pre-sigmoid relation logits ``[n]``."""
        return self.fc(self.convs(pairs)).squeeze(-1)
