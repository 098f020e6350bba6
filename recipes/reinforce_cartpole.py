"""Balance CartPole with REINFORCE, the Monte-Carlo policy gradient with a learned baseline.

Each update waits for ``episodes_per_update`` complete episodes, computes every step's
discounted return G_t to the end of its episode and takes one Adam step on
−(G_t − V(s_t)) log π(a_t | s_t), with the critic V as the variance-reducing baseline, plus the
critic's squared error [notes §9.2.1, eq. 9.22]. The returns are unbiased but noisy, and an update
needs whole episodes: the longer the episodes get, the fewer updates per step.

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

from dlkit.recipes._deep_rl import check_rl_config, run
from dlkit.rl import REINFORCE


@dataclass
class Config:
    env_id: str = "CartPole-v1"
    """Gymnasium environment with discrete actions (or a Box of actions: a Gaussian policy)."""
    num_envs: int = 4
    """Copies of the environment stepped together."""
    total_timesteps: int = 100_000
    """Environment steps of training in all, summed over copies (a resumed run counts the
    checkpoint's steps)."""
    episodes_per_update: int = 4
    """Complete episodes per gradient step."""
    learning_rate: float = 1e-3
    """Adam's step size."""
    gamma: float = 0.99
    """Discount factor γ."""
    value_coefficient: float = 0.5
    """Weight of the baseline's squared error in the loss."""
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
    output_dir: str = "runs/reinforce_cartpole"
    """Folder for the agent, figures, metrics, export and the resumable checkpoint."""
    verbose: int = 1
    """1: a progress bar with the mean return, steps per second and evaluations; 0: silent."""

    def __post_init__(self) -> None:
        check_rl_config(
            self,
            positive=("episodes_per_update", "learning_rate"),
            non_negative=("value_coefficient", "entropy_coefficient"),
            unit_interval=("gamma",),
        )


def main(config: Config) -> dict:
    """Trains (or resumes) REINFORCE, evaluates its deterministic policy and writes the
    artefacts."""

    def build_agent(env):
        return REINFORCE.from_env(
            env,
            hidden_units=config.hidden_units,
            learning_rate=config.learning_rate,
            episodes_per_update=config.episodes_per_update,
            gamma=config.gamma,
            value_coefficient=config.value_coefficient,
            entropy_coefficient=config.entropy_coefficient,
            seed=config.seed,
        )

    return run(config, build_agent)


if __name__ == "__main__":
    from dlkit.cli import recipe_entry_point

    recipe_entry_point(Config, main)
