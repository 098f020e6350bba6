"""Replay buffers of chapter 9: uniform and prioritized experience replay.

Pure NumPy, preallocated arrays, vectorised over batches and parallel environments:

- `ReplayBuffer`: transitions (s, a, r, T, s') for off-policy agents such as DQN [notes §9.1.1],
  optionally as n-step transitions;
- `PrioritizedReplayBuffer`: the same, drawn in proportion to p^α [notes eqs. 9.12–9.14].

Both save their whole state (`state()` and `restore(state)`, or `save` and `load` to a file),
random generator included. The on-policy `RolloutBuffer` of A2C and PPO is in
`dlkit.rl.rollout`.

Terminated versus truncated: gymnasium reports two ways an episode can end. `terminated` means
the MDP reached a terminal state, whose value is 0, so targets do not bootstrap from it (the
case "T" of the Q-learning target in notes §9.1.1). `truncated` means the episode was cut from
outside (a time limit): the state reached still has a future, and cutting the bootstrap there
would teach the network that time-limit states are worthless, a bias that depends on a clock the
network cannot see. The buffers therefore bootstrap through truncations and stop only at
terminations.
"""

from __future__ import annotations

import json

import numpy as np

from dlkit.rl.saving import (
    generator_from_json,
    generator_to_json,
    npz_path,
    read_saved_object,
    write_verified,
)
from dlkit.rl.sum_tree import SumTree
from dlkit.validation import (
    check_int,
    check_non_negative,
    check_positive,
    check_shape,
    check_unit_interval,
)

__all__ = ["PrioritizedReplayBuffer", "ReplayBuffer"]

Batch = dict[str, np.ndarray]
Seed = int | np.random.Generator | None


