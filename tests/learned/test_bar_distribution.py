import math

import pytest
import torch

from metaloop.learned.bar_distribution import BarDistribution, check_bin_edges, quantile_bin_edges

# Three bins [0, 1], [1, 3], [3, 4] with probabilities 0.2 / 0.5 / 0.3. The outer two are half-normal
# tails from 1 leftwards and from 3 rightwards, scale = width / median of a unit half-normal.
EDGES = torch.tensor([0.0, 1.0, 3.0, 4.0], dtype=torch.float64)
PROBS = torch.tensor([0.2, 0.5, 0.3], dtype=torch.float64)
SCALE = 1 / 0.6744897501960818  # both outer bins have width 1


def three_bins() -> BarDistribution:
    return BarDistribution(PROBS.log(), EDGES)


def half_normal(d: float) -> float:
    return math.sqrt(2 / math.pi) / SCALE * math.exp(-d * d / (2 * SCALE**2))


def test_nll_is_minus_log_bin_probability_over_width_by_hand():
    d = three_bins()
    y = torch.tensor([2.0, 0.5, 5.0, -3.0], dtype=torch.float64)
    expected = [-math.log(0.5 / 2), -math.log(0.2 * half_normal(0.5)),
                -math.log(0.3 * half_normal(2.0)), -math.log(0.2 * half_normal(4.0))]
    torch.testing.assert_close(-d.log_prob(y), torch.tensor(expected, dtype=torch.float64))
    assert expected[:3] == pytest.approx([1.3862944, 2.2858951, 2.7334358], abs=1e-7)
    torch.testing.assert_close(d.nll(y), torch.tensor(expected, dtype=torch.float64).mean())


def test_mean_and_variance_by_hand():
    d = three_bins()
    shift = SCALE * math.sqrt(2 / math.pi)  # mean of a half-normal
    centres = [1 - shift, 2.0, 3 + shift]
    within = [SCALE**2 * (1 - 2 / math.pi), 2.0**2 / 12, SCALE**2 * (1 - 2 / math.pi)]
    mean = sum(p * c for p, c in zip(PROBS.tolist(), centres, strict=True))
    var = sum(p * (v + (c - mean) ** 2) for p, v, c in zip(PROBS.tolist(), within, centres, strict=True))
    assert (mean, var) == pytest.approx((2.2182945, 2.9010142), abs=1e-7)
    assert float(d.mean) == pytest.approx(mean, abs=1e-12)
    assert float(d.variance) == pytest.approx(var, abs=1e-12)


def test_density_integrates_to_one_and_matches_the_moments():
    torch.manual_seed(0)
    edges = torch.tensor([-2.0, -1.0, 0.5, 1.0, 3.0], dtype=torch.float64)
    d = BarDistribution(torch.randn(3, 4, dtype=torch.float64), edges)
    y = torch.linspace(-60, 60, 600_001, dtype=torch.float64)
    density = d.log_prob(y[:, None]).exp()  # [points, 3]: one density per batch element
    torch.testing.assert_close(torch.trapezoid(density, y, dim=0),
                               torch.ones(3, dtype=torch.float64), rtol=0, atol=1e-4)
    mean = torch.trapezoid(density * y[:, None], y, dim=0)
    torch.testing.assert_close(mean, d.mean, rtol=0, atol=1e-3)
    var = torch.trapezoid(density * (y[:, None] - mean) ** 2, y, dim=0)
    torch.testing.assert_close(var, d.variance, rtol=0, atol=1e-3)


def test_quantiles_are_monotone_and_invert_the_cdf():
    torch.manual_seed(1)
    d = BarDistribution(torch.randn(5, 8, dtype=torch.float64), torch.linspace(-4, 4, 9).double())
    q = torch.linspace(0.001, 0.999, 200, dtype=torch.float64)
    x = torch.stack([d.icdf(float(p)) for p in q], dim=-1)  # [5, 200]
    assert (x[:, 1:] > x[:, :-1]).all()
    torch.testing.assert_close(d.cdf(x.T).T, q.expand(5, -1), rtol=0, atol=1e-10)
    low, high = d.interval(0.9)
    torch.testing.assert_close(d.cdf(high) - d.cdf(low), torch.full((5,), 0.9, dtype=torch.float64))


def test_median_of_a_symmetric_histogram_is_its_centre():
    edges = torch.tensor([-3.0, -1.0, -0.5, 0.5, 1.0, 3.0], dtype=torch.float64)
    d = BarDistribution(torch.tensor([0.3, 1.0, 2.0, 1.0, 0.3], dtype=torch.float64), edges)
    assert float(d.icdf(0.5)) == pytest.approx(0.0, abs=1e-12)
    assert float(d.mean) == pytest.approx(0.0, abs=1e-12)
    low, high = d.interval(0.8)
    assert float(low) == pytest.approx(-float(high), abs=1e-12)


def test_coverage_counts_targets_inside_the_central_intervals():
    d = BarDistribution(torch.zeros(4, 2, dtype=torch.float64), torch.tensor([-1.0, 0.0, 1.0]).double())
    # two equal tails from 0: the central 50 % interval is the half-normal median either side, ±1
    targets = torch.tensor([0.0, 0.99, -1.01, 5.0], dtype=torch.float64)
    torch.testing.assert_close(d.coverage(targets, levels=(0.5,)), torch.tensor([0.5]))
    with pytest.raises(ValueError, match="levels must be in"):
        d.coverage(targets, levels=(1.0,))


def test_quantile_edges_hold_equal_prior_mass():
    y = torch.randn(20_000, generator=torch.Generator().manual_seed(0))
    edges = quantile_bin_edges(y, 10)
    assert edges.shape == (11,) and edges[0] == y.min() and edges[-1] == y.max()
    counts = torch.tensor([((y >= a) & (y < b)).sum() for a, b in zip(edges[:-1], edges[1:], strict=True)])
    assert (counts - 2000).abs().max() <= 1


def test_bad_bins_and_edges_are_refused_with_the_fix():
    with pytest.raises(ValueError, match="bins must be >= 2"):
        quantile_bin_edges(torch.randn(100), 1)
    with pytest.raises(ValueError, match="strictly increasing.*edge 2 .*sort them"):
        check_bin_edges(torch.tensor([0.0, 1.0, 1.0, 2.0]))
    with pytest.raises(ValueError, match="bins >= 2"):
        check_bin_edges(torch.tensor([0.0, 1.0]))
    with pytest.raises(ValueError, match="finite"):
        check_bin_edges(torch.tensor([0.0, math.nan, 2.0]))
    with pytest.raises(ValueError, match="use fewer bins"):  # a prior with repeated values
        quantile_bin_edges(torch.tensor([0.0] * 50 + [1.0] * 50), 10)
    with pytest.raises(ValueError, match="sample more"):
        quantile_bin_edges(torch.randn(5), 10)
