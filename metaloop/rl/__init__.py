"""Meta-reinforcement learning: environments as task families, policies, MAML-RL and RL².

The torch-batched families (navigation, bandits) and the algorithms need only torch; the
gymnasium classes live in :mod:`metaloop.rl.envs` and :mod:`metaloop.rl.classic_control`
(``pip install metaloop[rl]``).
"""

from metaloop.rl.bandit_references import REFERENCES, gittins_table, play
from metaloop.rl.bandits import BatchedBernoulliBandit, BernoulliBanditFamily
from metaloop.rl.maml_rl import MAMLRL
from metaloop.rl.navigation import BatchedNavigation2D, Navigation2DFamily
from metaloop.rl.policies import GaussianMLPPolicy
from metaloop.rl.returns import LinearFeatureBaseline, discounted_returns, gae
from metaloop.rl.rl2 import RL2PPO, RL2Policy, run_trials

__all__ = [
    "MAMLRL",
    "REFERENCES",
    "RL2PPO",
    "RL2Policy",
    "gittins_table",
    "play",
    "run_trials",
    "BatchedBernoulliBandit",
    "BatchedNavigation2D",
    "BernoulliBanditFamily",
    "GaussianMLPPolicy",
    "LinearFeatureBaseline",
    "Navigation2DFamily",
    "discounted_returns",
    "gae",
]
