"""Learning the learner: learned optimizers, in-context learners, neural processes (docs/learned.md).

Shared pieces only; the registered algorithms are ``lstm_optimizer``, ``ravi_larochelle``,
``incontext``, ``cnp`` and ``np`` in :mod:`metaloop.algorithms`.
"""