class ReplayBuffer:
    """Circular store of transitions (s, a, r, T, s'), drawn uniformly: experience replay.

    An off-policy agent learns from each transition many times and from minibatches of
    transitions far apart in time, not from the strongly correlated stream it is collecting
    [notes §9.1.1]. The buffer keeps the last `capacity` transitions in preallocated arrays;
    once full, each new transition overwrites the oldest. `add` takes one transition, or one
    step of `num_envs` parallel environments (a leading axis of size `num_envs`).

    `done` is `terminated` only: a truncated episode (a time limit) still bootstraps from its
    last observation, so `next_observation` must be the true final observation of the episode,
    not the first observation of the next one. Gymnasium's vector environments give it as
    `info["final_obs"]` in same-step autoreset mode, the mode to use with this buffer; in
    next-step mode, the step after an episode end only resets, and a batched `add` cannot leave
    out one environment's meaningless transition.

    With `n_step > 1`, each stored transition spans n environment steps of one environment:
    reward = Σ_{k<m} γ^k r_{t+k}, next_observation = s_{t+m}, discount = γ^m, where m = n unless
    the episode ends (terminated or truncated) at step t + m − 1 < t + n − 1. Rewards are
    never summed across an episode boundary; after a truncation the target still bootstraps
    from s_{t+m} with γ^m. A transition is stored once its n steps have been seen, so the last
    n − 1 steps of each environment wait in a small per-environment window (saved with the
    buffer).

    Equation:

        target = rewards + discounts · (1 − dones) · max_a' Q(next_observations, a')
        rewards = Σ_{k<m} γ^k r_{t+k},  discounts = γ^m,  dones = terminated_{t+m−1}
        [notes §9.1.1 and eq. 9.10 for n = 1 (m = 1, discounts = γ); n-step returns are not
         in the notes: Sutton & Barto §7.1]

    Args:
        capacity: the number of transitions kept (an integer >= `num_envs`).
        observation_shape: the shape of one observation, e.g. `(4,)`.
        action_shape: the shape of one action, `()` (default) for a discrete action.
        observation_dtype: the dtype observations are stored in (`"uint8"` for images).
            Defaults to `"float32"`.
        action_dtype: the dtype actions are stored in. Defaults to `"int64"`.
        num_envs: the number of parallel environments a batched `add` holds. Defaults to 1.
        n_step: the number of environment steps per stored transition. Defaults to 1.
        gamma: the discount factor γ in [0, 1]. Defaults to 0.99.
        seed: integer seed (or `numpy.random.Generator`) of the sampling. Defaults to `None`.

    Returns:
        An empty buffer. `sample(batch_size)` returns a dict of arrays with leading axis
        `batch_size`: `observations` (B, *observation_shape), `actions` (B, *action_shape),
        `rewards` (B,) float32, `next_observations`, `dones` (B,) float32, `discounts` (B,)
        float32 and `indices` (B,) int64, the slots drawn.

    Example:

        >>> buffer = ReplayBuffer(100, observation_shape=(4,), seed=0)
        >>> buffer.add(np.zeros(4), 1, 1.0, np.ones(4), False, False)
        >>> len(buffer)
        1
        >>> vector_buffer = ReplayBuffer(100, observation_shape=(4,), num_envs=8, seed=0)
        >>> for _ in range(4):
        ...     vector_buffer.add(np.zeros((8, 4)), np.zeros(8), np.ones(8), np.ones((8, 4)),
        ...                       np.zeros(8, bool), np.zeros(8, bool))
        >>> batch = vector_buffer.sample(32)
        >>> print(batch["observations"].shape, batch["dones"].shape)
        (32, 4) (32,)

    Reference:
        Mnih et al., "Human-level control through deep reinforcement learning", Nature 2015;
        Hessel et al., "Rainbow", AAAI 2018 (n-step targets); Pardo et al., "Time Limits in
        Reinforcement Learning", ICML 2018 (truncation).
    """

    def __init__(
        self,
        capacity: int,
        observation_shape: tuple[int, ...],
        action_shape: tuple[int, ...] = (),
        observation_dtype: str = "float32",
        action_dtype: str = "int64",
        num_envs: int = 1,
        n_step: int = 1,
        gamma: float = 0.99,
        seed: Seed = None,
    ) -> None:
        self.capacity = check_int("capacity", capacity)
        self.observation_shape = check_shape("observation_shape", observation_shape)
        self.action_shape = check_shape("action_shape", action_shape)
        self.observation_dtype = np.dtype(observation_dtype)
        self.action_dtype = np.dtype(action_dtype)
        self.num_envs = check_int("num_envs", num_envs)
        if self.num_envs > self.capacity:
            raise ValueError(
                "Expected num_envs <= capacity (one step of every environment must fit). "
                f"Received: num_envs={num_envs}, capacity={capacity}"
            )
        self.n_step = check_int("n_step", n_step)
        self.gamma = check_unit_interval("gamma", gamma)
        self.seed = seed if not isinstance(seed, np.random.Generator) else None
        self._rng = np.random.default_rng(seed)

        self.observations = np.zeros(
            (self.capacity, *self.observation_shape), self.observation_dtype
        )
        self.actions = np.zeros((self.capacity, *self.action_shape), self.action_dtype)
        self.rewards = np.zeros(self.capacity, np.float32)
        self.next_observations = np.zeros_like(self.observations)
        self.dones = np.zeros(self.capacity, np.float32)
        self.discounts = np.zeros(self.capacity, np.float32)
        self.position = 0
        self.size = 0

        # The last n steps of every environment, a ring over axis 0 (only used when n_step > 1).
        window = (self.n_step, self.num_envs)
        self._window_observations = np.zeros(
            (*window, *self.observation_shape), self.observation_dtype
        )
        self._window_actions = np.zeros((*window, *self.action_shape), self.action_dtype)
        self._window_rewards = np.zeros(window, np.float64)
        self._window_next_observations = np.zeros_like(self._window_observations)
        self._window_terminated = np.zeros(window, bool)
        self._window_ended = np.zeros(window, bool)
        self._window_start = 0
        self._window_count = 0
        self._discount_powers = self.gamma ** np.arange(self.n_step + 1)

    def __len__(self) -> int:
        return self.size

    @property
    def is_full(self) -> bool:
        """Whether the buffer holds `capacity` transitions (the next `add` overwrites)."""
        return self.size == self.capacity

    # ------------------------------------------------------------------ adding

    def add(
        self,
        observation: np.ndarray,
        action: np.ndarray,
        reward: np.ndarray,
        next_observation: np.ndarray,
        terminated: np.ndarray,
        truncated: np.ndarray,
    ) -> None:
        """Stores one transition, or one step of all `num_envs` environments (leading axis)."""
        observation = np.asarray(observation)
        if observation.shape == self.observation_shape:
            if self.num_envs != 1:
                raise ValueError(
                    f"Expected observation of shape {(self.num_envs, *self.observation_shape)} "
                    f"(one row per environment). Received: observation.shape={observation.shape}"
                )
            batch_shape: tuple[int, ...] = ()
        elif observation.shape == (self.num_envs, *self.observation_shape):
            batch_shape = (self.num_envs,)
        else:
            raise ValueError(
                f"Expected observation of shape {self.observation_shape} or "
                f"{(self.num_envs, *self.observation_shape)}. "
                f"Received: observation.shape={observation.shape}"
            )
        rows = self.num_envs
        next_observation = np.asarray(next_observation)
        if next_observation.shape != observation.shape:
            raise ValueError(
                f"Expected next_observation of shape {observation.shape}, like observation. "
                f"Received: next_observation.shape={next_observation.shape}"
            )
        action = np.asarray(action)
        if action.shape != (*batch_shape, *self.action_shape):
            raise ValueError(
                f"Expected action of shape {(*batch_shape, *self.action_shape)}. "
                f"Received: action.shape={action.shape}"
            )
        if np.issubdtype(self.actions.dtype, np.integer) and action.dtype.kind == "f":
            # A float action for a discrete buffer would be cut to an integer silently.
            if not np.array_equal(action, np.round(action)):
                raise ValueError(
                    f"Expected integer actions for this buffer's {self.actions.dtype} actions. "
                    f"Received: action={action.tolist()}"
                )
        per_env = {}
        for name, value in (
            ("reward", reward),
            ("terminated", terminated),
            ("truncated", truncated),
        ):
            value = np.asarray(value)
            if value.shape != batch_shape and value.size != rows:
                raise ValueError(
                    f"Expected {name} of shape {batch_shape}. Received: {name}.shape={value.shape}"
                )
            per_env[name] = value.reshape(rows)
        if not np.isfinite(per_env["reward"]).all():
            raise ValueError(
                f"Expected finite rewards. Received: reward={per_env['reward'].tolist()}"
            )
        observation = observation.reshape(rows, *self.observation_shape)
        next_observation = next_observation.reshape(rows, *self.observation_shape)
        action = action.reshape(rows, *self.action_shape)
        terminated = per_env["terminated"].astype(bool)
        if self.n_step == 1:
            self._write(
                observation,
                action,
                per_env["reward"],
                next_observation,
                terminated,
                self.gamma,
            )
        else:
            self._push_step(
                observation,
                action,
                per_env["reward"],
                next_observation,
                terminated,
                terminated | per_env["truncated"].astype(bool),
            )

    def truncate_episodes(self) -> None:
        """Cuts every episode in progress, as a time limit would.

        Call it when the environments are reset other than at their episodes' ends (a new
        training run, a resumed one): the n-step transitions still waiting in the window then
        end at the last stored step and bootstrap from its next observation, instead of summing
        rewards across the reset. Nothing changes for `n_step=1`.
        """
        if self.n_step > 1 and self._window_count:
            newest = (self._window_start + self._window_count - 1) % self.n_step
            self._window_ended[newest] = True

    def _push_step(self, observation, action, reward, next_observation, terminated, ended):
        """Appends one step of every environment to the window; emits the oldest once n are in."""
        slot = (self._window_start + self._window_count) % self.n_step
        self._window_observations[slot] = observation
        self._window_actions[slot] = action
        self._window_rewards[slot] = reward
        self._window_next_observations[slot] = next_observation
        self._window_terminated[slot] = terminated
        self._window_ended[slot] = ended
        self._window_count += 1
        if self._window_count < self.n_step:
            return
        order = (self._window_start + np.arange(self.n_step)) % self.n_step  # (n,) oldest first
        rewards = self._window_rewards[order]  # (n, E)
        ended = self._window_ended[order]  # (n, E)
        # included[k]: no episode end among steps 0 .. k − 1, so step k belongs to the episode.
        included = np.ones_like(ended)
        included[1:] = np.cumprod(~ended[:-1], axis=0, dtype=bool)
        num_steps = included.sum(axis=0)  # (E,) m, 1 ≤ m ≤ n
        returns = (self._discount_powers[: self.n_step, None] * rewards * included).sum(axis=0)
        last = order[num_steps - 1]  # (E,) window slot of step t + m − 1
        environments = np.arange(self.num_envs)
        self._write(
            self._window_observations[self._window_start],
            self._window_actions[self._window_start],
            returns,
            self._window_next_observations[last, environments],
            self._window_terminated[last, environments],
            self._discount_powers[num_steps],
        )
        self._window_start = (self._window_start + 1) % self.n_step
        self._window_count -= 1

    def _write(self, observations, actions, rewards, next_observations, dones, discounts):
        """Writes a batch of rows at the circular position, wrapping around at `capacity`."""
        num_rows = len(rewards)
        if self.position + num_rows <= self.capacity:
            rows = slice(self.position, self.position + num_rows)  # a view: cheaper than indices
        else:
            rows = (self.position + np.arange(num_rows)) % self.capacity
        self.observations[rows] = observations
        self.actions[rows] = actions
        self.rewards[rows] = rewards
        self.next_observations[rows] = next_observations
        self.dones[rows] = dones
        self.discounts[rows] = discounts
        self.position = (self.position + num_rows) % self.capacity
        self.size = min(self.size + num_rows, self.capacity)

    # ---------------------------------------------------------------- sampling

    def _check_can_sample(self, batch_size: int) -> int:
        batch_size = check_int("batch_size", batch_size)
        if batch_size > self.size:
            raise ValueError(
                "Expected the buffer to hold at least batch_size transitions before sampling. "
                f"Received: batch_size={batch_size} with len(buffer)={self.size}"
            )
        return batch_size

    def sample(self, batch_size: int) -> Batch:
        """Draws `batch_size` distinct stored transitions uniformly at random."""
        batch_size = self._check_can_sample(batch_size)
        indices = self._rng.choice(self.size, size=batch_size, replace=False)
        return self._gather(indices)

    def _gather(self, indices: np.ndarray) -> Batch:
        return {
            "observations": self.observations[indices],
            "actions": self.actions[indices],
            "rewards": self.rewards[indices],
            "next_observations": self.next_observations[indices],
            "dones": self.dones[indices],
            "discounts": self.discounts[indices],
            "indices": np.asarray(indices, dtype=np.int64),
        }

    # ----------------------------------------------------------- saving/loading

    def _config(self) -> dict:
        return {
            "capacity": self.capacity,
            "observation_shape": list(self.observation_shape),
            "action_shape": list(self.action_shape),
            "observation_dtype": self.observation_dtype.name,
            "action_dtype": self.action_dtype.name,
            "num_envs": self.num_envs,
            "n_step": self.n_step,
            "gamma": self.gamma,
        }

    def state(self) -> dict[str, np.ndarray]:
        """The buffer's whole state as arrays: contents, position, pending n-step window and
        the sampling generator (`rng_state`, JSON). `restore` sets it back."""
        filled = slice(0, self.size)
        return {
            "observations": self.observations[filled],
            "actions": self.actions[filled],
            "rewards": self.rewards[filled],
            "next_observations": self.next_observations[filled],
            "dones": self.dones[filled],
            "discounts": self.discounts[filled],
            "position": np.int64(self.position),
            "size": np.int64(self.size),
            "window_observations": self._window_observations,
            "window_actions": self._window_actions,
            "window_rewards": self._window_rewards,
            "window_next_observations": self._window_next_observations,
            "window_terminated": self._window_terminated,
            "window_ended": self._window_ended,
            "window_start": np.int64(self._window_start),
            "window_count": np.int64(self._window_count),
            "rng_state": np.array(generator_to_json(self._rng)),
        }

    def restore(self, state) -> None:
        """Sets the state `state()` returned (a dict or an `.npz` file's arrays) into this
        identically configured buffer; sampling then continues exactly as it would have.

        Everything is checked before the first assignment (a refused state leaves the buffer
        as it was): the counters against the capacity, every array's shape and kind against
        the buffer's, and the generator state.

        Raises:
            ValueError: naming the first entry that does not fit this buffer.
        """
        size, position = int(state["size"]), int(state["position"])
        if not 0 <= size <= self.capacity or not 0 <= position < self.capacity:
            raise ValueError(
                f"Expected 0 <= size <= capacity and 0 <= position < capacity "
                f"(capacity={self.capacity}). Received: size={size}, position={position}"
            )
        targets = {
            name: getattr(self, name)[:size]
            for name in ("observations", "actions", "rewards", "next_observations", "dones")
        }
        targets["discounts"] = self.discounts[:size]
        for name in (
            "observations",
            "actions",
            "rewards",
            "next_observations",
            "terminated",
            "ended",
        ):
            targets[f"window_{name}"] = getattr(self, f"_window_{name}")
        values = {name: np.asarray(state[name]) for name in targets}
        for name, value in values.items():
            target = targets[name]
            if value.shape != target.shape or not np.can_cast(
                value.dtype, target.dtype, "same_kind"
            ):
                raise ValueError(
                    f"Expected the buffer's {name!r} as {target.dtype} of shape {target.shape}. "
                    f"Received: {value.dtype} of shape {value.shape}"
                )
        rng = generator_from_json(str(state["rng_state"]))
        window_start, window_count = int(state["window_start"]), int(state["window_count"])
        self.size, self.position = size, position
        for name, value in values.items():
            targets[name][...] = value
        self._window_start, self._window_count = window_start, window_count
        self._rng = rng

    def save(self, path: str) -> str:
        """Writes contents, position, pending n-step window and RNG state to `path` (`.npz`),
        atomically and with an integrity record (`dlkit.rl.saving.write_verified`).

        Returns the path written (`.npz` is appended when missing).
        """
        config = {"class": type(self).__name__, **self._config()}
        return write_verified(
            npz_path(path), {"config": np.array(json.dumps(config)), **self.state()}
        )

    @classmethod
    def load(cls, path: str):
        """Rebuilds a buffer saved by `save`; sampling then continues exactly as it would have.

        The file is checked against its integrity record and read whole (no pickle); `restore`
        then checks every array before it assigns any.
        """
        config, state = read_saved_object(path, cls)
        buffer = cls(**config)
        buffer.restore(state)
        return buffer


