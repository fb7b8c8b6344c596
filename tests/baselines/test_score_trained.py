"""score_trained maps the layouts of our training commands onto a learner, and refuses misfits
(the checkpoint layouts themselves: tests/engine/test_snapshot.py)."""

import pytest
import torch

from benchmarks.score_trained import load_learner
from metaloop.config import load_config
from metaloop.config.build import build_algorithm, build_model


def _algo(preset):
    config = load_config(preset)
    return build_algorithm(config, build_model(config))


def test_fastconv4_prefix_is_mapped_and_wrong_weights_are_refused(tmp_path):
    algo = _algo("protonet_omniglot_5w1s")
    state = {k.replace("backbone.", "backbone.conv4."): v + 1 for k, v in algo.state_dict().items()}
    torch.save(state, tmp_path / "p.pt")
    (_, shots, ways, _), loaded, _ = load_learner("protonet_omniglot_5w1s", tmp_path / "p.pt")
    assert (shots, ways) == (1, 60)  # the paper trains 1-shot ProtoNets 60-way
    for k, v in loaded.state_dict().items():
        assert torch.equal(v, algo.state_dict()[k] + 1)
    with pytest.raises(ValueError, match="does not fit preset"):
        load_learner("maml_omniglot_5w1s", tmp_path / "p.pt")


def test_overrides_the_learner_was_trained_with_are_applied(tmp_path):
    algo = _algo("matching_omniglot_20w1s")
    torch.save(algo.state_dict(), tmp_path / "m.pt")
    (_, _, ways, _), loaded, _ = load_learner("matching_omniglot_20w1s", tmp_path / "m.pt",
                                           ["algorithm.scale=10.0"])
    assert ways == 20 and loaded.scale == 10.0
    assert load_learner("matching_omniglot_20w1s", tmp_path / "m.pt")[1].scale == 1.0
