"""repro_metric --init-from: a run starts from another run's weights (a two-stage row)."""

import pytest
import torch

from benchmarks.repro_metric import fast, warm_start
from metaloop.config import load_config
from metaloop.config.build import build_algorithm, build_model


def _algo(preset, use_fast=False):
    config = load_config(preset)
    return build_algorithm(config, fast(build_model(config), use_fast))


def test_twenty_way_run_starts_from_the_five_way_best_state(tmp_path):
    five = _algo("matching_omniglot_5w1s_scale10", use_fast=True)  # trained through FastConv4
    best = {k: v + 1 if v.is_floating_point() else v for k, v in five.state_dict().items()}
    torch.save({"model": five.state_dict(), "best_state": best,
                "state": {"iteration": 9, "best": {"iteration": 8}, "cpu_seconds": 3.0}},
               tmp_path / "five.ckpt")
    twenty = _algo("matching_omniglot_20w1s")  # plain Conv4 names: the conv4. segment is mapped
    info = warm_start(twenty, tmp_path / "five.ckpt")
    assert info["init_iterations"] == 8 and info["init_iterations_run"] == 9 and info["fresh"] == []
    ref = {k.replace(".conv4.", "."): v for k, v in best.items()}
    for k, v in twenty.state_dict().items():
        assert torch.equal(v, ref[k]), k


def test_relation_weights_fit_the_twenty_way_relation_net_and_misfits_are_refused(tmp_path):
    five = _algo("relation_omniglot_5w1s")
    torch.save(five.state_dict(), tmp_path / "five.pt")
    twenty = _algo("relation_omniglot_20w1s")
    warm_start(twenty, tmp_path / "five.pt")
    for k, v in twenty.state_dict().items():
        assert torch.equal(v, five.state_dict()[k]), k
    with pytest.raises(ValueError):
        warm_start(_algo("protonet_omniglot_5w1s"), tmp_path / "five.pt")
