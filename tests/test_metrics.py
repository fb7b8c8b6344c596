import math

import pytest
import torch

from metaloop import metrics


def test_ci95_known_case():
    mean, ci = metrics.mean_ci95([1.0, 2.0, 3.0, 4.0, 5.0])
    # s = sqrt(2.5), se = s / sqrt(5) = 0.70711, half-width = 1.96 * se
    assert mean == 3.0 and ci == pytest.approx(1.959964 * math.sqrt(2.5) / math.sqrt(5), rel=1e-6)
    assert ci == pytest.approx(1.385904, rel=1e-5)
    assert metrics.mean_ci95([0.5]) == (0.5, 0.0)
    with pytest.raises(ValueError):
        metrics.mean_ci95([])


def test_ci95_coverage_on_simulated_accuracies():
    g = torch.Generator().manual_seed(0)
    covered = 0
    for _ in range(400):
        values = torch.bernoulli(torch.full((600,), 0.9), generator=g)
        mean, ci = metrics.mean_ci95(values)
        covered += abs(mean - 0.9) <= ci
    assert 0.92 <= covered / 400 <= 0.98


def test_accuracy_mse_nll():
    logits = torch.tensor([[2.0, 0.0], [0.0, 1.0], [3.0, 1.0]])
    y = torch.tensor([0, 0, 0])
    assert metrics.accuracy(logits, y) == pytest.approx(2 / 3)
    expected_nll = -(math.log(math.exp(2) / (math.exp(2) + 1)) + math.log(1 / (1 + math.e))
                     + math.log(math.exp(3) / (math.exp(3) + math.e))) / 3
    assert metrics.nll(logits, y) == pytest.approx(expected_nll)
    assert metrics.mse(torch.tensor([1.0, 3.0]), torch.tensor([0.0, 0.0])) == 5.0
    g = metrics.gaussian_nll(torch.zeros(1), torch.ones(1), torch.ones(1))
    assert g == pytest.approx(0.5 * math.log(2 * math.pi) + 0.5)


def test_ece_hand_computed():
    # confidences 0.9 (correct), 0.9 (wrong), 0.6 (correct): bins at 0.9 → |0.5-0.9|*2/3, 0.6 → |1-0.6|/3
    p = torch.tensor([[0.9, 0.1], [0.9, 0.1], [0.6, 0.4]])
    logits = p.log()
    y = torch.tensor([0, 1, 0])
    assert metrics.expected_calibration_error(logits, y, bins=10) == pytest.approx(0.4 * 2 / 3 + 0.4 / 3)
    perfect = torch.tensor([[10.0, -10.0]] * 4)
    assert metrics.expected_calibration_error(perfect, torch.zeros(4, dtype=torch.long)) < 1e-6


def test_fit_temperature_recovers_the_temperature_that_generated_the_labels():
    """Labels drawn from softmax(z / 2.5): the NLL-optimal temperature is 2.5 (up to sampling)."""
    g = torch.Generator().manual_seed(0)
    z = 3 * torch.randn(50_000, 5, generator=g, dtype=torch.float64)
    y = torch.multinomial((z / 2.5).softmax(-1), 1, generator=g).squeeze(1)
    t = metrics.fit_temperature(z, y)
    assert t == pytest.approx(2.5, rel=0.03)
    best = metrics.nll(z / t, y)
    assert best < metrics.nll(z / (1.05 * t), y) and best < metrics.nll(z / (t / 1.05), y)
    assert metrics.accuracy(z / t, y) == metrics.accuracy(z, y)


def test_fit_temperature_sharpens_underconfident_logits_and_checks_input():
    g = torch.Generator().manual_seed(1)
    z = 3 * torch.randn(20_000, 5, generator=g, dtype=torch.float64)
    y = torch.multinomial(z.softmax(-1), 1, generator=g).squeeze(1)
    timid = z / 4  # logits four times too flat: the fit must sharpen them back, T ~ 1/4
    assert metrics.fit_temperature(timid, y) == pytest.approx(0.25, rel=0.05)
    assert metrics.expected_calibration_error(timid / 0.25, y) < metrics.expected_calibration_error(timid, y)
    with pytest.raises(ValueError, match="bounds"):
        metrics.fit_temperature(z, y, bounds=(1.0, 0.5))
    with pytest.raises(ValueError, match="expected logits"):
        metrics.fit_temperature(z[:, 0], y)
