"""Swing a pendulum up and hold it with TRPO's Gaussian policy over a continuous torque.

The pendulum starts at a random angle and speed; the agent applies a torque in [−2, 2] and pays
for the angle away from upright, the angular velocity and the torque, every one of 200 steps
(Pendulum-v1 has no registered solve threshold). The actor outputs the mean of a Gaussian whose
state-independent log standard deviation is learned, and is part of the parameters the trust
region bounds: the KL of two Gaussians [notes §9.2.3] weighs a change of the mean against the
spread. The settings are rl-baselines3-zoo's Pendulum-v1 entry for TRPO (2 copies × 1,024
steps, γ 0.9, 15 critic passes) without its state-dependent exploration, which dlkit does not
have; ``benchmarks/rl_cartpole.py --algorithms trpo`` runs sb3-contrib's TRPO at the same
settings. The evaluations average 50 episodes, every 20,000 steps.
tests/recipes/test_deep_rl_quality.py holds the final evaluation of the default run to
``PENDULUM_BAR`` on every backend.

Artefacts in ``output_dir``: ``agent.keras``, ``returns.png``, ``evaluations.png``,
``policy_export`` (observations → torques, checked against the agent), ``metrics.json`` and
``checkpoint.npz``, as for ``trpo_cartpole``.

Run: ``dlkit run trpo_pendulum --total_timesteps 200000`` or ``python recipes/trpo_pendulum.py``.
"""

from __future__ import annotations

from dataclasses import dataclass

from dlkit.recipes import trpo_cartpole


@dataclass
class Config(trpo_cartpole.Config):
    """The settings of `trpo_cartpole` with this recipe's environment and defaults (the
    others are `dlkit.rl.TRPOConfig`'s)."""

    env_id: str = "Pendulum-v1"
    n_steps: int = 1024
    batch_size: int = 128
    critic_epochs: int = 15
    cg_damping: float = 0.1
    gae_lambda: float = 0.95
    gamma: float = 0.9
    eval_interval: int = 20_000
    eval_episodes: int = 50
    output_dir: str = "runs/trpo_pendulum"


def main(config: Config) -> dict:
    """Trains (or resumes) TRPO, evaluates its deterministic policy and writes the artefacts."""
    return trpo_cartpole.main(config)


if __name__ == "__main__":
    from dlkit.cli import recipe_entry_point

    recipe_entry_point(Config, main)
