"""Presets (YAML files shipped in ``metaloop/presets``, one per reproduced paper row) and config files.

``load_config("maml_omniglot_5w1s", ["training.lr=0.01"])`` finds the preset by name (or reads the
path), applies ``key=value`` overrides (values parsed as YAML, so ``[0,1,5]`` is a list and ``null``
is None), validates everything and returns a :class:`RunConfig`.

A preset may start from another with ``extends: <preset name or path>``: a 20-way row differs
from its 5-way sibling in a few keys, and restating the rest lets the copies drift apart. Its own
keys are merged over the parent's (see :func:`merge_sections`); the row's identity (``name``,
``description``, ``paper``) is never inherited.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from metaloop.config.schema import ConfigError, RunConfig, check_consistency, from_dict

PRESET_DIR = Path(__file__).resolve().parents[1] / "presets"


class _Loader(yaml.SafeLoader):
    """PyYAML follows YAML 1.1, where ``1e-3`` (no dot) is a string; read it as the float it means."""


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
)


def parse_yaml(text: str):
    return yaml.load(text, Loader=_Loader)  # noqa: S506 (a SafeLoader subclass)


def preset_paths() -> dict[str, Path]:
    return {p.stem: p for p in sorted(PRESET_DIR.glob("*.yaml"))}


def describe_preset(path: Path) -> str:
    """A preset's ``description``, else its first comment line."""
    text = path.read_text()
    try:
        data = parse_yaml(text)
    except yaml.YAMLError:
        data = None
    if isinstance(data, dict) and isinstance(data.get("description"), str) and data["description"]:
        return data["description"]
    for line in text.splitlines():
        if line.startswith("#"):
            return line.lstrip("# ").strip()
    return ""


def read_yaml(path: Path) -> dict:
    try:
        data = parse_yaml(path.read_text())
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({str(exc).splitlines()[0]})") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of sections, got {type(data).__name__}")
    return data


def resolve_source(name_or_path: str) -> tuple[Path, str]:
    """``(file, run name)`` for a preset name or a YAML path."""
    presets = preset_paths()
    if name_or_path in presets:
        return presets[name_or_path], name_or_path
    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml") or path.exists():
        if not path.is_file():
            raise FileNotFoundError(f"config file {path} not found")
        return path, path.stem
    raise ConfigError(f"unknown preset {name_or_path!r}; presets: {', '.join(presets) or '(none)'} "
                      "(or give a path to a .yaml file; `metaloop presets` lists them)")


NOT_INHERITED = ("name", "description", "paper")


def merge_sections(base: dict, child: dict) -> dict:
    """``child`` over ``base``: mappings merge key by key, other values replace.

    A mapping that names a different component (its ``name`` differs, e.g. ``algorithm: {name:
    fomaml}`` over a ``maml`` block) replaces the parent's instead: the parent's arguments belong
    to the other component.
    """
    out = dict(base)
    for key, value in child.items():
        old = out.get(key)
        if isinstance(value, dict) and isinstance(old, dict) and value.get("name", old.get("name")) == \
                old.get("name"):
            out[key] = merge_sections(old, value)
        else:
            out[key] = value
    return out


def resolve_extends(data: dict, path: Path, chain: tuple[Path, ...] = ()) -> dict:
    """``data`` with its ``extends:`` parent (a preset name, or a path relative to ``path``) merged in."""
    if "extends" not in data:
        return data
    parent = data["extends"]
    if not isinstance(parent, str) or not parent:
        raise ConfigError(f"{path}: extends must name a preset or a YAML file, got {parent!r}")
    relative = path.parent / parent
    try:
        parent_path = relative if relative.is_file() else resolve_source(parent)[0]
    except (ConfigError, FileNotFoundError) as exc:
        raise ConfigError(f"{path}: extends {parent!r}: {exc}") from exc
    chain = (*chain, path.resolve())
    if parent_path.resolve() in chain:
        names = " -> ".join(p.stem for p in (*chain, parent_path))
        raise ConfigError(f"{path}: extends cycle {names}; one of them must not extend the other")
    base = resolve_extends(read_yaml(parent_path), parent_path, chain)
    base = {k: v for k, v in base.items() if k not in NOT_INHERITED}
    return merge_sections(base, {k: v for k, v in data.items() if k != "extends"})


def apply_override(data: dict, assignment: str) -> None:
    """Apply one ``section.key=value`` override in place (value parsed as YAML)."""
    if "=" not in assignment:
        raise ConfigError(f"--set {assignment!r}: expected key=value, e.g. training.lr=0.01")
    key, raw = assignment.split("=", 1)
    parts = key.strip().split(".")
    try:
        value: Any = parse_yaml(raw) if raw.strip() else ""
    except yaml.YAMLError:
        value = raw
    node = data
    for part in parts[:-1]:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ConfigError(f"--set {key}: {part} is not a section")
        node = child
    node[parts[-1]] = value


def config_from_dict(data: dict, name: str | None = None) -> RunConfig:
    data = dict(data)
    if name is not None:
        data.setdefault("name", name)
    config = from_dict(RunConfig, data)
    check_consistency(config)
    return config


def load_config_data(name_or_path: str, overrides: list[str] | tuple[str, ...] = ()) -> tuple[dict, str]:
    """The raw config mapping (overrides applied, not yet validated) and the run name."""
    path, name = resolve_source(name_or_path)
    data = resolve_extends(read_yaml(path), path)
    for assignment in overrides:
        apply_override(data, assignment)
    return data, name


def load_config(name_or_path: str, overrides: list[str] | tuple[str, ...] = ()) -> RunConfig:
    return config_from_dict(*load_config_data(name_or_path, overrides))
