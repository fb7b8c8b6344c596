import pytest
import torch
from torch import nn

from metaloop.algorithms import get_algorithm
from metaloop.algorithms.relation import RelationNet
from metaloop.nets.relation_net import RelationEmbedding, RelationModule


def test_registered():
    assert get_algorithm("relation") is RelationNet


def test_embedding_and_relation_shapes_follow_the_paper():
    emb = RelationEmbedding(image_size=28)
    assert emb(torch.rand(3, 1, 28, 28)).shape == (3, 64, 5, 5)
    assert RelationEmbedding(in_channels=3, image_size=84)(torch.rand(1, 3, 84, 84)).shape == (
        1, 64, 19, 19)
    assert RelationModule(64, 5)(torch.rand(4, 128, 5, 5)).shape == (4,)


def test_scores_are_relation_module_on_concatenated_summed_class_features():
    torch.manual_seed(0)
    model = RelationNet().double().eval()
    ways, shots = 3, 2
    sx = torch.rand(ways * shots, 1, 28, 28, dtype=torch.float64)
    sy = torch.arange(ways).repeat(shots)
    qx = torch.rand(4, 1, 28, 28, dtype=torch.float64)
    scores = model.predict(model.adapt(sx, sy), qx)
    fs, fq = model.backbone(sx), model.backbone(qx)
    expected = torch.empty(4, ways, dtype=torch.float64)
    for k in range(ways):
        ck = fs[sy == k].sum(0)  # K-shot: element-wise sum (Sec. 3.2)
        for i in range(4):
            pair = torch.cat([ck, fq[i]], 0).unsqueeze(0)
            expected[i, k] = torch.sigmoid(model.relation(pair))[0]
    torch.testing.assert_close(scores, expected)
    assert bool(((scores >= 0) & (scores <= 1)).all())


def test_loss_is_mse_to_one_hot():
    scores = torch.tensor([[0.9, 0.2, 0.1], [0.3, 0.4, 0.8]])
    y = torch.tensor([0, 1])
    expected = ((0.1**2 + 0.2**2 + 0.1**2) + (0.3**2 + 0.6**2 + 0.8**2)) / 6
    torch.testing.assert_close(RelationNet().loss(scores, y), torch.tensor(expected))


def test_training_step_reduces_loss_on_a_fixed_episode():
    torch.manual_seed(1)
    model = RelationNet()
    sx, sy = torch.rand(6, 1, 28, 28), torch.arange(3).repeat(2)
    qx, qy = sx + 0.05 * torch.randn_like(sx), sy
    opt = torch.optim.Adam(model.parameters(), 1e-3)
    first = None
    for _ in range(15):
        loss = model.loss(model.predict(model.adapt(sx, sy), qx), qy)
        first = loss.item() if first is None else first
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < first


def test_flat_backbone_is_refused_with_a_clear_message():
    model = RelationNet(backbone=nn.Flatten(), relation=RelationModule(1, 5))
    with pytest.raises(ValueError, match="feature maps"):
        model.adapt(torch.rand(2, 1, 5, 5), torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="RelationModule"):
        RelationNet(backbone=nn.Flatten())


def _metric_presets():
    from pathlib import Path

    folder = Path(__file__).resolve().parents[2] / "metaloop" / "presets"
    return sorted(p for prefix in ("protonet", "matching", "relation", "siamese")
                  for p in folder.glob(f"{prefix}_*.yaml"))


@pytest.mark.parametrize("path", _metric_presets(), ids=lambda p: p.stem)
def test_metric_presets_are_complete(path):
    import yaml

    cfg = yaml.safe_load(path.read_text())
    cls = get_algorithm(cfg["algorithm"])
    assert cfg["data"]["dataset"] == "omniglot"
    for spec in cfg["test"].values():
        assert spec["episodes"] == 1000 and spec["shots"] >= 1
    train = cfg["train"]
    if cfg["algorithm"] == "protonet":
        assert train["ways"] == 60 and train["shots"] == next(iter(cfg["test"].values()))["shots"]
    if cfg["algorithm"] != "siamese":  # the 105x105 Koch net is built in the slow path only
        assert isinstance(cls(**cfg.get("args", {})), cls)
