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
#: dataset name → (loader in metaloop.data returning Splits, whether it takes a ``split`` argument)
LOADERS = {"omniglot": ("load_omniglot", True), "mini_imagenet": ("load_mini_imagenet_splits", False)}
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
            names = {"model": ["name", "init"], "algorithm": ["name"]}.get(where, []) + allowed
            raise ConfigError(f"{where}.{key}: unknown argument; allowed: {', '.join(names) or '(none)'}")


def task_kind(config: RunConfig) -> str:
    return "regression" if config.tasks.family is not None else "classification"


def build_tasks(config: RunConfig) -> TaskSources:
    """Meta-train tasks of shape ``tasks.*``; meta-val/test tasks of shape ``evaluation.*``."""
    t = config.tasks
    ways, shots, queries = config.evaluation.shape(t)
    if t.family is not None:
        if t.augment:
            raise ConfigError(f"tasks.augment: image augmentation needs a dataset, not the {t.family} "
                              "family; remove tasks.augment")
        family = FAMILIES[t.family]()
        train = RegressionSampler(family, t.shots, t.queries, noise_std=t.noise_std)
        test = RegressionSampler(family, shots, queries, noise_std=t.noise_std)
        return TaskSources(train, test, test, "regression")
    import metaloop.data as data
    from metaloop.tasks.augment import augmentation
    from metaloop.tasks.sampler import FewShotSampler

    name, takes_split = LOADERS[t.dataset]
    loader = getattr(data, name, None)
    if loader is None:
        raise ConfigError(f"tasks.dataset: {t.dataset} needs metaloop.data.{name}, missing in this install")
    args = {"image_size": t.image_size, **({"split": t.split} if takes_split else {}), **t.data_args}
    check_kwargs("tasks.data_args", loader, args, skip=1)
    try:
        augment = augmentation(t.augment, t.image_size)
    except ValueError as error:
        raise ConfigError(f"tasks.augment: {error}") from None
    splits = loader(t.root, **args)
    return TaskSources(augment(FewShotSampler(splits.train, t.ways, t.shots, t.queries)),
                       FewShotSampler(splits.val, ways, shots, queries),
                       FewShotSampler(splits.test, ways, shots, queries), "classification")


def build_model(config: RunConfig) -> nn.Module | None:
    """The backbone, or None for ``model: {name: none}`` (learners that build their own network)."""
    from metaloop.nets import MLP, Conv4

    m, t = config.model, config.tasks
    if m.name == "none":
        if m.args:
            raise ConfigError(f"model.{next(iter(m.args))}: model none takes no arguments")
        return None
    cls = {"mlp": MLP, "conv4": Conv4}[m.name]
    check_kwargs("model", cls, m.args)
    args = dict(m.args)
    if m.name == "conv4" and t.dataset is not None:  # out_features stays explicit: None = embedding
        args.setdefault("in_channels", IN_CHANNELS.get(t.dataset, 1))
        args.setdefault("image_size", t.image_size)
    if m.name == "mlp" and "hidden" in args:
        args["hidden"] = tuple(args["hidden"])
    allowed, init = MODEL_INITS[m.init]
    if m.name not in allowed:
        here = ", ".join(k for k, (names, _) in MODEL_INITS.items() if m.name in names)
        raise ConfigError(f"model.init: {m.init} is defined for model {' / '.join(allowed)} "
                          f"only; allowed for {m.name}: {here}")
    try:
        model = cls(**args)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"model: {exc}") from exc
    try:
        return model if init is None else init(model)
    except ValueError as exc:
        raise ConfigError(f"model.init: {m.init} {exc}") from exc


def zero_head(model: nn.Module) -> nn.Module:
    """A zero classifier head: every class starts at the same logit (hypergrad's iMAML nets)."""
    if getattr(model, "head", None) is None:
        raise ValueError("needs a head; set model.out_features (the ways)")
    nn.init.zeros_(model.head.weight)
    nn.init.zeros_(model.head.bias)
    return model


def he_fan_out_convs(model: nn.Module) -> nn.Module:
    """hypergrad's conv init (``initialize`` in its iMAML example): weights N(0, 2 / (k² · out)),
    zero biases. Where a batch norm follows the ReLU the loss does not depend on a convolution's
    scale, so its curvature does: ~1/‖w‖², and torch's default puts ‖w‖ ~2.4× lower here."""
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
            if module.bias is not None:
                nn.init.zeros_(module.bias)
    return model


def maml_tf_init(model: nn.Module, std: float = 0.01) -> nn.Module:
    """cbfinn/maml's fully connected init (``init_weights`` in maml.py): weights from a normal with
    std 0.01 truncated at two std, zero biases. Small weights change the sinusoid MSE curve (MAML App. C)."""
    for module in model.modules():
        if isinstance(module, nn.Linear):
            nn.init.trunc_normal_(module.weight, std=std, a=-2 * std, b=2 * std)
            nn.init.zeros_(module.bias)
    return model


#: ``model.init`` → (the backbones it is defined for, the function applied to the built model)
MODEL_INITS = {
    "default": (("mlp", "conv4"), None),
    "maml_tf": (("mlp",), maml_tf_init),
    "zero_head": (("conv4",), zero_head),
    "hypergrad": (("conv4",), lambda model: he_fan_out_convs(zero_head(model))),
}


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


def algorithm_args(config: RunConfig, cls: type) -> dict:
    """The configured arguments, plus what the tasks already say (``task``, ``ways``, ``in_channels``,
    ``image_size``) for constructors that accept them and were not given them."""
    t = config.tasks
    context = {"task": task_kind(config), "ways": t.ways}
    if t.dataset is not None:
        context.update(in_channels=IN_CHANNELS.get(t.dataset, 1), image_size=t.image_size)
    accepted = inspect.signature(cls).parameters
    filled = {k: v for k, v in context.items() if k in accepted and k not in config.algorithm.args}
    return {**filled, **config.algorithm.args}


def check_algorithm(config: RunConfig) -> type:
    """Validate the algorithm name, its arguments and its task kind without building anything."""
    cls = algorithm_class(config.algorithm.name)
    kind = task_kind(config)
    task_for = getattr(cls, "task_for", None)  # learners whose kind depends on their arguments
    declared = config.algorithm.args.get(
        "task", task_for(config.algorithm.args) if task_for is not None else getattr(cls, "task", kind))
    if "task" not in config.algorithm.args and "task" in inspect.signature(cls).parameters:
        declared = kind  # the learner takes its task kind as an argument: it gets the tasks' kind
    if declared != kind:
        raise ConfigError(f"algorithm.name: {config.algorithm.name} is a {declared} learner but the tasks "
                          f"are {kind}; choose a {kind} algorithm or other tasks")
    skip = 0 if config.model.name == "none" else 1
    check_kwargs("algorithm", cls, config.algorithm.args, skip=skip)
    return cls


def build_algorithm(config: RunConfig, model: nn.Module | None):
    cls = check_algorithm(config)
    args = algorithm_args(config, cls)
    try:
        return cls(**args) if model is None else cls(model, **args)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"algorithm: {exc}") from exc


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
    if tr.scheduler == "linear":
        return torch.optim.lr_scheduler.LinearLR(optimizer, 1.0, 0.0, total_iters=tr.iterations)
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
