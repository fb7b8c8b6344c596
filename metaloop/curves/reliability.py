"""Reliability diagrams and expected calibration error for any classifier on fixed episodes.

A classifier whose confidence matches its accuracy can be trusted to say when it is unsure (Guo et
al. 2017, §2). The bins and the ECE are those of :mod:`metaloop.metrics` (one definition in the
library); this module gathers the pooled query predictions and draws the diagram.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from metaloop import metrics


@dataclass
class ReliabilityDiagram:
    count: Tensor        # examples per confidence bin
    confidence: Tensor   # mean confidence per bin (0 where empty)
    accuracy: Tensor     # accuracy per bin (0 where empty)
    ece: float
    bins: int

    def to_dict(self) -> dict:
        return {"count": self.count.tolist(), "confidence": self.confidence.tolist(),
                "accuracy": self.accuracy.tolist(), "ece": self.ece, "bins": self.bins}


def collect_predictions(algorithm, episodes, *, steps: int | None = None) -> tuple[Tensor, Tensor]:
    """Query logits and targets of every episode, concatenated (all episodes must share ``ways``)."""
    if algorithm.task != "classification":
        raise ValueError("reliability diagrams need a classifier; this algorithm does regression")
    was_training = algorithm.training
    algorithm.eval()
    kwargs = {} if steps is None else {"steps": steps}
    logits, targets = [], []
    try:
        for episode in episodes:
            with torch.enable_grad():
                adapted = algorithm.adapt(episode.support_x, episode.support_y, **kwargs)
            with torch.no_grad():
                logits.append(algorithm.predict(adapted, episode.query_x).detach().cpu())
            targets.append(episode.query_y.cpu())
    finally:
        algorithm.train(was_training)
    if not logits:
        raise ValueError("no episodes given; pass a non-empty EpisodeSet")
    if len({x.shape[-1] for x in logits}) != 1:
        raise ValueError("episodes have different numbers of ways; calibration pools one softmax size")
    return torch.cat(logits), torch.cat(targets)


def reliability_diagram(logits: Tensor, targets: Tensor, bins: int = 15) -> ReliabilityDiagram:
    count, conf, acc = metrics.calibration_bins(logits, targets, bins)
    return ReliabilityDiagram(count, conf, acc, metrics.expected_calibration_error(logits, targets, bins),
                              bins)
