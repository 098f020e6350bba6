"""Deep Q-networks of notes §9.1.2 and their improvements, as one configurable agent."""

from __future__ import annotations

import dataclasses
from typing import ClassVar

import keras
import numpy as np
from keras import ops

from dlkit.layers.noisy_dense import NoisyDense
from dlkit.layers.q_heads import CategoricalQHead, DuelingHead
from dlkit.rl.agent import Agent, AgentConfig, GreedyAction
from dlkit.rl.buffers import PrioritizedReplayBuffer, ReplayBuffer
from dlkit.rl.frame_buffer import FrameReplayBuffer, PrioritizedFrameReplayBuffer
from dlkit.rl.ops import categorical_projection, huber_loss, q_learning_targets
from dlkit.rl.torso import is_image_space, observation_features
from dlkit.validation import (
    check_choice,
    check_int,
    check_model,
    check_non_negative,
    check_positive,
    check_unit_interval,
)

__all__ = ["DQN", "DQNConfig", "build_q_network"]

LOSSES = ("huber", "mse")


def build_q_network(
    observation_shape,
    num_actions: int,
    hidden_units: tuple[int, ...] | None = None,
    dueling: bool = False,
    noisy: bool = False,
    num_atoms: int | None = None,
    v_min: float = -10.0,
    v_max: float = 10.0,
    name: str = "q_network",
) -> keras.Model:
    """A Q-network for vector or image observations, with the DQN options.

    Vector observations go through a multilayer perceptron. Images, stacked uint8 frames
    (frame_stack, height, width) channels first, go through the Nature-DQN convolutional torso
    (`dlkit.rl.nature_cnn`), which scales them by 1/255 itself: the network takes raw
    frames.

    Args:
        observation_shape: the shape of one observation, e.g. `(4,)` or `(4, 84, 84)` for
            frames, or the gymnasium observation space (a Box of uint8 images is checked).
        num_actions: the number of discrete actions.
        hidden_units: widths of the hidden ReLU layers (after the torso for images). Defaults
            to None: `(256, 256)` for vectors, none for images (the torso ends in 512 units).
        dueling: end in a `DuelingHead` (notes eq. 9.15). Defaults to False.
        noisy: use `NoisyDense` for every dense layer, for exploration without ε. Defaults to
            False.
        num_atoms: end in a C51 `CategoricalQHead` of this many atoms on [v_min, v_max]
            (notes eqs. 9.17-9.18); None for plain Q-values. Defaults to None.
        v_min: the lowest atom of a categorical head. Defaults to -10.
        v_max: the highest atom of a categorical head. Defaults to 10.
        name: the model's name. Defaults to `"q_network"`.

    Returns:
        A functional `keras.Model` from observations (B, *observation_shape) to Q-values
        (B, num_actions), or to return distributions (B, num_actions, num_atoms). For images
        its input is uint8.

    Example:

        >>> network = build_q_network((4,), 2, hidden_units=(32,), dueling=True)
        >>> network.output.shape
        (None, 2)
        >>> build_q_network((4, 84, 84), 4).input.dtype
        'uint8'
    """
    num_actions = check_int("num_actions", num_actions)
    if dueling and num_atoms is not None:
        raise ValueError(
            "Expected at most one of `dueling` and `num_atoms`: this builder has no "
            f"distributional dueling head. Received: dueling={dueling}, num_atoms={num_atoms}"
        )

    def dense(units, activation=None, name=None):
        if noisy:
            return NoisyDense(units, activation=activation, name=name)
        return keras.layers.Dense(units, activation=activation, name=name)

    inputs, features = observation_features(observation_shape, noisy=noisy)
    if hidden_units is None:
        hidden_units = () if is_image_space(observation_shape) else (256, 256)
    for index, units in enumerate(hidden_units):
        features = dense(check_int("hidden_units", units), "relu", f"hidden_{index}")(features)
    if dueling:
        outputs = DuelingHead(num_actions, name="dueling_head")(features)
    elif num_atoms is not None:
        outputs = CategoricalQHead(num_actions, num_atoms, v_min, v_max, name="categorical_head")(
            features
        )
    else:
        outputs = dense(num_actions, name="q_values")(features)
    return keras.Model(inputs, outputs, name=name)


