"""Shared set-up for benchmarks/repro_baselines.py: presets, data, fixed episodes, method builders."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import yaml

from metaloop.algorithms import get_algorithm
from metaloop.baselines.domains import to_common_format
from metaloop.baselines.features import base_feature_mean
from metaloop.baselines.pretrain import load_pretrained
from metaloop.baselines.tuning import grid_search
from metaloop.data.base import Splits
from metaloop.tasks.episode_set import EpisodeSet
from metaloop.tasks.sampler import FewShotSampler

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "baselines"
EPISODES = ROOT / "benchmarks" / "results" / "episodes"
_START = time.perf_counter()


def log(message: str) -> None:
    print(f"[{time.perf_counter() - _START:7.0f} s] {message}", flush=True)
    sys.stdout.flush()


def load_preset(path: str | Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"config {path} not found; they live in benchmarks/configs/baseline_*.yaml")
    preset = yaml.safe_load(path.read_text())
    preset.setdefault("name", path.stem)
    return preset


def load_splits(dataset: str, split: str = "vinyals", image_size: int = 28, channels: int = 1) -> Splits:
    if dataset == "omniglot":
        from metaloop.data import load_omniglot

        splits = load_omniglot(image_size=image_size, split=split)
    elif dataset == "mini_imagenet":  # only the 16 meta-val classes are in the shared copy
        from metaloop.data import load_mini_imagenet

        val = load_mini_imagenet(split="val", image_size=image_size)
        empty = val.subset([], name="mini_imagenet-empty")
        splits = Splits(empty, empty, val)  # a meta-test pool for cross-domain evaluation
    else:
        raise ValueError(f"unknown dataset {dataset!r}; use 'omniglot' or 'mini_imagenet'")
    if splits.test.data.shape[1] != channels:
        splits = Splits(*(to_common_format(d, image_size, channels) if len(d) else d
                          for d in (splits.train, splits.val, splits.test)))
    return splits


def episode_set(dataset, preset: dict, episodes: int, shots: int | None = None, seed: int | None = None,
                tag: str = "test") -> EpisodeSet:
    """The fixed episodes of ``preset`` on ``dataset``, generated once and saved (index grids)."""
    ways, queries = preset.get("ways", 5), preset.get("queries", 15)
    shots = preset.get("shots", 1) if shots is None else shots
    seed = preset.get("seed", 0) if seed is None else seed
    sampler = FewShotSampler(dataset, ways, shots, queries)
    path = EPISODES / f"{dataset.name}-{ways}w{shots}s{queries}q-{episodes}ep-seed{seed}.pt"
    if path.is_file():
        return EpisodeSet.load(path, sampler)
    es = EpisodeSet.generate(sampler, episodes, seed)
    es.save(path)
    log(f"saved fixed episodes {path.relative_to(ROOT)} ({tag})")
    return es


def _backbone(preset: dict):
    path = ROOT / preset["pretrained"]
    return load_pretrained(path)


def build_method(preset: dict, splits: Splits, log=log):
    """The algorithm of a preset, tuned on meta-val episodes where the preset lists a grid."""
    name, params = preset["algorithm"], dict(preset.get("params", {}))
    cls = get_algorithm(name)
    info: dict = {}
    if "pretrained" in preset:
        pre = _backbone(preset)
        info["pretrained"] = {k: pre.config.get(k) for k in ("dataset", "head", "steps_done", "epochs")}
        info["pretrained"]["seconds"] = pre.seconds
        backbone = pre.backbone
    else:
        backbone = None
    if name == "nearest_neighbour" and params.get("transform") == "cl2n":
        params["base_mean"] = base_feature_mean(backbone, splits.train, max_examples=20000)

    def factory(**kwargs):
        if name == "scratch":
            c = splits.train.data.shape[1]
            return cls(in_channels=c, image_size=splits.train.data.shape[-1], **params, **kwargs)
        return cls(backbone, **params, **kwargs) if backbone is not None else cls(**params, **kwargs)

    if preset.get("tune"):
        val = splits.val if len(splits.val) else splits.train
        val_eps = episode_set(val, preset, preset.get("tune_episodes", 50), seed=1, tag="meta-val")
        tuned = grid_search(factory, preset["tune"], val_eps, log=lambda m: log(f"  tune {m}"))
        info["tuned"] = {"best": tuned.best, "val": [(p, r.mean, r.ci95) for p, r in tuned.table]}
        log(f"  chosen on meta-val: {tuned.best}")
        return factory(**tuned.best), info
    return factory(), info
