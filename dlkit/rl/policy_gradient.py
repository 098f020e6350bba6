"""Policy-gradient agents of notes §9.2: REINFORCE with a baseline and A2C.

Both learn a policy network (the actor) and a state-value network (the critic, the baseline
of eq. 9.22) and share the machinery of this module with `dlkit.rl.PPO`: the policy
distribution over a discrete or continuous (Gaussian) action space, acting through one
compiled call of actor and critic, and one loss written in `keras.ops`:

    loss = policy_loss + value_coefficient · mean (returns − V(s))² − entropy_coefficient · H[π]

The actor outputs logits (B, A) for a `Discrete` action space, or the mean (B, D) of a
Gaussian for a `Box` one, whose state-independent log standard deviation is a trainable
weight of the agent. Sampled Gaussian actions are clipped to the box when stepping the
environment; the unclipped sample is what the loss sees.
"""

from __future__ import annotations

import dataclasses
import math

import keras
import numpy as np
from keras import ops

from dlkit.rl.agent import Agent, AgentConfig, GreedyAction
from dlkit.rl.rollout import RolloutBuffer
from dlkit.rl.torso import (
    check_image_observations,
    is_image_space,
    nature_cnn,
    observation_features,
)
from dlkit.validation import check_int, check_model, check_non_negative, check_unit_interval

__all__ = [
    "A2C",
    "REINFORCE",
    "A2CConfig",
    "ActorCriticConfig",
    "PolicyGradientConfig",
    "REINFORCEConfig",
    "build_actor_critic",
]

_LOG_2PI = math.log(2.0 * math.pi)


def space_to_config(space) -> dict:
    """A JSON-able description of a `Discrete` or `Box` action space."""
    from gymnasium.spaces import Box, Discrete

    if isinstance(space, dict):
        space = space_from_config(space)
    if isinstance(space, Discrete) and int(space.start) == 0:
        return {"kind": "discrete", "n": int(space.n)}
    if isinstance(space, Box) and len(space.shape) == 1:
        return {
            "kind": "box",
            "low": np.asarray(space.low, np.float64).tolist(),
            "high": np.asarray(space.high, np.float64).tolist(),
        }
    raise ValueError(
        "Expected `action_space` to be a gymnasium Discrete space starting at 0 or a "
        f"one-dimensional Box. Received: action_space={space!r}"
    )


def space_from_config(config: dict):
    from gymnasium.spaces import Box, Discrete

    if config.get("kind") == "discrete":
        return Discrete(int(config["n"]))
    if config.get("kind") == "box":
        return Box(np.asarray(config["low"], np.float32), np.asarray(config["high"], np.float32))
    raise ValueError(f"Expected an action-space description. Received: action_space={config!r}")


