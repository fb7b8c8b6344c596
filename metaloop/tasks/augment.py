"""Class augmentation by rotation (Santoro et al. 2016; Vinyals et al. 2016, Sec. 4.1.1).

Rotating every Omniglot character by 90, 180 and 270 degrees and calling each rotation a *new class*
quadruples the classes (1,623 → 6,492); the Vinyals split files name these classes
``<Alphabet>/characterNN/rot000|rot090|rot180|rot270``.

Direction: ``rotXXX`` means XXX degrees **counter-clockwise**, as in Snell's prototypical-networks
loader, which calls ``PIL.Image.rotate(XXX)`` (PIL rotates counter-clockwise). Here it is
``torch.rot90(x, k=XXX // 90, dims=(-2, -1))`` on the uint8 images (rows top→bottom, columns
left→right), which is the same counter-clockwise turn, exact, with no interpolation. (Snell's loader
then also transposes every image — ``.transpose(0, 1)`` in ``convert_tensor`` — which applies to all
classes alike; we do not copy that.)
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from metaloop.data.base import ClassDataset


def rotation_suffix(angle: int) -> str:
    return f"rot{angle:03d}"


def rotate_classes(
    dataset: ClassDataset, angles: Sequence[int] = (0, 90, 180, 270), name: str | None = None
) -> ClassDataset:
    """Every (class, angle) pair as its own class named ``<class>/rotXXX``, classes in order
    ``c0/rot000, c0/rot090, ..., c1/rot000, ...``; examples grouped by class."""
    angles = [int(a) for a in angles]
    if not angles:
        raise ValueError("rotate_classes: angles is empty; give at least one angle, e.g. (0,)")
    bad = [a for a in angles if a % 90 or not 0 <= a < 360]
    if bad:
        raise ValueError(
            f"rotate_classes: angle {bad[0]} is not one of 0, 90, 180, 270; only exact quarter "
            "turns are supported (no interpolation)"
        )
    if len(set(angles)) != len(angles):
        raise ValueError(f"rotate_classes: repeated angles in {angles}")
    data = dataset.data
    if data.dim() < 3:
        raise ValueError(
            f"rotate_classes: expected images [n, C, H, W], got shape {tuple(data.shape)}"
        )
    if data.shape[-1] != data.shape[-2] and any(a in (90, 270) for a in angles):
        raise ValueError(
            f"rotate_classes: images are {data.shape[-2]}x{data.shape[-1]}; a 90/270 degree turn "
            "of a non-square image changes its shape. Resize to a square first."
        )
    n_angles, n = len(angles), len(dataset)
    rotated = torch.cat([torch.rot90(data, a // 90, dims=(-2, -1)) for a in angles])
    # Group examples by new class without a sort: class c's examples (in their order) go to
    # rows start'(c) + a * size(c) + j, with start'(c) = n_angles * start(c).
    sizes = dataset.class_sizes()
    by_class = torch.cat([dataset.indices_of(c) for c in range(dataset.num_classes)] or
                         [torch.zeros(0, dtype=torch.long)])
    cls = dataset.targets[by_class]
    start = torch.cumsum(sizes, 0) - sizes
    within = torch.arange(n) - start[cls]
    order = torch.empty(n_angles * n, dtype=torch.long)
    for i in range(n_angles):
        order[n_angles * start[cls] + i * sizes[cls] + within] = i * n + by_class
    targets = torch.cat([dataset.targets * n_angles + i for i in range(n_angles)])
    names = tuple(f"{c}/{rotation_suffix(a)}" for c in dataset.class_names for a in angles)
    return ClassDataset(
        data=rotated[order], targets=targets[order], class_names=names, name=name or dataset.name
    )
