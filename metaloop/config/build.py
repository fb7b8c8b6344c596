"""Config → objects: task sources, the backbone, the algorithm, the outer optimizer and scheduler.

Arguments of backbones and algorithms are checked against their constructor signatures, so a typo
(``inner_lrr``) stops with the allowed names instead of a ``TypeError`` deep inside a constructor.
Datasets are imported lazily by name, so the engine works without image data for regression runs.
"""

from __future__ import annotations

import importlib
import inspect
from dataclasses import dataclass

import torch
from torch import nn

from metaloop.config.schema import ConfigError, RunConfig
from metaloop.tasks.regression import HarmonicFamily, LinearFamily, RegressionSampler, SinusoidFamily
from metaloop.tasks.seeding import derive_seed

FAMILIES = {"sinusoid": SinusoidFamily, "harmonic": HarmonicFamily, "linear": LinearFamily}
IN_CHANNELS = {"omniglot": 1, "mini_imagenet": 3}
VAL_STREAM = 0x7A1


@dataclass
class TaskSources:
    """Meta-train, meta-val and meta-test task sources (class-disjoint for datasets)."""

    train: object
    val: object
    test: object
    kind: str  # "regression" or "classification"


def check_kwargs(where: str, target, kwargs: dict, skip: int = 0) -> None:
    """Refuse keyword arguments that ``target``'s signature does not accept (one line, allowed keys)."""
    params = list(inspect.signature(target).parameters.values())[skip:]
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params):
        return
    allowed = [p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
    for key in kwargs:
        if key not in allowed:
            raise ConfigError(f"{where}.{key}: unknown argument; allowed: {', '.join(allowed) or '(none)'}")


def build_tasks(config: RunConfig) -> TaskSources:
    t = config.tasks
    if t.family is not None:
        source = RegressionSampler(FAMILIES[t.family](), t.shots, t.queries, noise_std=t.noise_std)
        return TaskSources(source, source, source, "regression")
    import metaloop.data as data

    loader = getattr(data, f"load_{t.dataset}", None)
    if loader is None:
        raise ConfigError(f"tasks.dataset: {t.dataset!r} has no loader metaloop.data.load_{t.dataset} "
                          "in this installation")
    from metaloop.data.root import resolve_data_root
    from metaloop.tasks.sampler import FewShotSampler

    root = resolve_data_root(t.root, t.dataset)
    splits = loader(root, image_size=t.image_size, split=t.split)
    samplers = [FewShotSampler(s, t.ways, t.shots, t.queries)
                for s in (splits.train, splits.val, splits.test)]
    return TaskSources(*samplers, "classification")


def build_model(config: RunConfig) -> nn.Module:
    from metaloop.nets import MLP, Conv4

    m, t = config.model, config.tasks
    cls = {"mlp": MLP, "conv4": Conv4}[m.name]
    check_kwargs("model.args", cls, m.args)
    args = dict(m.args)
    if m.name == "conv4" and t.dataset is not None:
        args.setdefault("in_channels", IN_CHANNELS.get(t.dataset, 1))
        args.setdefault("image_size", t.image_size)
        args.setdefault("out_features", t.ways)
    if m.name == "mlp" and "hidden" in args:
        args["hidden"] = tuple(args["hidden"])
    try:
        return cls(**args)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"model.args: {exc}") from exc


def algorithm_class(name: str) -> type:
    """A registry name, or ``package.module:Class`` for a user's own algorithm."""
    if ":" in name:
        module, _, attr = name.partition(":")
        try:
            return getattr(importlib.import_module(module), attr)
        except (ImportError, AttributeError) as exc:
            raise ConfigError(f"algorithm.name: cannot import {name!r} ({exc})") from exc
    from metaloop.algorithms import available, get_algorithm

    try:
        return get_algorithm(name)
    except KeyError:
        raise ConfigError(f"algorithm.name: unknown algorithm {name!r}; available: "
                          f"{', '.join(available()) or '(none installed)'}") from None


def check_algorithm(config: RunConfig) -> type:
    """Validate the algorithm name, its arguments and its task kind without building anything."""
    cls = algorithm_class(config.algorithm.name)
    kind = "regression" if config.tasks.family is not None else "classification"
    if getattr(cls, "task", kind) != kind:
        raise ConfigError(f"algorithm.name: {config.algorithm.name} is a {cls.task} learner but the tasks "
                          f"are {kind}; choose a {kind} algorithm or other tasks")
    check_kwargs("algorithm.args", cls, config.algorithm.args, skip=1)
    return cls


def build_algorithm(config: RunConfig, model: nn.Module):
    cls = check_algorithm(config)
    try:
        return cls(model, **config.algorithm.args)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"algorithm.args: {exc}") from exc


def build_optimizer(config: RunConfig, params) -> torch.optim.Optimizer:
    tr = config.training
    if tr.optimizer == "sgd":
        return torch.optim.SGD(params, lr=tr.lr, momentum=tr.momentum, weight_decay=tr.weight_decay)
    cls = torch.optim.AdamW if tr.optimizer == "adamw" else torch.optim.Adam
    return cls(params, lr=tr.lr, weight_decay=tr.weight_decay)


def build_scheduler(config: RunConfig, optimizer):
    tr = config.training
    if tr.scheduler == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=tr.iterations)
    if tr.scheduler == "step":
        return torch.optim.lr_scheduler.StepLR(optimizer, step_size=tr.step_size, gamma=tr.gamma)
    return None


def meta_val_episodes(config: RunConfig, sources: TaskSources):
    """Fixed meta-val episodes (drawn from the run seed), or None without validation."""
    from metaloop.tasks.episode_set import EpisodeSet

    tr = config.training
    if tr.val_episodes == 0:
        return None
    return EpisodeSet.generate(sources.val, tr.val_episodes, seed=derive_seed(tr.seed, VAL_STREAM))


def meta_test_episodes(config: RunConfig, sources: TaskSources, episodes: int | None = None):
    """Fixed meta-test episodes from ``evaluation.seed``: the same tasks for every run and method."""
    from metaloop.tasks.episode_set import EpisodeSet

    return EpisodeSet.generate(sources.test, episodes or config.evaluation.episodes,
                               seed=config.evaluation.seed)


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("training.device: cuda is not available here; allowed: cpu, auto")
    return torch.device(name)
