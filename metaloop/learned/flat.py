"""Parameters as one flat vector, so an update rule can treat every coordinate the same way.

Coordinate-wise optimizers (Andrychowicz et al. 2016, Sec. 2.1) and the Ravi & Larochelle
meta-learner (whose cell state *is* the learner's parameter vector) see a model as a single vector;
the model itself stays an untouched ``nn.Module`` evaluated with ``torch.func.functional_call``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torch.func import functional_call


@dataclass(frozen=True)
class ParamSpec:
    """Names and shapes of a module's parameters, in ``named_parameters`` order."""

    names: tuple[str, ...]
    shapes: tuple[torch.Size, ...]

    @staticmethod
    def of(module: nn.Module) -> ParamSpec:
        named = list(module.named_parameters())
        return ParamSpec(tuple(n for n, _ in named), tuple(p.shape for _, p in named))

    @property
    def numel(self) -> int:
        return sum(s.numel() for s in self.shapes)

    def flatten(self, params: dict[str, Tensor]) -> Tensor:
        return torch.cat([params[n].reshape(-1) for n in self.names])

    def unflatten(self, flat: Tensor) -> dict[str, Tensor]:
        if flat.numel() != self.numel:
            raise ValueError(
                f"flat vector has {flat.numel()} entries, the model needs {self.numel}"
            )
        chunks = torch.split(flat, [s.numel() for s in self.shapes])
        return {n: c.view(s) for n, c, s in zip(self.names, chunks, self.shapes, strict=True)}


def flat_parameters(module: nn.Module) -> Tensor:
    """The module's current parameters as one detached vector."""
    return torch.cat([p.detach().reshape(-1) for p in module.parameters()])


def init_parameters(module: nn.Module, generator: torch.Generator) -> Tensor:
    """A fresh draw of the ``nn.Linear``/``nn.Conv`` default init U(±1/sqrt(fan_in)), flattened.

    Biases use the fan-in of their layer's weight; no global RNG is touched.
    """
    pieces = []
    fan_in = 1
    norm_layers = set()
    for name, p in module.named_parameters():
        prefix = name.rpartition(".")[0]
        if p.dim() > 1:
            fan_in = p[0].numel()
        elif not name.endswith("bias"):  # a norm layer's scale starts at one, its shift at zero
            norm_layers.add(prefix)
            pieces.append(torch.ones(p.numel(), dtype=p.dtype))
            continue
        elif prefix in norm_layers:
            pieces.append(torch.zeros(p.numel(), dtype=p.dtype))
            continue
        bound = 1.0 / fan_in**0.5
        u = torch.rand(p.numel(), generator=generator, dtype=p.dtype)
        pieces.append((2 * u - 1) * bound)
    return torch.cat(pieces)


def functional_loss(
    module: nn.Module, loss: Callable[[Tensor, Tensor], Tensor], x: Tensor, y: Tensor
) -> Callable[[Tensor], Tensor]:
    """``theta -> loss(module_theta(x), y)`` for a flat parameter vector ``theta``."""
    spec = ParamSpec.of(module)

    def f(theta: Tensor) -> Tensor:
        return loss(functional_call(module, spec.unflatten(theta), (x,)), y)

    return f


class FlatWeightsLearner:
    """Mixin for learners whose base model is evaluated at a flat weight vector ``theta``.

    The learned-optimizer family (coordinate-wise LSTM, Ravi & Larochelle) keeps the model as an
    architecture only and produces its weights; this holds the shared plumbing. Put it before
    :class:`~metaloop.algorithms.base.Algorithm` in the bases so ``loss`` can fall back to it.
    """

    def bind_model(self, model: nn.Module, loss: Callable[[Tensor, Tensor], Tensor] | None) -> None:
        self._model = (model,)  # a tuple: the architecture only, not registered as a submodule
        self.spec = ParamSpec.of(model)
        self._loss = loss

    def loss(self, predictions: Tensor, targets: Tensor) -> Tensor:
        if self._loss is not None:
            return self._loss(predictions, targets)
        return super().loss(predictions, targets)  # type: ignore[misc]

    def _forward(self, theta: Tensor, x: Tensor) -> Tensor:
        return functional_call(self._model[0], self.spec.unflatten(theta), (x,))
