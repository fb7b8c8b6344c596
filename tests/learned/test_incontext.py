import pytest
import torch

from metaloop.algorithms import Algorithm, get_algorithm
from metaloop.learned.incontext import InContextTransformer, attention_mask


def test_attention_mask_by_hand():
    m = attention_mask(2, 3)
    expected = torch.tensor([
        [1, 1, 0, 0, 0],
        [1, 1, 0, 0, 0],
        [1, 1, 1, 0, 0],
        [1, 1, 0, 1, 0],
        [1, 1, 0, 0, 1],
    ], dtype=torch.bool)
    assert torch.equal(m, expected)


def model(**kw):
    torch.manual_seed(0)
    return InContextTransformer(d_model=16, heads=2, layers=2, ff=32, **kw).double()


@pytest.mark.parametrize("output", ["gaussian", "binned"])
def test_support_permutation_invariance_and_query_equivariance(sine_batch, output):
    net = model(output=output, bins=7)

    def run(sx, sy, qx):  # (mean, var) for the Gaussian head, (logits,) for the binned one
        out = net(sx, sy, qx)
        return out if output == "gaussian" else (out,)

    b = sine_batch(2, shots=6, queries=5, dtype=torch.float64)
    out = run(b.support_x, b.support_y, b.query_x)
    assert out[0].shape == ((2, 5, 1) if output == "gaussian" else (2, 5, 1, 7))
    p = torch.randperm(6)
    out_p = run(b.support_x[:, p], b.support_y[:, p], b.query_x)
    for a, a_p in zip(out, out_p, strict=True):
        torch.testing.assert_close(a, a_p, rtol=0, atol=1e-12)
    q = torch.randperm(5)
    out_q = run(b.support_x, b.support_y, b.query_x[:, q])
    torch.testing.assert_close(out[0][:, q], out_q[0], rtol=0, atol=1e-12)


def test_a_query_never_sees_other_queries(sine_batch):
    net = model()
    b = sine_batch(1, shots=4, queries=6, dtype=torch.float64)
    qx = b.query_x.clone().requires_grad_(True)
    mean, _ = net(b.support_x, b.support_y, qx)
    (g,) = torch.autograd.grad(mean[0, 2, 0], qx)
    assert g[0, 2].abs().item() > 0
    assert torch.count_nonzero(g[0, [0, 1, 3, 4, 5]]) == 0
    alone, _ = net(b.support_x, b.support_y, b.query_x[:, 2:3])  # same answer without the others
    torch.testing.assert_close(alone[0, 0], mean[0, 2].detach(), rtol=0, atol=1e-12)
    # but it does read the support labels
    shifted, _ = net(b.support_x, b.support_y + 1.0, b.query_x)
    assert not torch.allclose(shifted, mean.detach())


def test_classifier_reads_the_label_binding_from_the_support_set():
    torch.manual_seed(0)
    alg = get_algorithm("incontext")(model(output="classification", ways=3, x_dim=4))
    sx = torch.randn(6, 4, dtype=torch.float64)
    sy = torch.tensor([0, 0, 1, 1, 2, 2])
    qx = torch.randn(5, 4, dtype=torch.float64)
    logits = alg.predict(alg.adapt(sx, sy), qx)
    assert alg.task == "classification" and logits.shape == (5, 3)
    renamed = alg.predict(alg.adapt(sx, torch.tensor([2, 0, 1])[sy]), qx)
    assert not torch.allclose(renamed, logits)  # labels are inputs, not fixed output slots
    from metaloop.tasks.episode import Episode, EpisodeBatch

    b = EpisodeBatch.stack([Episode(sx, sy, qx, torch.tensor([0, 1, 2, 0, 1]))])
    torch.testing.assert_close(alg.meta_loss(b), torch.nn.functional.cross_entropy(
        logits, torch.tensor([0, 1, 2, 0, 1])))


