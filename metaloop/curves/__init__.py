"""Data-efficiency and adaptation curves, reliability diagrams and ranking metrics for any learners."""

from metaloop.curves.adaptation import steps_curve
from metaloop.curves.curve import Curve
from metaloop.curves.efficiency import shots_curve
from metaloop.curves.ranking import ndcg_at_k, ranking_ndcg
from metaloop.curves.reliability import ReliabilityDiagram, collect_predictions, reliability_diagram

__all__ = [
    "Curve",
    "ReliabilityDiagram",
    "collect_predictions",
    "ndcg_at_k",
    "ranking_ndcg",
    "reliability_diagram",
    "shots_curve",
    "steps_curve",
]
