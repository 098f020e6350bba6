"""Teach a simulated robot to run with PPO: HalfCheetah in MuJoCo, with normalisation.

A two-legged planar cheetah (MuJoCo physics, `gymnasium[mujoco]`) earns its forward speed
minus a cost of its torques, over episodes of 1,000 steps; the agent sets 6 joint torques in
[−1, 1] from 17 joint positions and velocities. PPO [notes §9.2.3] with a Gaussian policy
learns it only once its inputs and rewards are on a sensible scale: observations are
standardised by running statistics and rewards divided by the running standard deviation of
the discounted return (`normalize_observations`, `normalize_rewards`; see
`dlkit.rl.normalization`). The statistics are part of the agent: saved in its checkpoints,
frozen when it is evaluated, and inside the exported policy, which takes raw observations.
The defaults are rl-baselines3-zoo's tuned HalfCheetah PPO settings (one copy × 512 steps, 20
epochs of 64-transition minibatches, Adam 2.06e-5, clip range 0.1, γ = 0.98, GAE λ = 0.92,
initial log standard deviation −2, 256-256 ReLU actor and critic) except that the networks
start orthogonal; the zoo trains 1 million steps.

Artefacts in ``output_dir``: ``agent.keras`` (the whole agent: ``keras.saving.load_model``),
``returns.png`` (training returns and their moving average), ``evaluations.png`` (evaluation
returns over the steps), ``policy_export`` (the deterministic policy, raw observations →
torques, as a SavedModel or ONNX file, checked against the agent) and ``metrics.json``. A run
writes ``checkpoint.npz`` every ``checkpoint_interval`` steps and at the end; the next run
continues from it up to ``total_timesteps`` in all.

Run: ``dlkit run ppo_mujoco --env_id Hopper-v5`` or ``python recipes/ppo_mujoco.py``; needs
the ``mujoco`` extra (``pip install "dlkit[mujoco]"``).
"""

from __future__ import annotations

from dataclasses import dataclass

from dlkit.recipes._deep_rl import RunConfig, run
from dlkit.rl import PPO, PPOConfig
from dlkit.validation import check_choice

ACTIVATIONS = ("relu", "tanh")


@dataclass
class Config(RunConfig, PPOConfig):
    """The run's settings (`RunConfig`) and PPO's hyperparameters (`dlkit.rl.PPOConfig`) with
    rl-baselines3-zoo's HalfCheetah values."""

    env_id: str = "HalfCheetah-v5"
    total_timesteps: int = 1_000_000
    hidden_units: tuple[int, ...] = (256, 256)
    n_steps: int = 512
    batch_size: int = 64
    epochs: int = 20
    learning_rate: float = 2.0633e-5
    gamma: float = 0.98
    gae_lambda: float = 0.92
    clip_epsilon: float = 0.1
    entropy_coefficient: float = 0.000401762
    value_coefficient: float = 0.58096
    max_grad_norm: float | None = 0.8
    log_std_init: float = -2.0
    normalize_observations: bool = True
    normalize_rewards: bool = True
    stop_at_solved: bool = False
    eval_interval: int = 50_000
    checkpoint_interval: int = 50_000
    output_dir: str = "runs/ppo_mujoco"
    activation: str = "relu"
    """Activation of the hidden layers of the actor and the critic: relu or tanh."""

    def __post_init__(self) -> None:
        super().__post_init__()
        self.activation = check_choice("activation", self.activation, ACTIVATIONS)


def main(config: Config) -> dict:
    """Trains (or resumes) PPO, evaluates its deterministic policy and writes the artefacts."""
    return run(
        config,
        lambda env: PPO.from_env(env, config.hidden_units, config.activation, config=config),
    )


if __name__ == "__main__":
    from dlkit.cli import recipe_entry_point

    recipe_entry_point(Config, main)