def build_actor_critic(
    observation_shape,
    action_space,
    hidden_units: tuple[int, ...] | None = None,
    activation: str = "tanh",
    share_torso: bool = True,
) -> tuple[keras.Model, keras.Model]:
    """Actor and critic for vector observations (perceptrons) or stacked frames (CNN).

    Vector observations go through separate multilayer perceptrons. Images, stacked uint8
    frames (frame_stack, height, width) channels first, go through the Nature-DQN torso
    (`dlkit.rl.nature_cnn`, which scales frames by 1/255 itself), with `share_torso` one torso
    whose layers both networks call, as in the PPO baselines on Atari: its gradient is the sum
    of the policy and value terms of the loss, and the agent holds its weights once.

    Args:
        observation_shape: the shape of one observation, e.g. `(4,)` or `(4, 84, 84)` for
            frames, or the gymnasium observation space (a Box of uint8 images is checked).
        action_space: a gymnasium `Discrete` or one-dimensional `Box` space.
        hidden_units: widths of the hidden layers of each network (after the torso for
            images). Defaults to None: `(64, 64)` for vectors, none for images.
        activation: the hidden layers' activation. Defaults to `"tanh"`.
        share_torso: one image torso for both networks; False gives each its own. Defaults to
            True. Ignored for vector observations.

    Returns:
        `(actor, critic)`: the actor maps observations to logits (B, n) or Gaussian means
        (B, D), the critic to values (B, 1). Output layers start small (orthogonal, gain 0.01
        for the actor, 1 for the critic), as in most PPO implementations.

    Example:

        >>> from gymnasium.spaces import Discrete
        >>> actor, critic = build_actor_critic((4,), Discrete(2))
        >>> actor.output.shape, critic.output.shape
        ((None, 2), (None, 1))
        >>> actor, critic = build_actor_critic((4, 84, 84), Discrete(4))
        >>> actor.get_layer("nature_cnn") is critic.get_layer("nature_cnn")
        True
    """
    description = space_to_config(action_space)
    outputs = description["n"] if description["kind"] == "discrete" else len(description["low"])
    image = is_image_space(observation_shape)
    if hidden_units is None:
        hidden_units = () if image else (64, 64)
    torso = None
    if image and share_torso:
        torso = nature_cnn(check_image_observations(observation_shape, "observation_shape"))

    def network(name, units, gain):
        inputs, x = observation_features(observation_shape, torso=torso)
        for index, width in enumerate(hidden_units):
            x = keras.layers.Dense(
                check_int("hidden_units", width),
                activation=activation,
                kernel_initializer=keras.initializers.Orthogonal(math.sqrt(2.0)),
                name=f"hidden_{index}",
            )(x)
        x = keras.layers.Dense(
            units, kernel_initializer=keras.initializers.Orthogonal(gain), name="output"
        )(x)
        return keras.Model(inputs, x, name=name)

    return network("actor", outputs, 0.01), network("critic", 1, 1.0)


@dataclasses.dataclass
class ActorCriticConfig(AgentConfig):
    """The hyperparameters of every actor-critic agent (with those of `AgentConfig`:
    `learning_rate`, `gamma`, `max_grad_norm`, `seed`): REINFORCE, A2C and PPO through
    `PolicyGradientConfig`, and TRPO, which fits its critic apart from the policy."""

    normalize_advantages: bool = True
    """Standardise the advantages of each batch (of each minibatch for PPO)."""
    log_std_init: float = 0.0
    """The initial log standard deviation of a Gaussian policy (a Box of actions)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        self.normalize_advantages = bool(self.normalize_advantages)
        self.log_std_init = float(self.log_std_init)


@dataclasses.dataclass
class PolicyGradientConfig(ActorCriticConfig):
    """The hyperparameters REINFORCE, A2C and PPO share, whose one loss weighs the policy, the
    critic and the entropy terms; each agent's config extends it."""

    value_coefficient: float = 0.5
    """c_v >= 0, the weight of the critic's squared error in the loss."""
    entropy_coefficient: float = 0.0
    """c_H >= 0, the weight of the entropy bonus."""

    def __post_init__(self) -> None:
        super().__post_init__()
        self.value_coefficient = check_non_negative("value_coefficient", self.value_coefficient)
        self.entropy_coefficient = check_non_negative(
            "entropy_coefficient", self.entropy_coefficient
        )


@dataclasses.dataclass
class REINFORCEConfig(PolicyGradientConfig):
    """The hyperparameters of `REINFORCE` (those of `PolicyGradientConfig`, and Adam's
    `learning_rate`); the string under each field documents it."""

    episodes_per_update: int = 4
    """Complete episodes per gradient step."""

    def __post_init__(self) -> None:
        super().__post_init__()
        self.episodes_per_update = check_int("episodes_per_update", self.episodes_per_update)


@dataclasses.dataclass
class A2CConfig(PolicyGradientConfig):
    """The hyperparameters of `A2C` (those of `PolicyGradientConfig`, with RMSprop's
    `learning_rate`); the string under each field documents it."""

    learning_rate: float = 7e-4
    normalize_advantages: bool = False
    n_steps: int = 5
    """Steps per copy per rollout (one gradient step each)."""
    gae_lambda: float = 1.0
    """The GAE λ in [0, 1]; 1 gives the n-step returns of A3C."""

    def __post_init__(self) -> None:
        super().__post_init__()
        self.n_steps = check_int("n_steps", self.n_steps)
        self.gae_lambda = check_unit_interval("gae_lambda", self.gae_lambda)


