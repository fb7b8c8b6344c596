"""StandardizedConv4: shared by MANN and the in-context learner, names loadable from a Conv-4."""

import torch

from metaloop.learned.incontext import standardized_conv4
from metaloop.nets import Conv4, StandardizedConv4


def test_conv_weights_keep_the_names_of_a_batch_norm_conv4():
    conv = Conv4(1, norm="batch")
    net = StandardizedConv4(1)
    assert net.embedding_dim == conv.embedding_dim == 64
    names = set(net.state_dict())
    assert {f"0.{k}" for k in conv.state_dict()} <= names
    assert {"1.running_mean", "1.running_var"} <= names and "1.weight" not in names  # non-affine
    # the in-context encoder unpacks it, so its saved names (0.*, 1.*, then the MLP) are unchanged
    icl = set(standardized_conv4(1, 16).state_dict())
    assert names <= icl and {"2.weight", "4.weight"} <= icl


def test_training_standardizes_each_feature_over_the_batch():
    torch.manual_seed(0)
    net = StandardizedConv4(1).train()
    with torch.no_grad():
        z = net(torch.rand(16, 1, 28, 28))
    torch.testing.assert_close(z.mean(0), torch.zeros(64), atol=1e-4, rtol=0)
