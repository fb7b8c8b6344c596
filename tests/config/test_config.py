"""Config validation: every mistake stops before any work with one line naming the key."""

from __future__ import annotations

import pytest

from metaloop.config import ConfigError, build, load_config
from metaloop.config.presets import apply_override, config_from_dict, preset_paths

BASE = {
    "tasks": {"family": "sinusoid", "shots": 5, "queries": 5},
    "model": {"name": "mlp", "args": {"hidden": [8]}},
    "algorithm": {"name": "tests.engine.tiny:TinyMAML", "args": {"inner_lr": 0.1}},
    "training": {"iterations": 3, "meta_batch": 2},
}


def with_(path: str, value) -> dict:
    data = {k: dict(v) for k, v in BASE.items()}
    apply_override(data, f"{path}={value}")
    return data


@pytest.mark.parametrize("path, value, message", [
    ("training.lrr", "0.1", "training.lrr: unknown key in training; allowed: iterations, meta_batch,"),
    ("training.lr", "fast", "training.lr: expected float, got str 'fast'"),
    ("training.iterations", "2.5", "training.iterations: expected int, got float 2.5"),
    ("training.meta_batch", "0", "training.meta_batch: must be >= 1, got 0"),
    ("training.optimizer", "lbfgs", "training.optimizer: 'lbfgs' is not allowed; choose one of adam, sgd,"),
    ("training.tensorboard", "1", "training.tensorboard: expected bool, got int 1"),
    ("evaluation.steps", "[0, x]", "evaluation.steps[1]: expected int, got str 'x'"),
    ("tasks.family", "cosine", "tasks.family: 'cosine' is not allowed; choose one of sinusoid, harmonic,"),
    ("tasks.dataset", "omniglot", "tasks: set exactly one of tasks.family"),
    ("sampler.ways", "5", "sampler: unknown key in config; allowed: name, tasks, model, algorithm, training"),
])
def test_bad_values_name_the_key(path, value, message):
    with pytest.raises(ConfigError) as info:
        config_from_dict(with_(path, value))
    assert message in str(info.value) and "\n" not in str(info.value)


def test_impossible_episode_is_refused_before_loading_data():
    data = with_("tasks.family", "null")
    data["tasks"].update(dataset="omniglot", ways=5, shots=5, queries=16)
    with pytest.raises(ConfigError, match=r"shots \+ tasks.queries = 21 but omniglot has 20 examples per "
                                          r"class; allowed: shots \+ queries <= 20"):
        config_from_dict(data)


def test_algorithm_and_model_arguments_checked_against_signatures():
    with pytest.raises(ConfigError, match="algorithm.args.inner_lrr: unknown argument; allowed: inner_lr, "
                                          "inner_steps$"):
        build.check_algorithm(config_from_dict(with_("algorithm.args", "{inner_lrr: 1}")))
    with pytest.raises(ConfigError, match="model.args.width: unknown argument; allowed: in_features, "
                                          "out_features, hidden$"):
        build.build_model(config_from_dict(with_("model.args", "{width: 3}")))
    with pytest.raises(ConfigError, match="algorithm.name: unknown algorithm 'nope'; available:"):
        build.check_algorithm(config_from_dict(with_("algorithm.name", "nope")))
    with pytest.raises(ConfigError, match="TinyClassifier.*is a classification learner but the tasks are "
                                          "regression"):
        build.check_algorithm(config_from_dict(with_("algorithm.name", "tests.engine.tiny:TinyClassifier")))


def test_valid_config_builds_working_objects():
    config = config_from_dict(with_("training.scheduler", "cosine"), name="demo")
    assert config.name == "demo" and config.training.lr == 1e-3 and config.algorithm.args == {"inner_lr": 0.1}
    algo = build.build_algorithm(config, build.build_model(config))
    assert algo.inner_lr == 0.1 and algo.model.body[0].out_features == 8
    sched = build.build_scheduler(config, build.build_optimizer(config, algo.parameters()))
    assert sched.T_max == 3
    val = build.meta_val_episodes(config, build.build_tasks(config))
    test = build.meta_test_episodes(config, build.build_tasks(config), 7)
    assert len(test) == 7 and not val[0].support_x.equal(test[0].support_x)


def test_presets_all_validate_and_overrides_apply():
    assert "sinusoid_maml" in preset_paths()
    for name in preset_paths():
        config = load_config(name, ["training.iterations=5", "evaluation.steps=[0, 2]"])
        assert config.name == name and config.training.iterations == 5 and config.evaluation.steps == [0, 2]
    with pytest.raises(ConfigError, match="unknown preset 'sinusoid_mam'; presets: .*sinusoid_maml"):
        load_config("sinusoid_mam")
    with pytest.raises(ConfigError, match="expected key=value"):
        load_config("sinusoid_maml", ["training.lr"])


def test_exponent_floats_without_dot_are_floats(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("tasks: {family: linear}\nalgorithm: {name: x, args: {inner_lr: 1e30}}\n"
                    "training: {lr: 1e-3}\n")
    config = load_config(str(path), ["training.weight_decay=5e-4"])
    assert config.training.lr == 1e-3 and config.training.weight_decay == 5e-4
    assert config.algorithm.args["inner_lr"] == 1e30