class ActorCritic(Agent):
    """Policy distribution, acting, rollouts and loss shared by REINFORCE, A2C and PPO."""

    config_class = PolicyGradientConfig

    def __init__(
        self,
        actor: keras.Model,
        critic: keras.Model,
        action_space,
        config: PolicyGradientConfig | None = None,
        **kwargs,
    ):
        super().__init__(config, **kwargs)
        self.actor = check_model("actor", actor, built=True)
        self.critic = check_model("critic", critic, built=True)
        self.action_space = space_to_config(action_space)
        self.discrete = self.action_space["kind"] == "discrete"
        self._observation_shape = tuple(actor.inputs[0].shape[1:])
        self._observation_dtype = np.dtype(actor.inputs[0].dtype).name
        critic_shape = tuple(critic.inputs[0].shape[1:])
        critic_dtype = np.dtype(critic.inputs[0].dtype).name
        if (critic_shape, critic_dtype) != (self._observation_shape, self._observation_dtype):
            raise ValueError(
                f"Expected `critic` to take the actor's observations {self._observation_shape} "
                f"of dtype {self._observation_dtype}. Received: critic input shape "
                f"{critic_shape} of dtype {critic_dtype}"
            )
        if tuple(critic.outputs[0].shape[1:]) != (1,):
            raise ValueError(
                "Expected `critic` to output one value per observation, shape (batch, 1). "
                f"Received: critic output shape {tuple(critic.outputs[0].shape)}"
            )
        actor_shape = tuple(actor.outputs[0].shape[1:])
        if self.discrete:
            self.action_shape: tuple[int, ...] = ()
            expected = (self.action_space["n"],)
        else:
            self.action_shape = (len(self.action_space["low"]),)
            expected = self.action_shape
            self._low = np.asarray(self.action_space["low"], np.float32)
            self._high = np.asarray(self.action_space["high"], np.float32)
        if actor_shape != expected:
            raise ValueError(
                f"Expected `actor` to output shape (batch, *{expected}) for "
                f"action_space={space_from_config(self.action_space)!r}. "
                f"Received: actor output shape (None, *{actor_shape})"
            )
        self.log_std = None
        if not self.discrete:
            self.log_std = self.add_weight(
                shape=self.action_shape,
                initializer=keras.initializers.Constant(self.log_std_init),
                name="log_std",
            )
        # Actor and critic in one functional model: one compiled call per environment step.
        inputs = keras.Input(
            self._observation_shape, dtype=self._observation_dtype, name="observations"
        )
        self._acting_model = keras.Model(inputs, [actor(inputs), critic(inputs)], name="acting")
        self._build_normalization(actor)
        self.built = True

    # ------------------------------------------------------------------ distribution

    def call(self, observations, training=False):
        return self.actor(observations, training=training), self.critic(
            observations, training=training
        )[:, 0]

    def _log_prob_and_entropy(self, actor_outputs, actions):
        """log π(actions | s) (B,) and the entropy H[π(· | s)] (B,) in keras.ops."""
        if self.discrete:
            log_probabilities = ops.log_softmax(actor_outputs, axis=-1)
            one_hot = ops.one_hot(
                ops.cast(actions, "int32"), self.action_space["n"], dtype=actor_outputs.dtype
            )
            log_prob = ops.sum(log_probabilities * one_hot, axis=-1)
            entropy = -ops.sum(ops.exp(log_probabilities) * log_probabilities, axis=-1)
            return log_prob, entropy
        log_std = ops.cast(self.log_std, actor_outputs.dtype)
        z = (ops.cast(actions, actor_outputs.dtype) - actor_outputs) / ops.exp(log_std)
        log_prob = ops.sum(-0.5 * ops.square(z) - log_std - 0.5 * _LOG_2PI, axis=-1)
        entropy = ops.sum(log_std + 0.5 * (1.0 + _LOG_2PI)) * ops.ones_like(log_prob)
        return log_prob, entropy

    def _policy_loss(self, log_prob, y):
        """−mean A · log π(a | s): the policy-gradient estimator of eqs. 9.21-9.22."""
        advantages = ops.cast(y["advantages"], log_prob.dtype)
        return -self._masked_mean(advantages * log_prob, y)

    @staticmethod
    def _masked_mean(values, y):
        weights = ops.cast(y["weights"], values.dtype)
        return ops.sum(values * weights) / ops.maximum(ops.sum(weights), 1.0)

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        y = {key: ops.convert_to_tensor(value) for key, value in y.items()}
        actor_outputs, values = y_pred
        log_prob, entropy = self._log_prob_and_entropy(actor_outputs, y["actions"])
        returns = ops.cast(y["returns"], values.dtype)
        value_loss = self._masked_mean(ops.square(returns - values), y)
        return (
            self._policy_loss(log_prob, y)
            + self.value_coefficient * value_loss
            - self.entropy_coefficient * self._masked_mean(entropy, y)
        )

    # ------------------------------------------------------------------ acting

    def _sample(self, observations, explore=True):
        """Actions, their log-probabilities and V(s) for a batch, in NumPy."""
        actor_outputs, values = self._acting_function()(observations)
        values = values[:, 0]
        if self.discrete:
            logits = actor_outputs.astype(np.float64)
            if explore:
                actions = (logits + self._rng.gumbel(size=logits.shape)).argmax(axis=-1)
            else:
                actions = logits.argmax(axis=-1)
            shifted = logits - logits.max(axis=-1, keepdims=True)
            log_normaliser = np.log(np.exp(shifted).sum(axis=-1))
            log_probs = (
                np.take_along_axis(shifted, actions[:, None], axis=-1)[:, 0] - log_normaliser
            )
            return actions.astype(np.int64), log_probs.astype(np.float32), values
        log_std = keras.ops.convert_to_numpy(self.log_std.value).astype(np.float64)
        mean = actor_outputs.astype(np.float64)
        noise = self._rng.standard_normal(mean.shape) if explore else np.zeros_like(mean)
        actions = mean + np.exp(log_std) * noise
        log_probs = (-0.5 * noise**2 - log_std - 0.5 * _LOG_2PI).sum(axis=-1)
        return actions.astype(np.float32), log_probs.astype(np.float32), values

    def _env_actions(self, actions: np.ndarray) -> np.ndarray:
        return actions if self.discrete else np.clip(actions, self._low, self._high)

    def act(self, observations, explore: bool = False):
        """The policy's actions: sampled with `explore`, else the most likely (the mean).

        Args:
            observations: one observation or a batch (B, *observation_shape).
            explore: sample from the policy as during training. Defaults to False.

        Returns:
            For a discrete space an int (one observation) or int64 array (B,); for a box, an
            array clipped to the box, (D,) or (B, D).
        """
        batch, single = self._batched(observations)
        actions = self._env_actions(self._sample(batch, explore=explore)[0])
        if single:
            return int(actions[0]) if self.discrete else actions[0]
        return actions

    def _policy_network_and_head(self):
        if self.discrete:
            return self.actor, GreedyAction("argmax")
        return self.actor, GreedyAction(
            "clip", low=self.action_space["low"], high=self.action_space["high"]
        )

    def value(self, observations) -> np.ndarray:
        """The critic's V(s) of a batch of observations, (B,)."""
        return self._values(self._batched(observations)[0])

    def _values(self, batch) -> np.ndarray:
        """`value` of a batch the agent already normalised."""
        return self._acting_function()(batch)[1][:, 0]

    def _acting_function(self):
        """The compiled call of actor and critic that acting and bootstrapping use."""
        return self._compiled(self._acting_model)

    # ------------------------------------------------------------------ learning

    def _setup_run(self, env):
        space = env.single_action_space
        try:
            matches = space_to_config(space) == self.action_space
        except ValueError:
            matches = False
        if not matches:
            raise ValueError(
                f"Expected the environment's action space to be "
                f"{space_from_config(self.action_space)!r}, the agent's. Received: "
                f"action_space={space!r}"
            )
        self._check_observation_space(env, [("actor", self.actor), ("critic", self.critic)])

    def _truncation_values(self, truncated, terminated, reached):
        """V(final observation) of copies whose episode was truncated, else None."""
        cut = truncated & ~terminated
        if not cut.any():
            return None
        # V of every copy, one batch of the rollout's shape: a compiled acting function then
        # serves it without compiling again for each count of truncated copies.
        return np.where(cut, self._values(reached), 0.0).astype(np.float32)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "actor": keras.saving.serialize_keras_object(self.actor),
                "critic": keras.saving.serialize_keras_object(self.critic),
                "action_space": self.action_space,
                # Layers the two networks share (a shared image torso), rejoined on loading.
                "shared_layers": [
                    layer.name
                    for layer in self.actor.layers
                    if any(layer is other for other in self.critic.layers)
                ],
            }
        )
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        for name in ("actor", "critic"):
            config[name] = keras.saving.deserialize_keras_object(config[name])
        shared = set(config.pop("shared_layers", ()))
        if shared:
            # Each network was serialised with its own copy of the shared layers: the critic
            # is rebuilt calling the actor's, so that the agent holds their weights once.
            actor = config["actor"]
            config["critic"] = keras.models.clone_model(
                config["critic"],
                clone_function=lambda layer: (
                    actor.get_layer(layer.name) if layer.name in shared else layer
                ),
            )
        return cls(**config)

    @classmethod
    def from_env(cls, env, hidden_units=None, activation="tanh", **kwargs):
        """Builds the agent with `build_actor_critic` networks for `env`'s spaces."""
        single = getattr(env, "single_observation_space", env.observation_space)
        action_space = getattr(env, "single_action_space", env.action_space)
        actor, critic = build_actor_critic(single, action_space, hidden_units, activation)
        return cls(actor, critic, action_space, **kwargs)


