"""Shared by the deep-RL recipes: the resumable training run, its artefacts and the policy export.

A recipe's ``Config`` extends ``RunConfig`` (the run's settings) and its agent's config (the
hyperparameters, `dlkit.rl.PPOConfig` ...), so the agent is built with ``config=config``. The
recipe gives that ``Config`` and a function building the agent for a vector environment;
``run`` does the rest. It trains on ``config.num_envs`` copies of ``config.env_id`` with
``agent.learn``, evaluating the deterministic policy every ``eval_interval`` steps on
``eval_episodes`` copies, and writes to ``output_dir``:

- ``agent.keras``: the whole agent (``keras.saving.load_model`` restores it, ``act`` included);
- ``returns.png``: every training episode's return and their moving average;
- ``evaluations.png``: the evaluations' mean returns over the timesteps, with the solve
  threshold when the environment has one;
- ``policy_export`` (or ``policy_export.onnx``): the deterministic policy ``policy_model()``
  for serving, unless ``export`` is "none", checked against ``agent.act(..., explore=False)``
  on observations of real episodes;
- ``metrics.json``: the final evaluation, when the evaluations first reached the threshold, the
  counters, the speed and the configuration;
- ``checkpoint.npz``: the run's whole state (weights, optimizer, replay buffer, counters).

Resuming: a run that finds ``checkpoint.npz`` first finishes the run it holds (its
``total_timesteps`` wins, as in ``Agent.learn``). If ``config.total_timesteps`` asks for more
steps in all, training then goes on, as a new run, up to that many: its schedules (DQN's ε,
PPO's annealing) start over, except that DQN keeps exploring at its final ε.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import ClassVar

import keras
import numpy as np

from dlkit.plotting import plot_episode_returns
from dlkit.recipes._recipe import check_config, export_for_serving, write_metrics
from dlkit.rl import make_vector_env
from dlkit.rl.envs import ENGINES
from dlkit.validation import check_choice, check_int, check_shape

# Episodes in the moving average of returns.png.
AVERAGE_WINDOW = 100
# Steps of the evaluation episodes whose observations check the exported policy.
PARITY_STEPS = 16
# Fields of `RunConfig` that must be integers >= 1.
POSITIVE_FIELDS = (
    "num_envs",
    "total_timesteps",
    "eval_interval",
    "eval_episodes",
    "checkpoint_interval",
)


@dataclass
class RunConfig:
    """The settings of a deep-RL recipe's run, shared by every deep-RL recipe.

    A recipe's ``Config`` extends it and its agent's config, this class first:
    ``class Config(RunConfig, PPOConfig)``. The agent's fields, their defaults and their docs
    then come from the agent's config (a recipe redeclares only the defaults it changes), and
    ``__post_init__`` checks the agent's fields, then the run's.
    """

    env_id: str = "CartPole-v1"
    """Gymnasium environment: discrete actions for DQN; discrete ones or a one-dimensional Box
    (a Gaussian policy) for REINFORCE, A2C and PPO."""
    num_envs: int = 1
    """Copies of the environment stepped together."""
    total_timesteps: int = 100_000
    """Environment steps of training in all, summed over copies (a resumed run counts the
    checkpoint's steps)."""
    hidden_units: tuple[int, ...] = (64, 64)
    """Widths of the hidden layers of each network (ReLU in a Q-network, tanh in an actor and
    a critic)."""
    stop_at_solved: bool = True
    """End the run at the first evaluation whose mean return reaches the environment's
    threshold (475 for CartPole-v1; none for Pendulum-v1)."""
    seed: int = 0
    """Seed of the weights, the agent's random draws and the environments' resets."""
    eval_interval: int = 5_000
    """Environment steps between evaluations of the deterministic (greedy) policy."""
    eval_episodes: int = 10
    """Episodes of each evaluation and of the final one (played by as many copies)."""
    checkpoint_interval: int = 10_000
    """Environment steps between checkpoints (output_dir/checkpoint.npz)."""
    engine: str = "gymnasium"
    """Vector environment engine: gymnasium (in process, or worker processes with
    asynchronous) or envpool (the `envpool` extra, its C++ threads)."""
    asynchronous: bool = False
    """Step the gymnasium engine's copies in worker processes (for slow simulators)."""
    export: str = "saved_model"
    """Serving export of the deterministic policy (observations → actions): saved_model, onnx
    or none."""
    output_dir: str = "runs"
    """Folder for the agent, figures, metrics, export and the resumable checkpoint."""
    verbose: int = 1
    """1: a progress bar with the mean return, steps per second, DQN's ε and the evaluations;
    0: silent."""

    # Vector observations need hidden layers; pixels have the torso's.
    needs_hidden_units: ClassVar[bool] = True

    def __post_init__(self) -> None:
        super().__post_init__()  # the agent's config checks its fields
        for name in POSITIVE_FIELDS:
            setattr(self, name, check_int(name, getattr(self, name)))
        check_config(self)  # `export`
        self.engine = check_choice("engine", self.engine, ENGINES)
        self.asynchronous = bool(self.asynchronous)
        self.hidden_units = check_shape("hidden_units", self.hidden_units, minimum=1)
        if not self.hidden_units and self.needs_hidden_units:
            raise ValueError(
                "Expected `hidden_units` to be one or more layer widths >= 1. "
                f"Received: hidden_units={self.hidden_units!r}"
            )
        self._check_env_id()

    def _check_env_id(self) -> None:
        import gymnasium as gym

        if self.env_id not in gym.registry:
            raise ValueError(
                "Expected `env_id` to be a registered gymnasium environment. "
                f"Received: env_id={self.env_id!r}"
            )

    def make_env(self, num_envs: int):
        """`num_envs` copies of `env_id` as one vector environment (`dlkit.rl.make_vector_env`)."""
        return make_vector_env(
            self.env_id, num_envs, asynchronous=self.asynchronous, engine=self.engine
        )


@dataclass
class AtariRunConfig(RunConfig):
    """The settings of a run on an Atari game, from pixels: `RunConfig` with the game's
    preprocessing (`dlkit.rl.make_atari_env`) and the defaults of Atari runs.

    The networks take the uint8 frame stacks through the Nature-DQN torso; `hidden_units` are
    further layers after it (none by default). Learning episodes end at each lost life and see
    clipped rewards; the logged and evaluated returns are whole games at their true scores.
    """

    env_id: str = "ALE/Breakout-v5"
    """Atari game registered by ale-py (the `atari` extra), such as ALE/Pong-v5."""
    hidden_units: tuple[int, ...] = ()
    """Widths of further hidden layers after the convolutional torso's 512 units."""
    max_episode_steps: int | None = None
    """The longest game in agent steps (None: ALE's own limit of 108,000 frames)."""
    stop_at_solved: bool = False
    eval_interval: int = 100_000
    checkpoint_interval: int = 100_000

    needs_hidden_units: ClassVar[bool] = False

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.max_episode_steps is not None:
            self.max_episode_steps = check_int("max_episode_steps", self.max_episode_steps)

    def _check_env_id(self) -> None:
        from dlkit.rl.atari import check_atari_id

        check_atari_id(self.env_id)

    def make_env(self, num_envs: int):
        """`num_envs` copies of the preprocessed game (`dlkit.rl.make_atari_env`)."""
        from dlkit.rl import make_atari_env

        return make_atari_env(
            self.env_id,
            num_envs,
            max_episode_steps=self.max_episode_steps,
            asynchronous=self.asynchronous,
            engine=self.engine,
        )


def solve_threshold(env_id: str) -> float | None:
    """The environment's registered ``reward_threshold`` (475 for CartPole-v1), or None."""
    import gymnasium as gym

    return gym.spec(env_id).reward_threshold


class StopWhenSolved(keras.callbacks.Callback):
    """Ends ``learn`` once an evaluation's mean return reaches `threshold`."""

    def __init__(self, threshold: float):
        super().__init__()
        self.threshold = threshold

    def on_epoch_end(self, epoch, logs=None):
        if (logs or {}).get("eval_return", -np.inf) >= self.threshold:
            self.model.stop_training = True


def checkpoint_counters(path: Path) -> dict:
    """The counters a checkpoint holds (timesteps, episodes, the run's start and target)."""
    with np.load(path, allow_pickle=False) as state:
        return json.loads(str(state["counters"]))


def train_or_resume(agent, env, eval_env, config, output_dir: Path, callbacks=()) -> dict:
    """Trains `agent` up to ``config.total_timesteps`` in all, resuming from the checkpoint in
    `output_dir`; returns the run's counters and timing."""
    checkpoint = output_dir / "checkpoint.npz"
    counters = checkpoint_counters(checkpoint) if checkpoint.exists() else None
    resumed_from = counters["num_timesteps"] if counters else 0
    finished = counters is not None and counters["num_timesteps"] >= counters["run_target"]
    arguments = {
        "callbacks": list(callbacks),
        "eval_env": eval_env,
        "eval_interval": config.eval_interval,
        "eval_episodes": config.eval_episodes,
        "checkpoint_dir": str(output_dir),
        "checkpoint_interval": config.checkpoint_interval,
        "verbose": config.verbose,
    }
    start = time.perf_counter()
    done, stopped = resumed_from, False
    if not finished:
        # A new run, or the rest of the checkpoint's run.
        agent.learn(env, config.total_timesteps, **arguments)
        done, stopped = agent.num_timesteps, agent.stop_training
    remaining = config.total_timesteps - done
    if remaining > 0 and not stopped:
        # More steps than the checkpoint's run: `learn` extends the finished run.
        agent.learn(env, remaining, **arguments)
    elif finished:
        agent.load_checkpoint(checkpoint, env)  # nothing left to train
    train_seconds = time.perf_counter() - start
    return {
        "timesteps": agent.num_timesteps,
        "episodes": agent.num_episodes,
        "gradient_steps": agent.num_updates,
        "resumed_from_timesteps": resumed_from,
        "stopped_when_solved": bool(getattr(agent, "stop_training", False)),
        "train_seconds": round(train_seconds, 3),
        "steps_per_second": round((agent.num_timesteps - resumed_from) / train_seconds, 1),
    }


def plot_evaluations(evaluations, path: Path, threshold: float | None) -> Path:
    """Draws the evaluations' mean returns over the timesteps, and the solve threshold."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=(6, 3), dpi=100)
    axes = figure.subplots()
    if evaluations:
        timesteps, returns = zip(*evaluations)
        axes.plot(timesteps, returns, "o-", markersize=3, label="evaluation mean return")
    if threshold is not None:
        axes.axhline(threshold, color="gray", linestyle="--", label=f"solved ({threshold:g})")
    axes.set_xlabel("timestep")
    axes.set_ylabel("return")
    axes.legend(fontsize=7)
    figure.savefig(path, bbox_inches="tight")
    return path


def policy_observations(agent, env, steps: int = PARITY_STEPS, seed: int = 0) -> np.ndarray:
    """Observations (steps · num_envs, *shape) of deterministic episodes on a vector env."""
    observations, _ = env.reset(seed=[seed + i for i in range(env.num_envs)])
    batches = []
    for _ in range(steps):
        observations = np.asarray(observations)
        # Frames stay uint8, what the exported policy takes; vectors become float32.
        batches.append(
            observations if observations.dtype == np.uint8 else observations.astype("float32")
        )
        observations, *_ = env.step(agent.act(observations, explore=False))
    return np.concatenate(batches)


def export_policy(paths: dict, agent, eval_env, output_dir: Path, export_format: str) -> dict:
    """Exports ``agent.policy_model()`` and checks that the export acts as the agent does;
    returns the check's results (none when `export_format` is "none")."""
    export_for_serving(paths, "policy_export", agent.policy_model(), output_dir, export_format)
    if export_format == "none":
        return {}
    from dlkit.export import verify

    observations = policy_observations(agent, eval_env)
    expected = agent.act(observations, explore=False)
    difference = verify(paths["policy_export"], observations, expected, atol=1e-4)
    return {"export_parity_observations": len(observations), "export_max_difference": difference}


def run(config, build_agent: Callable) -> dict:
    """Builds the agent with ``build_agent(env)`` for the environments ``config.make_env``
    makes, trains (or resumes) it, evaluates its
    deterministic policy and writes the artefacts; returns the metrics and paths."""
    output_dir = Path(config.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    keras.utils.set_random_seed(config.seed)
    env = config.make_env(config.num_envs)
    eval_env = config.make_env(config.eval_episodes)
    agent = build_agent(env)
    threshold = solve_threshold(config.env_id)
    callbacks = []
    if getattr(config, "stop_at_solved", False) and threshold is not None:
        callbacks.append(StopWhenSolved(threshold))
    summary = train_or_resume(agent, env, eval_env, config, output_dir, callbacks)

    eval_return = agent.evaluate(eval_env, config.eval_episodes, seed=config.seed)
    names = ("agent.keras", "returns.png", "evaluations.png", "metrics.json", "checkpoint.npz")
    paths = {Path(name).stem: output_dir / name for name in names}
    agent.save(paths["agent"])
    plot_episode_returns(agent.episode_returns, paths["returns"], AVERAGE_WINDOW)
    plot_evaluations(agent.evaluations, paths["evaluations"], threshold)
    parity = export_policy(paths, agent, eval_env, output_dir, config.export)
    solved_at = None
    if threshold is not None:
        solved_at = next((t for t, mean in agent.evaluations if mean >= threshold), None)
    results = {
        "backend": keras.backend.backend(),
        "eval_mean_return": eval_return,
        "solve_threshold": threshold,
        "solved_at_timesteps": solved_at,
        **summary,
        "train_mean_return_last_100": float(np.mean(agent.episode_returns[-100:] or [0.0])),
        "evaluations": [[int(t), float(mean)] for t, mean in agent.evaluations],
        **parity,
        "config": asdict(config),
    }
    env.close()
    eval_env.close()
    return write_metrics(results, paths)
