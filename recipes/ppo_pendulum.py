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

from dlkit.recipes._deep_rl import check_rl_config, run
from dlkit.rl import PPO


@dataclass
class Config:
    env_id: str = "Pendulum-v1"
    """Gymnasium environment with a one-dimensional Box of actions (or discrete ones)."""
    num_envs: int = 4
    """Copies of the environment stepped together."""
    total_timesteps: int = 100_000
    """Environment steps of training in all, summed over copies (a resumed run counts the
    checkpoint's steps)."""
    n_steps: int = 256
    """Steps per copy per rollout."""
    batch_size: int = 64
    """Transitions per minibatch."""
    epochs: int = 10
    """Passes over each rollout."""
    learning_rate: float = 1e-3
    """Adam's (initial) step size."""
    gamma: float = 0.9
    """Discount factor γ."""
    gae_lambda: float = 0.95
    """λ of the generalized advantage estimates."""
    clip_epsilon: float = 0.2
    """(Initial) clip range ε of the probability ratio."""
    entropy_coefficient: float = 0.0
    """Weight of the entropy bonus."""
    anneal: bool = True
    """Decay the learning rate and the clip range linearly to 0 over the run."""
    hidden_units: tuple[int, ...] = (64, 64)
    """Widths of the hidden tanh layers of the actor and of the critic."""
    log_std_init: float = 0.0
    """Initial log standard deviation of the Gaussian policy."""
    seed: int = 0
    """Seed of the weights, action noise, minibatches and the environments' resets."""
    eval_interval: int = 5_000
    """Environment steps between evaluations of the deterministic policy."""
    eval_episodes: int = 10
    """Episodes of each evaluation and of the final one (played by as many copies)."""
    checkpoint_interval: int = 10_000
    """Environment steps between checkpoints (output_dir/checkpoint.npz)."""
    export: str = "saved_model"
    """Serving export of the policy (observations → torques): saved_model, onnx or none."""
    output_dir: str = "runs/ppo_pendulum"
    """Folder for the agent, figures, metrics, export and the resumable checkpoint."""
    verbose: int = 1
    """1: a progress bar with the mean return, steps per second and evaluations; 0: silent."""

    def __post_init__(self) -> None:
        check_rl_config(
            self,
            positive=("n_steps", "batch_size", "epochs", "learning_rate", "clip_epsilon"),
            non_negative=("entropy_coefficient",),
            unit_interval=("gamma", "gae_lambda"),
        )


def main(config: Config) -> dict:
    """Trains (or resumes) PPO, evaluates its deterministic policy and writes the artefacts."""

    def build_agent(env):
        return PPO.from_env(
            env,
            hidden_units=config.hidden_units,
            learning_rate=config.learning_rate,
            n_steps=config.n_steps,
            batch_size=config.batch_size,
            epochs=config.epochs,
            gamma=config.gamma,
            gae_lambda=config.gae_lambda,
            clip_epsilon=config.clip_epsilon,
            entropy_coefficient=config.entropy_coefficient,
            anneal=config.anneal,
            log_std_init=config.log_std_init,
            seed=config.seed,
        )

    return run(config, build_agent)


if __name__ == "__main__":
    from dlkit.cli import recipe_entry_point

    recipe_entry_point(Config, main)
