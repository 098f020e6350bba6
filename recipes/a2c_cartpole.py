"""Balance CartPole with synchronous advantage actor-critic (A2C).

The synchronous form of A3C [notes §9.2.2]: each of ``num_envs`` copies of the environment takes
``n_steps`` steps, every step's return is bootstrapped from the critic's value at the end of
the rollout (an n-step return, or GAE with ``gae_lambda`` < 1), and one RMSprop step follows on
the policy-gradient loss with the critic as baseline (eq. 9.22) plus the critic's squared
error. Many small, frequent updates: 100,000 steps of 8 copies × 5 steps are 2,500
gradient steps. With a constant step size the policy does not settle: after first reaching 500
its evaluations swing between about 100 and 500, so by default the run ends at the first
evaluation that solves the task (``stop_at_solved``).

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

from dlkit.recipes._deep_rl import check_rl_config, run
from dlkit.rl import A2C


@dataclass
class Config:
    env_id: str = "CartPole-v1"
    """Gymnasium environment with discrete actions (or a Box of actions: a Gaussian policy)."""
    num_envs: int = 8
    """Copies of the environment stepped together."""
    total_timesteps: int = 100_000
    """Environment steps of training in all, summed over copies (a resumed run counts the
    checkpoint's steps)."""
    n_steps: int = 5
    """Steps per copy per rollout (one gradient step each)."""
    learning_rate: float = 7e-4
    """RMSprop's step size."""
    gamma: float = 0.99
    """Discount factor γ."""
    gae_lambda: float = 1.0
    """λ of the advantage estimates; 1 gives A3C's n-step returns."""
    value_coefficient: float = 0.5
    """Weight of the critic's squared error in the loss."""
    entropy_coefficient: float = 0.0
    """Weight of the entropy bonus."""
    hidden_units: tuple[int, ...] = (64, 64)
    """Widths of the hidden tanh layers of the actor and of the critic."""
    stop_at_solved: bool = True
    """End the run at the first evaluation whose mean return reaches the environment's
    threshold (475 for CartPole-v1)."""
    seed: int = 0
    """Seed of the weights, action sampling and the environments' resets."""
    eval_interval: int = 5_000
    """Environment steps between evaluations of the deterministic policy."""
    eval_episodes: int = 10
    """Episodes of each evaluation and of the final one (played by as many copies)."""
    checkpoint_interval: int = 10_000
    """Environment steps between checkpoints (output_dir/checkpoint.npz)."""
    export: str = "saved_model"
    """Serving export of the policy (observations → actions): saved_model, onnx or none."""
    output_dir: str = "runs/a2c_cartpole"
    """Folder for the agent, figures, metrics, export and the resumable checkpoint."""
    verbose: int = 1
    """1: a progress bar with the mean return, steps per second and evaluations; 0: silent."""

    def __post_init__(self) -> None:
        check_rl_config(
            self,
            positive=("n_steps", "learning_rate"),
            non_negative=("value_coefficient", "entropy_coefficient"),
            unit_interval=("gamma", "gae_lambda"),
        )


def main(config: Config) -> dict:
    """Trains (or resumes) A2C, evaluates its deterministic policy and writes the artefacts."""

    def build_agent(env):
        return A2C.from_env(
            env,
            hidden_units=config.hidden_units,
            learning_rate=config.learning_rate,
            n_steps=config.n_steps,
            gamma=config.gamma,
            gae_lambda=config.gae_lambda,
            value_coefficient=config.value_coefficient,
            entropy_coefficient=config.entropy_coefficient,
            seed=config.seed,
        )

    return run(config, build_agent)


if __name__ == "__main__":
    from dlkit.cli import recipe_entry_point

    recipe_entry_point(Config, main)
