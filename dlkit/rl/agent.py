"""What every deep agent shares: stepping vector environments, `learn`, evaluation, checkpoints.

A deep agent is a `keras.Model` whose `compute_loss` is its learning rule (the TD loss of DQN,
the clipped surrogate of PPO, ...). Its `learn(env, total_timesteps)` collects experience
from a gymnasium vector environment with a compiled acting function
(`dlkit.training.compile_inference`, microseconds per step, never `predict`), and takes its
gradient steps with Keras' own `train_on_batch`, so the same agent trains on TensorFlow, JAX
and PyTorch.

`learn` reports through Keras callbacks: each iteration (a rollout of an on-policy agent,
`log_interval` steps of an off-policy one) ends with `on_epoch_end(iteration, logs)`, whose
logs hold the timesteps, the mean return of the last 100 episodes, the losses, the steps per
second and, when evaluated, `eval_return`. `keras.callbacks.TensorBoard` therefore logs an RL
run, and a callback that sets `agent.stop_training = True` ends it.

Checkpoints (`checkpoint_dir`): `checkpoint.npz`, written atomically (a crash while writing
leaves the earlier files intact) with an integrity record (`checkpoint.json`: format version,
size, SHA-256), holding the agent's and the optimizer's variables, the replay buffer, the NumPy
generator, every counter and the running statistics of the normalisation
(`dlkit.rl.normalization`). The checkpoint before it is kept as `checkpoint.previous.npz`:
when the newest does not match its record (cut short, garbled, its record lost), `learn`
resumes from the previous one with a warning naming the bad file (`dlkit.rl.saving`). A
checkpoint is read whole and checked (shapes, kinds, finite weights, the buffer's arrays)
before anything is assigned, and nothing in it is run as code (no pickle). `learn` called with
a directory that holds a checkpoint restores it and finishes that run; when that run had
finished, it trains on as a new run that extends it. The environments' own states are not
saved: the episodes running at the checkpoint restart from a reset.
"""

from __future__ import annotations

import dataclasses
import json
import operator
import time
import warnings
from pathlib import Path
from typing import ClassVar

import keras
import numpy as np
from keras import ops

from dlkit.rl import normalization
from dlkit.rl.envs import (
    as_vector_env,
    episode_statistics,
    failing_env_index,
    final_observations,
    records_episode_statistics,
)
from dlkit.rl.saving import (
    generator_from_json,
    generator_to_json,
    latest_verified,
    read_checkpoint_arrays,
    write_verified,
)
from dlkit.validation import (
    check_choice,
    check_int,
    check_positive,
    check_type,
    check_unit_interval,
)

__all__ = ["Agent", "AgentConfig", "GreedyAction", "evaluate_vector"]

# Episodes averaged in the logged mean return.
RETURN_WINDOW = 100
_CHECKPOINT_NAME = "checkpoint.npz"


@dataclasses.dataclass
class AgentConfig:
    """The hyperparameters every deep agent has; each agent's config extends it.

    An agent's config (`DQNConfig`, `REINFORCEConfig`, `A2CConfig`, `PPOConfig`) holds its
    hyperparameters and their defaults, checks them when it is built, and is what the agent's
    `get_config` serialises. The agent takes it as `config=`, or its fields as keyword
    arguments. The string under each field documents it, and is its `--help` in a recipe,
    whose `Config` extends the agent's config.
    """

    learning_rate: float = 1e-3
    """The optimizer's (initial) learning rate, > 0."""
    gamma: float = 0.99
    """The discount factor γ, in [0, 1]."""
    max_grad_norm: float | None = 0.5
    """The global gradient-norm clip, > 0; None for none."""
    seed: int | None = None
    """Seeds the agent's random draws (exploration or action sampling, replay or minibatch
    sampling) and the environments' resets; None for a fresh seed."""
    normalize_observations: bool = False
    """Standardise vector observations by running statistics updated during `learn`,
    clip((x − mean) / sqrt(var + ε), ±observation_clip), as SB3's VecNormalize
    (`dlkit.rl.normalization`); not for images, which the network scales."""
    normalize_rewards: bool = False
    """Divide the rewards the agent learns from by the running standard deviation of the
    discounted return, clipped to ±reward_clip; logged and evaluated returns stay true."""
    observation_clip: float = normalization.CLIP
    """The bound of normalised observations, > 0."""
    reward_clip: float = normalization.CLIP
    """The bound of scaled rewards, > 0."""
    normalization_epsilon: float = normalization.EPSILON
    """ε under the square roots of the normalisation, > 0."""

    def __post_init__(self) -> None:
        self.learning_rate = check_positive("learning_rate", self.learning_rate)
        self.gamma = check_unit_interval("gamma", self.gamma)
        if self.max_grad_norm is not None:
            self.max_grad_norm = check_positive("max_grad_norm", self.max_grad_norm)
        if isinstance(self.seed, bool) or not isinstance(self.seed, (int, type(None))):
            raise TypeError(f"Expected `seed` to be an int or None. Received: seed={self.seed!r}")
        self.normalize_observations = bool(self.normalize_observations)
        self.normalize_rewards = bool(self.normalize_rewards)
        self.observation_clip = check_positive("observation_clip", self.observation_clip)
        self.reward_clip = check_positive("reward_clip", self.reward_clip)
        self.normalization_epsilon = check_positive(
            "normalization_epsilon", self.normalization_epsilon
        )