def test_algorithm_batched_loss_equals_reference_loop(sine_batch):
    alg = get_algorithm("incontext")(model())
    b = sine_batch(3, shots=5, queries=4, dtype=torch.float64)
    ref = Algorithm.meta_loss.__get__(alg)(b)  # base-class loop over episodes
    torch.testing.assert_close(alg.meta_loss(b), ref, rtol=1e-12, atol=1e-12)
    ep = b[0]
    adapted = alg.adapt(ep.support_x, ep.support_y)
    mean, var = alg.predict_distribution(adapted, ep.query_x)
    torch.testing.assert_close(alg.predict(adapted, ep.query_x), mean)
    assert alg.task == "regression" and alg.output == "gaussian" and (var > 0).all()


def test_refuses_steps_and_empty_support(sine_batch):
    import pytest

    alg = get_algorithm("incontext")(model())
    ep = sine_batch(1)[0]
    with pytest.raises(ValueError, match="without gradient steps"):
        alg.adapt(ep.support_x, ep.support_y, steps=3)
    with pytest.raises(ValueError, match="support set is empty"):
        alg.model(ep.support_x[None, :0].double(), ep.support_y[None, :0].double(),
                  ep.query_x[None].double())


def test_conv4_encoder_from_a_config_string_classifies_pixels():
    from metaloop.learned.incontext import InContextTransformer

    model = InContextTransformer(1, output="classification", ways=3, d_model=16, heads=2, layers=1,
                                 ff=16, x_encoder="conv4")
    sx, qx = torch.randn(2, 3, 1, 28, 28), torch.randn(2, 4, 1, 28, 28)
    sy = torch.arange(3).expand(2, 3)
    assert model(sx, sy, qx).shape == (2, 4, 3)
    with pytest.raises(ValueError, match="x_encoder must be"):
        InContextTransformer(1, x_encoder="resnet")


def test_conv4_encoder_keeps_images_apart_and_per_example():
    """At initialisation the pixel encoder must separate images (a norm-free Conv-4 mapped all of
    them to nearly one vector and the learner sat at chance) and must not mix examples."""
    from metaloop.learned.incontext import InContextTransformer

    torch.manual_seed(0)
    enc = InContextTransformer(1, output="classification", ways=5, d_model=64,
                               x_encoder="conv4").x_encoder
    x = (torch.rand(10, 1, 28, 28) < 0.2).float()
    z = enc(x)
    assert z.std(0).norm() > 0.1 * z.norm(dim=-1).mean()
    torch.testing.assert_close(enc(x[:3]), z[:3])  # no batch statistics


def binned_learner(bins=16):
    from metaloop.learned.bar_distribution import quantile_bin_edges

    alg = get_algorithm("incontext")(model(output="binned", bins=bins))
    prior_y = torch.linspace(-5, 5, 1001, dtype=torch.float64).sin()  # any prior sample will do
    alg.model.set_bin_edges(quantile_bin_edges(prior_y, bins))
    return alg


def test_binned_head_predicts_the_histogram_mean_and_is_scored_by_its_density(sine_batch):
    from metaloop.evaluate import evaluate
    from metaloop.learned.bar_distribution import BarDistribution

    alg = binned_learner()
    assert alg.task == "regression" and alg.output == "binned"
    b = sine_batch(3, shots=5, queries=4, dtype=torch.float64)
    ref = Algorithm.meta_loss.__get__(alg)(b)  # base-class loop over episodes
    torch.testing.assert_close(alg.meta_loss(b), ref, rtol=1e-12, atol=1e-12)
    ep = b[0]
    adapted = alg.adapt(ep.support_x, ep.support_y)
    dist = alg.predictive(adapted, ep.query_x)
    logits = alg.model(ep.support_x[None], ep.support_y[None], ep.query_x[None])[0]
    by_hand = BarDistribution(logits, alg.model.bin_edges)
    torch.testing.assert_close(alg.predict(adapted, ep.query_x), by_hand.mean)
    mean, var = alg.predict_distribution(adapted, ep.query_x)
    torch.testing.assert_close(var, by_hand.variance)
    assert mean.shape == var.shape == ep.query_y.shape
    result = evaluate(alg, [b[i] for i in range(3)])
    with torch.no_grad():
        nlls = [float(alg.predictive(alg.adapt(b[i].support_x, b[i].support_y), b[i].query_x)
                      .nll(b[i].query_y)) for i in range(3)]
    assert result.extra["nll"][0] == pytest.approx(sum(nlls) / 3, rel=1e-12)
    assert dist.nll(ep.query_y).item() == pytest.approx(nlls[0], rel=1e-12)
    with pytest.raises(AttributeError, match="predictive is for output='binned'"):
        get_algorithm("incontext")(model()).predictive(adapted, ep.query_x)


