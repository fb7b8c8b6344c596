"""Evaluate a metric learner on fixed episodes with every distinct image embedded once.

A metric learner in ``eval()`` mode embeds each image independently of the episode it appears in
(batch norm uses its running statistics), so the 1,000 Omniglot test episodes (80,000 image slots)
need only the ~34,000 distinct test images embedded, in large batches, after which each episode is
a few small matrix products. The result equals :func:`metaloop.evaluate.evaluate` (tested), it is
just computed in a different order. Learners whose embedding depends on the batch (task batch norm,
transductive statistics) are refused: use ``evaluate`` for them.
"""

from __future__ import annotations

import time

import torch
from torch import nn

from metaloop import metrics
from metaloop.evaluate import EvalResult
from metaloop.nets.batchnorm import TaskBatchNorm


def evaluate_embedded(algorithm: nn.Module, episodes, chunk: int = 2048) -> EvalResult:
    """``evaluate``'s result for learners with ``embed``, ``adapt_embedded``, ``predict_embedded``.

    ``episodes`` must be an index-based :class:`~metaloop.tasks.episode_set.EpisodeSet`.
    """
    for needed in ("embed", "adapt_embedded", "predict_embedded"):
        if not hasattr(algorithm, needed):
            raise ValueError(
                f"{type(algorithm).__name__} has no {needed}(); evaluate_embedded serves metric "
                "learners (protonet, matching, relation, siamese); use metaloop.evaluate.evaluate"
            )
    if any(isinstance(m, TaskBatchNorm) for m in algorithm.modules()):
        raise ValueError(
            "the backbone uses per-batch (task) batch norm, so an image's embedding depends on its "
            "episode; use metaloop.evaluate.evaluate, or a backbone with norm='batch' or 'none'"
        )
    if getattr(episodes, "indices", None) is None:
        raise ValueError("evaluate_embedded needs an index-based EpisodeSet (from a FewShotSampler)")
    source, grids = episodes.source, episodes.indices
    was_training = algorithm.training
    algorithm.eval()
    start = time.perf_counter()
    try:
        with torch.inference_mode():
            unique, inverse = torch.unique(grids.flatten(), return_inverse=True)
            parts = []
            for lo in range(0, len(unique), chunk):
                x = source.dataset.data[unique[lo : lo + chunk]]
                if source.transform is not None:
                    x = source.transform(x)
                parts.append(algorithm.embed(x))
            z = torch.cat(parts)[inverse.view(grids.shape)]  # [episodes, ways, shots+queries, ...]
            values, nlls, all_logits, all_targets = [], [], [], []
            for i in range(len(grids)):
                zs, ys, zq, yq = _split(z[i], source.shots)
                logits = algorithm.predict_embedded(algorithm.adapt_embedded(zs, ys), zq)
                values.append(metrics.accuracy(logits, yq))
                nlls.append(metrics.nll(logits, yq))
                all_logits.append(logits)
                all_targets.append(yq)
    finally:
        algorithm.train(was_training)
    mean, ci = metrics.mean_ci95(values)
    extra = {"nll": metrics.mean_ci95(nlls)}
    if len({x.shape[-1] for x in all_logits}) == 1:
        extra["ece"] = (metrics.expected_calibration_error(
            torch.cat(all_logits), torch.cat(all_targets)), 0.0)
    return EvalResult("accuracy", mean, ci, torch.tensor(values, dtype=torch.float64),
                      time.perf_counter() - start, extra)


def _split(grid_z: torch.Tensor, shots: int):
    """Class-major ``[ways, shots+queries, ...]`` → support/query (as the sampler's split_grid)."""
    ways, per_class = grid_z.shape[:2]
    labels = torch.arange(ways).unsqueeze(1).expand(ways, per_class)
    feat = grid_z.shape[2:]
    return (grid_z[:, :shots].reshape(-1, *feat), labels[:, :shots].reshape(-1),
            grid_z[:, shots:].reshape(-1, *feat), labels[:, shots:].reshape(-1))
