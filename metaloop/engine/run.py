"""A training run on disk: config → objects → trainer → checkpoints, metrics and ``result.json``.

Run folder layout::

    config.yaml          the resolved, validated configuration (what ``--resume`` and ``eval`` read)
    metrics.jsonl        one JSON line per logged iteration / validation (deterministic)
    metrics.csv          the same as CSV (rewritten at every checkpoint)
    checkpoints/         iter_*.safetensors + iter_*.state.pt, latest.json, best.safetensors
    result.json          meta-test mean ± 95 % CI, episodes, CPU time, versions, seed
"""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import torch
import yaml

from metaloop.config import build
from metaloop.config.presets import config_from_dict, read_yaml
from metaloop.config.schema import RunConfig
from metaloop.engine.distributed import init_from_env, local_device
from metaloop.engine.logger import MetricsLogger
from metaloop.engine.progress import Progress, progress_enabled
from metaloop.engine.results import evaluate_run
from metaloop.engine.trainer import Trainer, TrainOptions
from metaloop.io import atomic_write_text
from metaloop.tasks.seeding import derive_seed

INIT_STREAM = 0x1417


def read_run_config(run_dir: Path) -> RunConfig:
    path = Path(run_dir) / "config.yaml"
    if not path.is_file():
        raise FileNotFoundError(f"{run_dir} is not a metaloop run folder (no config.yaml)")
    return config_from_dict(read_yaml(path))


def seed_everything(seed: int) -> None:
    """Global RNGs (weight init, dropout, user code); the task stream has its own generator."""
    torch.manual_seed(derive_seed(seed, INIT_STREAM))
    np.random.seed(derive_seed(seed, INIT_STREAM) % 2**32)
    random.seed(derive_seed(seed, INIT_STREAM))


def train_run(config: RunConfig | None, out: Path, *, resume: bool = False, quiet: bool = False,
              meta_test: bool = True, log=print) -> dict | None:
    """Train (or resume) the run in ``out``; returns the result dict on rank 0, None elsewhere.

    ``meta_test=False`` (hyper-parameter search) stops after training: the meta-test episodes are
    never touched and the result holds the best meta-validation score only.
    """
    out = Path(out)
    if resume:
        config = read_run_config(out)
    elif (out / "checkpoints" / "latest.json").exists():
        raise ValueError(f"{out} already holds a run; continue it with --resume {out} or choose "
                         "another --out")
    build.check_algorithm(config)  # cheap checks first: fail before loading any data
    device = build.resolve_device(config.training.device)
    context = init_from_env(device)
    device = local_device(device, context)
    tr = config.training
    if tr.threads is not None:
        torch.set_num_threads(tr.threads)
    seed_everything(tr.seed)
    sources = build.build_tasks(config)
    algorithm = build.build_algorithm(config, build.build_model(config)).to(device)
    context.broadcast_parameters(algorithm)
    optimizer = build.build_optimizer(config, [p for p in algorithm.parameters() if p.requires_grad])
    scheduler = build.build_scheduler(config, optimizer)
    val = build.meta_val_episodes(config, sources)
    if context.is_main:
        atomic_write_text(out / "config.yaml", yaml.safe_dump(config.to_dict(), sort_keys=False))
    options = TrainOptions(iterations=tr.iterations, meta_batch=tr.meta_batch, seed=tr.seed,
                           val_every=tr.val_every, val_steps=tr.val_steps, patience=tr.patience,
                           grad_clip=tr.grad_clip, on_nonfinite=tr.on_nonfinite,
                           checkpoint_every=tr.checkpoint_every, keep_checkpoints=tr.keep_checkpoints,
                           log_every=tr.log_every)
    trainer = Trainer(algorithm, sources.train, optimizer, options, scheduler=scheduler, val_episodes=val,
                      device=device, run_dir=out, context=context)
    start = trainer.resume() if resume else 0
    if start and context.is_main:
        log(f"resuming {out} from iteration {start}/{tr.iterations}")
    if context.is_main:
        trainer.logger = MetricsLogger(out, resume_iteration=start if resume else None,
                                       tensorboard=tr.tensorboard)
        trainer.progress = Progress(tr.iterations, initial=start, enabled=progress_enabled(quiet))
    try:
        history = trainer.run()
    finally:
        if trainer.logger is not None:
            trainer.logger.close()
        if trainer.progress is not None:
            trainer.progress.close()
    context.barrier()
    if not context.is_main:
        return None
    trainer.logger.write_csv()
    if history.stopped_early:
        log(f"early stop at iteration {trainer.iteration}: no meta-val gain in {tr.patience} validations")
    if not meta_test:
        return {"best_val": history.best_value, "best_iteration": history.best_iteration,
                "iterations": len(history.iterations), "stopped_early": history.stopped_early}
    result = evaluate_run(out, config=config, device=device, train=history, world_size=context.world_size,
                          quiet=quiet)
    log(f"{config.name}: meta-test {result['summary']}; wrote {out / 'result.json'}")
    return result


def default_out(config: RunConfig) -> Path:
    return Path("runs") / config.name
