"""Hyper-parameter search over a preset, scored on meta-validation only (Optuna: ``pip install optuna``).

Each trial is a full training run (in ``OUT/trial_NNN``) of the preset with sampled values; its
score is the best meta-validation value of that run (the same number model selection uses). The
meta-test episodes are never evaluated during the search, so the selected hyper-parameters cannot
leak test information; train the winner (``OUT/best.yaml``) and evaluate it once afterwards.

A search space is YAML mapping config keys to one of::

    training.lr: {log: [1.0e-4, 1.0e-2]}       # log-uniform float
    algorithm.inner_lr: {range: [0.01, 0.5]}  # uniform float
    training.meta_batch: {int: [2, 16]}       # uniform integer
    model.norm: {choice: [batch, task]}       # categorical
"""

from __future__ import annotations

import copy
from pathlib import Path

import yaml

from metaloop.config import build
from metaloop.config.presets import config_from_dict, read_yaml
from metaloop.config.schema import ConfigError
from metaloop.io import atomic_write_json, atomic_write_text

KINDS = ("log", "range", "int", "choice")


def read_space(path: str | Path) -> dict[str, tuple[str, list]]:
    data = read_yaml(Path(path))
    space = {}
    for key, spec in data.items():
        if not (isinstance(spec, dict) and len(spec) == 1 and next(iter(spec)) in KINDS):
            raise ConfigError(f"search space {key}: expected one of {{log|range|int|choice: [...]}}, "
                              f"got {spec!r}")
        kind, values = next(iter(spec.items()))
        if not isinstance(values, list) or (kind != "choice" and len(values) != 2) or not values:
            raise ConfigError(f"search space {key}: {kind} needs [low, high]" if kind != "choice" else
                              f"search space {key}: choice needs a non-empty list")
        space[key] = (kind, values)
    if not space:
        raise ConfigError(f"search space {path} is empty")
    return space


def _suggest(trial, key: str, kind: str, values: list):
    if kind == "log":
        return trial.suggest_float(key, float(values[0]), float(values[1]), log=True)
    if kind == "range":
        return trial.suggest_float(key, float(values[0]), float(values[1]))
    if kind == "int":
        return trial.suggest_int(key, int(values[0]), int(values[1]))
    return trial.suggest_categorical(key, values)


def _set(data: dict, key: str, value) -> None:
    *parents, leaf = key.split(".")
    node = data
    for part in parents:
        node = node.setdefault(part, {})
        if isinstance(node, str):  # `algorithm: maml` shorthand
            raise ConfigError(f"search space {key}: write {part} as a mapping ({{name: ...}})")
    node[leaf] = value


def search(data: dict, name: str, space: dict, trials: int, out: Path, seed: int = 0, log=print) -> dict:
    """Run ``trials`` trainings, return and write the best parameters (``search.json``, ``best.yaml``)."""
    try:
        import optuna
    except ImportError as exc:
        raise ValueError("hyper-parameter search needs Optuna: pip install optuna") from exc
    from metaloop.engine.run import train_run

    out = Path(out)
    probe = config_from_dict(copy.deepcopy(data), name)  # validate the base before any trial runs
    if probe.training.val_episodes == 0:
        raise ConfigError("search scores trials on meta-validation: set training.val_episodes >= 1")
    for key, (_, values) in space.items():  # every sampled key must be a valid config value
        check = copy.deepcopy(data)
        _set(check, key, values[0])
        build.check_algorithm(config_from_dict(check, name))
    direction = "minimize" if build.task_kind(probe) == "regression" else "maximize"
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction=direction, sampler=optuna.samplers.TPESampler(seed=seed))

    def objective(trial) -> float:
        trial_data = copy.deepcopy(data)
        for key, (kind, values) in space.items():
            _set(trial_data, key, _suggest(trial, key, kind, values))
        config = config_from_dict(trial_data, f"{name}_trial{trial.number:03d}")
        result = train_run(config, out / f"trial_{trial.number:03d}", quiet=True, meta_test=False,
                           log=lambda *_: None)
        log(f"trial {trial.number}: {trial.params} -> meta-val {result['best_val']:.4g}")
        return result["best_val"]

    study.optimize(objective, n_trials=trials)
    best_data = copy.deepcopy(data)
    for key, value in study.best_params.items():
        _set(best_data, key, value)
    best_data["name"] = f"{name}_best"
    summary = {
        "scored_on": "meta-validation (best value of each trial's run)", "direction": direction,
        "metric": "mse" if direction == "minimize" else "accuracy", "best_params": study.best_params,
        "best_value": study.best_value, "best_trial": study.best_trial.number, "seed": seed,
        "trials": [{"number": t.number, "params": t.params, "value": t.value} for t in study.trials],
    }
    atomic_write_json(out / "search.json", summary)
    atomic_write_text(out / "best.yaml", yaml.safe_dump(best_data, sort_keys=False))
    log(f"best meta-val {study.best_value:.4g} with {study.best_params}; wrote {out / 'best.yaml'}")
    return summary
