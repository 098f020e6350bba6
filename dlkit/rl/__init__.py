"""Reinforcement learning of chapter 9: experience buffers, agents and their training loop.

Deep agents (`keras.Model` subclasses that train on TensorFlow, JAX and PyTorch): `DQN` with
double, prioritized, dueling, noisy, distributional (C51) and n-step options; the policy-gradient
agents `REINFORCE`, `A2C` and its asynchronous form `A3C` (worker threads); `PPO` and the
trust-region `TRPO`, for discrete and Gaussian policies. Each learns with
`learn(env, total_timesteps)` on gymnasium vector environments (`make_vector_env`) and exports
its deterministic policy with `policy_model()`. Each agent's hyperparameters are one config
dataclass (`DQNConfig`, `REINFORCEConfig`, `A2CConfig`, `A3CConfig`, `PPOConfig`,
`TRPOConfig`, extending `AgentConfig`, `ActorCriticConfig` and `PolicyGradientConfig`), which
the agent takes as `config=` or as keyword arguments.

Atari: `make_atari_env` builds games with the customary preprocessing (gymnasium's
`AtariPreprocessing` and `FrameStackObservation`, with `EpisodicLife`, `FireOnReset` and
clipped rewards) whose logged and evaluated returns are true game scores; the network builders
give uint8 frame stacks the Nature-DQN torso `nature_cnn`.

Tabular agents: ``QLearning`` and ``SARSA`` for discrete gymnasium environments, and
``evaluate``, which plays greedy episodes with any agent.

The buffers are pure NumPy: ``ReplayBuffer`` and ``PrioritizedReplayBuffer`` (on a ``SumTree``)
for off-policy agents, ``RolloutBuffer`` with generalized advantage estimates for on-policy ones.
The targets and losses of value-based agents (``q_learning_targets``, ``categorical_projection``,
``huber_loss``) are pure ``keras.ops`` functions.
"""

from dlkit.rl.a3c import A3C, A3CConfig
from dlkit.rl.agent import Agent, AgentConfig, GreedyAction
from dlkit.rl.atari import EpisodicLife, FireOnReset, make_atari_env
from dlkit.rl.buffers import PrioritizedReplayBuffer, ReplayBuffer
from dlkit.rl.dqn import DQN, DQNConfig, build_q_network
from dlkit.rl.envs import as_vector_env, make_vector_env
from dlkit.rl.frame_buffer import FrameReplayBuffer, PrioritizedFrameReplayBuffer
from dlkit.rl.normalization import ObservationNormalization, RewardScaler, RunningMeanStd
from dlkit.rl.ops import categorical_projection, huber_loss, q_learning_targets
from dlkit.rl.policy_gradient import (
    A2C,
    REINFORCE,
    A2CConfig,
    ActorCriticConfig,
    PolicyGradientConfig,
    REINFORCEConfig,
    build_actor_critic,
)
from dlkit.rl.ppo import PPO, PPOConfig
from dlkit.rl.rollout import RolloutBuffer
from dlkit.rl.sum_tree import SumTree
from dlkit.rl.tabular import SARSA, QLearning, evaluate
from dlkit.rl.torso import nature_cnn
from dlkit.rl.trpo import TRPO, TRPOConfig

__all__ = [
    "A2C",
    "A3C",
    "DQN",
    "PPO",
    "REINFORCE",
    "SARSA",
    "TRPO",
    "A2CConfig",
    "A3CConfig",
    "ActorCriticConfig",
    "Agent",
    "AgentConfig",
    "DQNConfig",
    "EpisodicLife",
    "FireOnReset",
    "FrameReplayBuffer",
    "GreedyAction",
    "ObservationNormalization",
    "PPOConfig",
    "PolicyGradientConfig",
    "PrioritizedFrameReplayBuffer",
    "PrioritizedReplayBuffer",
    "QLearning",
    "REINFORCEConfig",
    "ReplayBuffer",
    "RewardScaler",
    "RolloutBuffer",
    "RunningMeanStd",
    "SumTree",
    "TRPOConfig",
    "as_vector_env",
    "build_actor_critic",
    "build_q_network",
    "categorical_projection",
    "evaluate",
    "huber_loss",
    "make_atari_env",
    "make_vector_env",
    "nature_cnn",
    "q_learning_targets",
]
