"""Tests of dlkit.rl.frame_buffer: frame-stack replay storing each frame once, exact against the
stacks gymnasium's FrameStackObservation produced, and its use by DQN."""

import gymnasium as gym
import keras
import numpy as np
import pytest
from gymnasium.vector import AutoresetMode, SyncVectorEnv
from gymnasium.wrappers import FrameStackObservation, TimeLimit

from dlkit.rl import (
    DQN,
    FrameReplayBuffer,
    PrioritizedFrameReplayBuffer,
    PrioritizedReplayBuffer,
    ReplayBuffer,
)
from dlkit.rl.envs import final_observations

FRAME = (6, 6)
STACK = 4
TIME_LIMIT = 9  # truncates the episodes FrameEnv has not terminated by then


class FrameEnv(gym.Env):
    """Noise frames whose pixel (0, 0) is the episode's number and (0, 1) the step in it;
    episodes terminate after 2 to 12 steps (or are truncated by the time limit)."""

    observation_space = gym.spaces.Box(0, 255, FRAME, np.uint8)
    action_space = gym.spaces.Discrete(2)

    def __init__(self, index: int = 0):
        self.episode = 64 * index  # distinct episode numbers across environments
        self.step_count = 0
        self.length = 0

    def _frame(self):
        frame = self.np_random.integers(0, 256, FRAME, dtype=np.uint8)
        frame[0, 0], frame[0, 1] = self.episode % 256, self.step_count
        return frame

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.episode += 1
        self.step_count = 0
        self.length = int(self.np_random.integers(2, 13))
        return self._frame(), {}

    def step(self, action):
        self.step_count += 1
        return self._frame(), float(action), self.step_count >= self.length, False, {}


def make_env(num_envs: int, padding: str = "reset"):
    def factory(index):
        env = TimeLimit(FrameEnv(index), max_episode_steps=TIME_LIMIT)
        return FrameStackObservation(env, STACK, padding_type=padding)

    return SyncVectorEnv(
        [lambda index=index: factory(index) for index in range(num_envs)],
        autoreset_mode=AutoresetMode.SAME_STEP,
    )


def collect(env, buffers, num_steps, seed=0, observations=None):
    """Steps `env` with random actions, adding every step to each buffer; returns the last
    observations (to continue) and the number of terminations and truncations seen."""
    rng = np.random.default_rng(seed)
    if observations is None:
        observations, _ = env.reset(seed=seed)
    ends = np.zeros(2, int)
    for _ in range(num_steps):
        actions = rng.integers(2, size=env.num_envs)
        next_observations, rewards, terminated, truncated, infos = env.step(actions)
        reached = final_observations(next_observations, infos)
        for buffer in buffers:
            buffer.add(observations, actions, rewards, reached, terminated, truncated)
        observations = next_observations
        ends += terminated.sum(), (truncated & ~terminated).sum()
    return observations, ends


def assert_batches_equal(batch, expected):
    assert sorted(batch) == sorted(expected)
    for key in expected:
        np.testing.assert_array_equal(batch[key], expected[key], err_msg=key)
        assert batch[key].dtype == expected[key].dtype, key


def assert_stacks_of_one_episode(batch, n_step=1):
    """Every stack holds frames of one episode, in step order; each next observation is n
    steps (fewer at the episode's end) after its observation, in the same episode."""
    for key in ("observations", "next_observations"):
        episodes, steps = batch[key][:, :, 0, 0], batch[key][:, :, 0, 1].astype(int)
        padding = ~batch[key].any(axis=(2, 3))  # the zero frames of padding_type="zero"
        episodes = np.where(padding, episodes[:, -1:], episodes)
        np.testing.assert_array_equal(episodes, episodes[:, -1:].repeat(STACK, axis=1))
        steps = np.where(padding, 0, steps)
        assert np.all(np.diff(steps, axis=1) >= 0) and np.all(np.diff(steps, axis=1) <= 1)
    np.testing.assert_array_equal(
        batch["observations"][:, -1, 0, 0], batch["next_observations"][:, -1, 0, 0]
    )
    advance = batch["next_observations"][:, -1, 0, 1].astype(int)
    advance -= batch["observations"][:, -1, 0, 1]
    assert np.all((advance >= 1) & (advance <= n_step))
    # A terminated transition's next observation is its episode's last stack.
    done = batch["dones"] == 1
    assert np.all(batch["next_observations"][done, -1, 0, 1] >= 2)


