"""Cross-domain evaluation: meta-train on one dataset (or split), meta-test on another.

Between datasets the images must share one format: :func:`to_common_format` resizes (area
interpolation, i.e. averaging, when shrinking) and converts channels (grey → RGB by repetition,
RGB → grey by ITU-R 601 luma) so a backbone trained on one domain accepts the other. Omniglot's ink is
255 on 0 and mini-ImageNet's light is 255: the values are kept as they are (``invert=True`` flips).
:func:`cross_domain_splits` takes meta-train/val from the source and meta-test from the target.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from metaloop.data.base import ClassDataset, Splits

LUMA = (0.299, 0.587, 0.114)


def to_common_format(dataset: ClassDataset, image_size: int, channels: int, *, invert: bool = False,
                     chunk: int = 2048) -> ClassDataset:
    """The dataset as uint8 ``[n, channels, image_size, image_size]`` (same classes and names)."""
    if dataset.data.dtype != torch.uint8 or dataset.data.dim() != 4:
        raise ValueError(f"{dataset.name}: cross-domain conversion needs uint8 images [n, C, H, W], got "
                         f"{dataset.data.dtype} {tuple(dataset.data.shape)}")
    source_channels = dataset.data.shape[1]
    if channels not in (1, 3) or source_channels not in (1, 3):
        raise ValueError(f"channels must be 1 (grey) or 3 (RGB); got target {channels}, "
                         f"source {source_channels} in {dataset.name}")
    out = []
    for x in dataset.data.split(chunk):
        x = x.float()
        if source_channels == 3 and channels == 1:
            x = (x * torch.tensor(LUMA).view(1, 3, 1, 1)).sum(1, keepdim=True)
        elif source_channels == 1 and channels == 3:
            x = x.expand(-1, 3, -1, -1)
        if x.shape[-2:] != (image_size, image_size):
            shrinking = x.shape[-1] >= image_size and x.shape[-2] >= image_size
            x = F.interpolate(x, size=(image_size, image_size), mode="area" if shrinking else "bilinear",
                              **({} if shrinking else {"align_corners": False}))
        if invert:
            x = 255.0 - x
        out.append(x.round_().clamp_(0, 255).to(torch.uint8))
    data = torch.cat(out) if out else dataset.data.new_zeros((0, channels, image_size, image_size))
    return ClassDataset(data, dataset.targets, dataset.class_names, name=dataset.name)


def _prefixed(dataset: ClassDataset, prefix: str) -> ClassDataset:
    return ClassDataset(dataset.data, dataset.targets, tuple(f"{prefix}:{n}" for n in dataset.class_names),
                        name=f"{prefix}:{dataset.name}")


def cross_domain_splits(source: Splits, target: Splits, *, image_size: int, channels: int,
                        source_name: str = "source", target_name: str = "target",
                        target_split: str = "test", invert_target: bool = False) -> Splits:
    """Meta-train and meta-val from ``source``, meta-test from ``target[target_split]``.

    Class names are prefixed with the domain names, so the splits stay class-disjoint even where two
    datasets reuse a name. Pass ``target_split="val"`` where only the target's val split exists
    (mini-ImageNet's shared copy holds only its 16 meta-val classes).
    """
    def fmt(d: ClassDataset, prefix: str, invert: bool = False) -> ClassDataset:
        return _prefixed(to_common_format(d, image_size, channels, invert=invert), prefix)

    return Splits(fmt(source.train, source_name), fmt(source.val, source_name),
                  fmt(target[target_split], target_name, invert_target))


def domain_drop(in_domain: float, cross_domain: float) -> dict[str, float]:
    """The drop of a metric (accuracy) from in-domain to cross-domain testing, absolute and relative."""
    return {"in_domain": in_domain, "cross_domain": cross_domain, "drop": in_domain - cross_domain,
            "relative_drop": (in_domain - cross_domain) / in_domain if in_domain else float("nan")}
