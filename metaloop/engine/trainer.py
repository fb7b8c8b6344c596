"""The resumable meta-training loop: one outer step per meta-batch, meta-validation, checkpoints.

Meta-batch of tasks → ``algorithm.meta_loss`` → outer optimizer step (the trainer never knows which
algorithm it drives). Every ``val_every`` iterations the learner is scored on fixed meta-validation
episodes and the best state is kept (model selection on meta-val, never on meta-test); ``patience``
stops early. With a run folder, everything that decides the future of the run (weights, optimizer,
scheduler, torch/NumPy/Python RNGs, the task stream of every rank, history, best state) is
checkpointed, so a run killed at any moment resumes to bit-identical metrics on CPU.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from metaloop.engine import checkpoint as ckpt
from metaloop.engine.distributed import DistContext
from metaloop.evaluate import EvalResult, evaluate
from metaloop.tasks.seeding import generator_for

TASK_STREAM = 0x7A11


@dataclass
class TrainHistory:
    iterations: list[int] = field(default_factory=list)
    train_loss: list[float] = field(default_factory=list)
    validations: list[tuple[int, float, float]] = field(default_factory=list)  # (iteration, mean, ci95)
    best_iteration: int | None = None
    best_value: float | None = None
    stopped_early: bool = False
    skipped: list[int] = field(default_factory=list)  # iterations whose update was skipped (NaN/inf)
    seconds: float = 0.0
    cpu_seconds: float = 0.0


@dataclass
class TrainOptions:
    iterations: int
    meta_batch: int
    seed: int = 0
    val_every: int = 100
    val_steps: int | None = None
    patience: int | None = None
    grad_clip: float | None = None
    on_nonfinite: str = "stop"  # or "skip"
    checkpoint_every: int = 100
    keep_checkpoints: int = 2
    log_every: int = 1


class Trainer:
    def __init__(self, algorithm, train_tasks, optimizer, options: TrainOptions, *, scheduler=None,
                 val_episodes=None, device: torch.device | str = "cpu", run_dir: Path | None = None,
                 context: DistContext | None = None, logger=None, progress=None,
                 callback: Callable[[int, float, EvalResult | None], None] | None = None) -> None:
        if options.iterations < 1 or options.meta_batch < 1:
            raise ValueError(f"iterations and meta_batch must be >= 1, got {options.iterations} and "
                             f"{options.meta_batch}")
        self.context = context or DistContext()
        if options.meta_batch < self.context.world_size:
            raise ValueError(f"meta_batch {options.meta_batch} is smaller than the {self.context.world_size} "
                             "ranks; every rank needs at least one task")
        self.algorithm, self.train_tasks, self.optimizer = algorithm, train_tasks, optimizer
        self.options, self.scheduler, self.val_episodes = options, scheduler, val_episodes
        self.device = torch.device(device)
        self.checkpoints = None if run_dir is None else Path(run_dir) / "checkpoints"
        self.logger, self.progress, self.callback = logger, progress, callback
        self.params = [p for p in algorithm.parameters() if p.requires_grad]
        self.generator = generator_for(options.seed, TASK_STREAM, self.context.rank)
        self.history = TrainHistory()
        self.iteration = 0
        self.stale = 0
        self.best_state: dict | None = None
        self.lower_is_better = algorithm.task == "regression"

    # ----------------------------------------------------------------- one outer step
    def step(self) -> tuple[float, float, bool]:
        """One meta-update; returns ``(mean meta-loss over the full meta-batch, grad norm, applied)``."""
        o, ctx = self.options, self.context
        shard = ctx.shard_size(o.meta_batch)
        batch = self.train_tasks.sample_batch(shard, self.generator).to(self.device)
        self.optimizer.zero_grad(set_to_none=True)
        # Weighting by the shard's share makes the all-reduced SUM the gradient of the batch mean.
        loss = self.algorithm.meta_loss(batch) * (shard / o.meta_batch)
        loss.backward()
        ctx.all_reduce_gradients(self.params)
        total = float(ctx.all_reduce_sum(loss.detach()))
        grads = [p.grad for p in self.params if p.grad is not None]
        norm = float(torch.nn.utils.get_total_norm(grads)) if grads else 0.0
        if not (math.isfinite(total) and math.isfinite(norm)):
            what = "meta-loss" if not math.isfinite(total) else "meta-gradient norm"
            if o.on_nonfinite == "stop":
                where = f" in {self.checkpoints}" if self.checkpoints else " in memory"
                raise FloatingPointError(
                    f"{what} is {total if what == 'meta-loss' else norm} at iteration {self.iteration}; "
                    f"lower the learning rate or enable grad_clip, or set on_nonfinite=skip (the last good "
                    f"checkpoint is kept{where})")
            self.optimizer.zero_grad(set_to_none=True)
            return total, norm, False
        if o.grad_clip is not None:
            with_grad = [p for p in self.params if p.grad is not None]
            torch.nn.utils.clip_grads_with_norm_(with_grad, o.grad_clip, torch.tensor(norm))
        self.optimizer.step()
        ctx.broadcast_buffers(self.algorithm)
        return total, norm, True

    def validate(self) -> EvalResult | None:
        """Rank 0 scores the fixed meta-val episodes; every rank gets the same numbers."""
        result = None
        if self.context.is_main:
            result = evaluate(self.algorithm, self.val_episodes, steps=self.options.val_steps,
                              device=self.device)
        summary = self.context.broadcast(None if result is None else (result.mean, result.ci95))
        mean, ci = summary
        h = self.history
        h.validations.append((self.iteration, mean, ci))
        lower = self.lower_is_better
        better = h.best_value is None or (mean < h.best_value if lower else mean > h.best_value)
        if better and math.isfinite(mean):
            h.best_iteration, h.best_value = self.iteration, mean
            self.best_state = copy.deepcopy(self.algorithm.state_dict())
            self.stale = 0
            if self.checkpoints is not None and self.context.is_main:
                ckpt.save_weights(self.checkpoints / "best", self.best_state)
        else:
            self.stale += 1
        if self.logger is not None and self.context.is_main:
            self.logger.log({"kind": "val", "iteration": self.iteration, "metric": result.metric,
                             "mean": mean, "ci95": ci, "best": h.best_iteration == self.iteration})
        return result

    # ----------------------------------------------------------------- checkpoint / resume
    def save(self) -> None:
        if self.checkpoints is None:
            return
        per_rank = self.context.gather({"rng": ckpt.capture_rng(self.device),
                                        "stream": self.generator.get_state()})
        if not self.context.is_main:
            return
        state = {
            "iteration": self.iteration, "stale": self.stale, "world_size": self.context.world_size,
            "optimizer": self.optimizer.state_dict(),
            "scheduler": None if self.scheduler is None else self.scheduler.state_dict(),
            "ranks": per_rank, "history": asdict(self.history), "best_weights": self.best_state,
        }
        ckpt.write_checkpoint(self.checkpoints, self.iteration, self.algorithm.state_dict(), state,
                              keep=self.options.keep_checkpoints)
        if self.logger is not None:
            self.logger.write_csv()

    def resume(self) -> int:
        """Restore the latest checkpoint (rank 0 reads, every rank receives); returns its iteration."""
        found = ckpt.read_checkpoint(self.checkpoints) if self.context.is_main else None
        weights, state = self.context.broadcast(found) or (None, None)
        if state is None:
            return 0
        if state["world_size"] != self.context.world_size:
            raise ValueError(f"the checkpoint was written by {state['world_size']} process(es); resume "
                             f"with the same number (torchrun --nproc-per-node {state['world_size']})")
        self.algorithm.load_state_dict(weights)
        self.optimizer.load_state_dict(state["optimizer"])
        if self.scheduler is not None:
            self.scheduler.load_state_dict(state["scheduler"])
        mine = state["ranks"][self.context.rank]
        ckpt.restore_rng(mine["rng"], self.device)
        self.generator.set_state(mine["stream"])
        h = state["history"]
        h["validations"] = [tuple(v) for v in h["validations"]]
        self.history = TrainHistory(**h)
        self.iteration, self.stale = state["iteration"], state["stale"]
        self.best_state = state["best_weights"]
        return self.iteration

    # ----------------------------------------------------------------- the loop
    def run(self) -> TrainHistory:
        o, h = self.options, self.history
        start, cpu = time.perf_counter() - h.seconds, time.process_time() - h.cpu_seconds
        self.algorithm.train()
        while self.iteration < o.iterations and not h.stopped_early:
            self.iteration += 1
            it = self.iteration
            loss, norm, applied = self.step()
            if self.scheduler is not None:
                self.scheduler.step()
            h.iterations.append(it)
            h.train_loss.append(loss)
            if not applied:
                h.skipped.append(it)
            if self.logger is not None and self.context.is_main and (it % o.log_every == 0 or not applied):
                row = {"kind": "train", "iteration": it, "loss": loss, "grad_norm": norm,
                       "lr": self.optimizer.param_groups[0]["lr"]}
                self.logger.log(row if applied else {**row, "skipped": True})
            result = None
            if self.val_episodes is not None and (it % o.val_every == 0 or it == o.iterations):
                result = self.validate()
                h.stopped_early = o.patience is not None and self.stale >= o.patience
            h.seconds, h.cpu_seconds = time.perf_counter() - start, time.process_time() - cpu
            if it % o.checkpoint_every == 0 or it == o.iterations or h.stopped_early:
                self.save()
            if self.progress is not None:
                self.progress.update(1, loss=loss, val=None if result is None else result.mean)
            if self.callback is not None:
                self.callback(it, loss, result)
        if self.best_state is not None:
            self.algorithm.load_state_dict(self.best_state)
        return h