def resolve_config(config_class: type, config: object, overrides: dict):
    """A new, checked `config_class` with the fields of `config` replaced by `overrides`.

    `config` is None (the defaults) or an instance of `config_class` or of a subclass, such as
    a recipe's `Config`, of which only the fields of `config_class` are read. A keyword
    argument given with a config overrides that config's field.
    """
    if config is None:
        return config_class(**overrides)
    check_type("config", config, config_class, f"a {config_class.__name__}")
    values = {field.name: getattr(config, field.name) for field in dataclasses.fields(config_class)}
    return config_class(**{**values, **overrides})


def evaluate_vector(act, env, episodes: int = 10, seed: int = 0) -> list[float]:
    """Plays `episodes` episodes with `act` on a vector environment; returns their returns.

    Copy i of the `n` copies plays episodes i, i + n, i + 2n, ..., so the set of episodes (and
    so the mean) does not depend on which copy finishes first. The copies are reset with seeds
    `seed + i`. An environment that records its episodes (`RecordEpisodeStatistics`, as
    `dlkit.rl.make_atari_env` places it) is scored by those records: whole games at their true
    score, not the lives or clipped rewards its learning episodes see.
    """
    episodes = check_int("episodes", episodes)
    true_scores = records_episode_statistics(env)
    num_envs = env.num_envs
    quota = np.array([len(range(i, episodes, num_envs)) for i in range(num_envs)])
    totals = np.zeros(num_envs)
    finished: list[list[float]] = [[] for _ in range(num_envs)]
    observations, _ = env.reset(seed=[seed + i for i in range(num_envs)])
    from gymnasium.vector import AutoresetMode

    next_step_mode = env.metadata.get("autoreset_mode") == AutoresetMode.NEXT_STEP
    resetting = np.zeros(num_envs, bool)
    while any(len(done) < wanted for done, wanted in zip(finished, quota)):
        actions = act(observations)
        observations, rewards, terminated, truncated, infos = env.step(actions)
        ended = np.logical_or(terminated, truncated)
        totals += np.where(resetting, 0.0, rewards)
        recorded = episode_statistics(infos)
        true_scores = true_scores or recorded is not None
        # Whole episodes at their recorded (true) score where the environment records them.
        ended_games, scores = ended, totals
        if true_scores:
            ended_games, scores = recorded[:2] if recorded else (np.zeros(num_envs, bool), totals)
        for index in np.flatnonzero(ended_games & ~resetting):
            if len(finished[index]) < quota[index]:
                finished[index].append(float(scores[index]))
        totals[ended & ~resetting] = 0.0
        resetting = ended & ~resetting if next_step_mode else np.zeros(num_envs, bool)
    return [value for done in finished for value in done]


def first_argmax(values):
    """The index of the first largest entry along the last axis, int32, as `numpy.argmax`.

    Built from max, equal, where and min rather than `keras.ops.argmax`, whose TensorFlow form
    (a bitcast that tells −0.0 from +0.0) has no ONNX equivalent, so that exported policies
    convert to ONNX from every backend.
    """
    count = ops.shape(values)[-1]
    best = ops.max(values, axis=-1, keepdims=True)
    indices = ops.arange(count, dtype="int32")
    return ops.min(ops.where(ops.equal(values, best), indices, count), axis=-1)


