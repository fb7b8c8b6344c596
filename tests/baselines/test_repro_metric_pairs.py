"""repro_metric pair configs (Siamese verification training) take checked ``--set`` overrides."""

from pathlib import Path

import pytest

from benchmarks.repro_metric import pair_config
from metaloop.config.schema import ConfigError

LAKE = Path(__file__).resolve().parents[2] / "benchmarks" / "configs" / "siamese_omniglot_lake.yaml"


def test_overrides_reach_nested_keys_and_name_renames_the_run():
    cfg, name = pair_config(LAKE, ["val.every=50", "train.lr=3e-4", "name=koch_short"])
    assert cfg["val"]["every"] == 50 and cfg["train"]["lr"] == pytest.approx(3e-4)
    assert name == "koch_short"
    assert cfg["backbone"]["name"] == "koch"  # untouched keys stay


def test_without_overrides_the_run_is_named_after_the_file():
    cfg, name = pair_config(LAKE)
    assert name == "siamese_omniglot_lake" and cfg["data"]["image_size"] == 105


@pytest.mark.parametrize("bad", ["val.evry=50", "trian.lr=1e-3", "val.every.x=1"])
def test_a_key_the_config_does_not_hold_is_refused_by_name(bad):
    with pytest.raises(ConfigError, match=bad.split("=")[0].replace(".", r"\.")):
        pair_config(LAKE, [bad])


def test_an_override_without_a_value_gets_the_usual_key_value_error():
    with pytest.raises(ConfigError, match="expected key=value"):
        pair_config(LAKE, ["val.every"])
