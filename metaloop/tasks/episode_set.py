"""Fixed evaluation episodes, saved once so every method is scored on exactly the same tasks.

For class-indexed datasets only the index grid is stored (600 Omniglot 20-way 5-shot episodes with 15
queries are 750 MB as float images but 1 MB as indices), together with the dataset's fingerprint so
that loading against a different dataset or split fails loudly instead of scoring other episodes.
Regression episodes are stored as tensors.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import torch

from metaloop.io import atomic_torch_save
from metaloop.tasks.episode import Episode, EpisodeBatch
from metaloop.tasks.seeding import generator_for

FORMAT = "metaloop.episode_set.v1"


class EpisodeSet:
    """A sequence of episodes: ``len``, indexing and iteration give :class:`Episode`."""

    def __init__(self, *, indices=None, classes=None, source=None, batch: EpisodeBatch | None = None,
                 seed: int | None = None) -> None:
        if (indices is None) == (batch is None):
            raise ValueError("an EpisodeSet holds either index grids (with a source) or an EpisodeBatch")
        if indices is not None and source is None:
            raise ValueError("index-based episode sets need the sampler they index into (source=...)")
        self.indices, self.classes, self.source, self.batch, self.seed = indices, classes, source, batch, seed

    @classmethod
    def generate(cls, source, episodes: int, seed: int) -> EpisodeSet:
        """Draw ``episodes`` episodes from ``source`` (a FewShotSampler or a regression sampler)."""
        if episodes < 1:
            raise ValueError(f"episodes must be >= 1, got {episodes}")
        g = generator_for(seed, 0xE7A1)
        if hasattr(source, "sample_indices"):
            grids = [source.sample_indices(g) for _ in range(episodes)]
            return cls(indices=torch.stack([x for x, _ in grids]),
                       classes=torch.stack([c for _, c in grids]), source=source, seed=seed)
        return cls(batch=source.sample_batch(episodes, g), seed=seed)

    def __len__(self) -> int:
        return len(self.indices) if self.indices is not None else len(self.batch)

    def __getitem__(self, i: int) -> Episode:
        if not -len(self) <= i < len(self):
            raise IndexError(f"episode {i} out of range for {len(self)} episodes")
        if self.batch is not None:
            return self.batch[i]
        return self.source.episode_from_indices(self.indices[i], self.classes[i])

    def __iter__(self) -> Iterator[Episode]:
        return (self[i] for i in range(len(self)))

    def head(self, n: int) -> EpisodeSet:
        """The first ``n`` episodes (quick checks on a prefix of the same fixed set)."""
        if self.batch is not None:
            return EpisodeSet(batch=EpisodeBatch(*[None if t is None else t[:n] for t in (
                self.batch.support_x, self.batch.support_y, self.batch.query_x, self.batch.query_y,
                self.batch.classes)]), seed=self.seed)
        return EpisodeSet(indices=self.indices[:n], classes=self.classes[:n], source=self.source,
                          seed=self.seed)

    def save(self, path: str | os.PathLike) -> Path:
        state: dict = {"format": FORMAT, "seed": self.seed}
        if self.batch is not None:
            b = self.batch
            state.update(kind="tensors", support_x=b.support_x, support_y=b.support_y,
                         query_x=b.query_x, query_y=b.query_y)
        else:
            s = self.source
            state.update(kind="indices", indices=self.indices.int(), classes=self.classes.int(),
                         ways=s.ways, shots=s.shots, queries=s.queries,
                         fingerprint=s.dataset.fingerprint(), dataset=s.dataset.name)
        return atomic_torch_save(path, state)

    @classmethod
    def load(cls, path: str | os.PathLike, source=None) -> EpisodeSet:
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(
                f"episode set {path} not found; create it with EpisodeSet.generate(...).save()"
            )
        try:
            state = torch.load(path, weights_only=True)
        except Exception as exc:  # truncated or foreign file
            raise ValueError(f"{path} is not a readable metaloop episode set ({exc}); regenerate it") from exc
        if not isinstance(state, dict) or state.get("format") != FORMAT:
            raise ValueError(f"{path} is not a metaloop episode set (format {FORMAT} expected)")
        if state["kind"] == "tensors":
            return cls(batch=EpisodeBatch(state["support_x"], state["support_y"], state["query_x"],
                                          state["query_y"]), seed=state["seed"])
        if source is None:
            raise ValueError(f"{path} stores dataset indices: pass the FewShotSampler it was drawn from")
        shape = (source.ways, source.shots, source.queries)
        if shape != (state["ways"], state["shots"], state["queries"]):
            raise ValueError(
                f"{path} holds {state['ways']}-way {state['shots']}-shot {state['queries']}-query episodes "
                f"but the sampler is {shape[0]}-way {shape[1]}-shot {shape[2]}-query"
            )
        if source.dataset.fingerprint() != state["fingerprint"]:
            raise ValueError(
                f"{path} was drawn from dataset {state['dataset']!r} with other classes than "
                f"{source.dataset.name!r} (fingerprint mismatch); load it with the same data and split"
            )
        return cls(indices=state["indices"].long(), classes=state["classes"].long(), source=source,
                   seed=state["seed"])