class RolloutAgent(ActorCritic):
    """Collects fixed-length rollouts of every copy into a `RolloutBuffer` (A2C, PPO)."""

    def _setup_rollouts(self, env, gae_lambda):
        if getattr(self, "rollout", None) is None or self.rollout.num_envs != env.num_envs:
            self.rollout = RolloutBuffer(
                num_steps=self.n_steps,
                num_envs=env.num_envs,
                observation_shape=self._observation_shape,
                observation_dtype=self._observation_dtype,
                action_shape=self.action_shape,
                gamma=self.gamma,
                gae_lambda=gae_lambda,
                action_dtype="int64" if self.discrete else "float32",
                seed=int(self._rng.integers(2**31)),
            )

    def _extra_state(self):
        # With the minibatch shuffling stream, so that a resumed run draws what the run would
        # have.
        return {f"rollout/{key}": value for key, value in self.rollout.state().items()}

    def _restore_extra_state(self, state):
        if "rollout_rng" in state:  # a checkpoint written before buffers had `state()`
            self.rollout.restore({**self.rollout.state(), "rng_state": state["rollout_rng"]})
            return
        self.rollout.restore(
            {
                key.split("/", 1)[1]: value
                for key, value in state.items()
                if key.startswith("rollout/")
            }
        )

    def _collect_rollout(self, env):
        self.rollout.reset()
        for _ in range(self.n_steps):
            actions, log_probs, values = self._sample(self._observations)
            observations, rewards, terminated, truncated, reached = self._step_env(
                env, self._env_actions(actions)
            )
            self.rollout.add(
                self._observations,
                actions,
                rewards,
                terminated,
                truncated,
                values,
                log_probs,
                truncation_values=self._truncation_values(truncated, terminated, reached),
            )
            self._observations = observations
        self.rollout.compute_returns_and_advantages(self._values(self._observations))

    def _train_epochs(self, epochs: int, batch_size: int, normalize: bool) -> float:
        """`epochs` shuffled passes of minibatch steps over the rollout; the mean loss.

        Every full-size minibatch of every epoch runs in one compiled call; a smaller last one
        (when `batch_size` does not divide the rollout) separately.
        """
        size = min(batch_size, len(self.rollout))
        batches = [
            (batch["observations"], self._targets(batch, normalize))
            for _ in range(epochs)
            for batch in self.rollout.minibatches(size)
        ]
        full = [batch for batch in batches if len(batch[0]) == size]
        logs = self._train_batches(
            np.stack([x for x, _ in full]),
            {key: np.stack([y[key] for _, y in full]) for key in full[0][1]},
        )
        losses = [float(logs["loss"])] * len(full)
        for x, y in batches:
            if len(x) != size:
                losses.append(float(self._train_batch(x, y)["loss"]))
        return sum(losses) / len(losses)

    @staticmethod
    def _targets(batch, normalize: bool) -> dict:
        advantages = batch["advantages"].astype(np.float32)
        if normalize and len(advantages) > 1:
            advantages = (advantages - advantages.mean()) / (advantages.std() + 1e-8)
        return {
            "actions": batch["actions"],
            "log_probs": batch["log_probs"].astype(np.float32),
            "advantages": advantages,
            "returns": batch["returns"].astype(np.float32),
            "weights": np.ones(len(advantages), np.float32),
        }