@keras.saving.register_keras_serializable(package="dlkit")
class GreedyAction(keras.layers.Layer):
    """The deterministic action of a network's output: the last layer of an exported policy.

    Three rules, one per kind of agent:

    - `"argmax"`: Q-values or logits (B, A) → the action of the largest, int32 (B,);
    - `"expected_argmax"`: C51 probabilities (B, A, N) → argmax_a Σ_j support_j p_aj;
    - `"clip"`: Gaussian means (B, D) → the means clipped to [low, high], float32 (B, D).

    Equation:

        argmax:          a = argmax_a Q(s, a)                      [notes §9.1.2]
        expected_argmax: a = argmax_a Σ_j z_j p_j(s, a)            [notes eq. 9.18]
        clip:            a = min(max(μ(s), low), high)

    Args:
        rule: `"argmax"`, `"expected_argmax"` or `"clip"`.
        support: the atoms z_j of `"expected_argmax"`, a list of floats. Defaults to None.
        low: the lower bounds of `"clip"`, a list of floats. Defaults to None.
        high: the upper bounds of `"clip"`, a list of floats. Defaults to None.
        **kwargs: other `keras.layers.Layer` arguments.

    Returns:
        The action batch.

    Example:

        >>> import numpy as np
        >>> keras.ops.convert_to_numpy(GreedyAction("argmax")(np.array([[0.1, 0.7]]))).tolist()
        [1]
    """

    RULES = ("argmax", "expected_argmax", "clip")

    def __init__(self, rule: str, support=None, low=None, high=None, **kwargs):
        super().__init__(**kwargs)
        check_choice("rule", rule, self.RULES)
        if rule == "expected_argmax" and support is None:
            raise ValueError(
                "Expected `support` for rule='expected_argmax'. Received: support=None"
            )
        if rule == "clip" and (low is None or high is None):
            raise ValueError(
                f"Expected `low` and `high` for rule='clip'. Received: {low=}, {high=}"
            )
        self.rule = rule
        self.support = None if support is None else [float(x) for x in support]
        self.low = None if low is None else [float(x) for x in low]
        self.high = None if high is None else [float(x) for x in high]

    def call(self, outputs):
        if self.rule == "clip":
            low = ops.convert_to_tensor(self.low, outputs.dtype)
            high = ops.convert_to_tensor(self.high, outputs.dtype)
            return ops.clip(outputs, low, high)
        if self.rule == "expected_argmax":
            support = ops.convert_to_tensor(self.support, outputs.dtype)
            outputs = ops.sum(outputs * support, axis=-1)
        return first_argmax(outputs)

    def compute_output_shape(self, input_shape):
        if self.rule == "clip":
            return tuple(input_shape)
        return tuple(input_shape[:1])

    def compute_output_spec(self, outputs):
        shape = self.compute_output_shape(outputs.shape)
        dtype = outputs.dtype if self.rule == "clip" else "int32"
        return keras.KerasTensor(shape, dtype=dtype)

    def get_config(self):
        config = super().get_config()
        config.update(
            {"rule": self.rule, "support": self.support, "low": self.low, "high": self.high}
        )
        return config


