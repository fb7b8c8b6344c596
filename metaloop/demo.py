"""The embedded default job: MAML on the sinusoid family (Finn et al. 2017, Sec. 5.1), no data needed.

Meta-trains the paper's 1-40-40-1 ReLU network with one inner step (α = 0.01, meta-batch 25, Adam
β = 1e-3, K = 10), then scores the meta-learned initialisation on fixed held-out sinusoids before
adaptation and after 1, 5 and 10 gradient steps (mean MSE ± 95 % CI), and plots adapted curves.
"""

from __future__ import annotations

import platform
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from metaloop.algorithms import get_algorithm
from metaloop.engine.loop import meta_train
from metaloop.evaluate import evaluate
from metaloop.io import atomic_write, atomic_write_json
from metaloop.nets import MLP
from metaloop.tasks.episode_set import EpisodeSet
from metaloop.tasks.regression import sinusoid_tasks


@dataclass
class DemoConfig:
    iterations: int = 30000
    meta_batch: int = 25
    shots: int = 10
    queries: int = 10
    inner_lr: float = 0.01
    outer_lr: float = 1e-3
    episodes: int = 600
    eval_steps: tuple[int, ...] = (0, 1, 5, 10)
    seed: int = 0
    out: str = "runs/demo"
    #: intra-op threads; the 1-40-40-1 network's ops are far too small to split, and on a busy
    #: 2-core machine two OpenMP threads made a meta-iteration 100x slower (256 ms vs 2.4 ms)
    threads: int = 1


def run_demo(config: DemoConfig, log=print) -> dict:
    previous_threads = torch.get_num_threads()
    torch.set_num_threads(config.threads)
    try:
        return _run_demo(config, log)
    finally:
        torch.set_num_threads(previous_threads)


def _run_demo(config: DemoConfig, log) -> dict:
    torch.manual_seed(config.seed)
    out = Path(config.out)
    tasks = sinusoid_tasks(shots=config.shots, queries=config.queries)
    test_episodes = EpisodeSet.generate(tasks, config.episodes, seed=config.seed + 1)
    model = MLP(1, 1, (40, 40))
    maml = get_algorithm("maml")(model, inner_lr=config.inner_lr, inner_steps=1, task="regression")
    log(f"meta-training MAML on sinusoids: {config.iterations} iterations × {config.meta_batch} tasks, "
        f"K={config.shots}")
    every = max(1, config.iterations // 10)

    def report(it: int, loss: float, _result) -> None:
        if it % every == 0 or it == config.iterations:
            log(f"  iteration {it:>6}/{config.iterations}  meta-train query MSE {loss:.3f}")

    start = time.process_time()
    wall = time.perf_counter()
    history = meta_train(maml, tasks, iterations=config.iterations, meta_batch=config.meta_batch,
                         lr=config.outer_lr, seed=config.seed, callback=report)
    train_cpu = time.process_time() - start
    log(f"meta-training took {time.perf_counter() - wall:.1f} s wall, {train_cpu:.1f} s CPU")
    log(f"\nMSE on {config.episodes} held-out sinusoids (K={config.shots}), mean ± 95% CI:")
    rows = {}
    for steps in config.eval_steps:
        result = evaluate(maml, test_episodes, steps=steps)
        rows[steps] = {"mean": result.mean, "ci95": result.ci95}
        label = "before adaptation" if steps == 0 else f"after {steps} step{'s' * (steps > 1)}"
        log(f"  {label:<20} {result.mean:.3f} ± {result.ci95:.3f}")
    plot_path = plot_adapted_curves(maml, tasks, out / "sinusoid_maml.png", seed=config.seed + 2)
    summary = {
        "job": "maml-sinusoid-demo", "config": {**config.__dict__, "eval_steps": list(config.eval_steps)},
        "mse_by_steps": {str(k): v for k, v in rows.items()}, "train_cpu_seconds": train_cpu,
        "final_train_loss": history.train_loss[-1], "torch": torch.__version__,
        "python": platform.python_version(),
    }
    atomic_write_json(out / "result.json", summary)
    log(f"\nwrote {out / 'result.json'}" + (f" and {plot_path}" if plot_path else ""))
    return summary


def plot_adapted_curves(maml, tasks, path: Path, seed: int, panels: int = 4) -> Path | None:
    """True function, K support points, and the network before / after 1 and 10 steps, per task."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib not installed: skipping the plot (pip install 'metaloop[plots]')")
        return None
    batch, params = tasks.sample_with_params(panels, torch.Generator().manual_seed(seed))
    grid = torch.linspace(*tasks.family.x_range, 200).unsqueeze(-1)
    fig, axes = plt.subplots(1, panels, figsize=(4 * panels, 3.2), sharey=True)
    maml.eval()
    for i, ax in enumerate(axes):
        episode = batch[i]
        truth = tasks.family(params[i : i + 1], grid.double().unsqueeze(0))[0]
        ax.plot(grid, truth, color="black", lw=2, label="true function")
        for steps, style in ((0, ":"), (1, "--"), (10, "-")):
            with torch.enable_grad():
                adapted = maml.adapt(episode.support_x, episode.support_y, steps=steps)
            with torch.no_grad():
                pred = maml.predict(adapted, grid)
            ax.plot(grid, pred, style, lw=1.6, label=f"MAML, {steps} step{'s' * (steps != 1)}")
        ax.scatter(episode.support_x, episode.support_y, color="red", zorder=5,
                   label=f"K={len(episode.support_x)}")
        ax.set_title(f"A={params[i, 0]:.2f}, φ={params[i, 1]:.2f}")
        ax.set_xlabel("x")
    axes[0].set_ylabel("y")
    axes[0].legend(fontsize=7, loc="lower left")
    fig.suptitle("MAML on held-out sinusoids: adaptation from K support points")
    fig.tight_layout()

    def save(f):
        fig.savefig(f, format="png", dpi=110)

    atomic_write(path, save)
    plt.close(fig)
    return path
