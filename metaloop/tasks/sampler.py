"""N-way K-shot episode sampling from a class-indexed dataset.

An episode is drawn as a ``[ways, shots + queries]`` grid of example indices: ``ways`` distinct classes
in random order (the row number becomes the episode label, so labels are remapped to ``0..ways-1`` and
permuted per episode), and ``shots + queries`` distinct examples of each class. The same grid serves
the fast in-memory path (index the uint8 tensor directly) and a plain ``DataLoader`` through
:meth:`FewShotSampler.batch_sampler` + :func:`collate_episode`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import torch
from torch import Tensor

from metaloop.data.base import ClassDataset
from metaloop.tasks.episode import Episode, EpisodeBatch
from metaloop.tasks.seeding import generator_for

Transform = Callable[[Tensor], Tensor]


def to_float(images: Tensor) -> Tensor:
    """Default transform: uint8 images → float32 in [0, 1]; float data passes through."""
    if images.dtype == torch.uint8:
        return images.float().div_(255.0)
    return images


def _check_count(name: str, value: object, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {type(value).__name__} ({value!r})")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return value


class FewShotSampler:
    """Samples N-way K-shot Q-query episodes; deterministic given a ``torch.Generator``."""

    def __init__(
        self,
        dataset: ClassDataset,
        ways: int,
        shots: int,
        queries: int,
        transform: Transform | None = to_float,
    ) -> None:
        self.ways = _check_count("ways", ways, 1)
        self.shots = _check_count("shots", shots, 1)
        self.queries = _check_count("queries", queries, 0)
        if not isinstance(dataset, ClassDataset):
            raise TypeError(
                f"FewShotSampler needs a metaloop ClassDataset, got {type(dataset).__name__}; wrap "
                "tensors with ClassDataset(data, targets, class_names)"
            )
        if dataset.data.dtype != torch.uint8 and not torch.is_floating_point(dataset.data):
            raise TypeError(
                f"{dataset.name}: data must be uint8 images or a float tensor, got {dataset.data.dtype}"
            )
        if dataset.num_classes == 0 or len(dataset) == 0:
            raise ValueError(f"{dataset.name}: the split is empty (0 classes); check the split files")
        self.dataset = dataset
        self.transform = transform
        per_class = self.shots + self.queries
        sizes = dataset.class_sizes()
        self.eligible = torch.nonzero(sizes >= per_class).flatten()
        if dataset.num_classes < self.ways:
            raise ValueError(
                f"{self.ways}-way episodes need {self.ways} classes but {dataset.name} has only "
                f"{dataset.num_classes}; lower ways to <= {dataset.num_classes} or use a larger split"
            )
        if len(self.eligible) < self.ways:
            raise ValueError(
                f"shots + queries = {per_class} examples per class, but only {len(self.eligible)} of "
                f"{dataset.name}'s classes have that many (smallest class: {int(sizes.min())}, largest: "
                f"{int(sizes.max())}); lower shots/queries so shots + queries <= {int(sizes.max())}"
            )

    def __repr__(self) -> str:
        return (f"FewShotSampler({self.dataset.name}, ways={self.ways}, shots={self.shots}, "
                f"queries={self.queries})")

    def sample_indices(self, generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
        """``(indices [ways, shots+queries], classes [ways])`` into the dataset."""
        pick = torch.randperm(len(self.eligible), generator=generator)[: self.ways]
        classes = self.eligible[pick]
        per_class = self.shots + self.queries
        rows = []
        for c in classes.tolist():
            members = self.dataset.indices_of(c)
            rows.append(members[torch.randperm(len(members), generator=generator)[:per_class]])
        return torch.stack(rows), classes

    def episode_from_indices(self, indices: Tensor, classes: Tensor) -> Episode:
        data = self.dataset.data[indices.flatten()]
        if self.transform is not None:
            data = self.transform(data)
        return split_grid(data, classes, self.shots)

    def sample(self, generator: torch.Generator | None = None) -> Episode:
        return self.episode_from_indices(*self.sample_indices(generator))

    def sample_batch(self, n: int, generator: torch.Generator | None = None) -> EpisodeBatch:
        """``n`` episodes stacked; one gather and one transform for the whole batch."""
        grids = [self.sample_indices(generator) for _ in range(_check_count("n", n, 1))]
        indices = torch.stack([g[0] for g in grids])
        data = self.dataset.data[indices.flatten()]
        if self.transform is not None:
            data = self.transform(data)
        data = data.view(n, self.ways, self.shots + self.queries, *data.shape[1:])
        labels = torch.arange(self.ways).view(1, self.ways, 1)
        labels = labels.expand(n, self.ways, self.shots + self.queries)
        feat = data.shape[3:]
        return EpisodeBatch(
            data[:, :, : self.shots].reshape(n, -1, *feat),
            labels[:, :, : self.shots].reshape(n, -1),
            data[:, :, self.shots :].reshape(n, -1, *feat),
            labels[:, :, self.shots :].reshape(n, -1),
            torch.stack([g[1] for g in grids]),
        )

    def batch_sampler(self, episodes: int, seed: int = 0) -> EpisodeIndexSampler:
        """For ``DataLoader(dataset, batch_sampler=..., collate_fn=collate_episode(shots))``."""
        return EpisodeIndexSampler(self, episodes, seed)


def split_grid(data: Tensor, classes: Tensor, shots: int) -> Episode:
    """Turn class-major data ``[ways * (shots+queries), ...]`` into an episode with labels 0..ways-1."""
    ways = len(classes)
    grid = data.view(ways, -1, *data.shape[1:])
    per_class = grid.shape[1]
    labels = torch.arange(ways).unsqueeze(1).expand(ways, per_class)
    return Episode(
        grid[:, :shots].reshape(-1, *data.shape[1:]),
        labels[:, :shots].reshape(-1),
        grid[:, shots:].reshape(-1, *data.shape[1:]),
        labels[:, shots:].reshape(-1),
        classes,
    )


class EpisodeIndexSampler:
    """A torch ``batch_sampler``: each item is the flat index list of one episode.

    Index lists are drawn in the main process, so ``DataLoader`` workers only load: episodes can
    neither repeat nor correlate across workers (a bug in samplers that draw inside workers).
    """

    def __init__(self, sampler: FewShotSampler, episodes: int, seed: int) -> None:
        self.sampler = sampler
        self.episodes = _check_count("episodes", episodes, 1)
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """New episodes each epoch, reproducibly (as ``DistributedSampler.set_epoch``)."""
        self.epoch = epoch

    def __len__(self) -> int:
        return self.episodes

    def __iter__(self) -> Iterator[list[int]]:
        g = generator_for(self.seed, self.epoch)
        for _ in range(self.episodes):
            indices, _ = self.sampler.sample_indices(g)
            yield indices.flatten().tolist()


def collate_episode(shots: int, transform: Transform | None = to_float) -> Callable[[list], Episode]:
    """``collate_fn`` turning a batch of ``(x, class)`` pairs from :class:`EpisodeIndexSampler`."""

    def collate(items: list[tuple[Tensor, int]]) -> Episode:
        data = torch.stack([torch.as_tensor(x) for x, _ in items])
        targets = torch.tensor([y for _, y in items])
        if transform is not None:
            data = transform(data)
        per_class = _per_class_run(targets)
        classes = targets[::per_class]
        return split_grid(data, classes, shots)

    return collate


def _per_class_run(targets: Tensor) -> int:
    change = torch.nonzero(targets[1:] != targets[:-1]).flatten()
    return int(change[0]) + 1 if len(change) else len(targets)
