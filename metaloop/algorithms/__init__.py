"""One module per algorithm, all sharing :class:`~metaloop.algorithms.base.Algorithm`'s shape."""

from metaloop.algorithms.base import Algorithm
from metaloop.algorithms.registry import available, get_algorithm, register

__all__ = ["Algorithm", "available", "get_algorithm", "register"]
