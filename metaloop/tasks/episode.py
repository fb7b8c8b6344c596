"""What a task is: a support set to adapt on and a query set to be scored on.

Classification episodes carry labels remapped to ``0 .. ways-1`` (in a random order per episode, so a
learner cannot memorise a class-to-label mapping across episodes); regression episodes carry float
targets ``[n, out_dim]``. An :class:`EpisodeBatch` stacks episodes of one shape along a leading task
dimension, which is what batched (vmap) strategies consume.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, fields, replace

import torch
from torch import Tensor


@dataclass(frozen=True)
class Episode:
    support_x: Tensor
    support_y: Tensor
    query_x: Tensor
    query_y: Tensor
    #: original class indices in the source dataset, ``[ways]`` (``None`` for regression tasks).
    classes: Tensor | None = None

    @property
    def is_classification(self) -> bool:
        return not torch.is_floating_point(self.support_y)

    @property
    def ways(self) -> int:
        if not self.is_classification:
            raise AttributeError("a regression episode has no 'ways'")
        return int(self.support_y.max()) + 1 if self.support_y.numel() else 0

    def to(self, device: torch.device | str, dtype: torch.dtype | None = None) -> Episode:
        """Move to a device; ``dtype`` converts the inputs (and float targets), never class labels."""
        return Episode(*_moved(self, device, dtype))


@dataclass(frozen=True)
class EpisodeBatch:
    """Episodes of identical shapes stacked as ``[tasks, ...]``."""

    support_x: Tensor
    support_y: Tensor
    query_x: Tensor
    query_y: Tensor
    classes: Tensor | None = None

    @staticmethod
    def stack(episodes: Sequence[Episode]) -> EpisodeBatch:
        if not episodes:
            raise ValueError("cannot stack an empty list of episodes")
        shapes = {(e.support_x.shape, e.query_x.shape) for e in episodes}
        if len(shapes) != 1:
            raise ValueError(
                f"episodes in a batch must share shapes, got {len(shapes)} different ones; "
                "sample them with the same ways/shots/queries"
            )
        classes = None
        if all(e.classes is not None for e in episodes):
            classes = torch.stack([e.classes for e in episodes])
        return EpisodeBatch(
            torch.stack([e.support_x for e in episodes]),
            torch.stack([e.support_y for e in episodes]),
            torch.stack([e.query_x for e in episodes]),
            torch.stack([e.query_y for e in episodes]),
            classes,
        )

    def __len__(self) -> int:
        return self.support_x.shape[0]

    def __getitem__(self, i: int) -> Episode:
        return Episode(
            self.support_x[i],
            self.support_y[i],
            self.query_x[i],
            self.query_y[i],
            None if self.classes is None else self.classes[i],
        )

    def __iter__(self) -> Iterator[Episode]:
        return (self[i] for i in range(len(self)))

    def unbind(self) -> list[Episode]:
        return list(self)

    def to(self, device: torch.device | str, dtype: torch.dtype | None = None) -> EpisodeBatch:
        return EpisodeBatch(*_moved(self, device, dtype))

    def split(self, parts: int) -> list[EpisodeBatch]:
        """Split along tasks into ``parts`` nearly equal batches (for sharding across ranks)."""
        chunks = [torch.tensor_split(getattr(self, f.name), parts) if getattr(self, f.name) is not None
                  else [None] * parts for f in fields(self)]
        return [EpisodeBatch(*[c[i] for c in chunks]) for i in range(parts)]

    def with_inputs(self, support_x: Tensor, query_x: Tensor) -> EpisodeBatch:
        return replace(self, support_x=support_x, query_x=query_x)


def _moved(e: Episode | EpisodeBatch, device, dtype) -> tuple:
    def move(t: Tensor | None, is_input: bool) -> Tensor | None:
        if t is None:
            return None
        if dtype is not None and (is_input or torch.is_floating_point(t)):
            return t.to(device=device, dtype=dtype)
        return t.to(device)

    return (move(e.support_x, True), move(e.support_y, False), move(e.query_x, True),
            move(e.query_y, False), e.classes)
