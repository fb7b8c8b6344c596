"""Data efficiency: accuracy as a function of the number of shots K, for any set of learners.

The picture that answers "does meta-learning need less data than plain transfer?". Every method is
scored on the *same* fixed episodes at each K (one :class:`EpisodeSet` per K, drawn from the seed),
and the number of query examples is the same at every K so the points are comparable.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from metaloop.curves.curve import Curve
from metaloop.data.base import ClassDataset
from metaloop.evaluate import evaluate
from metaloop.tasks.episode_set import EpisodeSet
from metaloop.tasks.sampler import FewShotSampler

DEFAULT_SHOTS = (1, 2, 5, 10, 20)


def shots_curve(
    methods: Mapping[str, object],
    dataset: ClassDataset,
    *,
    ways: int = 5,
    shots: Sequence[int] = DEFAULT_SHOTS,
    queries: int = 15,
    episodes: int = 100,
    seed: int = 0,
    log: Callable[[str], None] | None = None,
) -> Curve:
    """Evaluate every method at every K on fixed episodes of ``dataset`` (a meta-test split)."""
    if not methods:
        raise ValueError("shots_curve needs at least one method")
    shots = sorted({int(k) for k in shots})
    smallest = int(dataset.class_sizes().min())
    if shots[0] < 1 or shots[-1] + queries > smallest:
        raise ValueError(
            f"K = {shots[-1]} shots + {queries} queries needs {shots[-1] + queries} examples per class but "
            f"{dataset.name}'s smallest class has {smallest}; lower the largest K or the queries "
            f"(e.g. Omniglot's 20 drawings per class allow shots up to {smallest - queries} with "
            f"{queries} queries)"
        )
    curve = Curve("shots", "accuracy", shots, meta={"dataset": dataset.name, "ways": ways,
                                                   "queries": queries, "episodes": episodes, "seed": seed})
    for i, k in enumerate(shots):
        episode_set = EpisodeSet.generate(FewShotSampler(dataset, ways, k, queries), episodes, seed)
        for name, algorithm in methods.items():
            result = evaluate(algorithm, episode_set)
            curve.add(name, i, result)
            if log is not None:
                log(f"K={k} {name}: {result.summary()}")
    return curve
