"""Run configurations: the schema, presets and YAML files, and the builders that turn them into objects."""

from metaloop.config.presets import load_config, preset_paths
from metaloop.config.schema import ConfigError, RunConfig

__all__ = ["ConfigError", "RunConfig", "load_config", "preset_paths"]
