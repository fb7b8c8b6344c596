"""Execution strategies for the meta-loss of a gradient learner: same numbers, different speed.

* ``loop``: one task at a time, ``torch.autograd.grad(create_graph=True)`` (learn2learn's shape).
* ``vmap``: every task at once with :func:`torch.func.vmap` over :func:`torch.func.grad`.
* ``split``: the small support step batched with vmap (chunks of ``split_chunk`` tasks); each
  query pass per task on *detached* adapted weights (first-order work, no query graph kept; there,
  outside vmap, TaskBatchNorm uses torch's fused kernel: measured 1.6x faster query passes, and on
  CPU images and conv weights go channels-last: oneDNN's fast layout, max-pool 12x faster); then
  one backward through the chunk's batched support graph. Exact: the surrogate
  ``sum_t <phi_t, dL_q/dphi_t>`` has the meta-gradient ``sum_t (dphi_t/dtheta)^T dL_q/dphi_t``
  (chain rule), and only the support graph is retained. The query pass fuses each
  norm → max-pool → ReLU block into one node (metaloop.nets.fused) that keeps ~20 MB less.
  ``learner.split_support = "autograd"`` runs the support step one task at a time with plain
  autograd (native batch norm is exact there): the least memory (Conv-4 Omniglot 5-way 1-shot:
  1.54x the reference's speed at 0.76x its peak RSS, against 1.61x at 1.49x for vmapped chunks
  of 4). The default ``"auto"`` takes it for CPU batches and the vmapped chunks elsewhere.
* ``loop`` and ``split`` take each task's (chunk's) gradient at once and free its graph, so
  memory is that of one task (chunk), as with learn2learn's per-task ``backward``; ``meta_loss``
  then returns a scalar with the mean query loss as value and that exact gradient attached.
* ``auto``: see :func:`resolve_strategy` (rule and measurements in docs/optimization.md).

Native batch norm (``F.batch_norm``) under vmap gives wrong second-order gradients in torch 2.13,
so a model that calls it is refused by ``vmap``/``split`` and routed to ``loop`` by ``auto``.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.overrides import TorchFunctionMode

from metaloop.core.inner import adapt_autograd, adapt_func
from metaloop.nets.batchnorm import native_batch_norm_kernel
from metaloop.nets.fused import fused_norm_pool_relu
from metaloop.nets.layout import channels_last_activations, to_channels_last
from metaloop.tasks.episode import EpisodeBatch

if TYPE_CHECKING:
    from metaloop.core.learner import GradientLearner

STRATEGIES = ("auto", "loop", "vmap", "split")
#: CPU models with at most this many parameters and no convolution are batched with vmap.
VMAP_MAX_PARAMS_CPU = 1_000_000


class _BatchNormProbe(TorchFunctionMode):
    def __init__(self) -> None:
        super().__init__()
        self.found = False

    def __torch_function__(self, func, types, args=(), kwargs=None):
        if func in (F.batch_norm, torch.batch_norm, F.instance_norm, torch.instance_norm):
            self.found = True
        return func(*args, **(kwargs or {}))


def calls_native_batch_norm(learner: GradientLearner, x: Tensor) -> bool:
    """Whether the model's forward calls the native batch-norm kernel (module or functional)."""
    if any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in learner.model.modules()):
        return True
    probe = _BatchNormProbe()
    with torch.no_grad(), probe:
        learner.forward_fn(learner.meta_params(), x)
    return probe.found