@pytest.mark.parametrize(
    "padding, n_step, prioritized",
    [("reset", 1, False), ("zero", 1, True), ("reset", 3, False), ("reset", 2, True)],
)
def test_stacks_equal_those_of_a_full_stack_buffer_across_episodes_and_wrap_around(
    padding, n_step, prioritized
):
    num_envs, capacity = 3, 45
    classes = [FrameReplayBuffer, ReplayBuffer]
    if prioritized:
        classes = [PrioritizedFrameReplayBuffer, PrioritizedReplayBuffer]
    options = dict(num_envs=num_envs, n_step=n_step, seed=1)
    frames = classes[0](capacity, (STACK, *FRAME), **options)
    full = classes[1](capacity, (STACK, *FRAME), observation_dtype="uint8", **options)
    env = make_env(num_envs, padding)
    observations, ends = collect(env, [frames, full], 10)  # not yet full
    assert_batches_equal(frames.sample(len(full)), full.sample(len(full)))
    _, more_ends = collect(env, [frames, full], 110, observations=observations)
    ends += more_ends
    assert ends[0] > 10 and ends[1] > 3  # terminations and truncations both happened
    assert frames.is_full and frames.num_frames > 3 * capacity  # the rings wrapped around
    batch = frames.sample(len(full))
    assert_batches_equal(batch, full.sample(len(full)))
    assert_stacks_of_one_episode(batch, n_step)
    if prioritized:
        frames.update_priorities(batch["indices"], np.arange(len(full)))
        full.update_priorities(batch["indices"], np.arange(len(full)))
        assert frames.max_priority == full.max_priority == len(full) - 1 + frames.epsilon
        np.testing.assert_array_equal(frames.tree.nodes, full.tree.nodes)
        assert_batches_equal(frames.sample(16), full.sample(16))


@pytest.mark.parametrize("padding, frames_per_start", [("reset", 1), ("zero", 2)])
def test_each_frame_is_stored_once_and_an_episode_start_adds_its_padding(padding, frames_per_start):
    buffer = FrameReplayBuffer(100, (STACK, *FRAME), seed=0)
    env = make_env(1, padding)
    observations, _ = env.reset(seed=0)
    starts = 0
    for _ in range(60):
        starts += int(observations[0, -1, 0, 1] == 0)  # the first stack of an episode
        next_observations, rewards, terminated, truncated, infos = env.step(np.zeros(1, int))
        reached = final_observations(next_observations, infos)
        buffer.add(observations, np.zeros(1, int), rewards, reached, terminated, truncated)
        observations = next_observations
    assert starts >= 6
    # One frame per step (the newest of the next stack), and the padding once per episode:
    # the reset frame (padding_type="reset") or one zero frame and the reset frame ("zero").
    assert buffer.num_frames == 60 + frames_per_start * starts


def test_frame_ring_grows_when_short_episodes_outrun_it_and_stays_exact():
    frames = FrameReplayBuffer(30, (STACK, *FRAME), num_envs=2, frame_capacity=12, seed=3)
    full = ReplayBuffer(30, (STACK, *FRAME), observation_dtype="uint8", num_envs=2, seed=3)
    collect(make_env(2), [frames, full], 80)
    assert frames.frame_capacity > 30
    state, expected = frames.state(), full.sample(30)
    assert_batches_equal(frames.sample(30), expected)
    # Restored into a smaller ring (which grows to the saved size) or a larger one.
    for frame_capacity in (12, 500):
        restored = FrameReplayBuffer(30, (STACK, *FRAME), num_envs=2, frame_capacity=frame_capacity)
        restored.restore(state)
        assert restored.frame_capacity == max(frame_capacity, frames.frame_capacity)
        assert_batches_equal(restored.sample(30), expected)


def test_save_and_load_round_trip_continue_identically(tmp_path):
    buffer = PrioritizedFrameReplayBuffer(40, (STACK, *FRAME), num_envs=2, n_step=2, seed=4)
    env = make_env(2)
    observations, _ = collect(env, [buffer], 70)
    path = buffer.save(tmp_path / "frames")
    with np.load(path, allow_pickle=False) as stored:
        assert all(stored[name].dtype != object for name in stored.files)
        assert stored["frames"].shape[1:] == FRAME  # frames, not stacks
    loaded = PrioritizedFrameReplayBuffer.load(path)
    assert loaded.frame_capacity == buffer.frame_capacity and loaded.num_frames == buffer.num_frames
    assert_batches_equal(loaded.sample(32), buffer.sample(32))
    collect(env, [buffer, loaded], 25, seed=9, observations=observations)
    assert_batches_equal(loaded.sample(32), buffer.sample(32))
    with pytest.raises(ValueError, match="Expected a file saved by FrameReplayBuffer"):
        FrameReplayBuffer.load(path)


def test_memory_per_transition_is_one_frame_plus_indices():
    capacity, shape = 500, (STACK, 84, 84)
    buffer = FrameReplayBuffer(capacity, shape, seed=0)
    full = ReplayBuffer(capacity, shape, observation_dtype="uint8", seed=0)
    stack = np.zeros(shape, np.uint8)
    for step in range(capacity + 50):
        next_stack = np.concatenate([stack[1:], np.full((1, 84, 84), step % 251, np.uint8)])
        buffer.add(stack, 0, 0.0, next_stack, step % 100 == 99, False)
        stack = np.zeros(shape, np.uint8) if step % 100 == 99 else next_stack
    full_bytes = sum(a.nbytes for a in vars(full).values() if isinstance(a, np.ndarray))
    # The ring did not grow: one 84×84 frame per transition and one per episode start fit in
    # its default size; besides it, per transition, the 2 · 4 int64 frame indices and the
    # action, reward, done and discount (8 + 3 · 4 bytes).
    assert buffer.num_frames == capacity + 50 + 6
    assert buffer.nbytes == FrameReplayBuffer(capacity, shape).nbytes  # all allocated upfront
    other_bytes = buffer.nbytes - buffer.frames.nbytes
    assert other_bytes < capacity * (2 * STACK * 8 + 20) + 4096  # + the small n-step window
    assert full_bytes / buffer.nbytes > 6.5  # 8 frames per transition against 1 + slack


