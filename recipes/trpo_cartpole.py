"""Balance CartPole with TRPO: natural-gradient policy steps inside a KL trust region.

A pole stands on a cart that the agent pushes left or right; every step the pole stays up
earns 1, up to 500 (CartPole-v1 counts a mean of 475 as solved). Each TRPO iteration [notes
§9.2.3] collects ``n_steps`` steps from each of ``num_envs`` copies, estimates advantages with
GAE(γ, λ), then moves the policy once: along the natural gradient (conjugate gradient on
Fisher-vector products), as far as the quadratic model of the mean KL divergence allows
(``max_kl``, eq. 9.23), shortened by a backtracking line search until the measured KL is within
the bound and the surrogate advantage (eq. 9.24) improves. The critic is fitted apart, with
``critic_epochs`` passes of Adam minibatch steps. The defaults are rl-baselines3-zoo's
CartPole-v1 settings for TRPO (2 copies × 512 steps, damping 1e-3, λ 0.98, 20 critic passes
of 512-step minibatches); ``benchmarks/rl_cartpole.py --algorithms trpo`` compares the steps
and the time to solve with sb3-contrib's TRPO at the same settings. ``stop_at_solved`` ends
the run at the first evaluation that solves the task.

Artefacts in ``output_dir``: ``agent.keras`` (the whole agent: ``keras.saving.load_model``),
``returns.png`` (training returns and their moving average), ``evaluations.png`` (evaluation
returns over the steps), ``policy_export`` (the deterministic policy, observations → actions,
as a SavedModel or ONNX file, checked against the agent) and ``metrics.json``. A run writes
``checkpoint.npz`` every ``checkpoint_interval`` steps and at the end; the next run continues
from it up to ``total_timesteps`` in all.

Run: ``dlkit run trpo_cartpole --max_kl 0.02`` or ``python recipes/trpo_cartpole.py``.
"""

from __future__ import annotations

from dataclasses import dataclass

from dlkit.recipes._deep_rl import RunConfig, run
from dlkit.rl import TRPO, TRPOConfig


@dataclass
class Config(RunConfig, TRPOConfig):
    """The run's settings (`RunConfig`) and TRPO's hyperparameters (`dlkit.rl.TRPOConfig`),
    with the defaults of this recipe."""

    num_envs: int = 2
    n_steps: int = 512
    batch_size: int = 512
    critic_epochs: int = 20
    cg_damping: float = 1e-3
    gae_lambda: float = 0.98
    output_dir: str = "runs/trpo_cartpole"


def main(config: Config) -> dict:
    """Trains (or resumes) TRPO, evaluates its deterministic policy and writes the artefacts."""
    return run(config, lambda env: TRPO.from_env(env, config.hidden_units, config=config))


if __name__ == "__main__":
    from dlkit.cli import recipe_entry_point

    recipe_entry_point(Config, main)
