"""Warm start across head widths: matching tensors copied, the rest reported and left fresh."""

import pytest
import torch
from torch import nn

from metaloop.engine.transfer import load_matching


def net(ways: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, ways))


def test_load_matching_copies_the_body_and_keeps_the_wider_head_fresh():
    torch.manual_seed(0)
    five, twenty = net(5), net(20)
    head_before = twenty[2].weight.detach().clone()
    report = load_matching(twenty, five.state_dict())
    assert torch.equal(twenty[0].weight, five[0].weight) and torch.equal(twenty[0].bias, five[0].bias)
    assert torch.equal(twenty[2].weight, head_before)
    assert sorted(report.loaded) == ["0.bias", "0.weight"]
    assert sorted(report.shape_mismatch) == ["2.bias", "2.weight"]
    assert report.missing == [] and report.unexpected == []
    assert "2.weight" in report.summary()


def test_load_matching_reports_missing_and_unexpected_names():
    model = net(5)
    state = {k: v for k, v in net(5).state_dict().items() if k != "2.bias"}
    state["extra"] = torch.zeros(1)
    report = load_matching(model, state)
    assert report.missing == ["2.bias"] and report.unexpected == ["extra"]


def test_load_matching_refuses_weights_of_another_architecture():
    with pytest.raises(ValueError, match="different architecture"):
        load_matching(net(5), {"conv.weight": torch.zeros(2, 2)})


def test_rename_moves_an_encoder_into_another_learners_slot():
    # a ProtoNet-like "backbone.*" into a learner that holds the same network as "model.encoder.*"
    torch.manual_seed(0)
    proto = nn.ModuleDict({"backbone": net(5)})
    other = nn.ModuleDict({"model": nn.ModuleDict({"encoder": net(5), "head": nn.Linear(5, 2)})})
    head_before = other["model"]["head"].weight.detach().clone()
    report = load_matching(other, proto.state_dict(), rename={"backbone.": "model.encoder."})
    for a, b in zip(proto["backbone"].parameters(), other["model"]["encoder"].parameters(), strict=True):
        assert torch.equal(a, b)
    assert torch.equal(other["model"]["head"].weight, head_before)
    assert sorted(report.missing) == ["model.head.bias", "model.head.weight"]
    with pytest.raises(ValueError, match="different architecture"):  # without the rename: nothing fits
        load_matching(other, proto.state_dict())

