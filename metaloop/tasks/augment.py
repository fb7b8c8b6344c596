"""Augmentation: classes by rotation (Santoro et al. 2016; Vinyals et al. 2016, Sec. 4.1.1), and
meta-training images by random translation (:func:`random_shift`, :class:`ShiftedTasks`).

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

import dataclasses
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from metaloop.data.base import ClassDataset
from metaloop.tasks.episode import Episode, EpisodeBatch


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


def random_shift(images: Tensor, max_shift: int, generator: torch.Generator | None = None) -> Tensor:
    """Each image ``[..., C, H, W]`` translated by its own integer offset in ``[-max_shift, max_shift]``
    per axis; the edge pixels are repeated into the uncovered border (right for either polarity of
    Omniglot's background, and for natural images). Offsets come from ``generator``, so a seeded task
    stream stays reproducible and a resumed run sees the same augmented episodes."""
    if isinstance(max_shift, bool) or not isinstance(max_shift, int) or max_shift < 0:
        raise ValueError(f"random_shift: max_shift must be an int >= 0, got {max_shift!r}")
    if images.dim() < 3:
        raise ValueError(f"random_shift: expected images [..., C, H, W], got shape {tuple(images.shape)}")
    channels, height, width = images.shape[-3:]
    if max_shift >= min(height, width):
        raise ValueError(
            f"random_shift: max_shift {max_shift} would move {height}x{width} images off the frame; "
            f"use max_shift < {min(height, width)}"
        )
    if max_shift == 0:
        return images
    flat = images.reshape(-1, channels, height, width)
    n = len(flat)
    padded = F.pad(flat, (max_shift,) * 4, mode="replicate")
    # an offset o in [0, 2s] crops the padded image at o: the content moves by s - o pixels
    offsets = torch.randint(0, 2 * max_shift + 1, (2, n), generator=generator).to(images.device)
    rows = offsets[0, :, None] + torch.arange(height, device=images.device)
    cols = offsets[1, :, None] + torch.arange(width, device=images.device)
    picked = padded[torch.arange(n, device=images.device)[:, None, None, None],
                    torch.arange(channels, device=images.device)[None, :, None, None],
                    rows[:, None, :, None], cols[:, None, None, :]]
    return picked.reshape(images.shape)


class ShiftedTasks:
    """A task source whose meta-training images are randomly translated (``tasks.augment: {shift: k}``).

    Why: episodic learners that see each training character thousands of times (SNAIL, MAML) can
    memorise the pixels of the meta-train classes; small translations keep the classes and add
    variety. Only meta-training is augmented, never the fixed meta-val / meta-test episodes. The
    offsets are drawn from the task stream's generator, after the episodes themselves.
    """

    def __init__(self, source, max_shift: int) -> None:
        self.source, self.max_shift = source, _pixels(max_shift)

    def __repr__(self) -> str:
        return f"ShiftedTasks({self.source!r}, max_shift={self.max_shift})"

    def sample_batch(self, n: int, generator: torch.Generator | None = None) -> EpisodeBatch:
        batch = self.source.sample_batch(n, generator)
        return dataclasses.replace(batch, support_x=random_shift(batch.support_x, self.max_shift, generator),
                                   query_x=random_shift(batch.query_x, self.max_shift, generator))

    def sample(self, generator: torch.Generator | None = None) -> Episode:
        return self.sample_batch(1, generator)[0]


def augmentation(spec: dict, image_size: int | None = None) -> Callable:
    """The ``tasks.augment`` mapping as a function ``source -> source``; checked (against
    ``image_size`` when given) before any data loads."""
    unknown = set(spec) - {"shift"}
    if unknown:
        raise ValueError(
            f"unknown augmentation {sorted(unknown)[0]!r}; the one available is shift "
            "(e.g. tasks.augment={shift: 2}: translate meta-training images by up to 2 pixels)"
        )
    shift = spec.get("shift", 0)
    if shift == 0 and not isinstance(shift, bool):
        return lambda source: source
    shift = _pixels(shift)
    if image_size is not None and shift >= image_size:
        raise ValueError(f"shift {shift} moves {image_size}-pixel images off the frame; use a shift < "
                         f"{image_size} (1-3 pixels is usual)")
    return lambda source: ShiftedTasks(source, shift)


def _pixels(shift: object) -> int:
    if isinstance(shift, bool) or not isinstance(shift, int) or shift < 1:
        raise ValueError(f"shift must be an int >= 1 (pixels), got {shift!r}")
    return shift
