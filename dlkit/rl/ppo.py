"""Proximal policy optimisation of notes §9.2.3, for discrete and continuous actions."""

from __future__ import annotations

import dataclasses

import keras
from keras import ops

from dlkit.rl.policy_gradient import PolicyGradientConfig, RolloutAgent
from dlkit.validation import check_int, check_positive, check_unit_interval

__all__ = ["PPO", "PPOConfig"]


@dataclasses.dataclass
class PPOConfig(PolicyGradientConfig):
    """The hyperparameters of `PPO` (those of `PolicyGradientConfig`, with Adam's initial
    `learning_rate`); the string under each field documents it.

    Example:

        >>> PPOConfig(n_steps=32).batch_size
        64
    """

    learning_rate: float = 3e-4
    n_steps: int = 2048
    """Steps per copy per rollout."""
    batch_size: int = 64
    """Transitions per minibatch."""
    epochs: int = 10
    """Passes over each rollout."""
    gae_lambda: float = 0.95
    """The GAE λ in [0, 1]."""
    clip_epsilon: float = 0.2
    """The (initial) clip range ε > 0 of the probability ratio."""
    anneal: bool = False
    """Decay the learning rate and the clip range linearly to 0 over a run."""

    def __post_init__(self) -> None:
        super().__post_init__()
        self.n_steps = check_int("n_steps", self.n_steps)
        self.batch_size = check_int("batch_size", self.batch_size)
        self.epochs = check_int("epochs", self.epochs)
        self.gae_lambda = check_unit_interval("gae_lambda", self.gae_lambda)
        self.clip_epsilon = check_positive("clip_epsilon", self.clip_epsilon)
        self.anneal = bool(self.anneal)


@keras.saving.register_keras_serializable(package="dlkit")
class PPO(RolloutAgent):
    """PPO with the clipped surrogate objective, GAE, minibatch epochs and linear schedules.

    Each iteration collects `n_steps` steps from every copy of the environment with the
    current policy, computes GAE advantages and value targets, then takes `epochs` passes of
    minibatch gradient steps on them. The clipped ratio keeps each update close to the policy
    that collected the data, which is what lets PPO reuse a rollout many times [notes §9.2.3].
    With `anneal=True` the learning rate and the clip range fall linearly to 0 over the run.

    Equation:

        r_t(θ) = π_θ(a_t | s_t) / π_θ_old(a_t | s_t)     (the ratio of eq. 9.24)
        L_clip = mean min(r_t A_t, clip(r_t, 1 − ε, 1 + ε) A_t)
               = mean min(r_t A_t, g(ε, A_t))                     [notes eqs. 9.26-9.28]
        loss   = −L_clip + c_v · mean (R_t − V(s_t))² − c_H · mean H[π_θ(· | s_t)]
        A_t    = GAE(γ, λ) of `dlkit.rl.RolloutBuffer`,   R_t = A_t + V_old(s_t)

    Args:
        actor: a built model from observations to logits (B, n) or Gaussian means (B, D).
        critic: a built model from observations to values (B, 1).
        action_space: the gymnasium `Discrete` or one-dimensional `Box` action space.
        config: a `PPOConfig` (or a subclass, such as a recipe's `Config`) holding the
            hyperparameters, documented there. Defaults to `PPOConfig()`.
        **kwargs: fields of `PPOConfig` (`gamma=0.9`), which override those of `config`, and
            other `keras.Model` arguments (`name`).

    Returns:
        An agent; `learn(env, total_timesteps)` trains it, `act(observations)` acts.

    Example:

        >>> import gymnasium as gym
        >>> agent = PPO.from_env(gym.make("CartPole-v1"), hidden_units=(16,), n_steps=32,
        ...                      batch_size=16, epochs=2, seed=0)
        >>> agent.learn(gym.make("CartPole-v1"), total_timesteps=64, verbose=0).num_timesteps
        64

    Reference:
        Schulman et al., "Proximal Policy Optimization Algorithms", 2017
        (https://arxiv.org/abs/1707.06347); Schulman et al., "High-Dimensional Continuous
        Control Using Generalized Advantage Estimation", ICLR 2016.
    """

    config_class = PPOConfig

    def __init__(self, actor, critic, action_space, config: PPOConfig | None = None, **kwargs):
        super().__init__(actor, critic, action_space, config, **kwargs)
        # A variable, so that annealing changes it without retracing the compiled step.
        self._clip = self.add_weight(
            shape=(),
            initializer=keras.initializers.Constant(self.clip_epsilon),
            trainable=False,
            name="clip_epsilon",
        )

    def _policy_loss(self, log_prob, y):
        ratio = ops.exp(log_prob - ops.cast(y["log_probs"], log_prob.dtype))
        advantages = ops.cast(y["advantages"], log_prob.dtype)
        clip = ops.cast(self._clip, log_prob.dtype)
        clipped = ops.clip(ratio, 1.0 - clip, 1.0 + clip)
        return -self._masked_mean(ops.minimum(ratio * advantages, clipped * advantages), y)

    def _make_optimizer(self):
        return keras.optimizers.Adam(
            self.learning_rate, epsilon=1e-5, global_clipnorm=self.max_grad_norm
        )

    def _setup_run(self, env):
        super()._setup_run(env)
        self._setup_rollouts(env, self.gae_lambda)

    def _on_run_start(self, env, resumed):
        del env, resumed  # the schedules follow the run's counters

    def _apply_schedules(self) -> float:
        """Sets learning rate and ε for the progress of the run; returns the remaining part."""
        span = max(1, self._run_target - self._run_start)
        remaining = 1.0 - (self.num_timesteps - self._run_start) / span
        if self.anneal:
            self.optimizer.learning_rate.assign(self.learning_rate * remaining)
            self._clip.assign(self.clip_epsilon * remaining)
        return remaining

    def _collect_and_train(self, env) -> dict:
        self._apply_schedules()
        self._collect_rollout(env)
        return {"loss": self._train_epochs(self.epochs, self.batch_size, self.normalize_advantages)}
