"""Verification pairs for Siamese training (Koch et al. 2015, Sec. 3.2-4.1).

Half the pairs show two drawings of the same character, half two different characters; with
``distort=True`` each image gets Koch's random affine distortion: rotation in [-10, 10] degrees,
shear in [-0.3, 0.3], scale in [0.8, 1.2], translation in [-2, 2] pixels, each component switched
on with probability 1/2 (Sec. 4.1).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from metaloop.data.base import ClassDataset


def random_affine(x: Tensor, generator: torch.Generator) -> Tensor:
    """Koch's distortion applied independently to each image of ``x`` (float ``[n, C, H, W]``)."""
    n, _, h, w = x.shape

    def draw(low: float, high: float, neutral: float) -> Tensor:
        v = low + (high - low) * torch.rand(n, generator=generator)
        on = torch.rand(n, generator=generator) < 0.5
        return torch.where(on, v, torch.full_like(v, neutral))

    theta = draw(-10.0, 10.0, 0.0) * math.pi / 180
    shear_x, shear_y = draw(-0.3, 0.3, 0.0), draw(-0.3, 0.3, 0.0)
    scale_x, scale_y = draw(0.8, 1.2, 1.0), draw(0.8, 1.2, 1.0)
    # translations in pixels → normalised grid units (2 / size)
    t_x, t_y = draw(-2.0, 2.0, 0.0) * 2 / w, draw(-2.0, 2.0, 0.0) * 2 / h
    cos, sin = torch.cos(theta), torch.sin(theta)
    rot = torch.stack([torch.stack([cos, -sin], -1), torch.stack([sin, cos], -1)], -2)
    shear = torch.stack([torch.stack([torch.ones(n), shear_x], -1),
                         torch.stack([shear_y, torch.ones(n)], -1)], -2)
    scale = torch.diag_embed(torch.stack([1 / scale_x, 1 / scale_y], -1))
    lin = rot @ shear @ scale
    mat = torch.cat([lin, torch.stack([t_x, t_y], -1).unsqueeze(-1)], -1).to(x.dtype)
    grid = F.affine_grid(mat, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, align_corners=False, padding_mode="zeros")


class PairSampler:
    """Balanced same/different pairs from a :class:`ClassDataset` of uint8 images."""

    def __init__(self, dataset: ClassDataset, distort: bool = True) -> None:
        sizes = dataset.class_sizes()
        if dataset.num_classes < 2 or int(sizes.min()) < 2:
            raise ValueError(
                f"{dataset.name}: pair sampling needs >= 2 classes with >= 2 examples each "
                f"(got {dataset.num_classes} classes, smallest has {int(sizes.min())})"
            )
        self.dataset = dataset
        self.distort = distort
        self._sizes = sizes

    def _pick(
        self, classes: Tensor, generator: torch.Generator, avoid: Tensor | None = None
    ) -> Tensor:
        sizes = self._sizes[classes]
        r = (torch.rand(len(classes), generator=generator) * sizes).long()
        if avoid is not None:  # a different drawing of the same class: skip the first index
            r = (torch.rand(len(classes), generator=generator) * (sizes - 1)).long()
            r = r + (r >= avoid).long()
        return r

    def sample(self, batch_size: int, generator: torch.Generator) -> tuple[Tensor, Tensor, Tensor]:
        """``(x1, x2, same)``: float images in [0, 1] and float targets 1 (same) / 0 (different)."""
        ds, n_cls = self.dataset, self.dataset.num_classes
        half = batch_size // 2
        c1 = torch.randint(n_cls, (batch_size,), generator=generator)
        offset = torch.randint(1, n_cls, (batch_size,), generator=generator)
        c2 = torch.where(torch.arange(batch_size) < half, c1, (c1 + offset) % n_cls)
        r1 = self._pick(c1, generator)
        r2_same = self._pick(c2, generator, avoid=r1)
        r2_diff = self._pick(c2, generator)
        r2 = torch.where(torch.arange(batch_size) < half, r2_same, r2_diff)
        i1 = torch.stack([ds.indices_of(int(c))[int(r)] for c, r in zip(c1, r1, strict=True)])
        i2 = torch.stack([ds.indices_of(int(c))[int(r)] for c, r in zip(c2, r2, strict=True)])
        x1 = ds.data[i1].float() / 255
        x2 = ds.data[i2].float() / 255
        if self.distort:
            x1, x2 = random_affine(x1, generator), random_affine(x2, generator)
        same = (torch.arange(batch_size) < half).float()
        return x1, x2, same
