from pathlib import Path

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
    from metaloop.config.presets import preset_paths

    return sorted(n for n in preset_paths() if n.split("_")[0] in ("protonet", "matching", "relation"))


@pytest.mark.parametrize("name", _metric_presets())
def test_metric_presets_are_complete(name):
    from metaloop.config import build, load_config

    config = load_config(name)
    assert config.tasks.dataset == "omniglot" and config.evaluation.episodes == 1000
    ways, shots, queries = config.evaluation.shape(config.tasks)
    assert queries == 15 and config.paper["accuracy"] > 90
    if config.algorithm.name == "protonet":  # Snell Sec. 3.1: 60-way training, train shot = test shot
        assert config.tasks.ways == 60 and config.tasks.shots == shots
    else:  # Matching and Relation Nets train with the test way and shot
        assert (config.tasks.ways, config.tasks.shots) == (ways, shots)
    algo = build.build_algorithm(config, build.build_model(config))
    assert isinstance(algo, get_algorithm(config.algorithm.name))


def test_siamese_pair_config_is_complete():
    import yaml

    path = Path(__file__).resolve().parents[2] / "benchmarks" / "configs" / "siamese_omniglot_lake.yaml"
    cfg = yaml.safe_load(path.read_text())
    assert cfg["algorithm"] == "siamese" and cfg["data"]["split"] == "lake" and cfg["train"]["pairs"]
    for spec in cfg["test"].values():
        assert spec["episodes"] == 1000 and (spec["ways"], spec["shots"]) == (20, 1)