def test_binned_learner_trains_on_sinusoids_and_saves_its_edges():
    from metaloop.learned.bar_distribution import quantile_bin_edges
    from metaloop.tasks.regression import RegressionSampler, SinusoidFamily

    torch.manual_seed(0)
    alg = get_algorithm("incontext")(model(output="binned", bins=20).float())
    assert not alg.model.has_bin_edges
    batch = RegressionSampler(SinusoidFamily(), 10, 10).sample_batch(8, torch.Generator().manual_seed(0))
    opt = torch.optim.Adam(alg.parameters(), lr=1e-2)
    losses = []
    for _ in range(30):
        loss = alg.meta_loss(batch)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    # the first meta-batch's targets, a sample of the prior, gave the edges (PFN: prior quantiles)
    prior_y = torch.cat([batch.support_y, batch.query_y], dim=1)
    torch.testing.assert_close(alg.model.bin_edges, quantile_bin_edges(prior_y, 20))
    assert losses[-1] < losses[0] - 1.0 and losses[-1] < min(losses[:-1]), losses  # 2.29 -> 0.69
    fresh = get_algorithm("incontext")(output="binned", bins=20, d_model=16, heads=2, layers=2, ff=32)
    fresh.load_state_dict(alg.state_dict())
    torch.testing.assert_close(fresh.model.bin_edges, alg.model.bin_edges)


def test_binned_head_refuses_bad_settings_with_the_fix():
    with pytest.raises(ValueError, match="bins must be >= 2"):
        InContextTransformer(output="binned", bins=1)
    with pytest.raises(ValueError, match="y_dim=1"):
        InContextTransformer(y_dim=2, output="binned")
    with pytest.raises(ValueError, match="output must be one of gaussian, binned, classification"):
        InContextTransformer(output="bars")
    net = InContextTransformer(output="binned", bins=4, d_model=16, heads=2, layers=1, ff=16)
    with pytest.raises(ValueError, match="strictly increasing"):
        net.set_bin_edges(torch.tensor([0.0, 2.0, 1.0, 3.0, 4.0]))
    with pytest.raises(ValueError, match="4 bins need 5 edges.*quantile_bin_edges"):
        net.set_bin_edges(torch.tensor([0.0, 1.0, 2.0]))
    alg = get_algorithm("incontext")(net)
    sx, qx = torch.randn(3, 1), torch.randn(2, 1)
    with pytest.raises(ValueError, match="bin edges are not set.*set_bin_edges"):
        alg.predict(alg.adapt(sx, sx), qx)


def test_standardized_conv4_encoder_embeds_each_image_alone_in_eval():
    torch.manual_seed(0)
    net = InContextTransformer(x_dim=1, output="classification", ways=5, d_model=16, heads=2,
                               layers=1, ff=32, x_encoder="conv4_bn")
    x = torch.rand(12, 1, 28, 28)
    net.train()
    with torch.no_grad():  # training: the batch's own statistics standardize the conv features
        standardized = net.x_encoder[:2](x)
    torch.testing.assert_close(standardized.mean(0), torch.zeros(64), atol=1e-4, rtol=0)
    assert 0.9 < float(standardized.std(0).mean()) < 1.1
    net.eval()
    z = net.x_encoder(x)
    torch.testing.assert_close(net.x_encoder(x[:1]), z[:1])  # eval: no image depends on the others
    with pytest.raises(ValueError, match="'conv4' or 'conv4_bn'"):
        InContextTransformer(x_encoder="resnet")
