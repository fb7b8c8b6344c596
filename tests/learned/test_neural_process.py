import math

import pytest
import torch
from torch.distributions import Normal

from metaloop.algorithms import Algorithm, get_algorithm
from metaloop.learned.neural_process import ConditionalNeuralProcess, NeuralProcess


def test_cnp_is_context_permutation_invariant_and_nll_matches_formula(sine_batch):
    torch.manual_seed(0)
    cnp = ConditionalNeuralProcess(hidden=16).double()
    b = sine_batch(2, shots=7, queries=5, dtype=torch.float64)
    mean, var = cnp(b.support_x, b.support_y, b.query_x)
    p = torch.randperm(7)
    mean_p, var_p = cnp(b.support_x[:, p], b.support_y[:, p], b.query_x)
    torch.testing.assert_close(mean, mean_p, rtol=0, atol=1e-12)
    torch.testing.assert_close(var, var_p, rtol=0, atol=1e-12)
    assert (var.sqrt() >= 0.01 - 1e-12).all()
    by_hand = (0.5 * torch.log(2 * math.pi * var) + (b.query_y - mean) ** 2 / (2 * var)).mean()
    torch.testing.assert_close(cnp.loss(b.support_x, b.support_y, b.query_x, b.query_y), by_hand)


def test_np_mixture_moments_and_log_prob():
    torch.manual_seed(0)
    means = torch.randn(4, 1, 3, 1, dtype=torch.float64)
    variances = torch.rand(4, 1, 3, 1, dtype=torch.float64) + 0.1
    y = torch.randn(1, 3, 1, dtype=torch.float64)
    lp = NeuralProcess.mixture_log_prob(means, variances, y)
    dens = Normal(means, variances.sqrt()).log_prob(y).exp().mean(0)
    torch.testing.assert_close(lp, dens.log())
    one = NeuralProcess.mixture_log_prob(means[:1], variances[:1], y)
    torch.testing.assert_close(one, Normal(means[0], variances[0].sqrt()).log_prob(y))


def test_np_predictive_variance_is_law_of_total_variance(sine_batch):
    torch.manual_seed(0)
    net = NeuralProcess(hidden=16, latent=4).double()
    b = sine_batch(1, shots=5, queries=3, dtype=torch.float64)
    g = torch.Generator().manual_seed(3)
    means, variances, mix = net.predictive(b.support_x, b.support_y, b.query_x, 50, generator=g)
    torch.testing.assert_close(mix, variances.mean(0) + means.var(0, unbiased=False))
    assert means.std(0).max() > 0  # samples of z give different functions


def test_np_elbo_by_hand_with_one_sample(sine_batch):
    torch.manual_seed(0)
    net = NeuralProcess(hidden=8, latent=3, deterministic=False).double()
    b = sine_batch(2, shots=4, queries=3, dtype=torch.float64)
    torch.manual_seed(5)
    loss = net.loss(b.support_x, b.support_y, b.query_x, b.query_y)
    prior = net.latent(b.support_x, b.support_y)
    post = net.latent(torch.cat([b.support_x, b.query_x], 1), torch.cat([b.support_y, b.query_y], 1))
    torch.manual_seed(5)
    z = post.rsample((1,))
    mean, var = net.decode(b.support_x, b.support_y, b.query_x, z)
    ll = Normal(mean, var.sqrt()).log_prob(b.query_y).sum((-2, -1))[0]
    kl = torch.distributions.kl_divergence(post, prior).sum(-1)
    torch.testing.assert_close(loss, ((kl - ll) / 3).mean())
    assert (kl >= 0).all()


@pytest.mark.parametrize("name", ["cnp", "np"])
def test_algorithms_batched_loss_matches_loop_and_predict_is_the_mean(name, sine_batch):
    torch.manual_seed(0)
    alg = get_algorithm(name)(hidden=16).double()
    b = sine_batch(3, shots=5, queries=4, dtype=torch.float64)
    if name == "cnp":  # the NP's loss is stochastic (z is sampled), so compare only the CNP
        torch.testing.assert_close(alg.meta_loss(b), Algorithm.meta_loss.__get__(alg)(b))
    ep = b[0]
    adapted = alg.adapt(ep.support_x, ep.support_y)
    mean, var = alg.predict_distribution(adapted, ep.query_x)
    torch.testing.assert_close(alg.predict(adapted, ep.query_x), mean)
    assert mean.shape == var.shape == ep.query_y.shape and (var > 0).all()
    torch.testing.assert_close(alg.predict(adapted, ep.query_x), mean)  # deterministic (seeded)
    with pytest.raises(ValueError, match="without gradient steps"):
        alg.adapt(ep.support_x, ep.support_y, steps=1)
    with pytest.raises(ValueError, match="empty"):
        alg.predict_distribution((ep.support_x[:0], ep.support_y[:0]), ep.query_x)


def test_evaluate_reads_mean_and_distribution(sine_batch):
    from metaloop.evaluate import evaluate

    torch.manual_seed(0)
    alg = get_algorithm("cnp")(hidden=8)
    b = sine_batch(4, shots=5, queries=6)
    res = evaluate(alg, list(b))
    assert res.metric == "mse" and "nll" in res.extra
    ref = torch.stack([((alg.predict(alg.adapt(e.support_x, e.support_y), e.query_x)
                         - e.query_y) ** 2).mean() for e in b]).double()
    torch.testing.assert_close(res.values, ref.detach(), rtol=1e-6, atol=1e-6)
