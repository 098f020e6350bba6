"""The on-policy rollout buffer of A2C and PPO, with generalized advantage estimates.

Pure NumPy: one rollout of a fixed number of steps from parallel environments [notes
§§9.2.2–9.2.3]. Terminations and truncations are told apart as in `dlkit.rl.buffers`.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from dlkit.rl.buffers import Batch, Seed
from dlkit.rl.saving import generator_from_json, generator_to_json
from dlkit.validation import check_int, check_shape, check_unit_interval

__all__ = ["RolloutBuffer"]


class RolloutBuffer:
    """One rollout of `num_steps` steps from `num_envs` environments, with GAE, for A2C and PPO.

    On-policy agents collect a fixed number of steps with the current policy, compute an
    advantage for every step, learn from them, and throw them away [notes §§9.2.2–9.2.3]. The
    advantage estimate is GAE: an exponentially weighted (λ) average of n-step advantages built
    from the critic's values, where λ = 0 is the one-step TD error and λ = 1 the Monte-Carlo
    return minus the baseline V(s_t) of notes eq. 9.22. `returns` are the critic's targets.

    Episode ends: `terminated` or `truncated` at step t stops the recursion, as the next stored
    step belongs to a new episode. A termination bootstraps from 0 (the "terminal s_t" case of
    the A3C pseudocode, notes §9.2.2). A truncation should bootstrap from the value of the
    episode's true final observation, which is not among the stored steps: pass it to `add` as
    `truncation_values` and the buffer adds γ·V(final observation) to that step's reward, so
    r_t + γ V(s_{t+1}) is the usual one-step target. Without `truncation_values`, truncations
    are treated like terminations (a small, documented bias).

    Equation:

        d_t = terminated_t ∨ truncated_t,   V(s_T) = last_values
        δ_t = r_t + γ V(s_{t+1}) (1 − d_t) − V(s_t)
        A_t = δ_t + γ λ (1 − d_t) A_{t+1},   A_T = 0
        returns_t = A_t + V(s_t)
        [not in the notes, which use the one-step baseline form (eq. 9.22) and the n-step
         return of the A3C pseudocode (§9.2.2); GAE is Schulman et al. 2016.
         d_t is the flag returned by step t, CleanRL's d_{t+1}.]

    Args:
        num_steps: the number of steps per rollout (an integer >= 1).
        num_envs: the number of parallel environments (an integer >= 1).
        observation_shape: the shape of one observation, e.g. `(4,)`.
        action_shape: the shape of one action, `()` (default) for a discrete action.
        gamma: the discount factor γ in [0, 1]. Defaults to 0.99.
        gae_lambda: the GAE parameter λ in [0, 1]. Defaults to 0.95.
        observation_dtype: the dtype observations are stored in. Defaults to `"float32"`.
        action_dtype: the dtype actions are stored in. Defaults to `"int64"`.
        seed: integer seed (or `numpy.random.Generator`) of the minibatch shuffling.
            Defaults to `None`.

    Returns:
        An empty buffer with arrays of shape (num_steps, num_envs, ...): `observations`,
        `actions`, `rewards`, `terminated`, `truncated`, `values`, `log_probs`, and after
        `compute_returns_and_advantages`, `advantages` and `returns`. `minibatches` yields dicts
        of flat arrays (B, ...) with the keys `observations`, `actions`, `log_probs`, `values`,
        `advantages` and `returns`.

    Example:

        >>> rollout = RolloutBuffer(num_steps=16, num_envs=4, observation_shape=(3,), seed=0)
        >>> for step in range(16):
        ...     rollout.add(np.zeros((4, 3)), np.zeros(4), np.ones(4), np.zeros(4, bool),
        ...                 np.zeros(4, bool), values=np.zeros(4), log_probs=np.zeros(4))
        >>> advantages, returns = rollout.compute_returns_and_advantages(np.zeros(4))
        >>> print(advantages.shape)
        (16, 4)
        >>> print([batch["observations"].shape for batch in rollout.minibatches(32)])
        [(32, 3), (32, 3)]

    Reference:
        Schulman et al., "High-Dimensional Continuous Control Using Generalized Advantage
        Estimation", ICLR 2016 (https://arxiv.org/abs/1506.02438); Schulman et al., "Proximal
        Policy Optimization Algorithms", 2017 (https://arxiv.org/abs/1707.06347).
    """

    def __init__(
        self,
        num_steps: int,
        num_envs: int,
        observation_shape: tuple[int, ...],
        action_shape: tuple[int, ...] = (),
        gamma: float = 0.99,
        gae_lambda: float = 0.95,
        observation_dtype: str = "float32",
        action_dtype: str = "int64",
        seed: Seed = None,
    ) -> None:
        self.num_steps = check_int("num_steps", num_steps)
        self.num_envs = check_int("num_envs", num_envs)
        self.observation_shape = check_shape("observation_shape", observation_shape)
        self.action_shape = check_shape("action_shape", action_shape)
        self.gamma = check_unit_interval("gamma", gamma)
        self.gae_lambda = check_unit_interval("gae_lambda", gae_lambda)
        self.observation_dtype = np.dtype(observation_dtype)
        self.action_dtype = np.dtype(action_dtype)
        self.seed = seed if not isinstance(seed, np.random.Generator) else None
        self._rng = np.random.default_rng(seed)

        steps = (self.num_steps, self.num_envs)
        self.observations = np.zeros((*steps, *self.observation_shape), self.observation_dtype)
        self.actions = np.zeros((*steps, *self.action_shape), self.action_dtype)
        self.rewards = np.zeros(steps, np.float32)
        self.terminated = np.zeros(steps, bool)
        self.truncated = np.zeros(steps, bool)
        self.values = np.zeros(steps, np.float32)
        self.log_probs = np.zeros(steps, np.float32)
        self.advantages = np.zeros(steps, np.float32)
        self.returns = np.zeros(steps, np.float32)
        self.position = 0
        self.has_advantages = False

    def __len__(self) -> int:
        """The number of stored transitions, steps × environments."""
        return self.position * self.num_envs

    @property
    def is_full(self) -> bool:
        """Whether all `num_steps` steps are stored."""
        return self.position == self.num_steps

    def reset(self) -> None:
        """Empties the buffer for the next rollout (the arrays are reused)."""
        self.position = 0
        self.has_advantages = False
        self.terminated[...] = False
        self.truncated[...] = False

    def state(self) -> dict[str, np.ndarray]:
        """The rollout's whole state as arrays: the steps stored, their advantages and the
        shuffling generator (`rng_state`, JSON). `restore` sets it back."""
        return {
            "observations": self.observations,
            "actions": self.actions,
            "rewards": self.rewards,
            "terminated": self.terminated,
            "truncated": self.truncated,
            "values": self.values,
            "log_probs": self.log_probs,
            "advantages": self.advantages,
            "returns": self.returns,
            "position": np.int64(self.position),
            "has_advantages": np.bool_(self.has_advantages),
            "rng_state": np.array(generator_to_json(self._rng)),
        }

    def restore(self, state) -> None:
        """Sets the state `state()` returned into this identically configured buffer; the
        minibatches then shuffle exactly as they would have."""
        for name in (
            "observations",
            "actions",
            "rewards",
            "terminated",
            "truncated",
            "values",
            "log_probs",
            "advantages",
            "returns",
        ):
            getattr(self, name)[...] = state[name]
        self.position = int(state["position"])
        self.has_advantages = bool(state["has_advantages"])
        self._rng = generator_from_json(str(state["rng_state"]))

    def _per_env(self, name: str, value: object, dtype) -> np.ndarray:
        value = np.asarray(value, dtype=dtype)
        if value.shape != (self.num_envs,):
            raise ValueError(
                f"Expected {name} of shape {(self.num_envs,)}. Received: {name}.shape={value.shape}"
            )
        return value

    def add(
        self,
        observations: np.ndarray,
        actions: np.ndarray,
        rewards: np.ndarray,
        terminated: np.ndarray,
        truncated: np.ndarray,
        values: np.ndarray,
        log_probs: np.ndarray,
        truncation_values: np.ndarray | None = None,
    ) -> None:
        """Stores one step of every environment (leading axis `num_envs` on every argument).

        `observations` are the states the actions were taken in; `rewards`, `terminated` and
        `truncated` are what the step returned; `values` are V(observations) and `log_probs`
        log π(actions | observations) under the acting policy. `truncation_values`, shape
        (num_envs,), is V of the true final observation for environments whose episode was
        truncated at this step (ignored elsewhere).
        """
        if self.is_full:
            raise ValueError(
                f"Expected at most num_steps={self.num_steps} calls to add before reset(). "
                f"Received: add number {self.num_steps + 1}"
            )
        observations = np.asarray(observations)
        if observations.shape != (self.num_envs, *self.observation_shape):
            raise ValueError(
                f"Expected observations of shape {(self.num_envs, *self.observation_shape)}. "
                f"Received: observations.shape={observations.shape}"
            )
        actions = np.asarray(actions)
        if actions.shape != (self.num_envs, *self.action_shape):
            raise ValueError(
                f"Expected actions of shape {(self.num_envs, *self.action_shape)}. "
                f"Received: actions.shape={actions.shape}"
            )
        rewards = self._per_env("rewards", rewards, np.float64)
        terminated = self._per_env("terminated", terminated, bool)
        truncated = self._per_env("truncated", truncated, bool)
        if truncation_values is not None:
            truncation_values = self._per_env("truncation_values", truncation_values, np.float64)
            bootstrapped = truncated & ~terminated
            rewards = rewards + self.gamma * np.where(bootstrapped, truncation_values, 0.0)
        values = self._per_env("values", values, np.float32)
        log_probs = self._per_env("log_probs", log_probs, np.float32)
        step = self.position
        self.observations[step] = observations
        self.actions[step] = actions
        self.rewards[step] = rewards
        self.terminated[step] = terminated
        self.truncated[step] = truncated
        self.values[step] = values
        self.log_probs[step] = log_probs
        self.position += 1
        self.has_advantages = False

    def compute_returns_and_advantages(
        self, last_values: np.ndarray, last_dones: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Computes GAE advantages and returns over the full rollout; returns both (T, E).

        Args:
            last_values: V(s_T), the values of the observations after the last stored step,
                shape (num_envs,).
            last_dones: whether the last stored step ended each environment's episode, shape
                (num_envs,). Defaults to `terminated | truncated` of that step, which it
                replaces when given (they agree when taken from the same `env.step`).
        """
        if not self.is_full:
            raise ValueError(
                f"Expected a full rollout of num_steps={self.num_steps} steps. "
                f"Received: {self.position} steps"
            )
        last_values = self._per_env("last_values", last_values, np.float64)
        dones = (self.terminated | self.truncated).astype(np.float64)  # (T, E)
        if last_dones is not None:
            dones[-1] = self._per_env("last_dones", last_dones, bool)
        values = self.values.astype(np.float64)
        next_values = np.concatenate([values[1:], last_values[None]], axis=0)  # (T, E)
        not_done = 1.0 - dones
        deltas = self.rewards + self.gamma * next_values * not_done - values
        advantage = np.zeros(self.num_envs)
        for step in reversed(range(self.num_steps)):
            advantage = deltas[step] + self.gamma * self.gae_lambda * not_done[step] * advantage
            self.advantages[step] = advantage
        self.returns[...] = self.advantages + self.values
        self.has_advantages = True
        return self.advantages, self.returns

    def minibatches(self, batch_size: int, seed: Seed = None) -> Iterator[Batch]:
        """Yields the rollout once, shuffled, as flat minibatches of `batch_size` transitions.

        Each of the num_steps × num_envs transitions appears in exactly one minibatch; the last
        one is smaller when `batch_size` does not divide that number. Call once per PPO epoch.

        Args:
            batch_size: transitions per minibatch (an integer >= 1).
            seed: integer seed or `numpy.random.Generator` of this shuffle. Defaults to the
                buffer's own generator.
        """
        batch_size = check_int("batch_size", batch_size)
        if not self.has_advantages:
            raise ValueError(
                "Expected compute_returns_and_advantages() to run before minibatches(). "
                f"Received: has_advantages={self.has_advantages}"
            )
        rng = self._rng if seed is None else np.random.default_rng(seed)
        return self._iterate(batch_size, rng)

    def _iterate(self, batch_size: int, rng: np.random.Generator) -> Iterator[Batch]:
        num_transitions = self.num_steps * self.num_envs
        flat = {
            "observations": self.observations.reshape(num_transitions, *self.observation_shape),
            "actions": self.actions.reshape(num_transitions, *self.action_shape),
            "log_probs": self.log_probs.reshape(num_transitions),
            "values": self.values.reshape(num_transitions),
            "advantages": self.advantages.reshape(num_transitions),
            "returns": self.returns.reshape(num_transitions),
        }
        order = rng.permutation(num_transitions)
        for start in range(0, num_transitions, batch_size):
            indices = order[start : start + batch_size]
            yield {name: array[indices] for name, array in flat.items()}
