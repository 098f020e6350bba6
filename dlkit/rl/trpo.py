"""Trust-region policy optimisation of notes §9.2.3, for discrete and continuous actions."""

from __future__ import annotations

import dataclasses

import keras
import numpy as np
from keras import ops

from dlkit.rl.policy_gradient import ActorCriticConfig, RolloutAgent
from dlkit.training import gradients
from dlkit.validation import check_int, check_non_negative, check_positive, check_unit_interval

__all__ = ["TRPO", "TRPOConfig"]

# Conjugate gradient stops refining once the squared residual is below this.
_CG_RESIDUAL_TOLERANCE = 1e-10
# Keeps divisions of the conjugate gradient finite when a curvature is exactly 0.
_TINY = 1e-12


@dataclasses.dataclass
class TRPOConfig(ActorCriticConfig):
    """The hyperparameters of `TRPO` (with those of `ActorCriticConfig`; `learning_rate` and
    `max_grad_norm` are the critic's Adam's); the string under each field documents it.

    The defaults are sb3-contrib's TRPO's.

    Example:

        >>> TRPOConfig(max_kl=0.02).cg_iterations
        15
    """

    learning_rate: float = 1e-3
    max_grad_norm: float | None = None
    n_steps: int = 2048
    """Steps per copy per rollout."""
    batch_size: int = 128
    """Transitions per minibatch of the critic's regression."""
    critic_epochs: int = 10
    """Passes of the critic's regression over each rollout."""
    gae_lambda: float = 0.95
    """The GAE λ in [0, 1]."""
    max_kl: float = 0.01
    """δ > 0, the bound of the mean KL divergence between the policy before and after a
    step (eq. 9.23)."""
    cg_iterations: int = 15
    """Conjugate-gradient iterations (>= 1) solving F s = g for the step's direction."""
    cg_damping: float = 0.1
    """λ >= 0, added to the Fisher matrix's diagonal (F + λI) to keep the solve stable."""
    line_search_shrink: float = 0.8
    """The factor in (0, 1) the step shrinks by after each rejected trial."""
    line_search_iterations: int = 10
    """Trials of the backtracking line search (>= 1) before the step is given up."""

    def __post_init__(self) -> None:
        super().__post_init__()
        self.n_steps = check_int("n_steps", self.n_steps)
        self.batch_size = check_int("batch_size", self.batch_size)
        self.critic_epochs = check_int("critic_epochs", self.critic_epochs)
        self.gae_lambda = check_unit_interval("gae_lambda", self.gae_lambda)
        self.max_kl = check_positive("max_kl", self.max_kl)
        self.cg_iterations = check_int("cg_iterations", self.cg_iterations)
        self.cg_damping = check_non_negative("cg_damping", self.cg_damping)
        shrink = self.line_search_shrink
        if isinstance(shrink, bool) or not isinstance(shrink, (int, float)) or not 0 < shrink < 1:
            raise ValueError(
                "Expected `line_search_shrink` to be a number in (0, 1). "
                f"Received: line_search_shrink={shrink!r}"
            )
        self.line_search_shrink = float(shrink)
        self.line_search_iterations = check_int(
            "line_search_iterations", self.line_search_iterations
        )


