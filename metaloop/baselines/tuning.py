"""Choose a baseline's hyper-parameters on meta-*validation* episodes (never on meta-test).

A baseline with hand-picked or test-tuned settings is not an honest comparison; a small grid scored
on held-out meta-val classes, with the same ``evaluate`` as everything else, is.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from metaloop.evaluate import EvalResult, evaluate


@dataclass
class TuneResult:
    best: dict
    best_result: EvalResult
    table: list[tuple[dict, EvalResult]]


def grid_search(
    factory: Callable[..., object],
    grid: Mapping[str, Sequence],
    val_episodes,
    *,
    log: Callable[[str], None] | None = None,
) -> TuneResult:
    """Score ``factory(**point)`` for every point of the grid; the highest accuracy (lowest MSE) wins.

    Ties keep the first point in grid order, so listing cheap settings first prefers them.
    """
    if not grid:
        raise ValueError("grid_search needs at least one hyper-parameter to search")
    empty = [k for k, v in grid.items() if len(v) == 0]
    if empty:
        raise ValueError(f"grid values for {empty} are empty; give at least one value each")
    keys = list(grid)
    table: list[tuple[dict, EvalResult]] = []
    best_i = 0
    for point in itertools.product(*(grid[k] for k in keys)):
        kwargs = dict(zip(keys, point, strict=True))
        algorithm = factory(**kwargs)
        result = evaluate(algorithm, val_episodes)
        table.append((kwargs, result))
        if log is not None:
            log(f"{kwargs}: {result.summary()}")
        lower = result.metric == "mse"
        b = table[best_i][1].mean
        if (result.mean < b) if lower else (result.mean > b):
            best_i = len(table) - 1
    return TuneResult(table[best_i][0], table[best_i][1], table)