@dataclasses.dataclass
class DQNConfig(AgentConfig):
    """The hyperparameters of `DQN` (with those of `AgentConfig`: `learning_rate` of Adam,
    `gamma`, `max_grad_norm`, `seed`); the string under each field documents it.

    Example:

        >>> DQNConfig(double=True).target_update_interval
        500
    """

    max_grad_norm: float | None = 10.0
    buffer_size: int = 100_000
    """Replay capacity in transitions."""
    batch_size: int = 64
    """Transitions per gradient step."""
    learning_starts: int = 1_000
    """Environment steps collected before the first gradient step."""
    train_frequency: int = 4
    """Environment steps between training phases."""
    gradient_steps: int = 1
    """Gradient steps per training phase."""
    target_update_interval: int = 500
    """Gradient steps between target-network updates."""
    tau: float = 1.0
    """The Polyak factor of each target update, in (0, 1]; 1 copies the online network."""
    double: bool = False
    """Double Q-learning: the online network picks the next action, the target values it."""
    prioritized: bool = False
    """Prioritized replay (a `PrioritizedReplayBuffer`), with importance weights whose β
    anneals to 1 over the run."""
    alpha: float = 0.6
    """The priority exponent α >= 0 of prioritized replay."""
    beta: float = 0.4
    """The initial importance-sampling exponent β in [0, 1] of prioritized replay."""
    n_step: int = 1
    """Environment steps per stored transition (n-step returns)."""
    frame_replay: bool | None = None
    """Replay that stores each frame of stacked-frame observations once (a `FrameReplayBuffer`,
    about 1/7 of the memory at 84×84×4); None picks it when the environment's observations are
    uint8 stacks of rank 3, (frame_stack, H, W)."""
    loss: str = "huber"
    """The TD loss: huber or mse."""
    exploration_fraction: float = 0.1
    """The fraction of a run over which ε decays linearly, in [0, 1]."""
    exploration_initial_epsilon: float = 1.0
    """ε at the start of a run (a run that `learn` continues from a finished checkpoint starts
    at exploration_final_epsilon)."""
    exploration_final_epsilon: float = 0.05
    """ε after the decay."""

    def __post_init__(self) -> None:
        super().__post_init__()
        for name in (
            "buffer_size",
            "batch_size",
            "train_frequency",
            "gradient_steps",
            "target_update_interval",
            "n_step",
        ):
            setattr(self, name, check_int(name, getattr(self, name)))
        self.learning_starts = check_int("learning_starts", self.learning_starts, minimum=0)
        self.tau = check_positive("tau", self.tau, maximum=1.0)
        self.double = bool(self.double)
        self.prioritized = bool(self.prioritized)
        if self.frame_replay is not None:
            self.frame_replay = bool(self.frame_replay)
        self.alpha = check_non_negative("alpha", self.alpha)
        for name in (
            "beta",
            "exploration_fraction",
            "exploration_initial_epsilon",
            "exploration_final_epsilon",
        ):
            setattr(self, name, check_unit_interval(name, getattr(self, name)))
        check_choice("loss", self.loss, LOSSES)


def _find_layer(network: keras.Model, layer_class):
    return [layer for layer in network._flatten_layers() if isinstance(layer, layer_class)]


