"""The one shape every few-shot dataset takes: examples as one tensor, an integer class per example.

Keeping whole datasets as a single uint8 tensor (Omniglot is 25 MB at 28x28) is what makes episode
sampling a pure indexing operation: no per-episode decoding, no Python loop over files.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import Tensor


@dataclass(frozen=True)
class ClassDataset:
    """Examples grouped by class.

    data:        ``[num_examples, ...]`` tensor; images are uint8 ``[n, C, H, W]`` (ink / light = 255).
    targets:     ``[num_examples]`` int64 class index in ``0 .. len(class_names) - 1``.
    class_names: one stable, human-readable name per class (e.g. ``"Korean/character01/rot090"``);
                 splits and saved episode sets refer to classes by these names.
    """

    data: Tensor
    targets: Tensor
    class_names: tuple[str, ...]
    name: str = "dataset"
    _by_class: tuple[Tensor, ...] = field(default=(), repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.data.shape[0] != self.targets.shape[0]:
            raise ValueError(
                f"{self.name}: data has {self.data.shape[0]} examples but targets has "
                f"{self.targets.shape[0]}; they must have one target per example"
            )
        if self.targets.dtype not in (torch.int64, torch.int32, torch.int16, torch.uint8):
            raise TypeError(
                f"{self.name}: targets must be an integer tensor of class indices, got "
                f"{self.targets.dtype}; convert with targets.long()"
            )
        targets = self.targets.long()
        object.__setattr__(self, "targets", targets)
        object.__setattr__(self, "class_names", tuple(self.class_names))
        n_classes = len(self.class_names)
        if targets.numel() and (targets.min() < 0 or targets.max() >= n_classes):
            raise ValueError(
                f"{self.name}: targets must lie in 0..{n_classes - 1} (one per class name), got "
                f"range {int(targets.min())}..{int(targets.max())}"
            )
        # NumPy's stable sort: torch.argsort with several threads is 500x slower on a busy 2-core CPU
        order = torch.from_numpy(np.argsort(targets.numpy(), kind="stable"))
        counts = torch.bincount(targets, minlength=n_classes).tolist()
        object.__setattr__(self, "_by_class", tuple(torch.split(order, counts)))

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def __len__(self) -> int:
        return self.data.shape[0]

    def __getitem__(self, index: int) -> tuple[Tensor, int]:
        """Map-style access so a plain ``DataLoader(dataset, batch_sampler=...)`` works."""
        return self.data[index], int(self.targets[index])

    def indices_of(self, class_index: int) -> Tensor:
        """Example indices of one class (sorted), precomputed once."""
        return self._by_class[class_index]

    def class_sizes(self) -> Tensor:
        return torch.tensor([len(ix) for ix in self._by_class], dtype=torch.long)

    def subset(self, class_indices: Sequence[int], name: str | None = None) -> ClassDataset:
        """The dataset restricted to some classes, renumbered 0..len(class_indices)-1."""
        class_indices = [int(c) for c in class_indices]
        if len(set(class_indices)) != len(class_indices):
            raise ValueError(f"{self.name}: subset got repeated class indices")
        example_ix = torch.cat([self._by_class[c] for c in class_indices]) if class_indices else (
            torch.zeros(0, dtype=torch.long)
        )
        new_targets = torch.cat(
            [torch.full((len(self._by_class[c]),), i, dtype=torch.long) for i, c in enumerate(class_indices)]
        ) if class_indices else torch.zeros(0, dtype=torch.long)
        return ClassDataset(
            data=self.data[example_ix],
            targets=new_targets,
            class_names=tuple(self.class_names[c] for c in class_indices),
            name=name or self.name,
        )

    def subset_by_names(self, names: Sequence[str], name: str | None = None) -> ClassDataset:
        lookup = {n: i for i, n in enumerate(self.class_names)}
        missing = [n for n in names if n not in lookup]
        if missing:
            raise KeyError(
                f"{self.name}: {len(missing)} class names not found (first: {missing[0]!r}); "
                "check the split file matches this dataset"
            )
        return self.subset([lookup[n] for n in names], name=name)

    def fingerprint(self) -> str:
        """A short hash of class names and sizes, stored with saved episode sets to refuse a mismatch."""
        import hashlib

        h = hashlib.sha256()
        for n, size in zip(self.class_names, self.class_sizes().tolist(), strict=True):
            h.update(f"{n}:{size};".encode())
        return h.hexdigest()[:16]


@dataclass(frozen=True)
class Splits:
    """Class-disjoint meta-train / meta-val / meta-test datasets."""

    train: ClassDataset
    val: ClassDataset
    test: ClassDataset

    def __post_init__(self) -> None:
        names = [set(self.train.class_names), set(self.val.class_names), set(self.test.class_names)]
        for (a, b), (sa, sb) in zip(
            [("train", "val"), ("train", "test"), ("val", "test")],
            [(names[0], names[1]), (names[0], names[2]), (names[1], names[2])],
            strict=True,
        ):
            shared = sa & sb
            if shared:
                raise ValueError(
                    f"meta-{a} and meta-{b} share {len(shared)} classes (e.g. {sorted(shared)[0]!r}); "
                    "splits must be class-disjoint"
                )

    def __getitem__(self, split: str) -> ClassDataset:
        if split not in ("train", "val", "test"):
            raise KeyError(f"unknown split {split!r}; use 'train', 'val' or 'test'")
        return getattr(self, split)
