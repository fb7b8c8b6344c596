"""The run configuration: five sections, each a dataclass, validated field by field on load.

A YAML file (or a preset) maps onto :class:`RunConfig`. Unknown keys, wrong types and values outside
a field's allowed set or range stop with one line that names the key (``training.lr``) and what is
allowed, before any data is loaded or any model is built.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from typing import Any


class ConfigError(ValueError):
    """A configuration problem; the message is one line naming the key and the allowed values."""


def _f(default: Any = dataclasses.MISSING, *, choices: tuple | None = None, min: float | None = None,
       max: float | None = None, doc: str = "", **kwargs) -> Any:
    meta = {"choices": choices, "min": min, "max": max, "doc": doc}
    if isinstance(default, (list, dict)):
        value = default
        return field(default_factory=lambda: type(value)(value), metadata=meta, **kwargs)
    return field(default=default, metadata=meta, **kwargs)


@dataclass
class TasksConfig:
    """Where tasks come from: a regression ``family`` or a classification ``dataset``."""

    family: str | None = _f(None, choices=("sinusoid", "harmonic", "linear"),
                            doc="regression task family (MAML Sec. 5.1 for sinusoid)")
    dataset: str | None = _f(None, choices=("omniglot", "mini_imagenet"), doc="image dataset")
    split: str = _f("vinyals", doc="class split (omniglot: vinyals, lake, reptile)")
    root: str | None = _f(None, doc="dataset folder (default: $METALOOP_DATA/<dataset>)")
    image_size: int = _f(28, min=4)
    ways: int = _f(5, min=1)
    shots: int = _f(5, min=1)
    queries: int = _f(15, min=1)
    noise_std: float = _f(0.0, min=0.0, doc="Gaussian target noise (regression)")
    data_args: dict = _f({}, doc="extra dataset loader arguments (e.g. rotations, resample)")
    augment: dict = _f({}, doc="meta-training image augmentation: {shift: k} translates each image by up "
                               "to k pixels (metaloop.tasks.augment); meta-val / meta-test never are")


@dataclass
class ModelConfig:
    """``name``, ``init`` and the backbone's constructor arguments as flat keys
    (``{name: conv4, hidden: 64}``)."""

    OPEN = True  # keys other than name and init are constructor arguments, checked against the signature
    name: str = _f("mlp", choices=("mlp", "conv4", "none"),
                   doc="backbone in metaloop.nets; none for learners that build their own network")
    init: str = _f("default", choices=("default", "maml_tf", "zero_head", "hypergrad"),
                   doc="weight init: the constructor's; cbfinn/maml's (mlp only: Linear weights "
                       "truncated normal std 0.01, zero biases); zero_head (conv4 with a head: head "
                       "weight and bias 0); hypergrad (zero_head, and convolutions He-normal over "
                       "fan-out with zero biases, as hypergrad's iMAML nets)")
    args: dict = _f({}, doc="backbone constructor arguments")


@dataclass
class AlgorithmConfig:
    """``name`` plus the algorithm's constructor arguments as flat keys (``{name: maml, inner_lr: 0.4}``)."""

    OPEN = True
    name: str = _f("maml", doc="registry name (metaloop.algorithms) or 'package.module:Class'")
    args: dict = _f({}, doc="algorithm constructor arguments (after the model)")


@dataclass
class TrainingConfig:
    iterations: int = _f(1000, min=1)
    meta_batch: int = _f(4, min=1, doc="tasks per meta-update (split across ranks)")
    optimizer: str = _f("adam", choices=("adam", "sgd", "adamw"))
    lr: float = _f(1e-3, min=0.0)
    weight_decay: float = _f(0.0, min=0.0)
    momentum: float = _f(0.0, min=0.0, max=1.0, doc="sgd only")
    scheduler: str = _f("none", choices=("none", "cosine", "step", "linear"),
                        doc="cosine, linear: to 0 over training.iterations (linear: Reptile's meta step)")
    step_size: int = _f(1000, min=1, doc="iterations between lr decays (scheduler=step)")
    gamma: float = _f(0.5, min=0.0, max=1.0, doc="lr decay factor (scheduler=step)")
    grad_clip: float | None = _f(None, min=0.0, doc="max global gradient norm (None: no clipping)")
    on_nonfinite: str = _f("stop", choices=("stop", "skip"), doc="NaN/inf loss or gradient")
    val_every: int = _f(100, min=1)
    val_episodes: int = _f(100, min=0, doc="fixed meta-validation episodes (0: no validation)")
    val_steps: int | None = _f(None, min=0, doc="adaptation steps at validation (None: algorithm's)")
    patience: int | None = _f(None, min=1, doc="early stop after this many validations w/o gain")
    checkpoint_every: int = _f(100, min=1)
    keep_checkpoints: int = _f(2, min=1)
    log_every: int = _f(1, min=1, doc="iterations between metric lines")
    tensorboard: bool = _f(False, doc="also log to TensorBoard (needs the tensorboard package)")
    seed: int = _f(0, min=0)
    device: str = _f("cpu", choices=("cpu", "cuda", "auto"))
    threads: int | None = _f(None, min=1, doc="CPU intra-op threads (None: torch's default); 1 is fastest "
                             "for small models such as the sinusoid MLP, whose ops are too small to split")


