"""Balance CartPole with PPO and export the learned policy for serving.

A pole stands on a cart that the agent pushes left or right; every step the pole stays up
earns 1, up to 500 (CartPole-v1 counts a mean of 475 as solved). PPO [notes §9.2.3] collects
``n_steps`` steps from each of ``num_envs`` copies of the environment, estimates advantages with
GAE(γ, λ) and takes ``epochs`` passes of minibatch steps on the clipped surrogate objective
(eqs. 9.26-9.28); with ``anneal`` the learning rate and the clip range fall linearly to 0. The
defaults are rl-baselines3-zoo's CartPole settings (8 copies × 32 steps, 20 epochs of one
256-step minibatch) with three values of dlkit's own: γ = 0.99, λ = 0.95 and a learning rate of
3e-3 instead of 0.98, 0.8 and 1e-3. On seeds 100-119 they halved the median number of steps
before the deterministic policy first reaches 475, from 20,000 to 10,000 (benchmarks/README.md,
``rl_cartpole.py``); ``stop_at_solved`` ends the run at the first evaluation that does.

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

from dlkit.recipes._deep_rl import check_rl_config, run
from dlkit.rl import PPO


@dataclass
class Config:
    env_id: str = "CartPole-v1"
    """Gymnasium environment with discrete actions (or a Box of actions: a Gaussian policy)."""
    num_envs: int = 8
    """Copies of the environment stepped together."""
    total_timesteps: int = 100_000
    """Environment steps of training in all, summed over copies (a resumed run counts the
    checkpoint's steps)."""
    n_steps: int = 32
    """Steps per copy per rollout."""
    batch_size: int = 256
    """Transitions per minibatch."""
    epochs: int = 20
    """Passes over each rollout."""
    learning_rate: float = 3e-3
    """Adam's (initial) step size."""
    gamma: float = 0.99
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
    stop_at_solved: bool = True
    """End the run at the first evaluation whose mean return reaches the environment's
    threshold (475 for CartPole-v1)."""
    seed: int = 0
    """Seed of the weights, action sampling, minibatches and the environments' resets."""
    eval_interval: int = 5_000
    """Environment steps between evaluations of the deterministic policy."""
    eval_episodes: int = 10
    """Episodes of each evaluation and of the final one (played by as many copies)."""
    checkpoint_interval: int = 10_000
    """Environment steps between checkpoints (output_dir/checkpoint.npz)."""
    export: str = "saved_model"
    """Serving export of the policy (observations → actions): saved_model, onnx or none."""
    output_dir: str = "runs/ppo_cartpole"
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
            seed=config.seed,
        )

    return run(config, build_agent)


if __name__ == "__main__":
    from dlkit.cli import recipe_entry_point

    recipe_entry_point(Config, main)