def resolve_strategy(
    learner: GradientLearner, batch: EpisodeBatch, allowed: tuple[str, ...] = STRATEGIES
) -> str:
    """The strategy to run: the user's choice (checked), or the ``auto`` rule.

    ``auto``: native batch norm → ``loop``; CUDA → ``vmap``; CPU: a model with convolutions →
    ``split`` if allowed else ``loop`` (per-task convolutions beat grouped ones on CPU), otherwise
    ``vmap`` up to :data:`VMAP_MAX_PARAMS_CPU` parameters. With ``checkpoint_steps`` (which
    ``torch.utils.checkpoint`` cannot run under vmap) ``loop`` takes the place of ``vmap``.
    """
    requested = learner.strategy
    if requested not in allowed:
        raise ValueError(
            f"{type(learner).__name__} supports strategy in {allowed}, got {requested!r}"
        )
    if requested == "loop":
        return "loop"
    if learner._native_bn is None:
        learner._native_bn = calls_native_batch_norm(learner, batch.support_x[0])
    if learner._native_bn:
        if requested != "auto":
            raise ValueError(
                f"strategy={requested!r} needs a model without native batch norm: torch's "
                "batch_norm under vmap gives wrong second-order meta-gradients. Use "
                "metaloop.nets.TaskBatchNorm "
                "(or Conv4(norm='task')), or strategy='loop'"
            )
        return "loop"
    if requested != "auto":
        return requested
    if batch.support_x.device.type == "cuda":
        return "loop" if learner.checkpoint_steps else "vmap"
    has_conv = any(isinstance(m, nn.modules.conv._ConvNd) for m in learner.model.modules())
    if has_conv:
        return "split" if "split" in allowed else "loop"
    n_params = sum(p.numel() for p in learner.model.parameters())
    small = n_params <= VMAP_MAX_PARAMS_CPU and not learner.checkpoint_steps
    return "vmap" if small else "loop"


def _task_adapter(learner: GradientLearner, params: dict[str, Tensor]):
    lrs, names = learner.inner_lrs(), learner.adapted_names
    steps, first_order = learner.inner_steps, learner.first_order

    def adapt(sx: Tensor, sy: Tensor) -> dict[str, Tensor]:
        return adapt_func(
            learner.forward_fn,
            learner.loss,
            params,
            names,
            sx,
            sy,
            steps,
            lrs,
            first_order=first_order,
        )

    return adapt


def _trainable(learner: GradientLearner) -> list[Tensor]:
    return [p for p in learner.parameters() if p.requires_grad]


def _with_gradient(value: Tensor, params: list[Tensor], grads: list[Tensor | None]) -> Tensor:
    """A scalar equal to ``value`` whose gradient w.r.t. ``params`` is the precomputed ``grads``.

    Lets a strategy free each task's graph as soon as its gradient is known (memory of one task,
    like learn2learn's per-task ``backward``) while ``meta_loss`` still returns one scalar for the
    trainer's ``backward``.
    """
    surrogate = sum((p * g).sum() for p, g in zip(params, grads, strict=True) if g is not None)
    if isinstance(surrogate, int):  # nothing depends on the parameters
        return value
    return value + surrogate - surrogate.detach()


def _accumulate(acc: list[Tensor | None], grads) -> None:
    for i, g in enumerate(grads):
        if g is not None:
            acc[i] = g if acc[i] is None else acc[i] + g


def meta_loss_loop(learner: GradientLearner, batch: EpisodeBatch) -> Tensor:
    params = _trainable(learner)
    acc: list[Tensor | None] = [None] * len(params)
    values = []
    for i in range(len(batch)):
        loss = learner.episode_loss(batch[i])
        _accumulate(acc, torch.autograd.grad(loss / len(batch), params, allow_unused=True))
        values.append(loss.detach())
    return _with_gradient(torch.stack(values).mean(), params, acc)


def meta_loss_vmap(learner: GradientLearner, batch: EpisodeBatch) -> Tensor:
    params = learner.meta_params()
    adapt = _task_adapter(learner, params)

    def task_loss(sx: Tensor, sy: Tensor, qx: Tensor, qy: Tensor) -> Tensor:
        return learner.loss(learner.forward_fn(adapt(sx, sy), qx), qy)

    losses = torch.func.vmap(task_loss, randomness="different")(
        batch.support_x, batch.support_y, batch.query_x, batch.query_y
    )
    return losses.mean()


def _layout(channels_last: bool):
    return channels_last_activations() if channels_last else contextlib.nullcontext()


def _query_layout(t: Tensor, channels_last: bool) -> Tensor:
    """A detached copy of ``t``; 4-D tensors in channels-last layout when ``channels_last``.

    Same values, different strides: on CPU oneDNN's convolutions and, above all, max-pooling run
    much faster on NHWC (max-pool 12x in our measurement on Conv-4's first block). Both the image
    and the 4-D weights are converted, because a 1-channel image alone does not tell the
    convolution which layout to use.
    """
    t = t.detach()
    if channels_last and t.dim() == 4:
        return to_channels_last(t)
    return t


