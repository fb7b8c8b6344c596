"""The fully connected network of the MAML sinusoid experiment (1-40-40-1, ReLU)."""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn


class MLP(nn.Module):
    def __init__(self, in_features: int = 1, out_features: int = 1, hidden: Sequence[int] = (40, 40)) -> None:
        super().__init__()
        dims = [in_features, *hidden]
        layers: list[nn.Module] = []
        for a, b in zip(dims[:-1], dims[1:], strict=True):
            layers += [nn.Linear(a, b), nn.ReLU()]
        self.body = nn.Sequential(*layers)
        self.head = nn.Linear(dims[-1], out_features)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.body(x))
