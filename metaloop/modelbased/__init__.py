"""Shared pieces of the model-based learners (MANN, SNAIL, Meta Networks, Hebbian fast weights).

These learners adapt through their own state rather than through gradient steps at test time: an
external memory, an attention window over the episode, or fast weights written while the support
set is read.
"""

from metaloop.modelbased.episode_sequence import (
    check_episode_labels,
    embed_pair,
    embedding_dim,
    one_hot,
    shuffle_support,
)
from metaloop.modelbased.memory import LRUMemory, MemoryState

__all__ = [
    "LRUMemory",
    "MemoryState",
    "check_episode_labels",
    "embed_pair",
    "embedding_dim",
    "one_hot",
    "shuffle_support",
]
