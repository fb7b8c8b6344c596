"""Presets (YAML files shipped in ``metaloop/presets``, one per reproduced paper row) and config files.

``load_config("maml_omniglot_5w1s", ["training.lr=0.01"])`` finds the preset by name (or reads the
path), applies ``key=value`` overrides (values parsed as YAML, so ``[0,1,5]`` is a list and ``null``
is None), validates everything and returns a :class:`RunConfig`.
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
    data = read_yaml(path)
    for assignment in overrides:
        apply_override(data, assignment)
    return data, name


def load_config(name_or_path: str, overrides: list[str] | tuple[str, ...] = ()) -> RunConfig:
    return config_from_dict(*load_config_data(name_or_path, overrides))
