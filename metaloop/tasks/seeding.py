"""Independent, reproducible random streams for epochs, DataLoader workers and distributed ranks.

Seeds are derived with NumPy's ``SeedSequence`` (hash-mixed spawn keys) rather than ``seed + rank``:
neighbouring integer seeds give correlated streams in some generators, and ``seed + worker`` collides
between (seed=1, worker=0) and (seed=0, worker=1).
"""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import IterableDataset, get_worker_info

from metaloop.tasks.episode import Episode


def derive_seed(seed: int, *keys: int) -> int:
    """A 63-bit seed for the stream named by ``keys`` (e.g. epoch, rank, worker) under ``seed``."""
    sequence = np.random.SeedSequence(entropy=int(seed), spawn_key=tuple(int(k) for k in keys))
    return int(sequence.generate_state(1, dtype=np.uint64)[0] & np.uint64(0x7FFF_FFFF_FFFF_FFFF))


def generator_for(seed: int, *keys: int, device: str | torch.device = "cpu") -> torch.Generator:
    return torch.Generator(device=device).manual_seed(derive_seed(seed, *keys))


class EpisodeStream(IterableDataset):
    """An endless (or ``length``-bounded) stream of episodes that is safe with DataLoader workers.

    Each worker of each rank draws from its own derived generator, so no two workers produce the same
    episode (peers copy one RNG state into every worker and repeat episodes). Use with
    ``DataLoader(stream, batch_size=None, num_workers=W)``; the episodes of worker ``w`` are the
    episodes number ``w, w + W, ...`` of a deterministic interleaving.
    """

    def __init__(self, source, seed: int, length: int | None = None, rank: int = 0) -> None:
        self.source = source
        self.seed = seed
        self.length = length
        self.rank = rank
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self):
        info = get_worker_info()
        worker, workers = (0, 1) if info is None else (info.id, info.num_workers)
        g = generator_for(self.seed, self.epoch, self.rank, worker)
        count = 0
        while self.length is None or count < _share(self.length, worker, workers):
            episode: Episode = self.source.sample(g)
            yield episode
            count += 1


def _share(total: int, worker: int, workers: int) -> int:
    return total // workers + (1 if worker < total % workers else 0)
