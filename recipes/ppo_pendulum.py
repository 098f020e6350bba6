"""Swing a pendulum up and hold it with PPO's Gaussian policy over a continuous torque.

The pendulum starts at a random angle and speed; the agent applies a torque in [−2, 2] and pays
for the angle away from upright, the angular velocity and the torque, every one of 200 steps:
a random policy scores about −1,200, a good one about −150 to −200 (Pendulum-v1 has no
registered solve threshold). The actor outputs the mean of a Gaussian whose state-independent
log standard deviation is learned; the sampled torque is clipped to the box, the deterministic
policy is the clipped mean. PPO [notes §9.2.3] follows the Pendulum settings of
rl-baselines3-zoo (γ = 0.9, GAE λ = 0.95, 10 epochs, learning rate 1e-3) without their
state-dependent exploration, with shorter rollouts (4 copies × 256 steps) and annealing: with
a constant step size the evaluations keep swinging between about −160 and −600, annealed they
settle near −160 after about 40,000 steps.

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
    output_dir: str = "runs/ppo_pendulum"


def main(config: Config) -> dict:
    """Trains (or resumes) PPO, evaluates its deterministic policy and writes the artefacts."""
    return ppo_cartpole.main(config)


if __name__ == "__main__":
    from dlkit.cli import recipe_entry_point

    recipe_entry_point(Config, main)
