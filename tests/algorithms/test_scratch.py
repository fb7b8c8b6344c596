import pytest
import torch
from torch import nn

from metaloop.algorithms import get_algorithm
from metaloop.algorithms.scratch import FromScratch, support_statistics


def _separable(ways=3, shots=2, dim=16, seed=0):
    g = torch.Generator().manual_seed(seed)
    centres = torch.randn(ways, 1, 4, 4, generator=g) * 2
    x = centres.repeat_interleave(shots, 0) + 0.1 * torch.randn(ways * shots, 1, 4, 4, generator=g)
    return x, torch.arange(ways).repeat_interleave(shots)


def _linear(ways):
    return nn.Sequential(nn.Flatten(), nn.Linear(16, ways))


def test_registered():
    assert get_algorithm("scratch") is FromScratch


def test_fits_support_and_is_deterministic():
    x, y = _separable()
    algo = FromScratch(_linear, steps=25, lr=0.1)
    a, b = algo.adapt(x, y), algo.adapt(x, y)
    assert torch.equal(algo.predict(a, x), algo.predict(b, x))
    assert (algo.predict(a, x).argmax(1) == y).all()


def test_zero_steps_is_the_fresh_network_and_steps_override():
    x, y = _separable()
    algo = FromScratch(_linear, steps=60, lr=0.05, seed=7)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(7)
        fresh = _linear(3)
    assert torch.equal(algo.predict(algo.adapt(x, y, steps=0), x), fresh(x))
    one = algo.adapt(x, y, steps=1)
    # one Adam step moves every weight by lr (the first Adam step is lr · sign(grad))
    delta = (one[1].weight - fresh[1].weight).abs()
    assert torch.allclose(delta[delta > 0], torch.full_like(delta[delta > 0], 0.05), rtol=1e-3)


def test_batch_norm_uses_exact_support_statistics():
    model = nn.Sequential(nn.BatchNorm2d(1), nn.Flatten())
    x, _ = _separable()
    support_statistics(model, x)
    assert torch.allclose(model[0].running_mean, x.mean(dim=(0, 2, 3)))
    assert torch.allclose(model[0].running_var, x.var(dim=(0, 2, 3), unbiased=True))
    assert model[0].momentum == 0.1


def test_default_conv4_runs_on_images():
    x = torch.rand(5, 1, 16, 16)
    y = torch.arange(5)
    algo = FromScratch(steps=15, lr=3e-2, image_size=16, hidden=8)
    assert (algo.predict(algo.adapt(x, y), x).argmax(1) == y).all()


def test_bad_arguments():
    with pytest.raises(ValueError, match="steps"):
        FromScratch(_linear, steps=-1)
    with pytest.raises(ValueError, match="steps"):
        FromScratch(_linear).adapt(*_separable(), steps=-2)
