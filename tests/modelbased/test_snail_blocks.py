"""SNAIL blocks are causal: output t depends on inputs <= t only, and on all of them."""

import math

import torch

from metaloop.modelbased.snail_blocks import AttentionBlock, CausalConv1d, DenseBlock, TCBlock


def dependence(block, length=7, channels=3, dtype=torch.float64):
    """``D[t, s]`` = does output position t change when input position s is perturbed."""
    torch.manual_seed(0)
    block = block.to(dtype)
    x = torch.randn(1, length, channels, dtype=dtype)
    base = block(x)
    dep = torch.zeros(length, length, dtype=torch.bool)
    for s in range(length):
        x2 = x.clone()
        x2[0, s] += 1.0
        changed = (block(x2) - base).abs().amax(-1)[0] > 1e-12
        dep[:, s] = changed
    return dep


def test_causal_conv_sees_itself_and_dilation_back_only():
    dep = dependence(CausalConv1d(3, 4, dilation=2))
    expected = torch.zeros(7, 7, dtype=torch.bool)
    for t in range(7):
        expected[t, t] = True
        if t >= 2:
            expected[t, t - 2] = True
    assert torch.equal(dep, expected)


def test_dense_block_and_attention_never_look_ahead():
    for block in (DenseBlock(3, 4, 1), AttentionBlock(3, 5, 4)):
        dep = dependence(block)
        assert not dep.triu(1).any(), f"{type(block).__name__} looks at later positions"
    # attention reaches every earlier position
    lower = torch.ones(7, 7, dtype=torch.bool).tril()
    assert dependence(AttentionBlock(3, 5, 4))[lower].all()


def test_tc_block_receptive_field_covers_the_sequence():
    block = TCBlock(3, seq_len=7, filters=4)
    assert len(block.blocks) == math.ceil(math.log2(7))
    dep = dependence(block)
    assert not dep.triu(1).any()
    assert dep[6].all(), "the last position must see the whole sequence"


def test_attention_matches_masked_softmax_by_hand():
    torch.manual_seed(1)
    block = AttentionBlock(2, 3, 2).double()
    x = torch.randn(1, 4, 2, dtype=torch.float64)
    q, k, v = block.query(x)[0], block.key(x)[0], block.value(x)[0]
    out = block(x)[0, :, 2:]
    for i in range(4):
        logits = torch.stack([q[i] @ k[j] / math.sqrt(3) for j in range(i + 1)])
        expected = (logits.softmax(0).unsqueeze(1) * v[: i + 1]).sum(0)
        assert torch.allclose(out[i], expected)
    assert torch.equal(block(x)[..., :2], x)  # the input is passed through (concatenation)


def test_extend_equals_the_last_position_of_each_full_sequence():
    """``extend(prefix, last)`` is each ``[prefix..., last_i]`` sequence's last output, for every
    block kind, including prefixes shorter than the dilation (the zero padding)."""
    torch.manual_seed(1)
    blocks = [CausalConv1d(3, 4, dilation=4), DenseBlock(3, 5, dilation=2), TCBlock(3, 9, 4),
              AttentionBlock(3, 4, 6)]
    for block in blocks:
        block = block.double()
        for length in (1, 3, 8):
            prefix = torch.randn(2, length, 3, dtype=torch.float64)
            last = torch.randn(2, 4, 3, dtype=torch.float64)
            fast = block.extend(prefix, last)
            for i in range(4):
                full = block(torch.cat([prefix, last[:, i:i + 1]], dim=1))[:, -1]
                torch.testing.assert_close(fast[:, i], full, rtol=1e-12, atol=1e-12)
