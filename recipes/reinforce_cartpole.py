"""Balance CartPole with REINFORCE, the Monte-Carlo policy gradient with a learned baseline.

Each update waits for ``episodes_per_update`` complete episodes, computes every step's
discounted return G_t to the end of its episode and takes one Adam step on
−(G_t − V(s_t)) log π(a_t | s_t), with the critic V as the variance-reducing baseline, plus the
critic's squared error [notes §9.2.1, eq. 9.22]. The returns are unbiased but noisy, and an update
needs whole episodes: the longer the episodes get, the fewer updates per step. By default the
run ends at the first evaluation that solves the task (``stop_at_solved``);
tests/recipes/test_deep_rl_quality.py holds the default run to solving CartPole within
``total_timesteps`` on every backend.

Artefacts in ``output_dir``: ``agent.keras`` (the whole agent: ``keras.saving.load_model``),
``returns.png`` (training returns and their moving average), ``evaluations.png`` (evaluation
returns over the steps), ``policy_export`` (the deterministic policy, observations → actions,
as a SavedModel or ONNX file, checked against the agent) and ``metrics.json``. A run writes
``checkpoint.npz`` every ``checkpoint_interval`` steps and at the end; the next run continues
from it up to ``total_timesteps`` in all.

Run: ``dlkit run reinforce_cartpole --episodes_per_update 8`` or
``python recipes/reinforce_cartpole.py``.
"""

from __future__ import annotations

from dataclasses import dataclass

from dlkit.recipes._deep_rl import RunConfig, run
from dlkit.rl import REINFORCE, REINFORCEConfig


@dataclass
class Config(RunConfig, REINFORCEConfig):
    """The run's settings (`RunConfig`) and REINFORCE's hyperparameters
    (`dlkit.rl.REINFORCEConfig`), with the defaults of this recipe."""

    num_envs: int = 4
    output_dir: str = "runs/reinforce_cartpole"


def main(config: Config) -> dict:
    """Trains (or resumes) REINFORCE, evaluates its deterministic policy and writes the
    artefacts."""
    return run(config, lambda env: REINFORCE.from_env(env, config.hidden_units, config=config))


if __name__ == "__main__":
    from dlkit.cli import recipe_entry_point

    recipe_entry_point(Config, main)
