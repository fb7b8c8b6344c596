import math

import pytest
import torch

from metaloop.learned.uncertainty import coverage, coverage_error, gaussian_nll, normal_quantile


def test_nll_by_hand():
    mean = torch.tensor([0.0, 1.0], dtype=torch.float64)
    var = torch.tensor([1.0, 4.0], dtype=torch.float64)
    y = torch.tensor([1.0, 1.0], dtype=torch.float64)
    per_point = [0.5 * (math.log(2 * math.pi * 1.0) + 1.0 / 1.0),
                 0.5 * (math.log(2 * math.pi * 4.0) + 0.0 / 4.0)]
    assert gaussian_nll(mean, var, y).item() == pytest.approx(sum(per_point) / 2, rel=1e-12)


def test_quantiles_and_hand_coverage():
    assert normal_quantile(0.975) == pytest.approx(1.959963984540054, rel=1e-12)
    mean = torch.zeros(4, dtype=torch.float64)
    var = torch.ones(4, dtype=torch.float64)
    y = torch.tensor([0.1, -0.7, 1.5, 3.0], dtype=torch.float64)  # |z| = .1 .7 1.5 3
    cov = coverage(mean, var, y, levels=(0.5, 0.9, 0.99))  # z: 0.674, 1.645, 2.576
    torch.testing.assert_close(cov, torch.tensor([0.25, 0.75, 0.75]))
    err = coverage_error(mean, var, y, levels=(0.5, 0.9, 0.99))
    assert err.item() == pytest.approx((0.25 + 0.15 + 0.24) / 3, abs=1e-6)


def test_calibrated_gaussian_has_nominal_coverage_and_overconfident_does_not():
    g = torch.Generator().manual_seed(0)
    mean = torch.randn(200_000, generator=g)
    y = mean + 0.5 * torch.randn(200_000, generator=g)
    levels = (0.5, 0.8, 0.95)
    torch.testing.assert_close(coverage(mean, torch.full_like(mean, 0.25), y, levels),
                               torch.tensor(levels), atol=4e-3, rtol=0)
    assert coverage_error(mean, torch.full_like(mean, 0.25), y).item() < 4e-3
    assert coverage_error(mean, torch.full_like(mean, 0.01), y).item() > 0.3  # too narrow


def test_bad_inputs():
    z = torch.zeros(3)
    with pytest.raises(ValueError, match="positive"):
        gaussian_nll(z, z, z)
    with pytest.raises(ValueError, match="shapes differ"):
        gaussian_nll(z, torch.ones(2), z)
    with pytest.raises(ValueError, match=r"in \(0, 1\)"):
        coverage(z, torch.ones(3), z, levels=(1.0,))