class PrioritizedReplayBuffer(ReplayBuffer):
    """Replay buffer that draws transitions in proportion to p^α: prioritized experience replay.

    Transitions with a large TD error δ teach the most, so they are replayed more often
    [notes eqs. 9.12–9.14]. A `SumTree` over p_i^α draws a batch in O(B log N): the total is
    split into `batch_size` equal segments and one value is drawn uniformly in each (stratified
    sampling), which spreads every batch over the whole distribution. A new transition gets the
    largest priority seen so far, so it is replayed at least once soon after it arrives.

    Non-uniform replay changes the distribution the expected target is taken over; the
    importance-sampling weights w_i undo that bias when multiplied into each transition's loss.
    β is annealed linearly from `beta` to `beta_final` over `beta_steps` calls to `sample`, so
    the correction is complete by the end of training, when unbiased targets matter most. The
    weights are normalised by their maximum over the batch (not over the whole buffer), so they
    only ever shrink the loss; the buffer-wide maximum would need a second (min) tree.

    Equation:

        p_i = |td_errors_i| + epsilon                           [notes eqs. 9.12–9.13]
        P(i) = p_i^alpha / Σ_j p_j^alpha                          [notes eq. 9.14]
        w_i = (N · P(i))^(−beta) / max_j (N · P(j))^(−beta),  j over the batch, N = len(buffer)
        beta = beta_0 + (beta_final − beta_0) · min(1, num_samples / beta_steps)

    Args:
        capacity: as in `ReplayBuffer`, like `observation_shape`, `action_shape`,
            `observation_dtype`, `action_dtype`, `num_envs`, `n_step` and `gamma`.
        alpha: the priority exponent α >= 0; 0 is uniform replay. Defaults to 0.6.
        beta: the initial importance-sampling exponent β_0 in [0, 1]. Defaults to 0.4.
        beta_final: β after `beta_steps` calls to `sample`, in [0, 1]. Defaults to 1.0.
        beta_steps: the number of `sample` calls over which β is annealed (an integer >= 1).
            Defaults to 100_000.
        epsilon: the positive constant added to |δ| so no transition gets probability 0.
            Defaults to 1e-6.
        seed: integer seed (or `numpy.random.Generator`) of the sampling. Defaults to `None`.

    Returns:
        An empty buffer. `sample(batch_size, beta=None)` returns the dict of `ReplayBuffer` plus
        `weights` (B,) float32; pass its `indices` back to `update_priorities` with the new TD
        errors.

    Example:

        >>> buffer = PrioritizedReplayBuffer(1000, observation_shape=(4,), seed=0)
        >>> for step in range(64):
        ...     buffer.add(np.zeros(4), 0, 1.0, np.zeros(4), False, False)
        >>> batch = buffer.sample(32)
        >>> print(batch["weights"].shape, batch["weights"].max())
        (32,) 1.0
        >>> buffer.update_priorities(batch["indices"], np.linspace(0.0, 2.0, 32))

    Reference:
        Schaul et al., "Prioritized Experience Replay", ICLR 2016
        (https://arxiv.org/abs/1511.05952).
    """

    def __init__(
        self,
        capacity: int,
        observation_shape: tuple[int, ...],
        action_shape: tuple[int, ...] = (),
        observation_dtype: str = "float32",
        action_dtype: str = "int64",
        num_envs: int = 1,
        n_step: int = 1,
        gamma: float = 0.99,
        alpha: float = 0.6,
        beta: float = 0.4,
        beta_final: float = 1.0,
        beta_steps: int = 100_000,
        epsilon: float = 1e-6,
        seed: Seed = None,
    ) -> None:
        self.alpha = check_non_negative("alpha", alpha)
        self.beta = check_unit_interval("beta", beta)
        self.beta_final = check_unit_interval("beta_final", beta_final)
        self.beta_steps = check_int("beta_steps", beta_steps)
        self.epsilon = check_positive("epsilon", epsilon)
        super().__init__(
            capacity,
            observation_shape,
            action_shape=action_shape,
            observation_dtype=observation_dtype,
            action_dtype=action_dtype,
            num_envs=num_envs,
            n_step=n_step,
            gamma=gamma,
            seed=seed,
        )
        self.tree = SumTree(self.capacity)
        self.max_priority = 1.0
        self.num_samples = 0

    @property
    def current_beta(self) -> float:
        """β of the next `sample` call, annealed linearly from `beta` to `beta_final`."""
        progress = min(1.0, self.num_samples / self.beta_steps)
        return self.beta + (self.beta_final - self.beta) * progress

    def _write(self, observations, actions, rewards, next_observations, dones, discounts):
        indices = (self.position + np.arange(len(rewards))) % self.capacity
        super()._write(observations, actions, rewards, next_observations, dones, discounts)
        self.tree.update(indices, np.full(len(indices), self.max_priority**self.alpha))

    def sample(self, batch_size: int, beta: float | None = None) -> Batch:
        """Draws `batch_size` transitions with probability P(i) (stratified, with replacement).

        Args:
            batch_size: the number of transitions (at most `len(buffer)`).
            beta: an explicit β in [0, 1] for this call; the annealing counter then does not
                advance. Defaults to the annealed β (`current_beta`), after which the counter
                advances by one.
        """
        batch_size = self._check_can_sample(batch_size)
        if beta is None:
            beta = self.current_beta
            self.num_samples += 1
        else:
            beta = check_unit_interval("beta", beta)
        total = self.tree.total
        segment = total / batch_size
        targets = (np.arange(batch_size) + self._rng.random(batch_size)) * segment
        # Rounding can push a target to `total`; the filled slots are always 0 .. size − 1.
        indices = np.minimum(self.tree.find(targets), self.size - 1)
        probabilities = self.tree.values(indices) / total
        weights = (self.size * probabilities) ** (-beta)
        batch = self._gather(indices)
        batch["weights"] = (weights / weights.max()).astype(np.float32)
        return batch

    def update_priorities(self, indices: np.ndarray, td_errors: np.ndarray) -> None:
        """Sets p_i = |td_errors_i| + epsilon for the sampled `indices` [notes eq. 9.13]."""
        indices = np.asarray(indices).reshape(-1)
        td_errors = np.asarray(td_errors, dtype=np.float64).reshape(-1)
        if indices.shape != td_errors.shape:
            raise ValueError(
                "Expected one td_error per index. "
                f"Received: indices.shape={indices.shape}, td_errors.shape={td_errors.shape}"
            )
        if indices.size and (
            not np.issubdtype(indices.dtype, np.integer)
            or indices.min() < 0
            or indices.max() >= self.size
        ):
            raise ValueError(
                f"Expected integer indices in [0, {self.size}). Received: indices={indices}"
            )
        if not np.all(np.isfinite(td_errors)):
            raise ValueError(f"Expected finite td_errors. Received: td_errors={td_errors}")
        priorities = np.abs(td_errors) + self.epsilon
        self.tree.update(indices, priorities**self.alpha)
        if priorities.size:
            self.max_priority = max(self.max_priority, float(priorities.max()))

    def _config(self) -> dict:
        return {
            **super()._config(),
            "alpha": self.alpha,
            "beta": self.beta,
            "beta_final": self.beta_final,
            "beta_steps": self.beta_steps,
            "epsilon": self.epsilon,
        }

    def state(self) -> dict[str, np.ndarray]:
        """`ReplayBuffer.state()` plus the priorities and the β-annealing counter."""
        return {
            **super().state(),
            "tree_nodes": self.tree.nodes,
            "max_priority": np.float64(self.max_priority),
            "num_samples": np.int64(self.num_samples),
        }

    def restore(self, state) -> None:
        nodes = np.asarray(state["tree_nodes"])
        if nodes.shape != self.tree.nodes.shape or not np.all(np.isfinite(nodes)):
            raise ValueError(
                f"Expected finite priorities of shape {self.tree.nodes.shape}. "
                f"Received: tree_nodes of shape {nodes.shape}"
            )
        super().restore(state)
        self.tree.nodes[...] = nodes
        self.max_priority = float(state["max_priority"])
        self.num_samples = int(state["num_samples"])
