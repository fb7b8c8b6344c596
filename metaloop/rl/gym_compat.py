"""gymnasium is the optional ``[rl]`` extra: import it through here for one clear error."""

from __future__ import annotations

from types import ModuleType


def require_gymnasium() -> ModuleType:
    try:
        import gymnasium
    except ImportError as err:
        raise ImportError(
            "metaloop's gymnasium environments need gymnasium; install it with "
            "`pip install metaloop[rl]` (or `pip install gymnasium`)"
        ) from err
    return gymnasium
