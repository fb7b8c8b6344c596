import pytest
import torch

from metaloop import metrics
from metaloop.algorithms.base import Algorithm, check_no_steps
from metaloop.evaluate import calibrate, evaluate
from metaloop.tasks.episode_set import EpisodeSet
from metaloop.tasks.sampler import FewShotSampler


class PixelNearestMean(Algorithm):
    """Parameter-free nearest class mean in pixel space: exact on easy toy data."""

    def adapt(self, support_x, support_y, *, steps=None):
        check_no_steps("PixelNearestMean", steps)
        ways = int(support_y.max()) + 1
        flat = support_x.flatten(1)
        return torch.stack([flat[support_y == c].mean(0) for c in range(ways)])

    def predict(self, means, query_x):
        return -torch.cdist(query_x.flatten(1), means) ** 2


def test_evaluate_reports_accuracy_ci_and_calibration(toy_dataset):
    # first pixel = class code: nearest mean on it is perfect when other pixels are constant
    data = toy_dataset.data.clone()
    data.view(len(data), -1)[:, 1:] = 0
    from metaloop.data.base import ClassDataset
    clean = ClassDataset(data, toy_dataset.targets, toy_dataset.class_names)
    episodes = EpisodeSet.generate(FewShotSampler(clean, 5, 1, 3), 20, seed=0)
    result = evaluate(PixelNearestMean(), episodes)
    assert result.metric == "accuracy" and result.mean == 1.0 and result.ci95 == 0.0
    assert result.episodes == 20 and set(result.extra) == {"nll", "ece"}
    assert "100.00 ± 0.00 %" in result.summary()
    with pytest.raises(ValueError, match="without 'steps'"):
        evaluate(PixelNearestMean(), episodes, steps=3)
    with pytest.raises(ValueError, match="no episodes"):
        evaluate(PixelNearestMean(), [])


def test_evaluate_restores_training_mode(toy_dataset):
    algo = PixelNearestMean()
    algo.train()
    evaluate(algo, EpisodeSet.generate(FewShotSampler(toy_dataset, 2, 1, 1), 2, seed=0))
    assert algo.training


class Diverged(PixelNearestMean):
    def predict(self, means, query_x):
        return torch.full((len(query_x), len(means)), float("nan"))


def test_evaluate_names_a_diverged_learner(toy_dataset):
    episodes = EpisodeSet.generate(FewShotSampler(toy_dataset, 2, 1, 1), 2, seed=0)
    with pytest.raises(FloatingPointError, match="Diverged predicted NaN/inf on episode 0"):
        evaluate(Diverged(), episodes)


def test_temperature_rescales_nll_and_ece_but_not_accuracy(toy_dataset):
    episodes = EpisodeSet.generate(FewShotSampler(toy_dataset, 5, 1, 3), 10, seed=1)
    raw = evaluate(PixelNearestMean(), episodes)
    logits, targets = raw.pooled
    assert logits.shape == (10 * 5 * 3, 5) and targets.shape == (150,)
    hot = evaluate(PixelNearestMean(), episodes, temperature=4.0)
    assert hot.mean == raw.mean and torch.equal(hot.values, raw.values)
    assert torch.allclose(hot.pooled[0], logits / 4.0)
    assert hot.extra["nll"][0] == pytest.approx(metrics.nll(logits / 4.0, targets))
    assert hot.extra["ece"][0] == pytest.approx(metrics.expected_calibration_error(logits / 4.0, targets))
    assert hot.extra["nll"][0] != pytest.approx(raw.extra["nll"][0])
    with pytest.raises(ValueError, match="temperature must be > 0"):
        evaluate(PixelNearestMean(), episodes, temperature=0.0)


def test_calibrate_fits_on_validation_and_scores_the_test_logits_at_that_temperature(toy_dataset):
    val = EpisodeSet.generate(FewShotSampler(toy_dataset, 5, 1, 3), 8, seed=2)
    test = evaluate(PixelNearestMean(), EpisodeSet.generate(FewShotSampler(toy_dataset, 5, 1, 3), 10, seed=1))
    report = calibrate(PixelNearestMean(), val, test)
    t = metrics.fit_temperature(*evaluate(PixelNearestMean(), val).pooled)
    logits, targets = test.pooled
    assert report == {"temperature": t, "val_episodes": 8, "nll": metrics.nll(logits / t, targets),
                      "ece": metrics.expected_calibration_error(logits / t, targets)}
    assert t != pytest.approx(1.0)  # pixel distances are no calibrated logits