@keras.saving.register_keras_serializable(package="dlkit")
class A2C(RolloutAgent):
    """Synchronous advantage actor-critic: n-step bootstrapped advantages, one step per rollout.

    The synchronous form of A3C [notes §9.2.2]: `num_envs` copies each take `n_steps` steps,
    each step's return is bootstrapped from the critic's value at the end of the rollout (or
    stops at a termination), and one gradient step follows on the whole batch. The copies play
    the part of A3C's asynchronous workers: their decorrelated experience enters one update.

    Equation:

        R_t = Σ_{k=t}^{T−1} γ^{k−t} r_k + γ^{T−t} V(s_T)      (n-step return, §9.2.2)
        A_t = R_t − V(s_t)                                      (gae_lambda = 1)
        loss = −mean A_t log π(a_t | s_t) + c_v · mean (R_t − V(s_t))² − c_H · mean H[π]
        [notes eqs. 9.21-9.22; with gae_lambda < 1, GAE advantages (Schulman et al. 2016)]

    Args:
        actor: a built model from observations to logits (B, n) or Gaussian means (B, D).
        critic: a built model from observations to values (B, 1).
        action_space: the gymnasium `Discrete` or one-dimensional `Box` action space.
        config: a `A2CConfig` (or a subclass, such as a recipe's `Config`) holding the
            hyperparameters, documented there. Defaults to `A2CConfig()`.
        **kwargs: fields of `A2CConfig` (`gamma=0.9`), which override those of `config`, and
            other `keras.Model` arguments (`name`).

    Returns:
        An agent; `learn(env, total_timesteps)` trains it, `act(observations)` acts.

    Example:

        >>> import gymnasium as gym
        >>> agent = A2C.from_env(gym.make("CartPole-v1"), hidden_units=(16,), seed=0)
        >>> agent.learn(gym.make("CartPole-v1"), total_timesteps=50, verbose=0).num_timesteps
        50

    Reference:
        Mnih et al., "Asynchronous Methods for Deep Reinforcement Learning", ICML 2016.
    """

    config_class = A2CConfig

    def _make_optimizer(self):
        return keras.optimizers.RMSprop(
            self.learning_rate, rho=0.99, epsilon=1e-5, global_clipnorm=self.max_grad_norm
        )

    def _setup_run(self, env):
        super()._setup_run(env)
        self._setup_rollouts(env, self.gae_lambda)

    def _on_run_start(self, env, resumed):
        del env, resumed  # nothing is scheduled over the run

    def _collect_and_train(self, env) -> dict:
        self._collect_rollout(env)
        batch = next(self.rollout.minibatches(len(self.rollout)))
        logs = self._train_batch(
            batch["observations"], self._targets(batch, self.normalize_advantages)
        )
        return {"loss": float(logs["loss"])}


