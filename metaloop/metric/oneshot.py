"""Lake et al.'s within-alphabet one-shot protocol as a sampler (Lake et al. 2015; Koch et al. 2015).

ML papers draw the classes of a 20-way episode from anywhere in the test set; Lake's benchmark
draws all 20 from **one** alphabet, where characters look alike (the same Siamese net: 10.7 % vs
24.2 % error, jvlmdr/omniglot-eval). Each episode here picks an alphabet that has at least ``ways``
classes, then ``ways`` of its characters and random drawings: the protocol of Lake's 20 runs with
random rather than Lake's fixed drawer pairs.
"""

from __future__ import annotations

import torch
from torch import Tensor

from metaloop.data.base import ClassDataset
from metaloop.tasks.sampler import FewShotSampler, Transform, to_float


def alphabet_groups(dataset: ClassDataset) -> dict[str, Tensor]:
    """Class indices per alphabet, from class names ``"<Alphabet>/characterNN[/rotXXX]"``."""
    groups: dict[str, list[int]] = {}
    for i, name in enumerate(dataset.class_names):
        groups.setdefault(name.split("/", 1)[0], []).append(i)
    return {a: torch.tensor(ix) for a, ix in sorted(groups.items())}


class WithinAlphabetSampler(FewShotSampler):
    """A :class:`FewShotSampler` whose episodes take all their classes from one alphabet."""

    def __init__(self, dataset: ClassDataset, ways: int = 20, shots: int = 1, queries: int = 1,
                 transform: Transform | None = to_float) -> None:
        super().__init__(dataset, ways, shots, queries, transform)
        eligible = set(self.eligible.tolist())
        self.alphabets = {
            a: torch.tensor([c for c in ix.tolist() if c in eligible])
            for a, ix in alphabet_groups(dataset).items()
        }
        self.alphabets = {a: ix for a, ix in self.alphabets.items() if len(ix) >= self.ways}
        if not self.alphabets:
            raise ValueError(
                f"{dataset.name}: no alphabet has {self.ways} classes with enough examples; "
                "lower ways or check that class names start with '<Alphabet>/'"
            )
        self.alphabet_names = list(self.alphabets)

    def sample_indices(self, generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
        a = int(torch.randint(len(self.alphabet_names), (1,), generator=generator))
        pool = self.alphabets[self.alphabet_names[a]]
        classes = pool[torch.randperm(len(pool), generator=generator)[: self.ways]]
        per_class = self.shots + self.queries
        rows = []
        for c in classes.tolist():
            members = self.dataset.indices_of(c)
            rows.append(members[torch.randperm(len(members), generator=generator)[:per_class]])
        return torch.stack(rows), classes
