"""``extends:``: a preset is its parent with its own keys merged over it."""

import pytest

from metaloop.config import load_config, preset_paths
from metaloop.config.presets import NOT_INHERITED, merge_sections, read_yaml
from metaloop.config.schema import ConfigError


def test_merge_sections_merges_mappings_and_replaces_the_rest():
    base = {"tasks": {"ways": 5, "shots": 1}, "algorithm": {"name": "maml", "first_order": False},
            "training": {"lr": 0.1}, "tags": [1, 2]}
    child = {"tasks": {"ways": 20}, "algorithm": {"name": "reptile", "inner_batch": 10}, "tags": [3]}
    merged = merge_sections(base, child)
    assert merged["tasks"] == {"ways": 20, "shots": 1}
    # a block naming another component replaces the parent's: maml's first_order must not leak
    assert merged["algorithm"] == {"name": "reptile", "inner_batch": 10}
    assert merged["training"] == {"lr": 0.1} and merged["tags"] == [3]
    assert base["tasks"] == {"ways": 5, "shots": 1}  # inputs untouched


def test_child_overrides_parent_and_never_inherits_its_identity(tmp_path):
    (tmp_path / "parent.yaml").write_text(
        "name: parent\ndescription: the 5-way row\npaper: {accuracy: 99.0}\n"
        "tasks: {dataset: omniglot, ways: 5, shots: 1, queries: 1}\n"
        "model: {name: conv4, out_features: 5}\nalgorithm: {name: maml, inner_lr: 0.4}\n"
        "training: {iterations: 10, meta_batch: 4}\n")
    (tmp_path / "child.yaml").write_text(
        "extends: parent.yaml\ntasks: {ways: 20}\nmodel: {out_features: 20}\n")
    config = load_config(str(tmp_path / "child.yaml"), ["training.meta_batch=2"])
    assert config.name == "child" and config.description == "" and config.paper == {}
    assert (config.tasks.ways, config.tasks.shots, config.model.args["out_features"]) == (20, 1, 20)
    assert config.algorithm.args["inner_lr"] == 0.4
    assert (config.training.iterations, config.training.meta_batch) == (10, 2)


def test_extends_errors_name_the_file_and_the_problem(tmp_path):
    (tmp_path / "a.yaml").write_text("extends: b.yaml\n")
    (tmp_path / "b.yaml").write_text("extends: a.yaml\n")
    with pytest.raises(ConfigError, match="extends cycle a -> b -> a"):
        load_config(str(tmp_path / "a.yaml"))
    (tmp_path / "orphan.yaml").write_text("extends: no_such_preset\n")
    with pytest.raises(ConfigError, match="orphan.yaml: extends 'no_such_preset': unknown preset"):
        load_config(str(tmp_path / "orphan.yaml"))
    (tmp_path / "bad.yaml").write_text("extends: [a, b]\n")
    with pytest.raises(ConfigError, match="extends must name a preset"):
        load_config(str(tmp_path / "bad.yaml"))


def test_shipped_children_differ_from_their_parents_only_where_they_say():
    """Each shipped child restates only what differs: a key equal to the parent's is dead weight
    that hides which settings the row really changes."""
    children = {n: read_yaml(p) for n, p in preset_paths().items() if "extends" in read_yaml(p)}
    assert len(children) >= 23
    for name, data in children.items():
        parent = read_yaml(preset_paths()[data["extends"]])
        for section, value in data.items():
            if section not in NOT_INHERITED and isinstance(value, dict) and isinstance(
                    parent.get(section), dict):
                same = [k for k, v in value.items() if parent[section].get(k) == v and k != "name"]
                assert not same, f"{name}: {section}.{same} repeat the parent's values"
        assert load_config(name).name == name
