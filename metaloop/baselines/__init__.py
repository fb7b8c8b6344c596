"""Shared pieces of the honest baselines: supervised pretraining, classifier heads, feature transforms,
hyper-parameter tuning on meta-val and cross-domain dataset conversion."""

from metaloop.baselines.features import FeatureTransform, base_feature_mean
from metaloop.baselines.heads import CosineClassifier, chen_scale, fit_head, make_head
from metaloop.baselines.pretrain import PretrainResult, pretrain_backbone

__all__ = [
    "CosineClassifier",
    "FeatureTransform",
    "PretrainResult",
    "base_feature_mean",
    "chen_scale",
    "fit_head",
    "make_head",
    "pretrain_backbone",
]
