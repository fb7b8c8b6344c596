"""Warm starts across episode shapes: reuse every weight whose name and shape still fit.

A learner trained 5-way cannot be loaded into its 20-way twin with ``load_state_dict`` (the
output layer is wider), yet the embedding and the learning mechanism carry over. Loading the
matching tensors and reporting the rest keeps that transfer explicit instead of silently partial.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn


@dataclass
class TransferReport:
    loaded: list[str] = field(default_factory=list)
    shape_mismatch: list[str] = field(default_factory=list)  # kept at their fresh initialisation
    missing: list[str] = field(default_factory=list)  # in the module, not in the saved state
    unexpected: list[str] = field(default_factory=list)  # in the saved state, not in the module

    def summary(self) -> str:
        return (f"loaded {len(self.loaded)} tensors; fresh (shape differs): "
                f"{', '.join(self.shape_mismatch) or 'none'}; missing: {', '.join(self.missing) or 'none'}; "
                f"unused: {', '.join(self.unexpected) or 'none'}")


def rename_prefixes(state: dict[str, torch.Tensor], rename: dict[str, str]) -> dict[str, torch.Tensor]:
    """``{"backbone.conv4.": "model.x_encoder."}`` moves a ProtoNet's Conv-4 into another learner's
    encoder slot; names under no listed prefix are kept as they are."""
    out = {}
    for name, tensor in state.items():
        for old, new in rename.items():
            if name.startswith(old):
                name = new + name[len(old):]
                break
        out[name] = tensor
    return out


def load_matching(module: nn.Module, state: dict[str, torch.Tensor],
                  rename: dict[str, str] | None = None) -> TransferReport:
    """Copy into ``module`` every tensor of ``state`` whose name (after ``rename``, a prefix map)
    and shape match; the others keep the module's initialisation and are listed in the report."""
    if rename:
        state = rename_prefixes(state, rename)
    own = module.state_dict()
    report = TransferReport()
    keep = {}
    for name, tensor in state.items():
        if name not in own:
            report.unexpected.append(name)
        elif own[name].shape != tensor.shape:
            report.shape_mismatch.append(name)
        else:
            keep[name] = tensor
            report.loaded.append(name)
    report.missing = [name for name in own if name not in state]
    if not keep:
        raise ValueError(
            "no saved tensor matches the model by name and shape: the weights come from a "
            "different architecture; check the preset the weights were trained with")
    module.load_state_dict(keep, strict=False)
    return report
