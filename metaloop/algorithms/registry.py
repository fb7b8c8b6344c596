"""Name → algorithm class, filled by the ``@register`` decorator in each algorithm's own module.

Modules are discovered with ``pkgutil`` on first lookup, so adding an algorithm is adding one file:
no central list to edit.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable

_REGISTRY: dict[str, type] = {}
_SKIP = {"base", "registry"}


def register(name: str) -> Callable[[type], type]:
    def decorate(cls: type) -> type:
        if name in _REGISTRY and _REGISTRY[name] is not cls:
            raise ValueError(f"algorithm name {name!r} registered twice")
        _REGISTRY[name] = cls
        cls.registered_name = name
        return cls

    return decorate


def _discover() -> None:
    import metaloop.algorithms as package

    for info in pkgutil.iter_modules(package.__path__):
        if info.name not in _SKIP and not info.name.startswith("_"):
            importlib.import_module(f"metaloop.algorithms.{info.name}")


def available() -> list[str]:
    _discover()
    return sorted(_REGISTRY)


def get_algorithm(name: str) -> type:
    if name not in _REGISTRY:
        _discover()
    if name not in _REGISTRY:
        raise KeyError(f"unknown algorithm {name!r}; available: {', '.join(available())}")
    return _REGISTRY[name]
