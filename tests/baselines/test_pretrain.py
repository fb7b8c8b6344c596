import pytest
import torch

from metaloop.baselines.pretrain import load_pretrained, pretrain_backbone, save_pretrained
from metaloop.data.base import ClassDataset
from tests.conftest import make_class_dataset


def _quadrants(per_class=8):
    """4 classes: a bright quadrant per class on noise; learnable by a small conv net."""
    g = torch.Generator().manual_seed(0)
    data = torch.randint(0, 100, (4 * per_class, 1, 16, 16), generator=g)
    for c in range(4):
        r, s = divmod(c, 2)
        data[c * per_class:(c + 1) * per_class, :, r * 8:(r + 1) * 8, s * 8:(s + 1) * 8] += 150
    return ClassDataset(data.to(torch.uint8), torch.arange(4).repeat_interleave(per_class),
                        [f"q{c}" for c in range(4)])


@pytest.mark.parametrize("head", ["linear", "cosine"])
def test_pretraining_learns_the_base_classes_and_round_trips(tmp_path, head):
    ds = _quadrants()
    result = pretrain_backbone(ds, head=head, hidden=8, epochs=12, batch_size=16, lr=1e-2, seed=0)
    assert result.steps == 24
    assert sum(result.losses[-4:]) / 4 < 0.6 * sum(result.losses[:4]) / 4
    x = ds.data[:8].float() / 255
    with torch.no_grad():
        acc = (result.head(result.backbone(ds.data.float() / 255)).argmax(1) == ds.targets).float().mean()
    assert acc >= 0.9
    path = save_pretrained(tmp_path / "b.pt", result)
    loaded = load_pretrained(path)
    with torch.no_grad():
        assert torch.equal(loaded.backbone(x), result.backbone.eval()(x))
    assert loaded.config["classes"] == 4 and loaded.config["head"] == head


def test_time_limit_and_errors(tmp_path):
    ds = make_class_dataset(classes=4, per_class=8, shape=(1, 16, 16))
    result = pretrain_backbone(ds, hidden=4, epochs=100, batch_size=8, time_limit_s=0.0)
    assert result.steps == 1
    with pytest.raises(ValueError, match="images"):
        pretrain_backbone(make_class_dataset(shape=(4,)))
    with pytest.raises(FileNotFoundError, match="pretrain_backbone"):
        load_pretrained(tmp_path / "missing.pt")