def test_bad_shapes_are_rejected():
    with pytest.raises(ValueError, match="observation_shape"):
        FrameReplayBuffer(10, (4, 84))
    buffer = FrameReplayBuffer(10, (STACK, *FRAME), num_envs=2)
    stacks = np.zeros((2, STACK, *FRAME), np.uint8)
    with pytest.raises(ValueError, match="Expected observation of shape"):
        buffer.add(stacks[0], 0, 0.0, stacks[0], False, False)
    with pytest.raises(ValueError, match="Expected next_observation"):
        buffer.add(stacks, np.zeros(2), np.zeros(2), stacks[:, :2], np.zeros(2), np.zeros(2))


# ----------------------------------------------------------------------------- DQN


def q_network():
    # uint8 frames in, as the Nature torso takes them: the agent keeps them uint8 end to end.
    inputs = keras.Input((STACK, *FRAME), dtype="uint8")
    scaled = keras.layers.Rescaling(1 / 255)(inputs)
    hidden = keras.layers.Dense(8, activation="relu")(keras.layers.Flatten()(scaled))
    return keras.Model(inputs, keras.layers.Dense(2)(hidden))


@pytest.mark.parametrize("prioritized", [False, True])
def test_dqn_replays_frame_stacks_and_restores_them_from_its_checkpoint(prioritized, tmp_path):
    settings = dict(buffer_size=60, batch_size=8, learning_starts=24, prioritized=prioritized)
    agent = DQN(q_network(), train_frequency=2, seed=0, **settings)
    agent.learn(make_env(2), 80, verbose=0, checkpoint_dir=tmp_path)
    expected_class = PrioritizedFrameReplayBuffer if prioritized else FrameReplayBuffer
    assert type(agent.buffer) is expected_class and agent.num_updates > 20
    restored = DQN(q_network(), seed=1, **settings)
    restored.load_checkpoint(tmp_path / "checkpoint.npz", env=make_env(2))
    assert type(restored.buffer) is expected_class
    batch = agent.buffer.sample(60, **({"beta": 1.0} if prioritized else {}))
    assert_batches_equal(
        restored.buffer.sample(60, **({"beta": 1.0} if prioritized else {})), batch
    )
    assert_stacks_of_one_episode(batch)


def test_dqn_frame_replay_option_forces_either_buffer():
    agent = DQN(q_network(), frame_replay=False, learning_starts=8, batch_size=4)
    agent.learn(make_env(1), 10, verbose=0)
    assert type(agent.buffer) is ReplayBuffer
    vector = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    with pytest.raises(ValueError, match="frame_replay=True"):
        DQN(vector, frame_replay=True).learn(gym.make("CartPole-v1"), 10, verbose=0)


# --------------------------------------------------------------- real Atari frames


def assert_stores_exactly_what_full_stacks_store(env, shape, num_steps):
    """Feeds `num_steps` random steps of `env` to both buffers; every transition agrees."""
    options = dict(num_envs=env.num_envs, seed=0)
    frames = FrameReplayBuffer(num_steps, shape, **options)
    full = ReplayBuffer(num_steps, shape, observation_dtype="uint8", **options)
    observations, _ = env.reset()  # envpool takes its seed in make
    _, ends = collect(env, [frames, full], num_steps // 2, observations=observations)
    assert ends.sum() >= 2  # episodes ended (truncated by the time limit at least)
    assert frames.num_frames < len(full) + 2 * STACK * ends.sum() + 2 * STACK
    assert_batches_equal(frames.sample(len(full)), full.sample(len(full)))


def test_breakout_frame_stacks_are_rebuilt_exactly():
    ale_py = pytest.importorskip("ale_py")
    gym.register_envs(ale_py)
    space = gym.spaces.Box(0, 255, (105, 80), np.uint8)

    def factory():
        env = gym.make("ALE/Breakout-v5", obs_type="grayscale", max_episode_steps=60)
        env = gym.wrappers.TransformObservation(env, lambda frame: frame[::2, ::2], space)
        return FrameStackObservation(env, STACK)

    env = SyncVectorEnv([factory] * 2, autoreset_mode=AutoresetMode.SAME_STEP)
    assert_stores_exactly_what_full_stacks_store(env, (STACK, 105, 80), 300)


def test_envpool_frame_stacks_are_rebuilt_exactly():
    envpool = pytest.importorskip("envpool")
    env = envpool.make(
        "Breakout-v5",
        env_type="gymnasium",
        num_envs=2,
        stack_num=STACK,
        max_episode_steps=240,
        seed=0,
    )
    assert_stores_exactly_what_full_stacks_store(env, (STACK, 84, 84), 300)
