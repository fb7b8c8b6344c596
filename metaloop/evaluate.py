"""Score any learner on a fixed set of episodes: mean ± 95 % CI of a per-episode metric.

The learner is put in ``eval()`` mode; adaptation runs with gradients enabled (gradient-based learners
need them for their inner steps) and prediction without. Every family is scored the same way, on the
same episodes, through ``adapt`` and ``predict``.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field

import torch
from torch import Tensor

from metaloop import metrics
from metaloop.tasks.episode import Episode


@dataclass
class EvalResult:
    metric: str
    mean: float
    ci95: float
    values: Tensor
    seconds: float
    extra: dict[str, tuple[float, float]] = field(default_factory=dict)
    #: classification: every query's logits (already divided by the temperature) and its label,
    #: pooled over episodes, e.g. for :func:`metaloop.metrics.fit_temperature` on meta-val
    pooled: tuple[Tensor, Tensor] | None = field(default=None, repr=False)

    @property
    def episodes(self) -> int:
        return len(self.values)

    def summary(self) -> str:
        scale, unit = (100.0, " %") if self.metric == "accuracy" else (1.0, "")
        text = (f"{self.metric} {self.mean * scale:.2f} ± {self.ci95 * scale:.2f}{unit} "
                f"over {self.episodes} episodes")
        return f"{text} ({self.seconds:.1f} s)"

    def to_dict(self) -> dict:
        return {
            "metric": self.metric, "mean": self.mean, "ci95": self.ci95, "episodes": self.episodes,
            "seconds": self.seconds, "extra": {k: {"mean": m, "ci95": c} for k, (m, c) in self.extra.items()},
        }


def evaluate(
    algorithm,
    episodes: Iterable[Episode],
    *,
    steps: int | None = None,
    device: torch.device | str | None = None,
    dtype: torch.dtype | None = None,
    calibration_bins: int = 15,
    temperature: float = 1.0,
    progress=None,
) -> EvalResult:
    """Adapt on each episode's support set and score its query set.

    Classification reports accuracy (primary), NLL and ECE (pooled over all query predictions);
    regression reports MSE, plus Gaussian NLL for learners with ``predict_distribution`` (the
    binned density's NLL for ``output == "binned"``, e.g. ``incontext`` with ``output="binned"``).
    ``steps`` overrides the number of adaptation steps of gradient-based learners (``0`` scores the
    meta-learned initialisation before adaptation). ``temperature`` divides classification logits
    before NLL and ECE (fit it on meta-val episodes with :func:`metaloop.metrics.fit_temperature`;
    accuracy does not depend on it). ``progress`` is an optional callable ``(done)``.
    """
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    was_training = algorithm.training
    algorithm.eval()
    values, nlls, all_logits, all_targets = [], [], [], []
    kwargs = {} if steps is None else {"steps": steps}
    start = time.perf_counter()
    try:
        for i, episode in enumerate(episodes):
            if device is not None or dtype is not None:
                episode = episode.to(device or episode.support_x.device, dtype)
            with torch.enable_grad():
                adapted = algorithm.adapt(episode.support_x, episode.support_y, **kwargs)
            with torch.no_grad():
                prediction, nll = _predict_once(algorithm, adapted, episode)
            if not torch.isfinite(prediction).all():
                raise FloatingPointError(
                    f"{type(algorithm).__name__} predicted NaN/inf on episode {i}; the learner diverged "
                    "(lower its inner/adaptation learning rate or check the checkpoint)"
                )
            with torch.no_grad():
                if algorithm.task == "classification":
                    prediction = prediction / temperature
                    values.append(metrics.accuracy(prediction, episode.query_y))
                    nlls.append(metrics.nll(prediction, episode.query_y))
                    all_logits.append(prediction.detach().cpu())
                    all_targets.append(episode.query_y.cpu())
                else:
                    values.append(metrics.mse(prediction, episode.query_y))
                    if nll is not None:
                        nlls.append(nll)
            if progress is not None:
                progress(i + 1)
    finally:
        algorithm.train(was_training)
    if not values:
        raise ValueError("evaluate got no episodes; pass a non-empty EpisodeSet")
    seconds = time.perf_counter() - start
    name = "accuracy" if algorithm.task == "classification" else "mse"
    extra, pooled = {}, None
    if all_logits and len({x.shape[-1] for x in all_logits}) == 1:  # pooling needs one way count
        pooled = (torch.cat(all_logits), torch.cat(all_targets))
    if nlls:
        extra["nll"] = metrics.mean_ci95(nlls)
    if pooled is not None:
        extra["ece"] = (metrics.expected_calibration_error(*pooled, calibration_bins), 0.0)
    mean, ci = metrics.mean_ci95(values)
    return EvalResult(name, mean, ci, torch.tensor(values, dtype=torch.float64), seconds, extra,
                      pooled)


def calibrate(algorithm, val_episodes: Iterable[Episode], result: EvalResult, *, steps: int | None = None,
              device: torch.device | str | None = None) -> dict:
    """Temperature scaling: ``T`` fitted on ``val_episodes`` (meta-val, never the test set), and
    ``result``'s pooled test logits scored at it: ``{temperature, val_episodes, nll, ece}``."""
    fit = evaluate(algorithm, val_episodes, steps=steps, device=device)
    if fit.pooled is None or result.pooled is None:
        raise ValueError("calibration needs classification logits with one number of ways in every "
                         "episode (validation and test)")
    temperature = metrics.fit_temperature(*fit.pooled)
    logits, targets = result.pooled
    return {"temperature": temperature, "val_episodes": fit.episodes,
            "nll": metrics.nll(logits / temperature, targets),
            "ece": metrics.expected_calibration_error(logits / temperature, targets)}


def _predict_once(algorithm, adapted, episode: Episode) -> tuple[Tensor, float | None]:
    """The query prediction and, for probabilistic regressors, its NLL from the same forward pass.

    A probabilistic learner's ``predict`` is its predictive mean (the ContextLearner contract), so
    the distribution is computed once and both numbers read from it instead of running the network
    twice per episode.
    """
    if algorithm.task != "classification":
        if getattr(algorithm, "output", None) == "binned":  # histogram: scored by its own density
            dist = algorithm.predictive(adapted, episode.query_x)
            return dist.mean, float(dist.nll(episode.query_y.to(dist.logits.dtype)))
        if hasattr(algorithm, "predict_distribution"):
            mean, var = algorithm.predict_distribution(adapted, episode.query_x)
            return mean, metrics.gaussian_nll(mean, var, episode.query_y)
    return algorithm.predict(adapted, episode.query_x), None
