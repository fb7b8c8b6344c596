import math

import pytest
import torch

from metaloop.tasks.regression import (
    CallableFamily,
    HarmonicFamily,
    LinearFamily,
    RegressionSampler,
    SinusoidFamily,
    sinusoid_tasks,
)


def test_sinusoid_follows_maml_exactly():
    sampler = sinusoid_tasks(shots=5, queries=10)
    batch, params = sampler.sample_with_params(2000, torch.Generator().manual_seed(0))
    amp, phase = params[:, 0], params[:, 1]
    assert 0.1 <= amp.min() and amp.max() <= 5.0 and 0 <= phase.min() and phase.max() <= math.pi
    assert abs(float(amp.mean()) - 2.55) < 0.1 and abs(float(phase.mean()) - math.pi / 2) < 0.1
    x = torch.cat([batch.support_x, batch.query_x], 1)
    y = torch.cat([batch.support_y, batch.query_y], 1)
    assert x.shape == (2000, 15, 1) and -5 <= x.min() and x.max() <= 5
    expected = amp.view(-1, 1, 1) * torch.sin(x.double() - phase.view(-1, 1, 1))
    torch.testing.assert_close(y.double(), expected, rtol=1e-5, atol=1e-5)  # float32 rounding of x


def test_families_evaluate_their_formulas():
    x = torch.tensor([[[0.0], [1.0]]], dtype=torch.float64)
    lin = LinearFamily()(torch.tensor([[2.0, -1.0]], dtype=torch.float64), x)
    assert lin.flatten().tolist() == [-1.0, 1.0]
    h = HarmonicFamily()(torch.tensor([[1.0, 2.0, 0.0, 3.0, 0.0]], dtype=torch.float64), x)
    assert h.flatten().tolist() == pytest.approx([0.0, 2 * math.sin(1) + 3 * math.sin(2)])
    fam = CallableFamily(lambda n, g: torch.ones(n, 1, dtype=torch.float64),
                         lambda p, x: p.unsqueeze(-2) * x**2)
    ep = RegressionSampler(fam, 3, 2).sample(torch.Generator().manual_seed(0))
    torch.testing.assert_close(ep.support_y, ep.support_x**2)


def test_regression_sampler_is_seeded_and_validates():
    s = sinusoid_tasks(shots=10, queries=5)
    a = s.sample_batch(3, torch.Generator().manual_seed(1))
    b = s.sample_batch(3, torch.Generator().manual_seed(1))
    assert torch.equal(a.support_y, b.support_y) and a.support_x.dtype == torch.float32
    with pytest.raises(ValueError, match="shots >= 1 and queries >= 1"):
        RegressionSampler(SinusoidFamily(), 0, 5)
    with pytest.raises(ValueError, match="low < high"):
        RegressionSampler(SinusoidFamily(x_range=(1.0, -1.0)), 5, 5)
