"""Balance CartPole with synchronous advantage actor-critic (A2C).

The synchronous form of A3C [notes §9.2.2]: each of ``num_envs`` copies of the environment takes
``n_steps`` steps, every step's return is bootstrapped from the critic's value at the end of
the rollout (an n-step return, or GAE with ``gae_lambda`` < 1), and one RMSprop step follows on
the policy-gradient loss with the critic as baseline (eq. 9.22) plus the critic's squared
error, with a step size of 1e-3 instead of the 7e-4 of A2C's config and rl-baselines3-zoo
(measured: with 7e-4, one of three seeds on TensorFlow did not solve within 100,000 steps).
Many small, frequent updates: 100,000 steps of 8 copies × 5 steps are 2,500
gradient steps. With a constant step size the policy does not settle: after first reaching 500
its evaluations keep swinging (see ``evaluations.png``), so by default the run ends at the first
evaluation that solves the task (``stop_at_solved``). tests/recipes/test_deep_rl_quality.py
holds the default run to solving CartPole within ``total_timesteps`` on every backend.

Artefacts in ``output_dir``: ``agent.keras`` (the whole agent: ``keras.saving.load_model``),
``returns.png`` (training returns and their moving average), ``evaluations.png`` (evaluation
returns over the steps), ``policy_export`` (the deterministic policy, observations → actions,
as a SavedModel or ONNX file, checked against the agent) and ``metrics.json``. A run writes
``checkpoint.npz`` every ``checkpoint_interval`` steps and at the end; the next run continues
from it up to ``total_timesteps`` in all.

Run: ``dlkit run a2c_cartpole --total_timesteps 200000`` or ``python recipes/a2c_cartpole.py``.
"""

from __future__ import annotations

from dataclasses import dataclass

from dlkit.recipes._deep_rl import RunConfig, run
from dlkit.rl import A2C, A2CConfig


@dataclass
class Config(RunConfig, A2CConfig):
    """The run's settings (`RunConfig`) and A2C's hyperparameters
    (`dlkit.rl.A2CConfig`), with the defaults of this recipe."""

    num_envs: int = 8
    learning_rate: float = 1e-3
    output_dir: str = "runs/a2c_cartpole"


def main(config: Config) -> dict:
    """Trains (or resumes) A2C, evaluates its deterministic policy and writes the artefacts."""
    return run(config, lambda env: A2C.from_env(env, config.hidden_units, config=config))


if __name__ == "__main__":
    from dlkit.cli import recipe_entry_point

    recipe_entry_point(Config, main)