class Agent(keras.Model):
    """Base of the deep agents: the training loop, evaluation and checkpoints (module doc).

    Subclasses name their `config_class` (a subclass of `AgentConfig`) and define
    `act(observations, explore)`, `_make_optimizer()`, `_setup_run(env)`,
    `_on_run_start(env, resumed)` and `_collect_and_train(env)`, which steps the environment
    at least once through `_step_env` and trains; once `_observation_shape` is set, their
    `__init__` calls `_build_normalization(network)`.

    The agent's hyperparameters are `config`, a `config_class` built from the `config`
    argument and the keyword arguments that name its fields (which override that argument's
    fields); the other keyword arguments go to `keras.Model` (`name`). Each field is also an
    read-only attribute of the agent (`agent.gamma` reads `agent.config.gamma`), except those
    that `_config_attribute_names` renames; `config` is their one source.
    """

    config_class: type = AgentConfig
    # The input dtype of the agent's networks (a subclass sets it from them): "uint8" frames
    # stay uint8 from the environment to the network.
    _observation_dtype: str = "float32"
    # Fields stored under another attribute name, where keras.Model already uses the name.
    _config_attribute_names: ClassVar[dict[str, str]] = {}

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        for field in dataclasses.fields(cls.config_class):
            name = cls._config_attribute_names.get(field.name, field.name)
            # Shadows a backend's attribute of the same name (torch's `Module.double`), as the
            # field always has; `_config_attribute_names` renames where Keras needs the name.
            if name not in cls.__dict__:
                setattr(cls, name, property(operator.attrgetter(f"config.{field.name}")))

    def __init__(self, config: AgentConfig | None = None, **kwargs):
        names = {field.name for field in dataclasses.fields(self.config_class)}
        overrides = {name: kwargs.pop(name) for name in list(kwargs) if name in names}
        config = resolve_config(self.config_class, config, overrides)
        super().__init__(**kwargs)
        self.config = config
        self._rng = np.random.default_rng(self.seed)
        self.num_timesteps = 0
        self.num_episodes = 0
        self.num_updates = 0
        self.episode_returns: list[float] = []
        self.episode_lengths: list[int] = []
        self.evaluations: list[tuple[int, float]] = []
        self._run_start = 0
        self._run_target = 0
        # Whether the current run extends a finished run restored from a checkpoint: schedules
        # that start a run from scratch (DQN's ε) then start where that run left them.
        self._run_extends = False
        self._iteration_stop = 0
        self._acting: dict = {}
        # Made by `_build_normalization` when the config asks for them.
        self.observation_normalization = None
        self._observation_statistics = None
        self._reward_scaler = None

    def get_config(self):
        config = super().get_config()
        config.update(dataclasses.asdict(self.config))
        return config

    # ------------------------------------------------------------------ acting

    def _compiled(self, network: keras.Model, training: bool = False):
        from dlkit.training import compile_inference

        key = (id(network), training)
        if key not in self._acting:
            self._acting[key] = compile_inference(network, training=training)
        return self._acting[key]

    def _batched(self, observations) -> tuple[np.ndarray, bool]:
        # The network's input dtype: uint8 frames stay bytes on the host (no float copy).
        dtype = np.dtype(self._observation_dtype)
        observations = np.asarray(observations)
        if dtype == np.uint8 and observations.dtype.kind not in "ub":
            raise ValueError(
                "Expected raw uint8 frames (0-255): the network scales images by 1/255 itself. "
                f"Received: observations of dtype {observations.dtype.name}"
            )
        if observations.dtype.kind == "f" and not np.isfinite(observations).all():
            raise ValueError(
                "Expected finite observations. Received: observations holding NaN or infinity "
                f"at {np.argwhere(~np.isfinite(observations))[:3].tolist()}"
            )
        observations = observations.astype(dtype, copy=False)
        single = observations.shape == self._observation_shape
        if single:
            observations = observations[None]
        elif observations.shape[1:] != self._observation_shape:
            raise ValueError(
                f"Expected observations of shape {self._observation_shape} or (batch, "
                f"*{self._observation_shape}). Received: observations.shape={observations.shape}"
            )
        if self.observation_normalization is not None:
            # Frozen: the statistics of the last `learn` iteration, as the exported policy's.
            observations = self.observation_normalization.standardize(observations)
        return observations, single

    def policy_model(self) -> keras.Model:
        """The deterministic policy as a standalone functional model, observations → actions.

        It shares the agent's weights, needs nothing of dlkit.rl to run, and is what
        `dlkit.export` turns into a SavedModel or ONNX file: its output equals
        `act(observations, explore=False)`. With `normalize_observations` it starts with the
        agent's `ObservationNormalization` layer, so it takes raw observations.
        """
        network, head = self._policy_network_and_head()
        inputs = keras.Input(
            self._observation_shape, dtype=self._observation_dtype, name="observations"
        )
        x = inputs
        if self.observation_normalization is not None:
            x = self.observation_normalization(inputs)
        return keras.Model(inputs, head(network(x, training=False)), name="policy")

    def evaluate(self, env, episodes: int = 10, seed: int = 0) -> float:
        """Mean return of `episodes` deterministic episodes on `env` (a vector env is faster)."""
        vector_env = env if hasattr(env, "num_envs") else as_vector_env(env)
        returns = evaluate_vector(lambda x: self.act(x, explore=False), vector_env, episodes, seed)
        return float(np.mean(returns))

    # ------------------------------------------------------------------ normalisation

    def _build_normalization(self, network: keras.Model) -> None:
        """Creates the running statistics of observations and returns the config asks for.

        A subclass calls it once `_observation_shape` is set, with the network observations
        enter. The statistics are updated by `_step_env` during `learn` only; the
        `observation_normalization` layer holds a float32 copy of those of observations (made
        after each iteration), which `act`, `evaluate` and `policy_model` use.
        """
        if self.normalize_observations:
            self._check_vector_observations(
                self._observation_shape, network.inputs[0].dtype, f"{network.name}'s input"
            )
            self._observation_statistics = normalization.RunningMeanStd(self._observation_shape)
            self.observation_normalization = normalization.ObservationNormalization(
                self.normalization_epsilon, self.observation_clip, name="observation_normalization"
            )
            self.observation_normalization.build((None, *self._observation_shape))
        if self.normalize_rewards:
            self._reward_scaler = normalization.RewardScaler(
                1, self.gamma, self.normalization_epsilon, self.reward_clip
            )

    def _check_vector_observations(self, shape, dtype, source: str) -> None:
        shape = tuple(shape or ())
        image = len(shape) == 3 or (np.dtype(dtype) == np.uint8 and len(shape) >= 2)
        if self.normalize_observations and image:
            raise ValueError(
                "Expected vector observations with `normalize_observations=True`: image "
                "observations are scaled by 1/255 inside the network instead. Received: "
                f"normalize_observations=True with {source} of shape {shape} and dtype "
                f"{np.dtype(dtype).name}. Build the agent with normalize_observations=False."
            )

    def _standardize(self, observations) -> np.ndarray:
        statistics = self._observation_statistics
        return normalization.standardize(
            observations,
            statistics.mean,
            statistics.var,
            self.normalization_epsilon,
            self.observation_clip,
        )

    def _normalize_step(self, observations, rewards, dones, reached):
        """Updates the running statistics with a step; returns what the agent learns from."""
        if self._observation_statistics is not None:
            self._observation_statistics.update(observations)
            same = reached is observations
            observations = self._standardize(observations)
            reached = observations if same else self._standardize(reached)
        if self._reward_scaler is not None:
            rewards = self._reward_scaler.scale(rewards, dones)
        return observations, rewards, reached

    def _sync_normalization(self) -> None:
        """Copies the running observation statistics into `observation_normalization`."""
        if self.observation_normalization is not None:
            self.observation_normalization.set_statistics(self._observation_statistics)

    def _running_statistics(self) -> dict:
        """The agent's `RunningMeanStd`s by checkpoint name."""
        statistics = {}
        if self._observation_statistics is not None:
            statistics["observations"] = self._observation_statistics
        if self._reward_scaler is not None:
            statistics["returns"] = self._reward_scaler.statistics
        return statistics

    def _read_running_statistics(self, state, path) -> dict:
        """Checked copies of the running statistics a checkpoint holds, by name."""
        saved = {key.split("/")[1] for key in state.files if key.startswith("normalization/")}
        restored = {}
        for name, current in self._running_statistics().items():
            if name not in saved:
                raise ValueError(
                    f"Expected the checkpoint to hold the {name} normalisation statistics of "
                    f"this agent. Received: path={str(path)!r} without them (written by an "
                    "agent built without that normalisation)"
                )
            copy = normalization.RunningMeanStd(current.shape)
            copy.restore(
                {key: state[f"normalization/{name}/{key}"] for key in ("mean", "var", "count")},
                f"normalization/{name}",
                path,
            )
            restored[name] = copy
        for name in sorted(saved - set(restored)):
            raise ValueError(
                f"Expected a checkpoint without {name} normalisation statistics, like this "
                f"agent. Received: path={str(path)!r} holding them: build the agent with the "
                "normalisation it was trained with"
            )
        return restored

    # ------------------------------------------------------------------ learning

    def _check_observation_space(self, env, networks) -> None:
        space = env.single_observation_space
        shape = tuple(space.shape or ())
        for name, network in networks:
            expected = tuple(network.inputs[0].shape[1:])
            if expected != shape:
                raise ValueError(
                    f"Expected the environment's observations to fit `{name}`, whose input "
                    f"shape is {expected}. Received: observation_space={space!r}"
                )
            dtype = np.dtype(network.inputs[0].dtype)
            if dtype == np.uint8 and np.dtype(space.dtype) != dtype:
                raise ValueError(
                    f"Expected the environment to give the raw uint8 frames `{name}` takes (it "
                    "scales them by 1/255 itself): keep AtariPreprocessing(scale_obs=False), "
                    "as dlkit.rl.make_atari_env does. Received: observation_space="
                    f"{space!r} of dtype {np.dtype(space.dtype).name}"
                )

    def _step_env(self, env, actions):
        """Steps every copy; returns (observations, rewards, terminated, truncated, reached).

        `reached` holds the true last observation of copies whose episode just ended. Episode
        returns and lengths are recorded; an exception names the copy and the step.
        """
        try:
            observations, rewards, terminated, truncated, infos = env.step(actions)
        except Exception as error:
            index = failing_env_index(env, error)
            where = f"environment {index}" if index is not None else "the environment"
            raise RuntimeError(
                f"{where} raised at timestep {self.num_timesteps} (vector step "
                f"{self.num_timesteps // env.num_envs}): {type(error).__name__}: {error}. "
                "The last checkpoint is left as it was."
            ) from error
        return self._record_step(env, observations, rewards, terminated, truncated, infos)

    def _record_step(self, env, observations, rewards, terminated, truncated, infos):
        """`_step_env`'s bookkeeping of a step taken: episode records, counters, normalisation.

        Apart from `env.step`, so that an agent whose threads step their own environments
        (`dlkit.rl.A3C`) can record under a lock without stepping under it.
        """
        rewards = np.asarray(rewards, dtype=np.float32)
        terminated = np.asarray(terminated, dtype=bool)
        truncated = np.asarray(truncated, dtype=bool)
        self._episode_return += rewards
        self._episode_length += 1
        # Whole episodes at their true score where the environment records them (an Atari
        # game, not a life, whatever the reward clipping); else the sum of the rewards.
        recorded = episode_statistics(infos)
        self._true_scores = self._true_scores or recorded is not None
        if self._true_scores:
            ended, returns, lengths = recorded or (np.zeros(env.num_envs, bool), None, None)
        else:
            ended = terminated | truncated
            returns, lengths = self._episode_return, self._episode_length
        for index in np.flatnonzero(ended):
            self.episode_returns.append(float(returns[index]))
            self.episode_lengths.append(int(lengths[index]))
            self.num_episodes += 1
        self._episode_return[terminated | truncated] = 0.0
        self._episode_length[terminated | truncated] = 0
        self.num_timesteps += env.num_envs
        reached = final_observations(observations, infos)
        # Normalisation last: the episode records above keep the environment's true rewards.
        observations, rewards, reached = self._normalize_step(
            observations, rewards, terminated | truncated, reached
        )
        return observations, rewards, terminated, truncated, reached

    def _reset_env(self, env):
        seeds = [int(seed) for seed in self._rng.integers(2**31, size=env.num_envs)]
        observations, _ = env.reset(seed=seeds)
        self._episode_return = np.zeros(env.num_envs, np.float32)
        self._episode_length = np.zeros(env.num_envs, np.int64)
        self._true_scores = records_episode_statistics(env)
        if self._reward_scaler is not None:
            self._reward_scaler.reset(env.num_envs)
        if self._observation_statistics is not None:
            observations = self._standardize(observations)
        return observations

    def _train_batches(self, x, y) -> dict:
        """K gradient steps on K stacked minibatches, x (K, B, ...) and y's leaves (K, B, ...),
        in one compiled call (`dlkit.training.compile_train_steps`); returns the mean loss."""
        if getattr(self, "_train_steps", None) is None:
            from dlkit.training import compile_train_steps

            self._ensure_optimizer()
            self._train_steps = compile_train_steps(self)
        logs = self._train_steps(x, y)
        self.num_updates += len(x)
        return logs

    def _train_batch(self, x, y) -> dict:
        """One gradient step on one minibatch."""
        return self._train_batches(x[None], keras.tree.map_structure(lambda leaf: leaf[None], y))

    def learn(
        self,
        env,
        total_timesteps: int,
        callbacks: list | None = None,
        eval_env=None,
        eval_interval: int = 5_000,
        eval_episodes: int = 10,
        checkpoint_dir: str | None = None,
        checkpoint_interval: int = 10_000,
        verbose: int = 1,
    ):
        """Trains for `total_timesteps` environment steps; returns the agent.

        Args:
            env: a `gymnasium.Env` or a vector environment in same-step autoreset mode
                (`dlkit.rl.make_vector_env`); sync or async.
            total_timesteps: the number of environment steps of this run, summed over copies.
            callbacks: Keras callbacks; each iteration calls `on_epoch_end(iteration, logs)`.
            eval_env: an environment (a vector one evaluates its copies in parallel) for the
                deterministic evaluation every `eval_interval` steps; None for no evaluation.
            eval_interval: environment steps between evaluations. Defaults to 5,000.
            eval_episodes: episodes per evaluation. Defaults to 10.
            checkpoint_dir: a directory for `checkpoint.npz`, written every
                `checkpoint_interval` steps and at the end. If it already holds one, the
                agent restores it and finishes that run (its `total_timesteps` wins); if that
                run had finished, the agent trains `total_timesteps` more steps as a new run
                extending it (DQN's ε then starts at `exploration_final_epsilon`).
            checkpoint_interval: environment steps between checkpoints. Defaults to 10,000.
            verbose: 1 for a progress bar with the mean return and steps per second, 0 for
                silence. Defaults to 1.

        Returns:
            The agent.
        """
        total_timesteps = check_int("total_timesteps", total_timesteps)
        eval_interval = check_int("eval_interval", eval_interval)
        eval_episodes = check_int("eval_episodes", eval_episodes)
        checkpoint_interval = check_int("checkpoint_interval", checkpoint_interval)
        env = as_vector_env(env)
        if eval_env is not None:
            eval_env = eval_env if hasattr(eval_env, "num_envs") else as_vector_env(eval_env)
        self._setup_run(env)
        space = env.single_observation_space
        self._check_vector_observations(space.shape, space.dtype, "the environment's observations")
        self._ensure_optimizer()
        checkpoint = Path(checkpoint_dir) / _CHECKPOINT_NAME if checkpoint_dir else None
        # The newest verified checkpoint, or the one before it (with a warning).
        usable = latest_verified(checkpoint) if checkpoint is not None else None
        resumed = usable is not None
        if resumed:
            self.load_checkpoint(usable)
            if self.num_timesteps >= self._run_target:
                # The checkpoint's run had finished: train on, as a new run that extends it.
                resumed = False
                self._start_run(total_timesteps, extends=True)
        else:
            self._start_run(total_timesteps, extends=False)
        self._on_run_start(env, resumed)

        callback_list = keras.callbacks.CallbackList(
            callbacks, add_history=True, add_progbar=False, model=self
        )
        progress = None
        if verbose:
            progress = keras.utils.Progbar(
                self._run_target - self._run_start,
                stateful_metrics=["return", "eval_return", "steps/s", "loss", "epsilon"],
                unit_name="step",
            )
        self.stop_training = False
        self._observations = self._reset_env(env)
        next_eval = (self.num_timesteps // eval_interval + 1) * eval_interval
        next_checkpoint = (self.num_timesteps // checkpoint_interval + 1) * checkpoint_interval
        callback_list.on_train_begin()
        iteration = 0
        start_time, start_steps = time.perf_counter(), self.num_timesteps
        logs: dict = {}
        while self.num_timesteps < self._run_target and not self.stop_training:
            callback_list.on_epoch_begin(iteration)
            # An off-policy iteration ends here at the latest: evaluations and checkpoints then
            # fall on their intervals, not on its own (longer) logging interval.
            self._iteration_stop = min(
                self._run_target,
                next_eval if eval_env is not None else self._run_target,
                next_checkpoint if checkpoint is not None else self._run_target,
            )
            train_logs = self._collect_and_train(env)
            _check_finite_losses(self, train_logs, checkpoint)
            self._sync_normalization()
            seconds = time.perf_counter() - start_time
            logs = {
                "timesteps": self.num_timesteps,
                "episodes": self.num_episodes,
                "return": float(np.mean(self.episode_returns[-RETURN_WINDOW:] or [np.nan])),
                "steps/s": (self.num_timesteps - start_steps) / max(seconds, 1e-9),
                **{key: float(value) for key, value in train_logs.items()},
            }
            if eval_env is not None and self.num_timesteps >= next_eval:
                mean_return = self.evaluate(eval_env, eval_episodes, seed=10_000)
                self.evaluations.append((self.num_timesteps, mean_return))
                logs["eval_return"] = mean_return
                next_eval = (self.num_timesteps // eval_interval + 1) * eval_interval
            callback_list.on_epoch_end(iteration, logs)
            if checkpoint is not None and self.num_timesteps >= next_checkpoint:
                self.save_checkpoint(checkpoint, keep_previous=True)
                next_checkpoint = (
                    self.num_timesteps // checkpoint_interval + 1
                ) * checkpoint_interval
            if progress is not None:
                shown = [(key, logs[key]) for key in ("return", "steps/s") if key in logs]
                shown += [
                    (key, logs[key]) for key in ("loss", "epsilon", "eval_return") if key in logs
                ]
                progress.update(min(self.num_timesteps, self._run_target) - self._run_start, shown)
            iteration += 1
        if checkpoint is not None:
            self.save_checkpoint(checkpoint, keep_previous=True)
        callback_list.on_train_end(logs)
        return self

    # ------------------------------------------------------------------ checkpoints

    def _extra_state(self) -> dict[str, np.ndarray]:
        """Arrays a subclass adds to its checkpoint (the replay buffer)."""
        return {}

    def _restore_extra_state(self, state) -> None:
        """Restores what `_extra_state` saved."""

    def _ensure_optimizer(self) -> None:
        if getattr(self, "optimizer", None) is None:
            self.compile(optimizer=self._make_optimizer())
        if not self.optimizer.built:
            self.optimizer.build(self.trainable_variables)

    def _state_variables(self) -> list:
        # `variables`, not `weights`: the seed generators of noisy layers resume their streams.
        self._ensure_optimizer()
        return list(self.variables) + list(self.optimizer.variables)

    def _start_run(self, total_timesteps: int, extends: bool) -> None:
        self._run_start = self.num_timesteps
        self._run_target = self.num_timesteps + total_timesteps
        self._run_extends = extends

    def save_checkpoint(self, path, keep_previous: bool = False) -> str:
        """Writes the run's whole state to `path` (`.npz`) atomically, with its integrity
        record (`dlkit.rl.saving.write_verified`); returns the path.

        Args:
            path: the checkpoint file.
            keep_previous: first move the checkpoint already at `path` to
                `checkpoint.previous.npz` (`learn` keeps the last two this way).

        Raises:
            OSError: when the directory cannot be written (full disk, no permission); the
                message names the directory, and the checkpoint already there is intact.
        """
        return write_verified(path, self._checkpoint_arrays(), keep_previous=keep_previous)

    def _config_json(self) -> str:
        """The agent's configuration as JSON (values JSON cannot hold as their text)."""
        return json.dumps(dataclasses.asdict(self.config), default=str, sort_keys=True)

    def _warn_of_other_config(self, saved: dict, path) -> None:
        """One warning listing the settings in which a checkpoint's agent differs from this one
        (it still loads: the weights fit; the run goes on with this agent's settings)."""
        current = json.loads(self._config_json())
        differences = [
            f"{name}: saved {saved.get(name)!r}, this agent {current.get(name)!r}"
            for name in sorted(set(saved) | set(current))
            if saved.get(name) != current.get(name)
        ]
        if differences:
            warnings.warn(
                f"The checkpoint {str(path)!r} was written by an agent with other settings; "
                f"the run goes on with this agent's: {'; '.join(differences)}",
                RuntimeWarning,
                stacklevel=3,
            )

    def _checkpoint_arrays(self) -> dict[str, np.ndarray]:
        """Everything a checkpoint holds, by name, as NumPy arrays."""
        counters = {
            "class": type(self).__name__,
            "num_timesteps": self.num_timesteps,
            "num_episodes": self.num_episodes,
            "num_updates": self.num_updates,
            "run_start": self._run_start,
            "run_target": self._run_target,
            "run_extends": self._run_extends,
            "evaluations": self.evaluations,
        }
        return {
            "counters": np.array(json.dumps(counters)),
            "config": np.array(self._config_json()),
            "rng_state": np.array(generator_to_json(self._rng)),
            "episode_returns": np.asarray(self.episode_returns, np.float64),
            "episode_lengths": np.asarray(self.episode_lengths, np.int64),
            **{
                f"variable/{index}": keras.ops.convert_to_numpy(variable.value)
                for index, variable in enumerate(self._state_variables())
            },
            **{f"extra/{key}": value for key, value in self._extra_state().items()},
            **{
                f"normalization/{name}/{key}": value
                for name, statistics in self._running_statistics().items()
                for key, value in statistics.state().items()
            },
        }

    def load_checkpoint(self, path, env=None) -> None:
        """Restores a state written by `save_checkpoint` into this (identically built) agent.

        Args:
            path: the `.npz` file.
            env: the environment the checkpoint's run trained on. A rollout agent (A2C, PPO)
                needs it to rebuild its rollout buffer when it has not yet run `learn` on that
                environment in this process; `learn` passes it itself.
        """
        if env is not None:
            self._setup_run(as_vector_env(env))
        variables = self._state_variables()
        state = read_checkpoint_arrays(path)
        counters = json.loads(str(state["counters"]))
        if counters["class"] != type(self).__name__:
            raise ValueError(
                f"Expected a checkpoint of a {type(self).__name__}. "
                f"Received: path={str(path)!r} of a {counters['class']}"
            )
        saved = sorted(
            (key for key in state.files if key.startswith("variable/")),
            key=lambda key: int(key.split("/")[1]),
        )
        if len(saved) != len(variables):
            raise ValueError(
                f"Expected a checkpoint of {len(variables)} variables, like this agent. "
                f"Received: path={str(path)!r} with {len(saved)}"
            )
        values = [state[key] for key in saved]
        # Everything is checked before the first assignment: a refused checkpoint leaves the
        # agent as it was.
        for value, variable in zip(values, variables):
            if tuple(value.shape) != tuple(variable.shape):
                raise ValueError(
                    f"Expected variable {variable.path!r} of shape {tuple(variable.shape)}. "
                    f"Received: path={str(path)!r} holding shape {value.shape}"
                )
            _check_variable_value(variable, value, path)
        running_statistics = self._read_running_statistics(state, path)
        if "config" in state.files:
            self._warn_of_other_config(json.loads(str(state["config"])), path)
        rng = generator_from_json(str(state["rng_state"]))
        evaluations = [tuple(item) for item in counters["evaluations"]]
        episode_returns = state["episode_returns"].tolist()
        episode_lengths = state["episode_lengths"].tolist()
        extra = {
            key.split("/", 1)[1]: state[key] for key in state.files if key.startswith("extra/")
        }
        # The buffer first: it checks its own arrays, and when it refuses them the weights and
        # counters are still the agent's own.
        self._restore_extra_state(extra)
        for value, variable in zip(values, variables):
            variable.assign(value)
        if "observations" in running_statistics:
            self._observation_statistics = running_statistics["observations"]
        if "returns" in running_statistics:
            self._reward_scaler.statistics = running_statistics["returns"]
        self._sync_normalization()
        self.num_timesteps = counters["num_timesteps"]
        self.num_episodes = counters["num_episodes"]
        self.num_updates = counters["num_updates"]
        self._run_start = counters["run_start"]
        self._run_target = counters["run_target"]
        self._run_extends = bool(counters.get("run_extends", False))
        self.evaluations = evaluations
        self._rng = rng
        self.episode_returns = episode_returns
        self.episode_lengths = episode_lengths


def _check_variable_value(variable, value: np.ndarray, path) -> None:
    """Refuses a saved value of another kind than `variable` (a float for an integer counter,
    text) or, for a float variable, one holding NaN or infinity."""
    expected = keras.backend.standardize_dtype(variable.dtype)
    kind = np.dtype(expected).kind if expected != "bfloat16" else "f"
    if value.dtype.kind not in ("f", "i", "u", "b") or (kind in "iub") != (
        value.dtype.kind in "iub"
    ):
        raise ValueError(
            f"Expected variable {variable.path!r} to be saved as {expected}. "
            f"Received: path={str(path)!r} holding {value.dtype}"
        )
    if value.dtype.kind == "f" and not np.all(np.isfinite(value)):
        raise ValueError(
            f"Expected finite values for variable {variable.path!r}. "
            f"Received: path={str(path)!r} holding NaN or infinity"
        )


def _check_finite_losses(agent, train_logs: dict, checkpoint) -> None:
    """Stops `learn` with a `FloatingPointError` when a logged loss is NaN or infinite, before
    the iteration's checkpoint is written (the last good one is kept)."""
    bad = sorted(key for key, value in train_logs.items() if not np.isfinite(float(value)))
    if bad:
        kept = "no checkpoint"
        if checkpoint:
            kept = f"the last checkpoint, {str(checkpoint)!r}, is kept"
        raise FloatingPointError(
            f"{type(agent).__name__}'s {', '.join(bad)} became NaN or infinite in the updates "
            f"up to timestep {agent.num_timesteps} (update {agent.num_updates}); the run "
            f"stopped there and {kept}. Lower the learning rate, clip the gradients or check "
            "the rewards."
        )
