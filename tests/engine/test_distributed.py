"""Two gloo processes sharding one meta-batch give the single-process meta-gradient and update."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn

from metaloop.engine.distributed import DistContext
from metaloop.engine.trainer import Trainer, TrainOptions
from metaloop.tasks.regression import sinusoid_tasks
from metaloop.tasks.seeding import generator_for
from tests.engine.tiny import TinyMAML

REPO = Path(__file__).resolve().parents[2]
META_BATCH = 6


class FixedShards:
    """Hands each rank its slice of one fixed meta-batch (the single process gets all of it)."""

    def __init__(self, batch, rank: int, world: int):
        self.batch, self.rank, self.world = batch, rank, world

    def sample_batch(self, n, generator):
        shard = self.batch.split(self.world)[self.rank]
        assert len(shard) == n
        return shard


def one_step(rank: int, world: int) -> dict:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(1, 12), nn.Tanh(), nn.Linear(12, 1)).double()
    algo = TinyMAML(model, inner_lr=0.05, inner_steps=2)
    if rank == 1:  # a different init on rank 1: broadcast must overwrite it with rank 0's
        torch.nn.init.normal_(model[0].weight)
    batch = sinusoid_tasks(shots=5, queries=7, dtype=torch.float64).sample_batch(
        META_BATCH, generator_for(3, 0))
    context = DistContext(rank, world)
    context.broadcast_parameters(algo)
    opt = torch.optim.Adam(algo.parameters(), lr=0.01)
    trainer = Trainer(algo, FixedShards(batch, rank, world), opt,
                      TrainOptions(iterations=1, meta_batch=META_BATCH, grad_clip=0.5), context=context)
    trainer.iteration = 1
    loss, norm, applied = trainer.step()
    return {"loss": loss, "norm": norm, "grads": [p.grad.clone() for p in algo.parameters()],
            "params": [p.detach().clone() for p in algo.parameters()]}


def _worker(rank: int, world: int, init_file: str, out: str) -> None:
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    try:
        torch.save(one_step(rank, world), f"{out}.{rank}")
    finally:
        dist.destroy_process_group()


def test_two_gloo_ranks_equal_single_process(tmp_path):
    single = one_step(0, 1)
    mp.start_processes(_worker, args=(2, str(tmp_path / "init"), str(tmp_path / "out")), nprocs=2,
                       join=True, start_method="fork")
    ranks = [torch.load(tmp_path / f"out.{r}", weights_only=True) for r in range(2)]
    for r in ranks:
        assert r["loss"] == pytest.approx(single["loss"], rel=1e-12)
        assert r["norm"] == pytest.approx(single["norm"], rel=1e-12)
        assert r["norm"] > 0.5  # so clipping was active and used the global (all-reduced) norm
        for g, g1 in zip(r["grads"], single["grads"], strict=True):
            torch.testing.assert_close(g, g1, rtol=1e-12, atol=1e-14)
        for p, p1 in zip(r["params"], single["params"], strict=True):
            torch.testing.assert_close(p, p1, rtol=1e-12, atol=1e-14)
    # and the single-process step really moved the parameters
    torch.manual_seed(0)
    init = nn.Sequential(nn.Linear(1, 12), nn.Tanh(), nn.Linear(12, 1)).double()
    assert not torch.equal(init[0].weight, single["params"][0])


def test_ranks_draw_disjoint_task_streams():
    tasks = sinusoid_tasks(shots=2, queries=2)
    algo = TinyMAML(nn.Linear(1, 1))
    opt = torch.optim.SGD(algo.parameters(), lr=0.1)
    trainers = [Trainer(algo, tasks, opt, TrainOptions(iterations=1, meta_batch=5),
                        context=DistContext(r, 2)) for r in range(2)]
    a, b = (t.train_tasks.sample_batch(2, t.generator) for t in trainers)
    assert not torch.allclose(a.support_x, b.support_x)
    assert [DistContext(r, 2).shard_size(5) for r in range(2)] == [3, 2]


@pytest.mark.slow
def test_torchrun_cli_two_ranks_then_resume(tmp_path):
    """End to end: torchrun 2 CPU ranks through `metaloop train`, then resume with 2 ranks."""
    config = tmp_path / "tiny.yaml"
    config.write_text(
        "tasks: {family: sinusoid, shots: 5, queries: 5}\nmodel: {name: mlp, args: {hidden: [16]}}\n"
        "algorithm: {name: 'tests.engine.tiny:TinyMAML'}\n"
        "training: {iterations: 40, meta_batch: 4, val_every: 20, val_episodes: 10, checkpoint_every: 20}\n"
        "evaluation: {episodes: 20}\n")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "CI": "1", "PYTHONPATH": str(REPO)}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "-m", "metaloop",
           "train", str(config), "--out", str(tmp_path / "run")]
    subprocess.run(cmd, cwd=REPO, env=env, check=True, timeout=300, capture_output=True)
    run = tmp_path / "run"
    assert '"world_size": 2' in (run / "result.json").read_text()
    metrics = (run / "metrics.jsonl").read_bytes()
    # roll the run back to its iteration-20 checkpoint (as if killed just after writing it), resume
    pointer = run / "checkpoints" / "latest.json"
    info = json.loads(pointer.read_text())
    pointer.write_text(json.dumps({"iteration": 20, "weights": info["weights"].replace("40", "20"),
                                   "state": info["state"].replace("40", "20")}))
    resume = cmd[:-4] + ["train", "--resume", str(run)]
    out = subprocess.run(resume, cwd=REPO, env=env, check=True, timeout=300, capture_output=True, text=True)
    assert "from iteration 20/40" in out.stdout
    assert (run / "metrics.jsonl").read_bytes() == metrics
