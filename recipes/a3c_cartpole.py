"""Balance CartPole with asynchronous advantage actor-critic (A3C), one thread per worker.

The asynchronous algorithm of notes §9.2.2 (Algorithm S3): ``num_workers`` actor-learners,
one thread each, play their own copy of the environment, compute the gradient of the n-step
actor-critic loss on ``n_steps`` steps at their local copy of the parameters, and apply it to
the shared parameters with the shared RMSprop without waiting for each other, so gradients are
often applied a few versions after the parameters they were computed at (``dlkit.rl.A3C``).
``num_envs`` must equal ``num_workers`` (worker i steps copy i). With a constant step size
the policy does not settle, as with A2C, so by default the run ends at the first evaluation
that solves the task (``stop_at_solved``). Runs are not
reproducible (the threads interleave as the scheduler runs them): 13 of the 15 default runs of
``benchmarks/rl_policy_gradients.py --algorithms a3c`` solved within ``total_timesteps``, and
tests/recipes/test_deep_rl_quality.py holds one of two seeded default runs to solving on every
backend.

Artefacts in ``output_dir``: ``agent.keras`` (the whole agent: ``keras.saving.load_model``),
``returns.png`` (training returns and their moving average), ``evaluations.png`` (evaluation
returns over the steps), ``policy_export`` (the deterministic policy, observations → actions,
as a SavedModel or ONNX file, checked against the agent) and ``metrics.json``. A run writes
``checkpoint.npz`` every ``checkpoint_interval`` steps and at the end; the next run continues
from it up to ``total_timesteps`` in all, with new workers.

Run: ``dlkit run a3c_cartpole --num_workers 2`` or ``python recipes/a3c_cartpole.py``.
"""

from __future__ import annotations

from dataclasses import dataclass

from dlkit.recipes._deep_rl import RunConfig, run
from dlkit.rl import A3C, A3CConfig


@dataclass
class Config(RunConfig, A3CConfig):
    """The run's settings (`RunConfig`) and A3C's hyperparameters
    (`dlkit.rl.A3CConfig`), with the defaults of this recipe."""

    num_envs: int = 2
    num_workers: int = 2
    learning_rate: float = 1e-3
    n_steps: int = 10
    output_dir: str = "runs/a3c_cartpole"

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.num_envs != self.num_workers:
            raise ValueError(
                "Expected num_envs == num_workers: each worker steps its own copy. "
                f"Received: num_envs={self.num_envs}, num_workers={self.num_workers}"
            )


def main(config: Config) -> dict:
    """Trains (or resumes) A3C, evaluates its deterministic policy and writes the artefacts."""
    return run(config, lambda env: A3C.from_env(env, config.hidden_units, config=config))


if __name__ == "__main__":
    from dlkit.cli import recipe_entry_point

    recipe_entry_point(Config, main)
