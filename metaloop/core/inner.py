"""The functional inner loop: gradient steps on a parameter dict (Finn et al. 2017, Eq. 1).

``phi = theta - alpha * grad L_support(theta)``, repeated ``steps`` times, where ``alpha`` is a
float, a tensor, or a learned per-parameter tensor (Meta-SGD, Li et al. 2017, Eq. 3). Two
implementations of the same step:

* :func:`adapt_autograd` uses ``torch.autograd.grad`` (``create_graph=True`` for second order);
  it is what the per-task loop strategy and :meth:`adapt` run.
* :func:`adapt_func` uses :func:`torch.func.grad`, so it composes with :func:`torch.func.vmap`
  (batched strategy) and still lets ordinary autograd differentiate through it afterwards.

They are tested against each other and against a clone-style reference in float64.

Second-order memory grows with the number of steps (each step's graph is kept for the meta-gradient:
the most reported problem with peer libraries, e.g. learn2learn#393). ``checkpoint=True`` in
:func:`adapt_autograd` keeps only each step's input parameters and recomputes the step's graph
during the backward pass (:func:`torch.utils.checkpoint.checkpoint`, non-reentrant, which supports
the ``autograd.grad`` inside the step): the same meta-gradient for about one extra support forward
and backward per step.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping

import torch
import torch.utils.checkpoint
from torch import Tensor, nn
from torch.func import functional_call

from metaloop.core.params import stateless_buffers

Params = dict[str, Tensor]
Forward = Callable[[Mapping[str, Tensor], Tensor], Tensor]
LossFn = Callable[[Tensor, Tensor], Tensor]
LearningRates = Mapping[str, Tensor | float]


def functional_forward(module: nn.Module) -> Forward:
    """``forward(params, x)``: the module evaluated at ``params`` with stateless buffers."""

    def forward(params: Mapping[str, Tensor], x: Tensor) -> Tensor:
        return functional_call(module, (dict(params), stateless_buffers(module)), (x,))

    return forward


def sgd_update(params: Params, grads: Mapping[str, Tensor], lrs: LearningRates) -> Params:
    """One inner step on the adapted names only; the other entries pass through unchanged."""
    out = dict(params)
    for name, g in grads.items():
        out[name] = params[name] - lrs[name] * g
    return out


def adapt_autograd(
    forward: Forward,
    loss_fn: LossFn,
    params: Params,
    names: list[str],
    x: Tensor,
    y: Tensor,
    steps: int,
    lrs: LearningRates,
    *,
    create_graph: bool,
    checkpoint: bool = False,
    recompute_context: Callable[[], contextlib.AbstractContextManager] | None = None,
) -> Params:
    """``steps`` gradient steps with ``torch.autograd.grad``.

    ``create_graph=True`` keeps the graph of every step (second-order MAML); ``False`` treats the
    inner gradients as constants (first-order MAML, Finn et al. 2017 Sec. 5.2), while the
    identity path ``phi = theta - const`` still carries the meta-gradient to ``theta``.
    ``checkpoint=True`` (second order only; a no-op otherwise) stores each step's input instead of
    its graph and recomputes the step in the backward pass, under ``recompute_context()`` when
    given: the recomputation must run under the same modes (kernels, layouts) as the forward.
    """

    def step(current: Params) -> Params:
        loss = loss_fn(forward(current, x), y)
        grads = torch.autograd.grad(loss, [current[n] for n in names], create_graph=create_graph)
        return sgd_update(current, dict(zip(names, grads, strict=True)), lrs)

    context_fn = torch.utils.checkpoint.noop_context_fn
    if recompute_context is not None:

        def context_fn():
            return contextlib.nullcontext(), _Reenterable(recompute_context)

    with torch.enable_grad():
        for _ in range(steps):
            if checkpoint and create_graph:
                params = torch.utils.checkpoint.checkpoint(
                    step, params, use_reentrant=False, context_fn=context_fn
                )
            else:
                params = step(params)
    return params


class _Reenterable:
    """A context made fresh by ``factory`` at each entry: checkpointing may recompute twice."""

    def __init__(self, factory: Callable[[], contextlib.AbstractContextManager]) -> None:
        self.factory = factory
        self.active: list[contextlib.AbstractContextManager] = []

    def __enter__(self) -> None:
        ctx = self.factory()
        ctx.__enter__()
        self.active.append(ctx)

    def __exit__(self, *exc) -> None:
        self.active.pop().__exit__(*exc)


def adapt_func(
    forward: Forward,
    loss_fn: LossFn,
    params: Params,
    names: list[str],
    x: Tensor,
    y: Tensor,
    steps: int,
    lrs: LearningRates,
    *,
    first_order: bool,
) -> Params:
    """Same steps with :func:`torch.func.grad` (vmap-able; no ``.backward`` inside)."""

    def support_loss(adapted: Params, rest: Params) -> Tensor:
        return loss_fn(forward({**rest, **adapted}, x), y)

    grad_fn = torch.func.grad(support_loss)
    for _ in range(steps):
        adapted = {n: params[n] for n in names}
        rest = {n: p for n, p in params.items() if n not in adapted}
        grads = grad_fn(adapted, rest)
        if first_order:
            grads = {n: g.detach() for n, g in grads.items()}
        params = sgd_update(params, grads, lrs)
    return params


def detached_leaves(params: Mapping[str, Tensor]) -> Params:
    """Copies that share storage but no graph, each requiring grad (for a graph-free inner loop)."""
    return {n: p.detach().requires_grad_(True) for n, p in params.items()}
