"""Checkpoints that survive ``kill -9`` at any instant and resume bit for bit.

A checkpoint is two files, ``iter_NNNNNN.safetensors`` (the weights; ``.pt`` without safetensors) and
``iter_NNNNNN.state.pt`` (optimizer, scheduler, every RNG, the task stream, history), each written
atomically; only then is the pointer ``latest.json`` replaced (atomically) to name them. A crash
before the pointer moves leaves the previous checkpoint intact; a crash after it leaves the new one.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import torch

from metaloop.io import atomic_torch_save, atomic_write_bytes, atomic_write_json

POINTER = "latest.json"


def save_weights(path_stem: Path, state_dict: dict) -> Path:
    """Weights as safetensors (the ``[io]`` extra) or, without it, a weights-only torch file."""
    tensors = {k: v.detach().cpu().contiguous() for k, v in state_dict.items()}
    try:
        from safetensors.torch import save

        return atomic_write_bytes(path_stem.with_suffix(".safetensors"), save(tensors))
    except (ImportError, RuntimeError):  # not installed, or shared tensors safetensors refuses
        return atomic_torch_save(path_stem.with_suffix(".pt"), tensors)


def load_weights(path: Path) -> dict:
    if path.suffix == ".safetensors":
        try:
            from safetensors.torch import load_file
        except ImportError as exc:
            raise ValueError(f"{path} needs safetensors: pip install 'metaloop[io]'") from exc
        return load_file(str(path))
    return torch.load(path, weights_only=True)


def capture_rng(device: torch.device) -> dict:
    """torch, CUDA, NumPy and Python RNG states as plain tensors/lists (loadable weights-only)."""
    kind, key, pos, has_gauss, cached = np.random.get_state()
    state = {
        "torch": torch.get_rng_state(),
        "numpy": {"key": torch.from_numpy(key.astype(np.int64)), "pos": int(pos),
                  "has_gauss": int(has_gauss), "cached": float(cached)},
        "python": _to_lists(random.getstate()),
    }
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def restore_rng(state: dict, device: torch.device) -> None:
    torch.set_rng_state(state["torch"])
    n = state["numpy"]
    np.random.set_state(("MT19937", n["key"].numpy().astype(np.uint32), n["pos"], n["has_gauss"],
                         n["cached"]))
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    if device.type == "cuda" and "cuda" in state:
        torch.cuda.set_rng_state(state["cuda"], device)


def _to_lists(obj):
    return [_to_lists(x) for x in obj] if isinstance(obj, tuple) else obj


def write_checkpoint(directory: Path, iteration: int, weights: dict, state: dict, keep: int = 2) -> Path:
    """Write weights + state for ``iteration``, move the pointer, then prune older checkpoints."""
    stem = directory / f"iter_{iteration:07d}"
    weights_path = save_weights(stem, weights)
    state_path = atomic_torch_save(stem.with_suffix(".state.pt"), state)
    atomic_write_json(directory / POINTER, {"iteration": iteration, "weights": weights_path.name,
                                            "state": state_path.name})
    for old in sorted(directory.glob("iter_*.state.pt"))[:-keep]:
        old_stem = old.name.removesuffix(".state.pt")
        for f in directory.glob(f"{old_stem}.*"):
            f.unlink(missing_ok=True)
    return weights_path


def read_checkpoint(directory: Path) -> tuple[dict, dict] | None:
    """``(weights, state)`` of the latest complete checkpoint, or None when there is none yet."""
    pointer = directory / POINTER
    if not pointer.is_file():
        return None
    info = json.loads(pointer.read_text())
    weights = load_weights(directory / info["weights"])
    state = torch.load(directory / info["state"], weights_only=True)
    if state.get("iteration") != info["iteration"]:
        raise ValueError(f"{directory}: checkpoint files disagree with {POINTER}; the run folder was "
                         "edited by hand")
    return weights, state


def weights_file(directory: Path, which: str) -> Path:
    """The weights of the ``best`` (meta-validation) or ``last`` checkpoint of a run."""
    if which == "best":
        for suffix in (".safetensors", ".pt"):
            if (directory / f"best{suffix}").is_file():
                return directory / f"best{suffix}"
    pointer = directory / POINTER
    if not pointer.is_file():
        raise FileNotFoundError(f"{directory} holds no checkpoint yet (no {POINTER}); train first")
    return directory / json.loads(pointer.read_text())["weights"]