@dataclass
class EvaluationConfig:
    episodes: int = _f(600, min=1, doc="fixed meta-test episodes")
    steps: list[int] = _f([], doc="adaptation steps to score (e.g. [0, 1, 5, 10]); [] = default")
    seed: int = _f(1, min=0)
    checkpoint: str = _f("best", choices=("best", "last"))
    ways: int | None = _f(None, min=1, doc="meta-val/test ways (default: tasks.ways)")
    shots: int | None = _f(None, min=1, doc="meta-val/test shots (default: tasks.shots)")
    queries: int | None = _f(None, min=1, doc="meta-val/test queries (default: tasks.queries)")

    def shape(self, tasks: TasksConfig) -> tuple[int, int, int]:
        """(ways, shots, queries) of meta-val and meta-test episodes."""
        return (self.ways or tasks.ways, self.shots or tasks.shots, self.queries or tasks.queries)


@dataclass
class RunConfig:
    name: str = _f("run", doc="run name (default output folder runs/<name>)")
    tasks: TasksConfig = field(default_factory=TasksConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    algorithm: AlgorithmConfig = field(default_factory=AlgorithmConfig)
    training: TrainingConfig = field(default_factory=TrainingConfig)
    evaluation: EvaluationConfig = field(default_factory=EvaluationConfig)
    description: str = _f("", doc="one line shown by `metaloop presets`")
    paper: dict = _f({}, doc="the published result this preset reproduces (free-form, for reports)")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def _type_name(tp: Any) -> str:
    args = [a for a in typing.get_args(tp) if a is not type(None)]
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        return " or ".join(_type_name(a) for a in args) + " or null"
    if typing.get_origin(tp) is list:
        return f"list of {_type_name(args[0])}"
    return getattr(tp, "__name__", str(tp))


def _coerce(key: str, tp: Any, value: Any) -> Any:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        if value is None:
            return None
        (inner,) = [a for a in typing.get_args(tp) if a is not type(None)]
        return _coerce(key, inner, value)
    ok = True
    if tp is bool:
        ok = isinstance(value, bool)
    elif tp is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif tp is float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        value = float(value) if ok else value
    elif tp is str:
        ok = isinstance(value, str)
    elif tp is dict or origin is dict:
        ok = isinstance(value, dict)
    elif origin is list:
        (inner,) = typing.get_args(tp)
        if not isinstance(value, (list, tuple)):
            ok = False
        else:
            return [_coerce(f"{key}[{i}]", inner, v) for i, v in enumerate(value)]
    if not ok:
        raise ConfigError(f"{key}: expected {_type_name(tp)}, got {type(value).__name__} {value!r}")
    return value


def _check_value(key: str, f: dataclasses.Field, value: Any) -> None:
    meta = f.metadata
    if value is None:
        return
    if meta.get("choices") and value not in meta["choices"]:
        raise ConfigError(f"{key}: {value!r} is not allowed; choose one of {', '.join(meta['choices'])}")
    values = value if isinstance(value, list) else [value]
    for v in values:
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            if meta.get("min") is not None and v < meta["min"]:
                raise ConfigError(f"{key}: must be >= {meta['min']}, got {v}")
            if meta.get("max") is not None and v > meta["max"]:
                raise ConfigError(f"{key}: must be <= {meta['max']}, got {v}")


def from_dict(cls: type, data: Any, prefix: str = "") -> Any:
    """Build dataclass ``cls`` from a mapping, rejecting unknown keys, wrong types and bad values."""
    where = prefix.rstrip(".") or "config"
    if getattr(cls, "OPEN", False) and isinstance(data, str):  # `algorithm: maml` means {name: maml}
        data = {"name": data}
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected a mapping of keys, got {type(data).__name__} {data!r}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    if getattr(cls, "OPEN", False):  # flat constructor arguments beside the name
        extra = {k: v for k, v in data.items() if k not in fields}
        data = {k: v for k, v in data.items() if k in fields}
        args = data.get("args") or {}
        both = sorted(set(extra) & set(args))
        if both:  # one would silently win (an `--set ...args.k=v` override lost to a flat preset key)
            k = both[0]
            raise ConfigError(f"{prefix}{k} and {prefix}args.{k} are both set ({extra[k]!r} vs {args[k]!r}); "
                              f"set it once: the preset writes it as {prefix}{k}, so override that "
                              f"(--set {prefix}{k}=...)")
        data["args"] = {**args, **extra}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ConfigError(f"{prefix}{unknown[0]}: unknown key in {where}; allowed: {', '.join(fields)}")
    kwargs = {}
    for name, value in data.items():
        key, tp = f"{prefix}{name}", hints[name]
        if dataclasses.is_dataclass(tp):
            kwargs[name] = from_dict(tp, value if value is not None else {}, f"{key}.")
            continue
        value = _coerce(key, tp, value)
        _check_value(key, fields[name], value)
        kwargs[name] = value
    return cls(**kwargs)


def check_consistency(config: RunConfig) -> None:
    """Cross-field rules that one field alone cannot express (checked before any work starts)."""
    t = config.tasks
    if (t.family is None) == (t.dataset is None):
        raise ConfigError("tasks: set exactly one of tasks.family (regression: sinusoid, harmonic, linear) "
                          "or tasks.dataset (classification: omniglot, mini_imagenet)")
    if t.dataset is not None:
        per_class = KNOWN_PER_CLASS.get(t.dataset)
        _, shots, queries = config.evaluation.shape(t)
        for where, s, q in (("tasks", t.shots, t.queries), ("evaluation", shots, queries)):
            if per_class is not None and s + q > per_class:
                raise ConfigError(
                    f"{where}.shots + {where}.queries = {s + q} but {t.dataset} has {per_class} "
                    f"examples per class; allowed: shots + queries <= {per_class}")
    tr = config.training
    if tr.patience is not None and tr.val_episodes == 0:
        raise ConfigError("training.patience needs meta-validation; set training.val_episodes >= 1")


#: Examples per class of the built-in datasets (an impossible episode is refused before loading).
KNOWN_PER_CLASS = {"omniglot": 20, "mini_imagenet": 600}
