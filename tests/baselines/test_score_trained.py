"""score_trained reads every checkpoint format our training commands write, and refuses misfits."""

import pytest
import torch

from benchmarks.score_trained import load_learner, read_state
from metaloop.config import load_config
from metaloop.config.build import build_algorithm, build_model


def _algo(preset):
    config = load_config(preset)
    return build_algorithm(config, build_model(config))


def test_reads_repro_optim_repro_metric_and_plain_state_dicts(tmp_path):
    algo = _algo("maml_omniglot_5w1s")
    state = algo.state_dict()
    torch.save({"algorithm": state, "optimizer": {}, "iterations": 7, "cpu_seconds": 1.5},
               tmp_path / "a.pt")
    got, info = read_state(tmp_path / "a.pt")
    assert info == {"iterations": 7, "train_cpu_s": 1.5} and got.keys() == state.keys()
    best = {"iteration": 4, "val": 0.9}
    torch.save({"model": {}, "best_state": state, "state": {"iteration": 6, "best": best,
                                                           "cpu_seconds": 2.0}}, tmp_path / "b.ckpt")
    got, info = read_state(tmp_path / "b.ckpt")
    assert info["iterations"] == 4 and info["iterations_run"] == 6 and got.keys() == state.keys()
    torch.save(state, tmp_path / "c.pt")
    assert read_state(tmp_path / "c.pt")[0].keys() == state.keys()


def test_fastconv4_prefix_is_mapped_and_wrong_weights_are_refused(tmp_path):
    algo = _algo("protonet_omniglot_5w1s")
    state = {k.replace("backbone.", "backbone.conv4."): v + 1 for k, v in algo.state_dict().items()}
    torch.save(state, tmp_path / "p.pt")
    (_, shots, ways), loaded, _ = load_learner("protonet_omniglot_5w1s", tmp_path / "p.pt")
    assert (shots, ways) == (1, 60)  # the paper trains 1-shot ProtoNets 60-way
    for k, v in loaded.state_dict().items():
        assert torch.equal(v, algo.state_dict()[k] + 1)
    with pytest.raises(ValueError, match="does not fit preset"):
        load_learner("maml_omniglot_5w1s", tmp_path / "p.pt")


def test_overrides_the_learner_was_trained_with_are_applied(tmp_path):
    algo = _algo("matching_omniglot_20w1s")
    torch.save(algo.state_dict(), tmp_path / "m.pt")
    (_, _, ways), loaded, _ = load_learner("matching_omniglot_20w1s", tmp_path / "m.pt",
                                           ["algorithm.scale=10.0"])
    assert ways == 20 and loaded.scale == 10.0
    assert load_learner("matching_omniglot_20w1s", tmp_path / "m.pt")[1].scale == 1.0
