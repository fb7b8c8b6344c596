"""Shared fixtures: tiny generated datasets and the location of the real data, if present."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from metaloop.data.base import ClassDataset

REPO = Path(__file__).resolve().parents[1]


def shared_data_root() -> Path | None:
    """``$METALOOP_DATA`` or ``../shared/data`` beside the repository (as in CI), else None."""
    for candidate in (os.environ.get("METALOOP_DATA"), REPO.parent / "shared" / "data"):
        if candidate and Path(candidate).is_dir():
            return Path(candidate)
    return None


def make_class_dataset(classes: int = 10, per_class: int = 8, shape=(1, 4, 4), seed: int = 0,
                       name: str = "toy") -> ClassDataset:
    """uint8 images whose first pixel encodes (class, example): easy to trace through sampling."""
    g = torch.Generator().manual_seed(seed)
    data = torch.randint(0, 256, (classes * per_class, *shape), generator=g, dtype=torch.uint8)
    targets = torch.arange(classes).repeat_interleave(per_class)
    flat = data.view(len(data), -1)
    flat[:, 0] = targets.to(torch.uint8)
    flat[:, 1] = torch.arange(per_class).repeat(classes).to(torch.uint8)
    return ClassDataset(data, targets, tuple(f"class{c:02d}" for c in range(classes)), name=name)


@pytest.fixture
def toy_dataset() -> ClassDataset:
    return make_class_dataset()