@keras.saving.register_keras_serializable(package="dlkit")
class DQN(Agent):
    """Deep Q-learning with replay, fixed targets and the Rainbow options, on any backend.

    The agent learns Q(s, a) with the network `q_network` from transitions replayed out of a
    buffer [notes §9.1.2]. Each gradient step minimises the TD error against a target network,
    a lagging copy of `q_network`: a hard copy every `target_update_interval` gradient steps
    (`tau=1`), or a Polyak average θ⁻ ← τθ + (1 − τ)θ⁻ at that interval (`tau<1`). The options
    follow the network and the arguments:

    - double Q-learning (`double=True`): the online network picks the next action, the target
      network values it;
    - prioritized replay (`prioritized=True`): transitions are drawn in proportion to
      (|δ| + ε)^α and weighted by importance-sampling weights whose β anneals to 1 over the run
      (notes eqs. 9.12-9.14);
    - dueling: a `q_network` ending in `dlkit.layers.DuelingHead` (eq. 9.15);
    - noisy exploration: a `q_network` with `dlkit.layers.NoisyDense` layers; acting then
      draws new weight noise every step and ε-greedy is switched off; evaluation uses the
      noise-free mean weights;
    - distributional C51: a `q_network` ending in `dlkit.layers.CategoricalQHead`; the loss is
      the cross-entropy to the projected distributional Bellman target (eqs. 9.17-9.18);
    - n-step targets (`n_step`), and a Huber or squared TD loss (`loss`).

    The targets, the loss and the priorities are computed inside the compiled Keras training
    step of each backend; the target network is updated after every `target_update_interval`
    gradient steps (`update_target`).

    Equation:

        target = r + γ^n (1 − T) max_a' Q(s', a'; θ⁻)                [notes eqs. 9.10-9.11]
        double: target = r + γ^n (1 − T) Q(s', argmax_a' Q(s', a'; θ); θ⁻)
        loss   = mean_i w_i · ℓ(target_i − Q(s_i, a_i; θ)),   ℓ = Huber or ½(·)² ... MSE
        C51:   loss = mean_i w_i · (− Σ_j Φ(T Z)_ij log p_j(s_i, a_i))   [eqs. 9.17-9.18]
        ε_t    = linear from `exploration_initial_epsilon` to `exploration_final_epsilon` over
                 the first `exploration_fraction` of the run's steps  [notes §9.1.1]

    Args:
        q_network: a built `keras.Model` from observations to Q-values (B, A), or to C51
            probabilities (B, A, N) when it ends in a `CategoricalQHead`.
        config: a `DQNConfig` (or a subclass, such as a recipe's `Config`) holding the
            hyperparameters, documented there. Defaults to `DQNConfig()`.
        **kwargs: fields of `DQNConfig` (`gamma=0.9`), which override those of `config`, and
            other `keras.Model` arguments (`name`).

    Returns:
        An agent; `learn(env, total_timesteps)` trains it and `act(observations)` acts.

    Example:

        >>> import gymnasium as gym
        >>> env = gym.make("CartPole-v1")
        >>> agent = DQN(build_q_network((4,), 2, hidden_units=(32,)), learning_starts=64, seed=0)
        >>> agent = agent.learn(env, total_timesteps=128, verbose=0)
        >>> agent.num_timesteps
        128
        >>> int(agent.act(np.zeros(4, "float32"))) in (0, 1)
        True

    Reference:
        Mnih et al., Nature 2015 (DQN); van Hasselt et al., AAAI 2016 (double);
        Schaul et al., ICLR 2016 (prioritized replay); Wang et al., ICML 2016 (dueling);
        Fortunato et al., ICLR 2018 (noisy nets); Bellemare et al., ICML 2017 (C51);
        Hessel et al., AAAI 2018 (Rainbow, n-step).
    """

    config_class = DQNConfig
    # keras.Model has a `loss` of its own.
    _config_attribute_names: ClassVar[dict[str, str]] = {"loss": "loss_name"}

    def __init__(self, q_network: keras.Model, config: DQNConfig | None = None, **kwargs):
        super().__init__(config, **kwargs)
        self.q_network = check_model("q_network", q_network, built=True)

        output_shape = tuple(q_network.outputs[0].shape[1:])
        heads = _find_layer(q_network, CategoricalQHead)
        self.distributional = bool(heads)
        if self.distributional:
            self._support = ops.convert_to_numpy(heads[-1].support).astype("float32")
            if len(output_shape) != 2 or output_shape[1] != len(self._support):
                raise ValueError(
                    "Expected a q_network ending in CategoricalQHead to output (batch, actions, "
                    f"atoms). Received: q_network output shape {output_shape}"
                )
        elif len(output_shape) != 1:
            raise ValueError(
                "Expected `q_network` to output Q-values of shape (batch, num_actions). "
                f"Received: q_network output shape (None, *{output_shape})"
            )
        self.num_actions = int(output_shape[0])
        self.noisy = bool(_find_layer(q_network, NoisyDense))
        self.dueling = bool(_find_layer(q_network, DuelingHead))
        self._observation_shape = tuple(q_network.inputs[0].shape[1:])
        self._observation_dtype = np.dtype(q_network.inputs[0].dtype).name

        # The target network: same architecture, its own (non-trainable) copy of the weights.
        self.target_network = keras.models.clone_model(q_network)
        self.target_network.set_weights(q_network.get_weights())
        self.target_network.trainable = False
        self._td_errors = self.add_weight(
            shape=(self.batch_size,), initializer="zeros", trainable=False, name="td_errors"
        )
        self._build_normalization(q_network)
        self.built = True
        self.buffer = None

    # ------------------------------------------------------------------ model

    def call(self, observations, training=False):
        return self.q_network(observations, training=training)

    def _q_values(self, outputs):
        if self.distributional:
            return ops.sum(outputs * ops.cast(self._support, outputs.dtype), axis=-1)
        return outputs

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        y = {key: ops.convert_to_tensor(value) for key, value in y.items()}
        dtype = y_pred.dtype
        actions = ops.one_hot(ops.cast(y["actions"], "int32"), self.num_actions, dtype=dtype)
        rewards, dones, discounts = y["rewards"], y["dones"], y["discounts"]
        next_observations = y["next_observations"]
        target_outputs = ops.stop_gradient(self.target_network(next_observations, training=False))
        online_next = None
        if self.double:
            online_next = ops.stop_gradient(
                self._q_values(self.q_network(next_observations, training=False))
            )
        if self.distributional:
            target_q = self._q_values(target_outputs)
            chooser = target_q if online_next is None else online_next
            greedy = ops.one_hot(ops.argmax(chooser, axis=-1), self.num_actions, dtype=dtype)
            next_probabilities = ops.sum(target_outputs * greedy[:, :, None], axis=1)  # (B, N)
            target = categorical_projection(
                next_probabilities, rewards, dones, discounts, self._support
            )
            predicted = ops.sum(y_pred * actions[:, :, None], axis=1)  # (B, N)
            per_sample = -ops.sum(target * ops.log(ops.clip(predicted, 1e-6, 1.0)), axis=-1)
            priorities = per_sample
        else:
            target = q_learning_targets(rewards, dones, discounts, target_outputs, online_next)
            td_errors = target - ops.sum(y_pred * actions, axis=-1)  # (B,)
            if self.loss_name == "huber":
                per_sample = huber_loss(td_errors)
            else:
                per_sample = 0.5 * ops.square(td_errors)
            priorities = ops.abs(td_errors)
        loss = ops.mean(ops.cast(y["weights"], dtype) * per_sample)
        if self.prioritized:
            self._td_errors.assign(ops.stop_gradient(ops.cast(priorities, "float32")))
        return loss

    def update_target(self):
        """θ⁻ ← θ⁻ + τ (θ − θ⁻): a copy for τ = 1, a Polyak average for τ < 1."""
        for target, online in zip(self.target_network.weights, self.q_network.weights):
            if self.tau == 1.0:
                # A copy: on JAX the two variables must not share one buffer, which the next
                # compiled training step would donate twice.
                target.assign(ops.copy(online.value))
            else:
                target.assign(target.value + self.tau * (online.value - target.value))

    def get_config(self):
        config = super().get_config()
        config["q_network"] = keras.saving.serialize_keras_object(self.q_network)
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["q_network"] = keras.saving.deserialize_keras_object(config["q_network"])
        return cls(**config)

    # ------------------------------------------------------------------ acting

    def _policy_network_and_head(self):
        if self.distributional:
            return self.q_network, GreedyAction("expected_argmax", support=self._support.tolist())
        return self.q_network, GreedyAction("argmax")

    @property
    def epsilon(self) -> float:
        """ε of the next exploring step (0 for a noisy network)."""
        if self.noisy:
            return 0.0
        span = max(1.0, self.exploration_fraction * (self._run_target - self._run_start))
        progress = min(1.0, (self.num_timesteps - self._run_start) / span)
        end = self.exploration_final_epsilon
        # A run that extends a finished one exploits what it learned instead of starting over.
        start = end if self._run_extends else self.exploration_initial_epsilon
        return start + (end - start) * progress

    def q_values(self, observations) -> np.ndarray:
        """Q-values (B, A) of a batch of observations (deterministic, noise-free)."""
        batch, _ = self._batched(observations)
        return self._numpy_q_values(self._compiled(self.q_network)(batch))

    def _numpy_q_values(self, outputs: np.ndarray) -> np.ndarray:
        if self.distributional:
            return (outputs * self._support).sum(axis=-1)
        return outputs

    def act(self, observations, explore: bool = False):
        """Greedy actions, or with `explore` ε-greedy ones (noisy weights for a noisy network).

        Args:
            observations: one observation or a batch (B, *observation_shape).
            explore: act as during training. Defaults to False.

        Returns:
            An int for one observation, else an int64 array (B,).
        """
        batch, single = self._batched(observations)
        actions = self._actions(batch, explore)
        return int(actions[0]) if single else actions

    def _actions(self, batch: np.ndarray, explore: bool) -> np.ndarray:
        """`act` of a batch the agent already normalised, int64 (B,)."""
        random = np.zeros(len(batch), bool)
        if explore and not self.noisy:
            random = self._rng.random(len(batch)) < self.epsilon
        if random.all():
            # Early in a run ε ≈ 1: no network call when every action is random.
            actions = np.zeros(len(batch), np.int64)
        else:
            network = self._compiled(self.q_network, training=explore and self.noisy)
            actions = self._numpy_q_values(network(batch)).argmax(axis=-1).astype(np.int64)
        if random.any():
            actions[random] = self._rng.integers(self.num_actions, size=int(random.sum()))
        return actions

    # ------------------------------------------------------------------ learning

    def _make_optimizer(self):
        return keras.optimizers.Adam(self.learning_rate, global_clipnorm=self.max_grad_norm)

    def _setup_run(self, env):
        from gymnasium.spaces import Discrete

        space = env.single_action_space
        if not isinstance(space, Discrete):
            raise ValueError(
                "Expected a discrete action space: DQN picks the action of highest Q-value. "
                f"Received: action_space={space!r}"
            )
        if int(space.n) != self.num_actions:
            raise ValueError(
                f"Expected {self.num_actions} actions, the outputs of `q_network`. "
                f"Received: action_space={space!r}"
            )
        self._check_observation_space(env, [("q_network", self.q_network)])
        frames = self._frame_replay(env.single_observation_space)
        if (
            self.buffer is None
            or self.buffer.num_envs != env.num_envs
            or isinstance(self.buffer, FrameReplayBuffer) != frames
        ):
            self._make_buffer(env.num_envs, frames)

    def _frame_replay(self, space) -> bool:
        """Whether replay stores frames once: `frame_replay`, or when None, observations that
        are uint8 frame stacks of rank 3."""
        stacks = len(space.shape or ()) == 3 and np.dtype(space.dtype) == np.uint8
        if self.frame_replay and not stacks:
            raise ValueError(
                "Expected uint8 observations of shape (frame_stack, height, width) with "
                f"frame_replay=True. Received: observation_space={space!r}"
            )
        return stacks if self.frame_replay is None else self.frame_replay

    def _make_buffer(self, num_envs: int, frames: bool = False) -> None:
        arguments = dict(
            capacity=max(self.buffer_size, num_envs),
            observation_shape=self._observation_shape,
            observation_dtype=self._observation_dtype,
            num_envs=num_envs,
            n_step=self.n_step,
            gamma=self.gamma,
            seed=int(self._rng.integers(2**31)),
        )
        if self.prioritized:
            buffer_class = PrioritizedFrameReplayBuffer if frames else PrioritizedReplayBuffer
            self.buffer = buffer_class(**arguments, alpha=self.alpha, beta=self.beta, beta_steps=1)
        else:
            self.buffer = (FrameReplayBuffer if frames else ReplayBuffer)(**arguments)

    def _on_run_start(self, env, resumed: bool):
        # The environments are about to be reset: pending n-step windows end here.
        self.buffer.truncate_episodes()
        if self.prioritized and not resumed:
            # β reaches 1 at the end of the run's expected gradient steps.
            remaining = max(0, self._run_target - max(self.num_timesteps, self.learning_starts))
            phases = remaining // self.train_frequency + 1
            self.buffer.beta_steps = max(1, phases * self.gradient_steps)

    def _collect_and_train(self, env) -> dict:
        logs: dict = {}
        stop = min(self._iteration_stop, self.num_timesteps + max(self.train_frequency, 1_000))
        losses = []
        while self.num_timesteps < stop:
            actions = self._actions(self._observations, explore=True)
            before = self.num_timesteps
            observations, rewards, terminated, truncated, reached = self._step_env(env, actions)
            self.buffer.add(self._observations, actions, rewards, reached, terminated, truncated)
            self._observations = observations
            # A training phase every `train_frequency` steps (several when one vector step
            # covers more), once `learning_starts` steps are collected.
            phases = self.num_timesteps // self.train_frequency - before // self.train_frequency
            if self.num_timesteps >= self.learning_starts and len(self.buffer) >= self.batch_size:
                losses.extend(self._train(phases * self.gradient_steps))
        if losses:
            logs["loss"] = float(np.mean(losses))
        logs["epsilon"] = self.epsilon
        return logs

    def _targets(self, batch) -> dict:
        return {
            "actions": batch["actions"].astype(np.int32),
            "rewards": batch["rewards"],
            "next_observations": batch["next_observations"],
            "dones": batch["dones"],
            "discounts": batch["discounts"],
            "weights": batch.get("weights", np.ones_like(batch["rewards"], np.float32)),
        }

    def _train(self, steps: int) -> list[float]:
        """Takes `steps` gradient steps; returns the loss of each compiled call.

        Uniform replay draws the minibatches of every step up to the next target update at
        once (the buffer does not change in between) and runs them in one compiled call;
        prioritized replay must update priorities between steps, so it takes them one by one.
        """
        losses = []
        while steps > 0:
            if self.prioritized:
                losses.append(self._gradient_step())
                steps -= 1
                continue
            due = self.target_update_interval - self.num_updates % self.target_update_interval
            count = min(steps, due)
            batches = [self.buffer.sample(self.batch_size) for _ in range(count)]
            stacked = {key: np.stack([batch[key] for batch in batches]) for key in batches[0]}
            logs = self._train_batches(stacked["observations"], self._targets(stacked))
            losses.append(float(logs["loss"]))
            if self.num_updates % self.target_update_interval == 0:
                self.update_target()
            steps -= count
        return losses

    def _gradient_step(self) -> float:
        """One gradient step on one sampled minibatch (updating priorities if prioritized)."""
        batch = self.buffer.sample(self.batch_size)
        logs = self._train_batch(batch["observations"], self._targets(batch))
        if self.num_updates % self.target_update_interval == 0:
            self.update_target()
        if self.prioritized:
            errors = keras.ops.convert_to_numpy(self._td_errors.value)
            self.buffer.update_priorities(batch["indices"], errors)
        return float(logs["loss"])

    # ------------------------------------------------------------------ checkpoints

    def _extra_state(self):
        state = {f"buffer/{key}": value for key, value in self.buffer.state().items()}
        state["beta_steps"] = np.int64(getattr(self.buffer, "beta_steps", 0))
        return state

    def _restore_extra_state(self, state):
        frames = "buffer/frames" in state  # the checkpoint's buffer kind is the one restored
        if self.buffer is None or isinstance(self.buffer, FrameReplayBuffer) != frames:
            self._make_buffer(state["buffer/window_actions"].shape[1], frames)
        buffer_state = {
            key.split("/", 1)[1]: value for key, value in state.items() if key.startswith("buffer/")
        }
        if "buffer_rng" in state:  # a checkpoint written before buffers had `state()`
            buffer_state["rng_state"] = state["buffer_rng"]
        self.buffer.restore(buffer_state)
        if self.prioritized:
            self.buffer.beta_steps = int(state["beta_steps"])
