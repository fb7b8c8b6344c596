"""Supervised pretraining of a backbone as a plain classifier over *all* meta-train classes.

This is the "Baseline" / "Baseline++" training stage of Chen et al. 2019 (§3.1): ordinary mini-batch
cross-entropy over the base classes (Adam, lr 1e-3), no episodes. The classifier head is thrown away
afterwards; the backbone's features feed a new head per support set (:mod:`metaloop.algorithms.finetune`)
or a nearest-neighbour rule (:mod:`metaloop.algorithms.nearest_neighbour`). Baseline++ trains with the
cosine head here as well as at test time.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from metaloop.baselines.heads import HeadKind, make_head
from metaloop.data.base import ClassDataset
from metaloop.io import atomic_torch_save
from metaloop.nets.conv4 import Conv4
from metaloop.tasks.sampler import to_float
from metaloop.tasks.seeding import generator_for

FORMAT = "metaloop.pretrained_backbone.v1"


@dataclass
class PretrainResult:
    backbone: nn.Module
    head: nn.Module
    config: dict
    losses: list[float] = field(default_factory=list)
    train_accuracy: list[float] = field(default_factory=list)
    steps: int = 0
    seconds: float = 0.0


def pretrain_backbone(
    train: ClassDataset,
    *,
    head: HeadKind = "linear",
    hidden: int = 64,
    epochs: float = 1.0,
    batch_size: int = 128,
    lr: float = 1e-3,
    seed: int = 0,
    time_limit_s: float | None = None,
    log_every: int = 100,
    log: Callable[[str], None] | None = None,
) -> PretrainResult:
    """Train ``Conv4(norm="batch")`` + ``head`` on every class of ``train``; return the backbone.

    ``epochs`` may be fractional; ``time_limit_s`` stops early (the steps done are recorded), which is
    how bounded CPU runs stay bounded.
    """
    if train.data.dim() != 4:
        raise ValueError(f"{train.name}: pretraining needs images [n, C, H, W], got shape "
                         f"{tuple(train.data.shape)}")
    if train.data.shape[-1] != train.data.shape[-2]:
        raise ValueError(f"{train.name}: images must be square, got {tuple(train.data.shape[-2:])}")
    if epochs <= 0 or batch_size < 1:
        raise ValueError(f"epochs must be > 0 and batch_size >= 1, got {epochs} and {batch_size}")
    channels, size = int(train.data.shape[1]), int(train.data.shape[-1])
    config = {"in_channels": channels, "image_size": size, "hidden": hidden, "head": head,
              "classes": train.num_classes, "dataset": train.name, "fingerprint": train.fingerprint(),
              "epochs": epochs, "batch_size": batch_size, "lr": lr, "seed": seed}
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        backbone = Conv4(channels, None, hidden=hidden, image_size=size, norm="batch")
        classifier = make_head(head, backbone.embedding_dim, train.num_classes)
    model = nn.Sequential(backbone, classifier)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    g = generator_for(seed, 0xBA5E)
    total_steps = max(1, math.ceil(epochs * len(train) / batch_size))
    result = PretrainResult(backbone, classifier, config)
    start = time.perf_counter()
    model.train()
    order = torch.randperm(len(train), generator=g)
    cursor = 0
    for step in range(1, total_steps + 1):
        if cursor + batch_size > len(order):
            order, cursor = torch.randperm(len(train), generator=g), 0
        idx = order[cursor:cursor + batch_size]
        cursor += batch_size
        x, y = to_float(train.data[idx]), train.targets[idx]
        logits = model(x)
        loss = F.cross_entropy(logits, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        result.losses.append(loss.item())
        result.train_accuracy.append(float((logits.argmax(-1) == y).float().mean()))
        result.steps = step
        if log is not None and (step % log_every == 0 or step == total_steps):
            losses, accs = result.losses[-log_every:], result.train_accuracy[-log_every:]
            log(f"step {step}/{total_steps} loss {sum(losses) / len(losses):.3f} "
                f"acc {sum(accs) / len(accs):.3f} "
                f"({time.perf_counter() - start:.0f} s)")
        if time_limit_s is not None and time.perf_counter() - start > time_limit_s:
            break
    model.eval()
    result.seconds = time.perf_counter() - start
    result.config["steps_done"] = result.steps
    return result


def save_pretrained(path: str | os.PathLike, result: PretrainResult) -> Path:
    return atomic_torch_save(path, {"format": FORMAT, "config": result.config,
                                    "backbone": result.backbone.state_dict(),
                                    "head": result.head.state_dict(), "seconds": result.seconds,
                                    "losses": result.losses})


def load_pretrained(path: str | os.PathLike) -> PretrainResult:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"pretrained backbone {path} not found; create it with pretrain_backbone + "
                                "save_pretrained (or benchmarks/repro_baselines.py pretrain)")
    state = torch.load(path, weights_only=True)
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise ValueError(f"{path} is not a metaloop pretrained backbone ({FORMAT} expected)")
    c = state["config"]
    backbone = Conv4(c["in_channels"], None, hidden=c["hidden"], image_size=c["image_size"], norm="batch")
    backbone.load_state_dict(state["backbone"])
    head = make_head(c["head"], backbone.embedding_dim, c["classes"])
    head.load_state_dict(state["head"])
    backbone.eval()
    head.eval()
    return PretrainResult(backbone, head, c, losses=state.get("losses", []), steps=c.get("steps_done", 0),
                          seconds=state.get("seconds", 0.0))
