"""Accuracy (or MSE) as a function of adaptation steps for gradient-based learners.

Step 0 scores the learner before any adaptation (for MAML, the meta-learned initialisation; for a
network from scratch, chance). Learners that adapt without gradient steps refuse ``steps`` and are
recorded as flat lines at their single value, so they can share the plot as references.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from metaloop.curves.curve import Curve
from metaloop.evaluate import evaluate

DEFAULT_STEPS = (0, 1, 2, 5, 10)


def steps_curve(
    methods: Mapping[str, object],
    episodes,
    *,
    steps: Sequence[int] = DEFAULT_STEPS,
    log: Callable[[str], None] | None = None,
) -> Curve:
    """Evaluate each method on the same fixed ``episodes`` after each number of steps."""
    if not methods:
        raise ValueError("steps_curve needs at least one method")
    steps = sorted({int(s) for s in steps})
    if steps[0] < 0:
        raise ValueError(f"steps must be >= 0, got {steps[0]}")
    metric = None
    curve = Curve("steps", "accuracy", steps, meta={"episodes": len(episodes), "reference": []})
    for name, algorithm in methods.items():
        metric = metric or ("accuracy" if algorithm.task == "classification" else "mse")
        try:
            results = [evaluate(algorithm, episodes, steps=s) for s in steps[:1]]
        except ValueError as exc:
            if "without gradient steps" not in str(exc):
                raise
            result = evaluate(algorithm, episodes)  # no steps: a flat reference line
            for i in range(len(steps)):
                curve.add(name, i, result)
            curve.meta["reference"].append(name)
            continue
        results += [evaluate(algorithm, episodes, steps=s) for s in steps[1:]]
        for i, result in enumerate(results):
            curve.add(name, i, result)
            if log is not None:
                log(f"{name} steps={steps[i]}: {result.summary()}")
    curve.metric = metric
    return curve
