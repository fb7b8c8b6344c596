import pytest
import torch
import torch.nn.functional as F
from torch import nn

from metaloop.nets.resnet12 import ResidualBlock, ResNet12


def test_output_sizes():
    net = ResNet12(widths=(8, 8, 16, 16), image_size=84).eval()
    assert net(torch.rand(2, 3, 84, 84)).shape == (2, 16)
    flat = ResNet12(widths=(8, 8, 16, 16), image_size=84, pool="none").eval()
    assert flat(torch.rand(2, 3, 84, 84)).shape == (2, 16 * 5 * 5) and flat.embedding_dim == 400
    head = ResNet12(1, out_features=5, widths=(4, 4, 4, 4), image_size=28)
    assert head(torch.rand(3, 1, 28, 28)).shape == (3, 5)
    assert ResNet12().embedding_dim == 640


def test_block_is_residual():
    torch.manual_seed(0)
    block = ResidualBlock(3, 4, "batch").double().eval()
    x = torch.randn(2, 3, 8, 8, dtype=torch.float64)
    with torch.no_grad():
        block.body[-1].weight.zero_()  # kill the residual branch: only the shortcut remains
        block.body[-1].bias.zero_()
    expected = F.max_pool2d(F.leaky_relu(block.shortcut(x), 0.1), 2)
    torch.testing.assert_close(block(x), expected)
    assert sum(isinstance(m, nn.Conv2d) for m in block.body) == 3


def test_bad_arguments():
    with pytest.raises(ValueError, match="4 blocks; got 2"):
        ResNet12(widths=(8, 8))
    with pytest.raises(ValueError, match="too small"):
        ResNet12(image_size=8)
    with pytest.raises(ValueError, match="unknown pool"):
        ResNet12(pool="max")

