import pytest
import torch
from torch import nn

from metaloop.learned.flat import ParamSpec, flat_parameters, init_parameters
from metaloop.nets import Conv4


def test_flatten_roundtrip_and_size_check():
    net = nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 1))
    spec = ParamSpec.of(net)
    flat = flat_parameters(net)
    assert spec.numel == 2 * 3 + 3 + 3 + 1 == flat.numel()
    back = spec.unflatten(flat)
    for name, p in net.named_parameters():
        assert torch.equal(back[name], p.detach())
    torch.testing.assert_close(spec.flatten(back), flat)
    with pytest.raises(ValueError, match="the model needs 13"):
        spec.unflatten(torch.zeros(12))


def test_init_is_seeded_and_follows_fan_in():
    net = nn.Sequential(nn.Linear(4, 50), nn.ReLU(), nn.Linear(50, 1))
    a = init_parameters(net, torch.Generator().manual_seed(0))
    b = init_parameters(net, torch.Generator().manual_seed(0))
    assert torch.equal(a, b)
    parts = ParamSpec.of(net).unflatten(a)
    assert parts["0.weight"].abs().max() <= 0.5 and parts["0.weight"].abs().max() > 0.45
    assert parts["2.weight"].abs().max() <= 50**-0.5 and parts["2.bias"].abs().max() <= 50**-0.5


def test_init_sets_norm_layers_to_identity():
    net = Conv4(1, 5, hidden=4, image_size=28, norm="task")
    parts = ParamSpec.of(net).unflatten(init_parameters(net, torch.Generator().manual_seed(1)))
    norms = [n for n in parts if n.endswith("weight") and parts[n].dim() == 1]
    assert norms, "Conv4 with task norm has 1-d scales"
    for n in norms:
        assert torch.equal(parts[n], torch.ones_like(parts[n]))
        assert torch.equal(parts[n[: -len("weight")] + "bias"], torch.zeros_like(parts[n]))