@keras.saving.register_keras_serializable(package="dlkit")
class REINFORCE(ActorCritic):
    """Monte-Carlo policy gradient with a learned baseline, one update per batch of episodes.

    Each update waits for `episodes_per_update` complete episodes, computes every step's
    discounted return G_t to the end of its episode, and takes one gradient step of the
    policy-gradient estimator with the critic's V(s_t) as baseline [notes eqs. 9.21-9.22]:
    the baseline lowers the variance without biasing the gradient. An episode truncated by a
    time limit bootstraps its tail from V(final observation). With several copies, the steps
    of unfinished episodes carry over to the next update. Batches are padded to a power of two
    with zero weights, so the compiled step is traced for a handful of shapes only.

    Equation:

        G_t = Σ_{k≥t} γ^{k−t} r_k
        loss = −mean (G_t − V(s_t)) log π(a_t | s_t) + c_v · mean (G_t − V(s_t))² − c_H · H
        [notes eq. 9.22, the REINFORCE-with-baseline form]

    Args:
        actor: a built model from observations to logits (B, n) or Gaussian means (B, D).
        critic: a built model from observations to values (B, 1).
        action_space: the gymnasium `Discrete` or one-dimensional `Box` action space.
        config: a `REINFORCEConfig` (or a subclass, such as a recipe's `Config`) holding the
            hyperparameters, documented there. Defaults to `REINFORCEConfig()`.
        **kwargs: fields of `REINFORCEConfig` (`gamma=0.9`), which override those of `config`, and
            other `keras.Model` arguments (`name`).

    Returns:
        An agent; `learn(env, total_timesteps)` trains it, `act(observations)` acts.

    Example:

        >>> import gymnasium as gym
        >>> agent = REINFORCE.from_env(gym.make("CartPole-v1"), hidden_units=(16,), seed=0)
        >>> agent.learn(gym.make("CartPole-v1"), total_timesteps=50, verbose=0).num_episodes > 0
        True

    Reference:
        Williams, "Simple statistical gradient-following algorithms for connectionist
        reinforcement learning", Machine Learning 1992.
    """

    config_class = REINFORCEConfig

    def _make_optimizer(self):
        return keras.optimizers.Adam(self.learning_rate, global_clipnorm=self.max_grad_norm)

    def _on_run_start(self, env, resumed):
        del resumed
        # Per copy: the steps of its running episode (observation, action, reward, value).
        self._pending = [[] for _ in range(env.num_envs)]

    def _collect_and_train(self, env) -> dict:
        finished = []  # (observations, actions, returns, values) of each complete episode
        while len(finished) < self.episodes_per_update and self.num_timesteps < self._run_target:
            actions, _, values = self._sample(self._observations)
            observations, rewards, terminated, truncated, reached = self._step_env(
                env, self._env_actions(actions)
            )
            tails = self._truncation_values(truncated, terminated, reached)
            for index in range(env.num_envs):
                self._pending[index].append(
                    (self._observations[index], actions[index], rewards[index], values[index])
                )
                if terminated[index] or truncated[index]:
                    tail = 0.0 if tails is None else float(tails[index])
                    finished.append(self._episode_arrays(self._pending[index], tail))
                    self._pending[index] = []
            self._observations = observations
        if not finished:
            return {}
        observations, actions, returns, values = (
            np.concatenate([episode[i] for episode in finished]) for i in range(4)
        )
        size = len(returns)
        padded = 1 << max(0, (size - 1).bit_length())
        advantages = returns - values
        if self.normalize_advantages and size > 1:
            advantages = (advantages - advantages.mean()) / (advantages.std() + 1e-8)

        def pad(array):
            return np.concatenate([array, np.zeros((padded - size, *array.shape[1:]), array.dtype)])

        targets = {
            "actions": pad(actions),
            "advantages": pad(advantages.astype(np.float32)),
            "returns": pad(returns.astype(np.float32)),
            "weights": pad(np.ones(size, np.float32)),
        }
        logs = self._train_batch(pad(observations.astype(self._observation_dtype)), targets)
        return {"loss": float(logs["loss"])}

    def _episode_arrays(self, steps, tail: float):
        observations = np.stack([step[0] for step in steps])
        actions = np.stack([step[1] for step in steps])
        rewards = np.array([step[2] for step in steps], np.float64)
        values = np.array([step[3] for step in steps], np.float32)
        returns = np.zeros(len(steps), np.float64)
        running = tail
        for t in range(len(steps) - 1, -1, -1):
            running = rewards[t] + self.gamma * running
            returns[t] = running
        return observations, actions, returns.astype(np.float32), values
