import pytest
import torch
from torch import nn

from metaloop.algorithms import get_algorithm
from metaloop.algorithms.matching import AttentionLSTM, MatchingNet


def episode(g, ways=3, shots=2, queries=4, dim=6):
    sy = torch.arange(ways).repeat(shots)
    qy = torch.arange(ways).repeat(queries)
    sx = torch.randn(len(sy), dim, generator=g, dtype=torch.float64)
    qx = torch.randn(len(qy), dim, generator=g, dtype=torch.float64)
    return sx, sy, qx, qy


def test_registered():
    assert get_algorithm("matching") is MatchingNet


def test_attention_is_softmax_of_cosines_and_rows_sum_to_one():
    g = torch.Generator().manual_seed(0)
    sx, sy, qx, _ = episode(g)
    model = MatchingNet(nn.Identity()).double()
    mem = model.adapt(sx, sy)
    a = model.attention(mem, qx)
    torch.testing.assert_close(a.sum(1), torch.ones(len(qx), dtype=torch.float64))
    cos = torch.tensor([[float(q @ s) / float(q.norm() * s.norm()) for s in sx] for q in qx],
                       dtype=torch.float64)
    expected = torch.exp(cos) / torch.exp(cos).sum(1, keepdim=True)
    torch.testing.assert_close(a, expected)


def test_prediction_is_log_of_attention_weighted_labels():
    g = torch.Generator().manual_seed(1)
    sx, sy, qx, qy = episode(g)
    model = MatchingNet(nn.Identity(), scale=3.0).double()
    mem = model.adapt(sx, sy)
    logp = model.predict(mem, qx)
    a = model.attention(mem, qx)
    expected = torch.stack([a[:, sy == k].sum(1) for k in range(3)], 1)
    torch.testing.assert_close(logp.exp(), expected)
    torch.testing.assert_close(logp.exp().sum(1), torch.ones(len(qx), dtype=torch.float64))
    # the cross-entropy of log-probabilities is the negative log-likelihood of Eq. 1
    nll = -torch.log(expected[torch.arange(len(qy)), qy]).mean()
    torch.testing.assert_close(model.loss(logp, qy), nll)


def test_plain_model_is_invariant_to_support_order():
    g = torch.Generator().manual_seed(2)
    sx, sy, qx, _ = episode(g)
    model = MatchingNet(nn.Identity()).double()
    perm = torch.randperm(len(sy), generator=g)
    a = model.predict(model.adapt(sx, sy), qx)
    b = model.predict(model.adapt(sx[perm], sy[perm]), qx)
    torch.testing.assert_close(a, b)


def test_attention_lstm_follows_the_appendix_recurrence():
    torch.manual_seed(0)
    dim, steps = 4, 3
    att = AttentionLSTM(dim, steps).double()
    f = torch.randn(5, dim, dtype=torch.float64)
    gs = torch.randn(6, dim, dtype=torch.float64)
    cell = att.cell
    h = torch.zeros(5, dim, dtype=torch.float64)
    c = torch.zeros_like(h)
    r = torch.zeros_like(h)
    for _ in range(steps):
        hid = h + r
        gates = f @ cell.weight_ih.t() + cell.bias_ih + hid @ cell.weight_hh.t() + cell.bias_hh
        i, fg, gg, o = gates.chunk(4, 1)
        c = torch.sigmoid(fg) * c + torch.sigmoid(i) * torch.tanh(gg)
        h = torch.sigmoid(o) * torch.tanh(c) + f
        r = torch.softmax(h @ gs.t(), 1) @ gs
    torch.testing.assert_close(att(f, gs), h)


def test_fce_embeds_support_in_context_and_still_attends_with_unit_mass():
    torch.manual_seed(1)
    g = torch.Generator().manual_seed(3)
    sx, sy, qx, qy = episode(g)
    model = MatchingNet(nn.Identity(), fce=True, embedding_dim=6, fce_steps=2).double()
    mem = model.adapt(sx, sy)
    # g(x_i, S) depends on the other support items: changing x_0 changes g of x_1
    sx2 = sx.clone()
    sx2[0] += 1.0
    mem2 = model.adapt(sx2, sy)
    assert not torch.allclose(mem.embeddings[1], mem2.embeddings[1])
    a = model.attention(mem, qx)
    torch.testing.assert_close(a.sum(1), torch.ones(len(qx), dtype=torch.float64))
    loss = model.loss(model.predict(mem, qx), qy)
    loss.backward()
    assert model.support_context.lstm.weight_ih_l0.grad.abs().sum() > 0
    assert model.query_context.cell.weight_hh.grad.abs().sum() > 0


def test_errors():
    with pytest.raises(ValueError, match="embedding_dim"):
        MatchingNet(nn.Identity(), fce=True)
    model = MatchingNet(nn.Identity())
    with pytest.raises(ValueError, match="without gradient steps"):
        model.adapt(torch.randn(2, 3), torch.tensor([0, 1]), steps=1)
