"""Parameter dicts: which of a module's parameters the inner loop adapts, and stateless buffers.

Adapted weights are plain ``{name: tensor}`` dicts handed to :func:`torch.func.functional_call`
(torchmeta's good idea), so the user's module is never rebuilt from special layers nor mutated
(learn2learn rewrites ``_parameters``, which breaks DDP and hooks).
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Sequence

from torch import Tensor, nn

#: ``"all"``, ``"head"`` (ANIL: parameters whose name starts with ``head.``), a list of fnmatch
#: patterns (``["head.*", "features.3.*"]``) or a predicate on the parameter name.
AdaptSpec = str | Sequence[str] | Callable[[str], bool]


def select_adapted(module: nn.Module, adapt: AdaptSpec) -> list[str]:
    """Names of the parameters the inner loop updates; raises if the selection is empty."""
    names = [n for n, p in module.named_parameters() if p.requires_grad]
    if callable(adapt):
        chosen = [n for n in names if adapt(n)]
    elif adapt == "all":
        chosen = names
    elif adapt == "head":
        chosen = [n for n in names if n.startswith("head.")]
    elif isinstance(adapt, str):
        raise ValueError(
            f"unknown adapt spec {adapt!r}; use 'all', 'head' or a list of name patterns"
        )
    else:
        chosen = [n for n in names if any(fnmatch.fnmatchcase(n, pat) for pat in adapt)]
    if not chosen:
        raise ValueError(
            f"adapt={adapt!r} selects no parameter of {type(module).__name__}; "
            f"its trainable parameters are: {', '.join(names[:8])}"
            f"{' ...' if len(names) > 8 else ''}"
        )
    return chosen


def stateless_buffers(module: nn.Module) -> dict[str, Tensor | None]:
    """The module's buffers with batch-norm running statistics replaced by ``None``.

    With ``running_mean``/``running_var``/``num_batches_tracked`` set to ``None`` a native
    ``nn.BatchNorm*`` normalises with the statistics of the current batch in train *and* eval mode
    (MAML's transductive batch norm, Finn et al. 2017 Sec. 5.2) and updates no buffer, so the
    inner loop has no side effects on the module.
    """
    out: dict[str, Tensor | None] = {}
    for mod_name, mod in module.named_modules():
        is_bn = isinstance(mod, nn.modules.batchnorm._BatchNorm)
        for buf_name, buf in mod.named_buffers(recurse=False):
            full = f"{mod_name}.{buf_name}" if mod_name else buf_name
            stat = buf_name in ("running_mean", "running_var", "num_batches_tracked")
            out[full] = None if (is_bn and stat) else buf
    return out