def _autograd_support(learner: GradientLearner, params: dict[str, Tensor], channels_last: bool):
    """One task's support step with plain autograd: native batch norm and NHWC allowed.

    Outside vmap the native kernel's second-order gradients are right, and its graph is smaller
    than the elementwise TaskBatchNorm's under vmap (Conv-4, 5-way 1-shot: ~10 vs ~13 MB a task);
    with one task alive at a time this is split's least-memory form. Takes and returns a chunk of
    one task, like the vmapped step.
    """
    names, lrs = learner.adapted_names, learner.inner_lrs()

    @contextlib.contextmanager
    def modes():  # entered at the support step and again when checkpointing recomputes it
        with native_batch_norm_kernel(), _layout(channels_last):
            yield

    def support(sx: Tensor, sy: Tensor) -> dict[str, Tensor]:
        x = to_channels_last(sx[0]) if channels_last and sx[0].dim() == 4 else sx[0]
        with modes():
            fast = adapt_autograd(
                learner.forward_fn,
                learner.loss,
                params,
                names,
                x,
                sy[0],
                learner.inner_steps,
                lrs,
                create_graph=not learner.first_order,
                checkpoint=learner.checkpoint_steps,
                recompute_context=modes,
            )
        return {n: fast[n].unsqueeze(0) for n in names}

    return support


def meta_loss_split(learner: GradientLearner, batch: EpisodeBatch) -> Tensor:
    """Chunks of ``learner.split_chunk`` tasks: batched support step, per-task query passes.

    With ``learner.split_support == "autograd"`` one task at a time, support by plain autograd.
    """
    params = learner.meta_params()
    names = learner.adapted_names
    channels_last = batch.query_x.dim() == 5 and batch.query_x.device.type == "cpu"
    chunk_size = max(1, learner.split_chunk)
    mode = learner.split_support
    if mode == "auto":
        cpu = batch.query_x.device.type == "cpu"
        mode = "autograd" if cpu or learner.checkpoint_steps else "vmap"
    if mode == "vmap" and learner.checkpoint_steps:
        raise ValueError(
            "checkpoint_steps=True needs split_support 'autograd' or 'auto': torch.utils."
            "checkpoint does not run under vmap"
        )
    if mode == "autograd":
        support = _autograd_support(learner, params, channels_last)
        chunk_size = 1
    elif mode == "vmap":
        adapt = _task_adapter(learner, params)
        support = torch.func.vmap(
            lambda sx, sy: {n: p for n, p in adapt(sx, sy).items() if n in names},
            randomness="different",
        )
    else:
        raise ValueError(
            f"split_support must be 'auto', 'vmap' or 'autograd', got {learner.split_support!r}"
        )
    rest = [n for n, p in params.items() if n not in names and p.requires_grad]
    trainable = _trainable(learner)
    acc: list[Tensor | None] = [None] * len(trainable)
    values = []
    for chunk in torch.arange(len(batch)).split(chunk_size):
        fast = support(batch.support_x[chunk], batch.support_y[chunk])
        g_fast = {n: torch.empty_like(fast[n]) for n in names}
        g_rest = {n: torch.zeros_like(params[n]) for n in rest}
        for j, t in enumerate(chunk.tolist()):
            leaves = {
                n: _query_layout(fast[n][j] if n in fast else p, channels_last).requires_grad_(
                    n in fast or n in rest
                )
                for n, p in params.items()
            }
            wrt = names + rest
            with (
                torch.enable_grad(),
                native_batch_norm_kernel(),
                fused_norm_pool_relu(),
                _layout(channels_last),
            ):
                qx = _query_layout(batch.query_x[t], channels_last)
                loss = learner.loss(learner.forward_fn(leaves, qx), batch.query_y[t])
                grads = torch.autograd.grad(loss, [leaves[n] for n in wrt], allow_unused=True)
            for n, g in zip(wrt, grads, strict=True):
                g = torch.zeros_like(leaves[n]) if g is None else g
                if n in fast:
                    g_fast[n][j] = g
                else:
                    g_rest[n] += g
            values.append(loss.detach())
        surrogate = sum((fast[n] * g_fast[n]).sum() for n in names)
        surrogate = surrogate + sum((params[n] * g_rest[n]).sum() for n in rest)
        _accumulate(acc, torch.autograd.grad(surrogate / len(batch), trainable, allow_unused=True))
    return _with_gradient(torch.stack(values).mean(), trainable, acc)


RUNNERS = {"loop": meta_loss_loop, "vmap": meta_loss_vmap, "split": meta_loss_split}
