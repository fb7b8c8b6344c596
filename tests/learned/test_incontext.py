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


def test_support_permutation_invariance_and_query_equivariance(sine_batch):
    net = model()
    b = sine_batch(2, shots=6, queries=5, dtype=torch.float64)
    mean, var = net(b.support_x, b.support_y, b.query_x)
    p = torch.randperm(6)
    mean_p, var_p = net(b.support_x[:, p], b.support_y[:, p], b.query_x)
    torch.testing.assert_close(mean, mean_p, rtol=0, atol=1e-12)
    torch.testing.assert_close(var, var_p, rtol=0, atol=1e-12)
    q = torch.randperm(5)
    mean_q, _ = net(b.support_x, b.support_y, b.query_x[:, q])
    torch.testing.assert_close(mean[:, q], mean_q, rtol=0, atol=1e-12)


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
