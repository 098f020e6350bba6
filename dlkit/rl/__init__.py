"""Reinforcement learning of chapter 9: experience buffers, agents and their training loop.

Tabular agents: ``QLearning`` and ``SARSA`` for discrete gymnasium environments, and
``evaluate``, which plays greedy episodes with any agent.

The buffers are pure NumPy: ``ReplayBuffer`` and ``PrioritizedReplayBuffer`` (on a ``SumTree``)
for off-policy agents, ``RolloutBuffer`` with generalized advantage estimates for on-policy ones.
The targets and losses of value-based agents (``q_learning_targets``, ``categorical_projection``,
``huber_loss``) are pure ``keras.ops`` functions.
"""

from dlkit.rl.buffers import PrioritizedReplayBuffer, ReplayBuffer
from dlkit.rl.ops import categorical_projection, huber_loss, q_learning_targets
from dlkit.rl.rollout import RolloutBuffer
from dlkit.rl.sum_tree import SumTree
from dlkit.rl.tabular import SARSA, QLearning, evaluate

__all__ = [
    "SARSA",
    "PrioritizedReplayBuffer",
    "QLearning",
    "ReplayBuffer",
    "RolloutBuffer",
    "SumTree",
    "categorical_projection",
    "evaluate",
    "huber_loss",
    "q_learning_targets",
]
