"""Meta-test evaluation of a run folder and its ``result.json``.

The learner is rebuilt from ``config.yaml``, the ``best`` (meta-validation) or ``last`` weights are
loaded, and it is scored on fixed meta-test episodes drawn from ``evaluation.seed`` (identical for
every method), with the algorithm's own number of adaptation steps and, for gradient-based learners,
each count in ``evaluation.steps`` (0 = the meta-learned initialisation before adaptation).
"""

from __future__ import annotations

import platform
import time
from pathlib import Path

import numpy as np
import torch

import metaloop
from metaloop.config import build
from metaloop.engine import checkpoint as ckpt
from metaloop.engine.progress import Progress, progress_enabled
from metaloop.evaluate import calibrate as calibrate_temperature
from metaloop.evaluate import evaluate
from metaloop.io import atomic_write_json


def versions() -> dict:
    return {"metaloop": metaloop.__version__, "torch": torch.__version__, "numpy": np.__version__,
            "python": platform.python_version()}


def evaluate_run(run_dir: Path, *, config=None, episodes: int | None = None, steps: list[int] | None = None,
                 which: str | None = None, device: torch.device | str = "cpu", train=None,
                 world_size: int = 1, filename: str = "result.json", quiet: bool = False,
                 calibrate: bool = False) -> dict:
    """Score the run on meta-test episodes and write ``filename`` in the run folder.

    ``calibrate``: also fit a temperature on the run's meta-val episodes and report the test NLL and
    ECE at it (:func:`metaloop.metrics.fit_temperature`; classification only, accuracy unchanged).
    """
    from metaloop.engine.run import read_run_config

    run_dir = Path(run_dir)
    config = config or read_run_config(run_dir)
    which = which or config.evaluation.checkpoint
    weights_path = ckpt.weights_file(run_dir / "checkpoints", which)
    sources = build.build_tasks(config)
    algorithm = build.build_algorithm(config, build.build_model(config))
    algorithm.load_state_dict(ckpt.load_weights(weights_path))
    algorithm.to(device)
    test = build.meta_test_episodes(config, sources, episodes)
    val = build.meta_val_episodes(config, sources) if calibrate else None
    if calibrate and (algorithm.task != "classification" or val is None):
        raise ValueError("--calibrate fits a temperature to classification logits on meta-val episodes; "
                         f"this run has task {algorithm.task!r} and "
                         f"{'no' if val is None else len(val)} meta-val episodes (training.val_episodes)")
    steps = config.evaluation.steps if steps is None else steps
    bar = Progress(len(test) * (1 + len(steps)), desc="meta-test", enabled=progress_enabled(quiet))
    tick = lambda _: bar.update(1)  # noqa: E731
    cpu = time.process_time()
    main = evaluate(algorithm, test, device=device, progress=tick)
    by_steps, note = {}, None
    for s in steps:
        try:
            r = evaluate(algorithm, test, steps=s, device=device, progress=tick)
        except ValueError as exc:  # learners without gradient steps refuse a step count
            note = str(exc)
            break
        by_steps[str(s)] = {"mean": r.mean, "ci95": r.ci95}
    bar.close()
    scale = 100.0 if main.metric == "accuracy" else 1.0
    result = {
        "name": config.name, "metric": main.metric, "mean": main.mean, "ci95": main.ci95,
        "episodes": main.episodes, "extra": main.to_dict()["extra"], "by_steps": by_steps,
        "checkpoint": weights_path.name, "seed": config.training.seed,
        "eval_seed": config.evaluation.seed, "eval_cpu_seconds": time.process_time() - cpu,
        "summary": main.summary(), "algorithm": config.algorithm.name, "versions": versions(),
        "display": f"{main.mean * scale:.2f} ± {main.ci95 * scale:.2f}",
    }
    if note:
        result["steps_note"] = note
    if calibrate:
        result["calibration"] = calibrate_temperature(algorithm, val, main, device=device)
    if config.paper:
        result["paper"] = config.paper
    if train is not None:
        result.update(iterations=len(train.iterations), best_iteration=train.best_iteration,
                      best_val=train.best_value, stopped_early=train.stopped_early,
                      skipped_updates=len(train.skipped), train_seconds=train.seconds,
                      train_cpu_seconds=train.cpu_seconds, world_size=world_size)
    atomic_write_json(run_dir / filename, result)
    return result
