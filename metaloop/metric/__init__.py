"""Shared pieces of the metric learners: distances, class means, label checks, pairs."""

from metaloop.metric.distances import (
    check_support_labels,
    class_means,
    cosine_similarity,
    squared_euclidean,
)

__all__ = ["check_support_labels", "class_means", "cosine_similarity", "squared_euclidean"]
