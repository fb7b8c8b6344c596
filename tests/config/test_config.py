"""Config validation: every mistake stops before any work with one line naming the key."""

from __future__ import annotations

import pytest

from metaloop.config import ConfigError, build, load_config
from metaloop.config.presets import apply_override, config_from_dict, preset_paths

BASE = {
    "tasks": {"family": "sinusoid", "shots": 5, "queries": 5},
    "model": {"name": "mlp", "hidden": [8]},
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
    with pytest.raises(ConfigError, match="algorithm.inner_lrr: unknown argument; allowed: name, inner_lr, "
                                          "inner_steps$"):
        build.check_algorithm(config_from_dict(with_("algorithm.inner_lrr", "1")))
    with pytest.raises(ConfigError, match="model.width: unknown argument; allowed: name, init, in_features, "
                                          "out_features, hidden$"):
        build.build_model(config_from_dict(with_("model.width", "3")))
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
    linear = config_from_dict(with_("training.scheduler", "linear"))
    opt = build.build_optimizer(linear, algo.parameters())
    sched, lrs = build.build_scheduler(linear, opt), []
    for _ in range(3):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert lrs == pytest.approx([1e-3, 2e-3 / 3, 1e-3 / 3]) and opt.param_groups[0]["lr"] == 0.0
    val = build.meta_val_episodes(config, build.build_tasks(config))
    test = build.meta_test_episodes(config, build.build_tasks(config), 7)
    assert len(test) == 7 and not val[0].support_x.equal(test[0].support_x)


def test_presets_all_validate_and_overrides_apply():
    assert "maml_sinusoid" in preset_paths() and "sinusoid_maml" not in preset_paths()
    for name in preset_paths():
        config = load_config(name, ["training.iterations=5", "evaluation.steps=[0, 2]"])
        assert config.name == name and config.training.iterations == 5 and config.evaluation.steps == [0, 2]
    with pytest.raises(ConfigError, match="unknown preset 'maml_sinusoi'; presets: .*maml_sinusoid"):
        load_config("maml_sinusoi")
    with pytest.raises(ConfigError, match="expected key=value"):
        load_config("maml_sinusoid", ["training.lr"])


def test_every_classification_preset_with_a_head_builds_one_as_wide_as_its_ways():
    """A 20-way preset copied from a 5-way one with the head left at 5 would fail only when its
    first episode runs, possibly hours into a queue; here it fails at once."""
    checked = 0
    for name in preset_paths():
        config = load_config(name)
        width = config.model.args.get("out_features")
        if config.tasks.dataset is None or width is None:
            continue
        ways, _, _ = config.evaluation.shape(config.tasks)
        assert width == config.tasks.ways == ways, name
        build.build_algorithm(config, build.build_model(config))
        checked += 1
    assert checked >= 12  # MAML, FOMAML, ANIL, Meta-SGD, Reptile and iMAML at 5 and 20 ways


def test_imaml_20_way_warm_start_keeps_the_zero_head_of_its_init():
    """The 20-way iMAML preset says a warm start from 5-way weights leaves its head at zero."""
    from metaloop.engine.transfer import load_matching

    five = build.build_algorithm(c5 := load_config("imaml_omniglot_5w1s"), build.build_model(c5))
    for p in five.parameters():
        p.data.normal_()  # stands for trained weights: every tensor non-zero
    twenty = build.build_algorithm(c20 := load_config("imaml_omniglot_20w1s"), build.build_model(c20))
    report = load_matching(twenty, five.state_dict())
    head = {n: t for n, t in twenty.state_dict().items() if "head" in n}
    assert head and sorted(report.shape_mismatch) == sorted(head)
    assert all(t.abs().sum() == 0 for t in head.values())
    assert all(twenty.state_dict()[n].equal(five.state_dict()[n]) for n in report.loaded)


def test_exponent_floats_without_dot_are_floats(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("tasks: {family: linear}\nalgorithm: {name: x, args: {inner_lr: 1e30}}\n"
                    "training: {lr: 1e-3}\n")
    config = load_config(str(path), ["training.weight_decay=5e-4"])
    assert config.training.lr == 1e-3 and config.training.weight_decay == 5e-4
    assert config.algorithm.args["inner_lr"] == 1e30


def test_name_only_shorthand():
    data = with_("model", "conv4")
    data["algorithm"] = "tests.engine.tiny:TinyMAML"
    config = config_from_dict(data)
    assert (config.model.name, config.model.args, config.algorithm.args) == ("conv4", {}, {})


def test_learner_without_backbone_gets_task_kind_and_ways_from_the_tasks():
    data = with_("algorithm", "{name: 'tests.engine.tiny:TinyOwnNet', width: 3}")
    data["model"] = {"name": "none"}
    data["tasks"]["ways"] = 7
    config = config_from_dict(data)
    algo = build.build_algorithm(config, build.build_model(config))
    assert (algo.task, algo.ways, algo.net.out_features) == ("regression", 7, 3)
    config.algorithm.args["task"] = "classification"
    with pytest.raises(ConfigError, match="is a classification learner but the tasks are regression"):
        build.check_algorithm(config)


def test_dataset_tasks_use_the_loader_and_evaluation_shape(monkeypatch):
    import metaloop.data
    from metaloop.data.base import ClassDataset, Splits
    from tests.conftest import make_class_dataset

    calls = []

    def load_omniglot(root=None, image_size=28, split="vinyals", rotations=None):
        calls.append((root, image_size, split, rotations))
        parts = [make_class_dataset(12, 20, (1, 4, 4), seed=i) for i in range(3)]
        return Splits(*(ClassDataset(d.data, d.targets, tuple(f"s{i}-{n}" for n in d.class_names), f"s{i}")
                        for i, d in enumerate(parts)))

    monkeypatch.setattr(metaloop.data, "load_omniglot", load_omniglot, raising=False)
    config = config_from_dict({
        "tasks": {"dataset": "omniglot", "image_size": 4, "ways": 10, "shots": 1, "queries": 5,
                  "data_args": {"rotations": False}},
        "evaluation": {"ways": 5, "shots": 2, "queries": 15}})
    sources = build.build_tasks(config)
    assert calls == [(None, 4, "vinyals", False)]
    assert (sources.train.ways, sources.train.shots, sources.train.queries) == (10, 1, 5)
    assert (sources.test.ways, sources.test.shots, sources.test.queries) == (5, 2, 15)
    assert sources.val.dataset.name == "s1" and sources.test.dataset.name == "s2"
    config.evaluation.queries = 19
    with pytest.raises(ConfigError, match="evaluation.shots \\+ evaluation.queries = 21 but omniglot has 20"):
        from metaloop.config.schema import check_consistency
        check_consistency(config)
    config.tasks.data_args = {"rotate": True}
    with pytest.raises(ConfigError, match="tasks.data_args.rotate: unknown argument; allowed: image_size, "
                                          "split, rotations"):
        build.build_tasks(config)
    config.tasks.data_args, config.evaluation.queries = {}, 15
    config.tasks.augment = {"shift": 1}  # meta-training only: the fixed evaluation episodes stay plain
    sources = build.build_tasks(config)
    assert sources.train.max_shift == 1 and sources.train.source.ways == 10
    assert isinstance(sources.val, type(sources.train.source)) and len(calls) == 2
    for augment, message in [({"shift": 4}, "tasks.augment: shift 4 moves 4-pixel images off the frame"),
                             ({"flip": 1}, "tasks.augment: unknown augmentation 'flip'")]:
        config.tasks.augment = augment
        with pytest.raises(ConfigError, match=message):
            build.build_tasks(config)
    assert len(calls) == 2  # refused before loading any data
    with pytest.raises(ConfigError, match="tasks.augment: image augmentation needs a dataset"):
        build.build_tasks(config_from_dict(with_("tasks.augment", "{shift: 1}")))


def test_model_init_maml_tf_is_cbfinns_truncated_normal():
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    model = build.build_model(config_from_dict(with_("model.init", "maml_tf")))
    for layer in (m for m in model.modules() if isinstance(m, torch.nn.Linear)):
        assert layer.bias.abs().max().item() == 0.0 and layer.weight.abs().max().item() <= 0.02
    weights = torch.cat([m.weight.flatten() for m in model.modules() if isinstance(m, torch.nn.Linear)])
    # N(0, 0.01^2) truncated at 2 std has std 0.01 * 0.8796; torch's default init would be ~0.3 here
    assert abs(weights.std().item() - 0.008796) < 0.004
    default = build.build_model(config_from_dict(BASE))
    assert default.body[0].weight.std().item() > 0.1
    with pytest.raises(ConfigError, match="model.init: 'xavier' is not allowed; choose one of default,"):
        config_from_dict(with_("model.init", "xavier"))
    conv = with_("model.init", "maml_tf")
    conv["model"] = {"name": "conv4", "init": "maml_tf"}
    with pytest.raises(ConfigError, match="model.init: maml_tf is defined for model mlp only"):
        build.build_model(config_from_dict(conv))


def _omniglot_conv4(init: str) -> dict:
    data = with_("model.init", init)
    data["model"] = {"name": "conv4", "init": init, "out_features": 5}
    data["tasks"] = {"dataset": "omniglot", "image_size": 28, "ways": 5, "shots": 1, "queries": 1}
    return data


def test_model_init_zero_head_zeroes_only_the_conv4_head():
    pytest.importorskip("torch")
    data = _omniglot_conv4("zero_head")
    model = build.build_model(config_from_dict(data))
    assert model.head.weight.abs().max().item() == 0.0 and model.head.bias.abs().max().item() == 0.0
    assert model.features[0][0].weight.abs().max().item() > 0.0
    data["model"] = {"name": "conv4", "init": "zero_head"}
    with pytest.raises(ConfigError, match="zero_head needs a head; set model.out_features"):
        build.build_model(config_from_dict(data))
    with pytest.raises(ConfigError, match="model.init: zero_head is defined for model conv4 only"):
        build.build_model(config_from_dict(with_("model.init", "zero_head")))


def test_model_init_hypergrad_is_he_fan_out_convs_and_a_zero_head():
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    model = build.build_model(config_from_dict(_omniglot_conv4("hypergrad")))
    convs = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    weights = torch.cat([c.weight.flatten() for c in convs[1:]])  # 64 -> 64: 110k samples
    assert abs(weights.std().item() - (2 / (9 * 64)) ** 0.5) < 0.002  # torch's default: ~0.024
    assert all(c.bias.abs().max().item() == 0.0 for c in convs)
    assert model.head.weight.abs().max().item() == 0.0


def test_schema_init_choices_are_the_inits_build_defines():
    """The schema lists the choices itself (it loads without torch); this keeps the two lists one."""
    import dataclasses

    from metaloop.config.schema import ModelConfig

    field = next(f for f in dataclasses.fields(ModelConfig) if f.name == "init")
    assert set(field.metadata["choices"]) == set(build.MODEL_INITS)


def test_task_kind_from_the_learners_arguments():
    data = with_("algorithm.name", "incontext")
    data["model"], data["algorithm"]["args"] = {"name": "none"}, {"d_model": 8, "heads": 2}
    build.check_algorithm(config_from_dict(data))  # a Gaussian head: a regression learner
    data["algorithm"]["args"]["output"] = "classification"
    with pytest.raises(ConfigError, match="incontext is a classification learner but the tasks are"):
        build.check_algorithm(config_from_dict(data))


def test_threads_setting_is_validated():
    from metaloop.config.presets import load_config
    from metaloop.config.schema import ConfigError

    assert load_config("maml_sinusoid", []).training.threads == 1
    with pytest.raises(ConfigError, match="training.threads"):
        load_config("maml_sinusoid", ["training.threads=0"])


def test_an_argument_set_both_flat_and_under_args_is_refused_not_silently_dropped():
    # The iMAML preset writes `algorithm: {..., cg_min_curvature: 0.3}`; an override spelled
    # `algorithm.args.cg_min_curvature=null` used to lose silently to the flat key.
    with pytest.raises(ConfigError, match=r"algorithm.cg_min_curvature and algorithm.args.cg_min_curvature "
                                          r"are both set .*--set algorithm.cg_min_curvature="):
        load_config("imaml_omniglot_5w1s", ["algorithm.args.cg_min_curvature=null"])
    config = load_config("imaml_omniglot_5w1s", ["algorithm.cg_min_curvature=null"])
    assert config.algorithm.args["cg_min_curvature"] is None
