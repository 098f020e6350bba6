"""Balance CartPole with PPO and export the learned policy for serving.

A pole stands on a cart that the agent pushes left or right; every step the pole stays up
earns 1, up to 500 (CartPole-v1 counts a mean of 475 as solved). PPO [notes §9.2.3] collects
``n_steps`` steps from each of ``num_envs`` copies of the environment, estimates advantages with
GAE(γ, λ) and takes ``epochs`` passes of minibatch steps on the clipped surrogate objective
(eqs. 9.26-9.28); with ``anneal`` the learning rate and the clip range fall linearly to 0. The
defaults are rl-baselines3-zoo's CartPole settings (8 copies × 32 steps, 20 epochs of one
256-step minibatch) with three values of dlkit's own: γ = 0.99, λ = 0.95 and a learning rate of
3e-3 instead of 0.98, 0.8 and 1e-3. The PPO table of benchmarks/README.md (``rl_cartpole.py``,
stored in benchmarks/results/) gives the steps to solve with these values and with the zoo's,
for dlkit on each backend and for Stable-Baselines3; ``stop_at_solved`` ends the run at the
first evaluation that solves the task.

Artefacts in ``output_dir``: ``agent.keras`` (the whole agent: ``keras.saving.load_model``),
``returns.png`` (training returns and their moving average), ``evaluations.png`` (evaluation
returns over the steps), ``policy_export`` (the deterministic policy, observations → actions,
as a SavedModel or ONNX file, checked against the agent) and ``metrics.json``. A run writes
``checkpoint.npz`` every ``checkpoint_interval`` steps and at the end; the next run continues
from it up to ``total_timesteps`` in all.

Run: ``dlkit run ppo_cartpole --total_timesteps 50000`` or ``python recipes/ppo_cartpole.py``.
"""

from __future__ import annotations

from dataclasses import dataclass

from dlkit.recipes._deep_rl import RunConfig, run
from dlkit.rl import PPO, PPOConfig


@dataclass
class Config(RunConfig, PPOConfig):
    """The run's settings (`RunConfig`) and PPO's hyperparameters (`dlkit.rl.PPOConfig`), with
    the defaults of this recipe."""

    num_envs: int = 8
    n_steps: int = 32
    batch_size: int = 256
    epochs: int = 20
    learning_rate: float = 3e-3
    anneal: bool = True
    output_dir: str = "runs/ppo_cartpole"


def main(config: Config) -> dict:
    """Trains (or resumes) PPO, evaluates its deterministic policy and writes the artefacts."""
    return run(config, lambda env: PPO.from_env(env, config.hidden_units, config=config))


if __name__ == "__main__":
    from dlkit.cli import recipe_entry_point

    recipe_entry_point(Config, main)