@keras.saving.register_keras_serializable(package="dlkit")
class TRPO(RolloutAgent):
    """TRPO: the policy step that maximises the surrogate advantage inside a KL trust region.

    Each iteration collects `n_steps` steps from every copy, computes GAE advantages, then
    takes one policy step and fits the critic apart:

    1. g, the gradient of the surrogate L at θ_k, and the natural-gradient direction
       s ≈ F⁻¹ g by `cg_iterations` of conjugate gradient, where F, the Hessian of the mean KL
       divergence at θ_k (the Fisher information matrix, plus `cg_damping` · I), only enters
       through products F v (`dlkit.training.hessian_vector_product`); the whole computation
       is one compiled call (`dlkit.training.compile_function`);
    2. the largest step along s the quadratic model of the KL allows, β = sqrt(2δ / sᵀF s);
    3. a backtracking line search over θ_k + `line_search_shrink`ⁱ β s that accepts the first
       trial whose surrogate improves on L(θ_k) and whose mean KL, measured, is at most δ;
       if none does, the policy stays at θ_k;
    4. `critic_epochs` passes of Adam minibatch steps on (R_t − V(s_t))².

    PPO reaches for the same goal (a large but safe improvement) without second-order terms:
    its clip removes the incentive to move the ratio π_θ / π_θ_k past 1 ± ε, a soft,
    per-sample stand-in for TRPO's hard bound on the mean KL, and lets it take many cheap
    first-order epochs instead of one constrained step [notes eqs. 9.26-9.28].

    Equation:

        θ_{k+1} = argmax_θ L(θ_k, θ)  s.t.  mean KL(π_θ ‖ π_θ_k) ≤ δ        [notes eq. 9.23]
        L(θ_k, θ) = mean π_θ(a_t | s_t) / π_θ_k(a_t | s_t) · A_t            [notes eq. 9.24]
        mean KL = mean over visited s of KL(π_θ(· | s) ‖ π_θ_k(· | s))      [notes eq. 9.25]
        s = (F + λI)⁻¹ g,   β = sqrt(2δ / sᵀ(F + λI)s),   θ = θ_k + shrinkⁱ β s

    Args:
        actor: a built model from observations to logits (B, n) or Gaussian means (B, D).
        critic: a built model from observations to values (B, 1).
        action_space: the gymnasium `Discrete` or one-dimensional `Box` action space.
        config: a `TRPOConfig` (or a subclass, such as a recipe's `Config`) holding the
            hyperparameters, documented there. Defaults to `TRPOConfig()`.
        **kwargs: fields of `TRPOConfig` (`max_kl=0.02`), which override those of `config`,
            and other `keras.Model` arguments (`name`).

    Returns:
        An agent; `learn(env, total_timesteps)` trains it, `act(observations)` acts. After
        each policy step `last_policy_step` holds what the step measured.

    Example:

        >>> import gymnasium as gym
        >>> agent = TRPO.from_env(gym.make("CartPole-v1"), hidden_units=(16,), n_steps=64,
        ...                       seed=0)
        >>> agent.learn(gym.make("CartPole-v1"), total_timesteps=128, verbose=0).num_timesteps
        128
        >>> agent.last_policy_step["kl"] <= agent.max_kl
        True

    Reference:
        Schulman et al., "Trust Region Policy Optimization", ICML 2015
        (https://arxiv.org/abs/1502.05477).
    """

    config_class = TRPOConfig

    def __init__(self, actor, critic, action_space, config: TRPOConfig | None = None, **kwargs):
        super().__init__(actor, critic, action_space, config, **kwargs)
        self.last_policy_step: dict = {}
        self._direction_function = None
        self._terms_function = None

    # ------------------------------------------------------------------ losses

    def _policy_variables(self) -> list:
        """θ: the actor's trainable weights, and the log standard deviation of a Gaussian."""
        variables = list(self.actor.trainable_variables)
        if self.log_std is not None:
            variables.append(self.log_std)
        return variables

    def _mean_kl(self, old_outputs, old_log_std, outputs):
        """mean KL(π_θ ‖ π_θ_k) over the batch (eq. 9.25), in keras.ops."""
        if self.discrete:
            log_p = ops.log_softmax(outputs, axis=-1)
            log_q = ops.log_softmax(ops.cast(old_outputs, outputs.dtype), axis=-1)
            return ops.mean(ops.sum(ops.exp(log_p) * (log_p - log_q), axis=-1))
        log_std = ops.cast(self.log_std, outputs.dtype)
        old_log_std = ops.cast(old_log_std, outputs.dtype)
        difference = outputs - ops.cast(old_outputs, outputs.dtype)
        per_dimension = (
            old_log_std
            - log_std
            + (ops.exp(2.0 * log_std) + ops.square(difference)) / (2.0 * ops.exp(2.0 * old_log_std))
            - 0.5
        )
        return ops.mean(ops.sum(per_dimension, axis=-1))

    def _surrogate_and_kl(
        self, observations, actions, old_log_probs, advantages, old_outputs, old_log_std
    ):
        """L(θ_k, θ) (eq. 9.24) and the mean KL at the current weights θ."""
        outputs = self.actor(observations, training=False)
        log_prob, _ = self._log_prob_and_entropy(outputs, actions)
        ratio = ops.exp(log_prob - ops.cast(old_log_probs, log_prob.dtype))
        surrogate = ops.mean(ratio * ops.cast(advantages, log_prob.dtype))
        return surrogate, self._mean_kl(old_outputs, old_log_std, outputs)

    def _direction(self, *batch):
        """L(θ_k), the step β s and the surrogate's predicted gain gᵀ β s, at θ = θ_k."""
        variables = self._policy_variables()
        surrogate, (grads), _ = gradients.value_and_grad(
            lambda: self._surrogate_and_kl(*batch)[0], variables
        )
        g = gradients.flatten(grads)

        def fisher_product(vector):
            product = gradients.hessian_vector_product(
                lambda: self._surrogate_and_kl(*batch)[1], variables, vector
            )
            return product + self.cg_damping * vector

        def cg_iteration(_, state):
            x, residual, direction, squared = state
            product = fisher_product(direction)
            active = ops.cast(squared > _CG_RESIDUAL_TOLERANCE, g.dtype)
            alpha = active * squared / (ops.sum(direction * product) + _TINY)
            x = x + alpha * direction
            residual = residual - alpha * product
            new_squared = ops.sum(residual * residual)
            beta = new_squared / (squared + _TINY)
            return x, residual, residual + beta * direction, new_squared

        initial = (ops.zeros_like(g), g, g, ops.sum(g * g))
        s = ops.fori_loop(0, self.cg_iterations, cg_iteration, initial)[0]
        curvature = ops.sum(s * fisher_product(s))
        beta = ops.sqrt(2.0 * self.max_kl / ops.maximum(curvature, _TINY))
        return surrogate, beta * s, beta * ops.sum(g * s)

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        """The critic's regression loss, mean (R_t − V(s_t))², for the critic's Adam steps.

        The policy is not trained by gradient steps of this loss: its outputs enter with
        weight 0, so that every weight has a (zero) gradient on every backend and Adam leaves
        the policy's weights exactly as they are.
        """
        y = {key: ops.convert_to_tensor(value) for key, value in y.items()}
        actor_outputs, values = y_pred
        returns = ops.cast(y["returns"], values.dtype)
        value_loss = self._masked_mean(ops.square(returns - values), y)
        unused = ops.sum(actor_outputs) * 0.0
        if self.log_std is not None:
            unused = unused + ops.sum(self.log_std) * 0.0
        return value_loss + ops.cast(unused, value_loss.dtype)

    def _make_optimizer(self):
        return keras.optimizers.Adam(self.learning_rate, global_clipnorm=self.max_grad_norm)

    # ------------------------------------------------------------------ learning

    def _setup_run(self, env):
        super()._setup_run(env)
        self._setup_rollouts(env, self.gae_lambda)

    def _on_run_start(self, env, resumed):
        del env, resumed  # nothing is scheduled over the run

    def _compiled_policy_functions(self):
        if self._direction_function is None:
            variables = list(self.actor.variables)
            if self.log_std is not None:
                variables.append(self.log_std)
            self._direction_function = gradients.compile_function(self._direction, variables)
            self._terms_function = gradients.compile_function(self._surrogate_and_kl, variables)
        return self._direction_function, self._terms_function

    def _policy_step(self, observations, actions, old_log_probs, advantages) -> dict:
        """Steps 1-3 of the class docstring on one batch; returns what the step measured."""
        direction, terms = self._compiled_policy_functions()
        old_outputs = self._compiled(self.actor)(observations)
        if self.log_std is None:
            old_log_std = np.zeros(1, np.float32)
        else:
            old_log_std = keras.ops.convert_to_numpy(self.log_std.value).astype(np.float32)
        batch = (observations, actions, old_log_probs, advantages, old_outputs, old_log_std)
        surrogate, step, expected_gain = (
            keras.ops.convert_to_numpy(value) for value in direction(*batch)
        )
        variables = self._policy_variables()
        original = [keras.ops.convert_to_numpy(variable.value) for variable in variables]
        offsets = np.cumsum([0] + [value.size for value in original])
        result = {
            "accepted": False,
            "kl": 0.0,
            "surrogate_gain": 0.0,
            "expected_gain": float(expected_gain),
            "trials": 0,
        }
        if np.all(np.isfinite(step)):
            fraction = 1.0
            for trial in range(1, self.line_search_iterations + 1):
                for variable, value, start, stop in zip(
                    variables, original, offsets[:-1], offsets[1:]
                ):
                    variable.assign(value + fraction * step[start:stop].reshape(value.shape))
                new_surrogate, kl = (float(keras.ops.convert_to_numpy(v)) for v in terms(*batch))
                result["trials"] = trial
                if kl <= self.max_kl and new_surrogate > float(surrogate):
                    result.update(
                        accepted=True, kl=kl, surrogate_gain=new_surrogate - float(surrogate)
                    )
                    break
                fraction *= self.line_search_shrink
        if not result["accepted"]:
            for variable, value in zip(variables, original):
                variable.assign(value)
        return result

    def _collect_and_train(self, env) -> dict:
        self._collect_rollout(env)
        batch = next(self.rollout.minibatches(len(self.rollout)))
        targets = self._targets(batch, self.normalize_advantages)
        self.last_policy_step = self._policy_step(
            batch["observations"], targets["actions"], targets["log_probs"], targets["advantages"]
        )
        loss = self._train_epochs(self.critic_epochs, self.batch_size, normalize=False)
        return {
            "loss": loss,
            "kl": self.last_policy_step["kl"],
            "step_accepted": float(self.last_policy_step["accepted"]),
        }
