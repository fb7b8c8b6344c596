"""SNAIL (Mishra et al. 2018): the support representation never sees the query; queries unlabelled."""

import pytest
import torch

from tests.modelbased.tiny import episode, make


def test_support_positions_never_see_the_query():
    model = make("snail").eval()
    ep = episode()
    state = model.adapt(ep.support_x, ep.support_y)
    q = model.labelled(model.embedding(ep.query_x).flatten(1), None)
    seq = lambda i: torch.cat([state.support, q[i:i + 1]]).unsqueeze(0)  # noqa: E731
    out0, out1 = model.blocks(seq(0)), model.blocks(seq(1))
    assert torch.equal(out0[0, :-1], out1[0, :-1])
    assert not torch.allclose(out0[0, -1], out1[0, -1])


def test_query_carries_an_all_zero_label():
    model = make("snail").eval()
    z = torch.randn(2, 6, dtype=torch.float64)
    assert torch.equal(model.labelled(z, None)[:, 6:], torch.zeros(2, 3, dtype=torch.float64))
    assert torch.equal(model.labelled(z, torch.tensor([2, 0]))[:, 6:],
                       torch.tensor([[0, 0, 1], [1, 0, 0]], dtype=torch.float64))


def test_episode_size_must_match_the_sequence_length_it_was_built_for():
    model = make("snail").eval()
    ep = episode()
    with pytest.raises(ValueError, match="3-way 2-shot"):
        model.adapt(ep.support_x[:4], ep.support_y[:4])


@pytest.mark.parametrize("ways", [3, 20])
def test_shared_support_prefix_equals_one_full_sequence_per_query(ways):
    """``classify`` runs the support once and each query as one appended position: the logits and
    the meta-gradient equal those of one full ``[support..., query]`` sequence per query (float64)."""
    from metaloop.algorithms import get_algorithm

    torch.manual_seed(0)
    model = get_algorithm("snail")(ways=ways, shots=1, embedding=torch.nn.Flatten(), input_shape=(4,))
    model = model.double()
    support = model.labelled(torch.randn(2, ways, 4, dtype=torch.float64), torch.arange(ways).repeat(2, 1))
    queries = model.labelled(torch.randn(2, 7, 4, dtype=torch.float64), None)
    fast, full = model.classify(support, queries), model.sequence_logits(support, queries)
    torch.testing.assert_close(fast, full, rtol=1e-12, atol=1e-12)
    params = [p for p in model.parameters()]
    g_fast = torch.autograd.grad(fast.square().sum(), params)
    g_full = torch.autograd.grad(full.square().sum(), params)
    for a, b in zip(g_fast, g_full, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(model.classify(support[0], queries[0]), full[0], rtol=1e-12, atol=1e-12)


def test_widened_five_way_state_gives_the_five_way_logits_on_old_labels():
    """5-way weights mapped onto a 20-way SNAIL (more label columns, more dense blocks per TC
    block): on a sequence that only uses labels 0-4 the old classes' logits are unchanged and
    the new classes' logits are zero; a state with more ways is refused."""
    from metaloop.algorithms import get_algorithm

    def snail(ways):
        return get_algorithm("snail")(ways=ways, shots=1, embedding=torch.nn.Flatten(), input_shape=(4,))

    torch.manual_seed(0)
    five, twenty = snail(5).double(), snail(20).double()
    assert len(twenty.blocks[1].blocks) == 5 and len(five.blocks[1].blocks) == 3
    for p in five.parameters():  # non-zero biases too
        p.data.normal_()
    twenty.load_state_dict(twenty.widen_state(five.state_dict()))
    z = torch.randn(2, 5, 4, dtype=torch.float64)
    queries = torch.randn(2, 3, 4, dtype=torch.float64)
    y = torch.stack([torch.randperm(5) for _ in range(2)])
    old = five.classify(five.labelled(z, y), five.labelled(queries, None))
    new = twenty.classify(twenty.labelled(z, y), twenty.labelled(queries, None))
    torch.testing.assert_close(new[..., :5], old, rtol=1e-12, atol=1e-12)
    assert torch.equal(new[..., 5:], torch.zeros_like(new[..., 5:]))
    with pytest.raises(ValueError, match="fewer ways"):
        five.widen_state(twenty.state_dict())
