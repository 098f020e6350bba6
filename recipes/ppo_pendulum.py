"""Swing a pendulum up and hold it with PPO's Gaussian policy over a continuous torque.

The pendulum starts at a random angle and speed; the agent applies a torque in [−2, 2] and pays
for the angle away from upright, the angular velocity and the torque, every one of 200 steps
(Pendulum-v1 has no registered solve threshold). The actor outputs the mean of a Gaussian whose
state-independent log standard deviation is learned; the sampled torque is clipped to the box,
the deterministic policy is the clipped mean. PPO [notes §9.2.3] follows the Pendulum settings
of rl-baselines3-zoo (γ = 0.9, GAE λ = 0.95, 10 epochs, learning rate 1e-3) without their
state-dependent exploration, with shorter rollouts (4 copies × 256 steps) and annealing. One
policy's return depends much on where an episode starts (a pendulum hanging still must first be
swung up), so the evaluations average 50 episodes, every 20,000 steps.
tests/recipes/test_deep_rl_quality.py holds the final evaluation of the default run to
``PENDULUM_BAR`` on every backend (the figures: docs/pages/recipes.md).

Artefacts in ``output_dir``: ``agent.keras`` (the whole agent: ``keras.saving.load_model``),
``returns.png`` (training returns and their moving average), ``evaluations.png`` (evaluation
returns over the steps), ``policy_export`` (the deterministic policy, observations → torques,
as a SavedModel or ONNX file, checked against the agent) and ``metrics.json``. A run writes
``checkpoint.npz`` every ``checkpoint_interval`` steps and at the end; the next run continues
from it up to ``total_timesteps`` in all.

Run: ``dlkit run ppo_pendulum --total_timesteps 200000`` or ``python recipes/ppo_pendulum.py``.
"""

from __future__ import annotations

from dataclasses import dataclass

from dlkit.recipes import ppo_cartpole


@dataclass
class Config(ppo_cartpole.Config):
    """The settings of `ppo_cartpole` with this recipe's environment and defaults."""

    env_id: str = "Pendulum-v1"
    num_envs: int = 4
    n_steps: int = 256
    batch_size: int = 64
    epochs: int = 10
    learning_rate: float = 1e-3
    gamma: float = 0.9
    eval_interval: int = 20_000
    eval_episodes: int = 50
    output_dir: str = "runs/ppo_pendulum"


def main(config: Config) -> dict:
    """Trains (or resumes) PPO, evaluates its deterministic policy and writes the artefacts."""
    return ppo_cartpole.main(config)


if __name__ == "__main__":
    from dlkit.cli import recipe_entry_point

    recipe_entry_point(Config, main)
