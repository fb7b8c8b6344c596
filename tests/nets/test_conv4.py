"""Conv-4's block orders, checked against the blocks written out by hand."""

import pytest
import torch
import torch.nn.functional as F

from metaloop.nets import Conv4


def _by_hand(net: Conv4, x: torch.Tensor, post: bool, pool: bool) -> torch.Tensor:
    def norm(h, bn):  # per-batch statistics, biased variance, as TaskBatchNorm
        mean = h.mean((0, 2, 3), keepdim=True)
        var = h.var((0, 2, 3), unbiased=False, keepdim=True)
        return (h - mean) / torch.sqrt(var + bn.eps) * bn.weight.view(1, -1, 1, 1) + bn.bias.view(1, -1, 1, 1)

    h = x
    for block in net.features:
        conv, bn = block[0], block[-1] if post else block[1]
        h = conv(h)
        if not post:
            h = norm(h, bn)
        h = F.relu(h)
        if pool:
            h = F.max_pool2d(h, 2)
        if post:
            h = norm(h, bn)
    return net.head(h.flatten(1))


@pytest.mark.parametrize("post", [False, True])
@pytest.mark.parametrize("downsample", ["max", "stride"])
def test_block_orders_compute_their_textbook_functions(post, downsample):
    torch.manual_seed(0)
    net = Conv4(1, 3, hidden=6, image_size=12, blocks=2, downsample=downsample,
                norm_position="post" if post else "pre").double()
    for p in net.parameters():  # non-trivial affine parameters, so that their placement matters
        torch.nn.init.normal_(p)
    x = torch.randn(5, 1, 12, 12, dtype=torch.float64)
    assert torch.allclose(net(x), _by_hand(net, x, post, downsample == "max"), atol=1e-10)
    other = Conv4(1, 3, hidden=6, image_size=12, blocks=2, downsample=downsample,
                  norm_position="pre" if post else "post").double()
    other.load_state_dict(net.state_dict(), strict=False)
    assert not torch.allclose(other(x), net(x))  # the order changes the function


def test_post_norm_feeds_normalised_features_to_the_head():
    net = Conv4(1, 5, image_size=28, norm_position="post")
    z = net.embed(torch.randn(20, 1, 28, 28))
    assert z.shape == (20, 64)
    assert torch.allclose(z.mean(0), torch.zeros(64), atol=1e-5)  # batch statistics, affine at init


def test_unknown_norm_position_is_refused():
    with pytest.raises(ValueError, match="unknown norm_position 'middle'; use 'pre' or 'post'"):
        Conv4(1, 5, norm_position="middle")
