"""Every MAML-RL preset of benchmarks/configs builds its learner, meta-trained and pretrained."""

from pathlib import Path

import pytest

from benchmarks.repro_rl import build_learner, load_preset
from metaloop.rl import GaussianMLPPolicy

CONFIGS = Path(__file__).resolve().parents[2] / "benchmarks" / "configs"
PRESETS = sorted(p.stem for p in CONFIGS.glob("maml_rl_*.yaml"))


@pytest.mark.parametrize("name", PRESETS)
@pytest.mark.parametrize("mode", ["maml", "pretrained"])
def test_preset_builds_its_learner(name, mode):
    cfg = load_preset(name)
    learner = build_learner(cfg, GaussianMLPPolicy(2, 2), family=None, mode=mode)
    steps = cfg["inner_steps"] if mode == "maml" else 0
    assert learner.inner_steps == steps and len(learner.inner_lrs) == steps
    assert learner.meta_objective == cfg.get("meta_objective", "last")


def test_presets_were_found():
    assert "maml_rl_nav2d_twostep_every" in PRESETS and len(PRESETS) >= 5
