"""Replay of stacked image frames that stores each frame once: memory-lean replay for Atari.

An Atari observation is a stack of the last `frame_stack` frames, (frame_stack, H, W) uint8,
and the next observation shares all but one of them. A `ReplayBuffer` holding full stacks keeps
every frame 2 · frame_stack times (in four observations and four next observations): 56 KiB per
transition at 84×84×4, 53 GiB for the customary million transitions. `FrameReplayBuffer` keeps
each frame once in a ring of frames and, for every transition, the indices of the frames of its
two stacks; `sample` rebuilds the stacks by one gather. `PrioritizedFrameReplayBuffer` is the
same with prioritized replay.
"""

from __future__ import annotations

import numpy as np

from dlkit.rl.buffers import Batch, PrioritizedReplayBuffer, ReplayBuffer, Seed
from dlkit.validation import check_int, check_shape

__all__ = ["FrameReplayBuffer", "PrioritizedFrameReplayBuffer"]

# Frame indices of the ring are global counts (int64, never wrapping); slot = index % capacity.
_INDEX_DTYPE = "int64"
# Frames copied per slice when the ring grows (bounds the temporary copy to ~28 MiB at 84×84).
_GROW_CHUNK = 4_096


class FrameReplayBuffer:
    """Replay buffer of frame stacks that stores each frame once and rebuilds stacks on sampling.

    The contract is `ReplayBuffer`'s, for observations that are stacks of frames
    (`observation_shape = (frame_stack, H, W)`, as gymnasium's `FrameStackObservation` and
    envpool give them): `add` takes one transition or one step of `num_envs` environments,
    n-step returns, `done` as termination only (a truncation bootstraps), `truncate_episodes`,
    `sample` returning the same batch of full (B, frame_stack, H, W) stacks, and
    `state`/`restore`/`save`/`load` without pickle. Inside, the transitions (actions, rewards,
    dones, discounts, n-step window, sampling generator) are a `ReplayBuffer` whose
    "observations" are the frame_stack indices of each stack's frames in a ring of frames.

    How frames are stored, per environment: a stack equal to the previous next observation of
    the same environment (the episode goes on) reuses its frames; a next observation that is
    the observation shifted by one frame (`next[:-1] == observation[1:]`, every step inside an
    episode) adds only its newest frame; any other stack (the first of an episode, with the
    padding of `FrameStackObservation`'s `padding_type` or envpool's) is stored whole, with
    repeated consecutive frames (the reset padding) stored once. These tests compare the
    frames themselves, so a stack never takes frames of another episode or environment and
    every stack sampled is exactly the one the environment produced: a terminated or truncated
    transition's next observation is its episode's final stack (`info["final_obs"]`), however
    the wrappers pad or reset.

    The ring holds `frame_capacity` frames, by default `capacity + capacity // 16` plus a few
    stacks per environment: one frame per transition, and one more per episode start (the
    padding) for episodes of 16 steps or more. A frame is overwritten only when no stored
    transition (nor n-step window) refers to it any more; if the ring would have to overwrite
    one (very short episodes, stacks that are not shifts of each other), it grows by an eighth.

    Equation:

        memory ≈ capacity · (H · W · (1 + 1 / mean episode length) + 2 · frame_stack · 8 + 24)
        observation_i = frames[ids_i],  ids_i the frame_stack ring indices of transition i

    Args:
        capacity: the number of transitions kept (an integer >= `num_envs`).
        observation_shape: the shape of one observation, `(frame_stack, H, W)`.
        action_shape: the shape of one action, `()` (default) for a discrete action.
        observation_dtype: the dtype frames are stored in. Defaults to `"uint8"`.
        action_dtype: the dtype actions are stored in. Defaults to `"int64"`.
        num_envs: the number of parallel environments a batched `add` holds. Defaults to 1.
        n_step: the number of environment steps per stored transition. Defaults to 1.
        gamma: the discount factor γ in [0, 1]. Defaults to 0.99.
        frame_capacity: the number of frames the ring holds at first (an integer >= 1).
            Defaults to `None`, the rule above.
        seed: integer seed (or `numpy.random.Generator`) of the sampling. Defaults to `None`.
        **transition_options: further keyword arguments of the transitions' buffer class
            (`PrioritizedFrameReplayBuffer`'s priority settings); none here.

    Returns:
        An empty buffer; `sample(batch_size)` returns the dict of `ReplayBuffer.sample`.

    Example:

        >>> buffer = FrameReplayBuffer(1000, observation_shape=(4, 8, 8), seed=0)
        >>> stack = np.zeros((4, 8, 8), "uint8")
        >>> for step in range(1, 33):
        ...     next_stack = np.concatenate([stack[1:], np.full((1, 8, 8), step, "uint8")])
        ...     buffer.add(stack, 0, 1.0, next_stack, False, False)
        ...     stack = next_stack
        >>> buffer.num_frames  # the padding once, then one frame per step
        33
        >>> print(buffer.sample(8)["observations"].shape)
        (8, 4, 8, 8)

    Reference:
        Mnih et al., "Human-level control through deep reinforcement learning", Nature 2015
        (frame stacks); Castro et al., "Dopamine", 2018 (replay storing each frame once).
    """

    _transitions_class = ReplayBuffer

    def __init__(
        self,
        capacity: int,
        observation_shape: tuple[int, ...],
        action_shape: tuple[int, ...] = (),
        observation_dtype: str = "uint8",
        action_dtype: str = "int64",
        num_envs: int = 1,
        n_step: int = 1,
        gamma: float = 0.99,
        frame_capacity: int | None = None,
        seed: Seed = None,
        **transition_options,
    ) -> None:
        observation_shape = check_shape("observation_shape", observation_shape)
        if len(observation_shape) != 3:
            raise ValueError(
                "Expected observation_shape (frame_stack, height, width), channels first as "
                f"FrameStackObservation gives them. Received: observation_shape={observation_shape}"
            )
        self.transitions = self._transitions_class(
            capacity,
            (observation_shape[0],),
            action_shape=action_shape,
            observation_dtype=_INDEX_DTYPE,
            action_dtype=action_dtype,
            num_envs=num_envs,
            n_step=n_step,
            gamma=gamma,
            seed=seed,
            **transition_options,
        )
        self.observation_shape = observation_shape
        self.observation_dtype = np.dtype(observation_dtype)
        self.frame_stack = observation_shape[0]
        if frame_capacity is None:
            frame_capacity = self.capacity + self.capacity // 16
            frame_capacity += 2 * self.frame_stack * (self.frame_stack + self.n_step) * num_envs
        self.frames = np.zeros(
            (check_int("frame_capacity", frame_capacity), *observation_shape[1:]),
            self.observation_dtype,
        )
        self.num_frames = 0  # frames ever written: the next frame's global index
        # The frame indices of each environment's last next observation (-1: none yet).
        self._last_ids = np.full((self.num_envs, self.frame_stack), -1, np.int64)
        # A lower bound of the smallest frame index still referred to.
        self._live_floor = 0

    # The transitions' configuration, read through.
    capacity = property(lambda self: self.transitions.capacity)
    num_envs = property(lambda self: self.transitions.num_envs)
    n_step = property(lambda self: self.transitions.n_step)
    gamma = property(lambda self: self.transitions.gamma)
    action_shape = property(lambda self: self.transitions.action_shape)
    action_dtype = property(lambda self: self.transitions.action_dtype)
    seed = property(lambda self: self.transitions.seed)
    size = property(lambda self: self.transitions.size)
    position = property(lambda self: self.transitions.position)
    is_full = property(lambda self: self.transitions.is_full, doc=ReplayBuffer.is_full.__doc__)

    @property
    def frame_capacity(self) -> int:
        """The number of frames the ring holds now."""
        return len(self.frames)

    @property
    def nbytes(self) -> int:
        """The bytes of every array the buffer holds (frames, frame indices, transitions and,
        when prioritized, the sum tree)."""
        holders = (self, self.transitions, getattr(self.transitions, "tree", None))
        arrays = [
            value for holder in holders if holder is not None for value in vars(holder).values()
        ]
        return sum(array.nbytes for array in arrays if isinstance(array, np.ndarray))

    def __len__(self) -> int:
        return len(self.transitions)

    def truncate_episodes(self) -> None:
        """Cuts every episode in progress, as `ReplayBuffer.truncate_episodes` does."""
        self.transitions.truncate_episodes()

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
        next_observation = np.asarray(next_observation)
        batched = observation.shape == (self.num_envs, *self.observation_shape)
        if not batched and (observation.shape != self.observation_shape or self.num_envs != 1):
            raise ValueError(
                f"Expected observation of shape {(self.num_envs, *self.observation_shape)}"
                + (f" or {self.observation_shape}" if self.num_envs == 1 else "")
                + f". Received: observation.shape={observation.shape}"
            )
        if next_observation.shape != observation.shape:
            raise ValueError(
                f"Expected next_observation of shape {observation.shape}, like observation. "
                f"Received: next_observation.shape={next_observation.shape}"
            )
        stacks = observation.reshape(self.num_envs, *self.observation_shape)
        next_stacks = next_observation.reshape(self.num_envs, *self.observation_shape)
        ids, next_ids = self._store_frames(stacks, next_stacks)
        if not batched:
            ids, next_ids = ids[0], next_ids[0]
        self.transitions.add(ids, action, reward, next_ids, terminated, truncated)

    def _store_frames(self, stacks: np.ndarray, next_stacks: np.ndarray):
        """Writes the frames of one step that are not stored yet; returns both stacks' ids."""
        num_envs, depth = self.num_envs, self.frame_stack
        # A stack equal to the environment's previous next observation reuses its frames.
        known = self._last_ids[:, 0] >= 0
        continues = np.zeros(num_envs, bool)
        if known.any():
            previous = self.frames[self._last_ids[known] % len(self.frames)]
            continues[known] = _equal_rows(stacks[known], previous)
        # A next observation shifted by one frame adds its newest frame only.
        shifted = _equal_rows(next_stacks[:, :-1], stacks[:, 1:])
        # New frames, in order: the whole new stacks (repeated frames once), then per
        # environment its next stack's newest frame or the whole of it.
        new_frames = []
        ids, next_ids = np.empty((2, num_envs, depth), np.int64)
        count = self.num_frames
        for env in range(num_envs):
            if continues[env]:
                ids[env] = self._last_ids[env]
            else:
                count = _append_stack(stacks[env], ids[env], count, new_frames)
        for env in range(num_envs):
            if shifted[env]:
                next_ids[env, :-1] = ids[env, 1:]
                next_ids[env, -1] = count
                new_frames.append(next_stacks[env, -1])
                count += 1
            else:
                count = _append_stack(next_stacks[env], next_ids[env], count, new_frames)
        self._make_room(count - self.num_frames, ids[continues])
        slots = np.arange(self.num_frames, count) % len(self.frames)
        self.frames[slots] = new_frames
        self.num_frames = count
        self._last_ids[...] = next_ids
        return ids, next_ids

    def _make_room(self, num_new: int, reused_ids: np.ndarray) -> None:
        """Ensures writing `num_new` frames overwrites none still referred to (else grows)."""
        needed = self.num_frames + num_new - len(self.frames)  # the ids below it get overwritten
        if needed <= self._live_floor:
            return
        self._live_floor = self._smallest_live_id(reused_ids, writing=True)
        # Grow when overwriting, or when the slack left would make this check run too often.
        slack = self._live_floor - needed
        if slack < len(self.frames) // 32:
            self._grow(max(len(self.frames) // 8, -slack + len(self.frames) // 16))

    def _smallest_live_id(self, reused_ids: np.ndarray, writing: bool) -> int:
        """The smallest frame index referred to (`writing`: once this step's transitions are
        written, which overwrites the oldest rows of a full buffer)."""
        transitions = self.transitions
        oldest = [self._last_ids[:, 0], reused_ids.reshape(-1)]
        # Rows this step overwrites no longer count: one per environment, once the n-step
        # window has filled, from `position` on when the buffer is full.
        written = writing and transitions._window_count + 1 >= self.n_step
        written = self.num_envs if written else 0
        overwritten = max(0, len(transitions) + written - self.capacity)
        keep = np.ones(len(transitions), bool)
        keep[(transitions.position + np.arange(overwritten)) % self.capacity] = False
        oldest.append(transitions.observations[: len(transitions)][keep, 0])
        window = (transitions._window_start + np.arange(transitions._window_count)) % self.n_step
        oldest.append(transitions._window_observations[window, :, 0].reshape(-1))
        oldest = np.concatenate(oldest)
        oldest = oldest[oldest >= 0]
        return int(oldest.min()) if oldest.size else self.num_frames

    def _grow(self, extra: int) -> None:
        """Enlarges the ring by `extra` frames, moving the live ones to their new slots."""
        old = self.frames
        self.frames = np.zeros((len(old) + extra, *old.shape[1:]), old.dtype)
        self._copy_frames(old, len(old), self._live_floor)

    def _copy_frames(self, source: np.ndarray, source_capacity: int, start: int) -> None:
        """Copies frames `start` .. `num_frames` − 1 from the ring `source` (of
        `source_capacity` slots, `source` possibly its filled prefix) into `frames`."""
        for first in range(start, self.num_frames, _GROW_CHUNK):
            ids = np.arange(first, min(first + _GROW_CHUNK, self.num_frames))
            self.frames[ids % len(self.frames)] = source[ids % source_capacity]

    # ---------------------------------------------------------------- sampling

    def sample(self, batch_size: int) -> Batch:
        """Draws `batch_size` distinct stored transitions uniformly at random, stacks rebuilt."""
        return self._rebuild(self.transitions.sample(batch_size))

    def _rebuild(self, batch: Batch) -> Batch:
        """Replaces the batch's frame indices by the stacks they index.

        When every next stack is its observation shifted by one frame (one-step transitions
        inside episodes and at their ends), one gather of frame_stack + 1 frames per transition
        serves both: the observations and next observations are then two overlapping views of
        it (B · (frame_stack + 1) frames copied instead of B · 2 · frame_stack).
        """
        ids, next_ids = batch["observations"], batch["next_observations"]
        size = len(self.frames)
        if np.array_equal(next_ids[:, :-1], ids[:, 1:]):
            union = np.concatenate([ids, next_ids[:, -1:]], axis=1)
            stacks = np.take(self.frames, union % size, axis=0)
            batch["observations"], batch["next_observations"] = stacks[:, :-1], stacks[:, 1:]
        else:
            batch["observations"] = np.take(self.frames, ids % size, axis=0)
            batch["next_observations"] = np.take(self.frames, next_ids % size, axis=0)
        return batch

    # ----------------------------------------------------------- saving/loading

    def _config(self) -> dict:
        config = self.transitions._config()
        config.update(
            observation_shape=list(self.observation_shape),
            observation_dtype=self.observation_dtype.name,
            frame_capacity=len(self.frames),
        )
        return config

    def state(self) -> dict[str, np.ndarray]:
        """The buffer's whole state as arrays: the transitions' `state()` (frame indices as
        observations), the ring of frames as it is (`frames`, its filled slots: a view, not a
        copy, so a checkpoint holds each frame once and needs no second copy in memory) with
        its size `frame_capacity`, and the oldest frame referred to (`frames_start`).
        `restore` sets it back."""
        return {
            **self.transitions.state(),
            "frames": self.frames[: min(self.num_frames, len(self.frames))],
            "frame_capacity": np.int64(len(self.frames)),
            "frames_start": np.int64(self._smallest_live_id(np.empty(0, np.int64), False)),
            "num_frames": np.int64(self.num_frames),
            "last_ids": self._last_ids,
        }

    def restore(self, state) -> None:
        """Sets the state `state()` returned (a dict or an `.npz` file's arrays) into this
        identically configured buffer (its ring grows to the saved one's size if smaller);
        sampling then continues exactly as it would have."""
        self.transitions.restore(state)
        frames, capacity = state["frames"], int(state["frame_capacity"])
        if len(self.frames) < capacity:
            self.frames = np.zeros((capacity, *self.observation_shape[1:]), self.frames.dtype)
        self._live_floor = int(state["frames_start"])
        self.num_frames = int(state["num_frames"])
        self._copy_frames(frames, capacity, self._live_floor)
        self._last_ids[...] = state["last_ids"]

    save = ReplayBuffer.save
    load = classmethod(ReplayBuffer.load.__func__)


class PrioritizedFrameReplayBuffer(FrameReplayBuffer):
    """`FrameReplayBuffer` drawing transitions in proportion to p^α: prioritized replay.

    The transitions are a `PrioritizedReplayBuffer` (its sum tree, β annealing and
    importance weights), whose frame indices are turned into stacks as in `FrameReplayBuffer`.

    Args:
        capacity: as in `FrameReplayBuffer`, like `observation_shape`, `action_shape`,
            `observation_dtype`, `action_dtype`, `num_envs`, `n_step`, `gamma`,
            `frame_capacity` and `seed`.
        **transition_options: the keyword arguments of `PrioritizedReplayBuffer`, with its
            defaults: `alpha` (0.6), `beta` (0.4), `beta_final` (1.0), `beta_steps` (100_000)
            and `epsilon` (1e-6).

    Returns:
        An empty buffer; `sample(batch_size, beta=None)` returns the dict of
        `PrioritizedReplayBuffer.sample` (with `weights`), and `update_priorities(indices,
        td_errors)` sets new priorities.

    Example:

        >>> buffer = PrioritizedFrameReplayBuffer(100, observation_shape=(2, 4, 4), seed=0)
        >>> for step in range(16):
        ...     buffer.add(np.zeros((2, 4, 4), "uint8"), 0, 1.0, np.zeros((2, 4, 4), "uint8"),
        ...                False, False)
        >>> batch = buffer.sample(8)
        >>> print(batch["observations"].shape, batch["weights"].max())
        (8, 2, 4, 4) 1.0

    Reference:
        Schaul et al., "Prioritized Experience Replay", ICLR 2016.
    """

    _transitions_class = PrioritizedReplayBuffer

    @property
    def beta_steps(self) -> int:
        """The number of `sample` calls over which β is annealed (settable)."""
        return self.transitions.beta_steps

    @beta_steps.setter
    def beta_steps(self, value: int) -> None:
        self.transitions.beta_steps = check_int("beta_steps", value)

    # The priority settings and state, read through.
    current_beta = property(lambda self: self.transitions.current_beta)
    alpha = property(lambda self: self.transitions.alpha)
    beta = property(lambda self: self.transitions.beta)
    beta_final = property(lambda self: self.transitions.beta_final)
    epsilon = property(lambda self: self.transitions.epsilon)
    max_priority = property(lambda self: self.transitions.max_priority)
    num_samples = property(lambda self: self.transitions.num_samples)
    tree = property(lambda self: self.transitions.tree)

    def sample(self, batch_size: int, beta: float | None = None) -> Batch:
        """Draws `batch_size` transitions with probability P(i), as
        `PrioritizedReplayBuffer.sample`, stacks rebuilt."""
        return self._rebuild(self.transitions.sample(batch_size, beta=beta))

    def update_priorities(self, indices: np.ndarray, td_errors: np.ndarray) -> None:
        """Sets p_i = |td_errors_i| + epsilon for the sampled `indices` [notes eq. 9.13]."""
        self.transitions.update_priorities(indices, td_errors)


def _equal_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Whether a[i] == b[i] everywhere, for each i (a bool array of len(a))."""
    if not len(a):
        return np.zeros(0, bool)
    return (a.reshape(len(a), -1) == b.reshape(len(b), -1)).all(axis=1)


def _append_stack(stack: np.ndarray, ids: np.ndarray, count: int, new_frames: list) -> int:
    """Queues `stack`'s frames (a frame equal to the one before it is not stored again), fills
    `ids` with their indices from `count` on; returns the next free index."""
    for depth, frame in enumerate(stack):
        if depth and np.array_equal(frame, stack[depth - 1]):
            ids[depth] = ids[depth - 1]
            continue
        ids[depth] = count
        new_frames.append(frame)
        count += 1
    return count
