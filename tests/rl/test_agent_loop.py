"""The training loop the deep agents share: environments, counters, callbacks, checkpoints."""

import json
import time

import gymnasium as gym
import keras
import numpy as np
import pytest

import dlkit.rl
from dlkit.layers import NoisyDense
from dlkit.rl import DQN, PPO, GreedyAction, as_vector_env, build_q_network, make_vector_env
from dlkit.rl.agent import evaluate_vector
from dlkit.rl.saving import generator_from_json, generator_to_json
from dlkit.testing import run_layer_test
from dlkit.training import compile_inference

SAME_STEP = gym.vector.AutoresetMode.SAME_STEP
NEXT_STEP = gym.vector.AutoresetMode.NEXT_STEP


def make_dqn(hidden_units=(8,), **kwargs):
    arguments = dict(
        learning_starts=50,
        batch_size=16,
        buffer_size=1_000,
        train_frequency=4,
        target_update_interval=20,
        seed=0,
    )
    arguments.update(kwargs)
    return DQN(build_q_network((4,), 2, hidden_units=hidden_units), **arguments)


def make_ppo(env, **kwargs):
    arguments = dict(hidden_units=(8,), n_steps=20, batch_size=20, epochs=1, seed=0)
    arguments.update(kwargs)
    return PPO.from_env(env, **arguments)


def next_step_env(num_envs=1):
    return gym.vector.SyncVectorEnv(
        [lambda: gym.make("CartPole-v1") for _ in range(num_envs)], autoreset_mode=NEXT_STEP
    )


class Balancer:
    """A fixed CartPole policy, pushing to the side the pole leans: 25 to 51 steps by start."""

    def act(self, observations, explore=False):
        return (np.asarray(observations)[..., 2] > 0).astype(np.int64)


class Recorder(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.events = []
        self.epoch_logs = []

    def on_train_begin(self, logs=None):
        self.events.append("train_begin")

    def on_epoch_begin(self, epoch, logs=None):
        self.events.append("epoch_begin")

    def on_epoch_end(self, epoch, logs=None):
        self.events.append("epoch_end")
        self.epoch_logs.append(dict(logs))

    def on_train_end(self, logs=None):
        self.events.append("train_end")


class StopAt(keras.callbacks.Callback):
    def __init__(self, timesteps):
        super().__init__()
        self.timesteps = timesteps

    def on_epoch_end(self, epoch, logs=None):
        if logs["timesteps"] >= self.timesteps:
            self.model.stop_training = True


class Crash(Exception):
    pass


class CrashAt(keras.callbacks.Callback):
    """Raises at the start of the first iteration from `timesteps` on: after its checkpoint."""

    def __init__(self, timesteps):
        super().__init__()
        self.timesteps = timesteps

    def on_epoch_begin(self, epoch, logs=None):
        if self.model.num_timesteps >= self.timesteps:
            raise Crash


def learn_until_crash(agent, env, total_timesteps, crash_at, checkpoint_dir, interval):
    """Runs `learn` with checkpoints every `interval` steps until `CrashAt(crash_at)` raises."""
    with pytest.raises(Crash):
        agent.learn(
            env,
            total_timesteps,
            callbacks=[CrashAt(crash_at)],
            checkpoint_dir=checkpoint_dir,
            checkpoint_interval=interval,
            verbose=0,
        )


def numpy_values(variables):
    return [np.array(keras.ops.convert_to_numpy(v.value), copy=True) for v in variables]


def snapshot(agent):
    """Everything a checkpoint holds, copied out of a live agent."""
    state = {
        "variables": numpy_values(agent.variables),
        "optimizer": numpy_values(agent.optimizer.variables),
        "counters": (
            agent.num_timesteps,
            agent.num_episodes,
            agent.num_updates,
            agent._run_start,
            agent._run_target,
            list(agent.evaluations),
            list(agent.episode_returns),
            list(agent.episode_lengths),
        ),
        "rng": agent._rng.bit_generator.state,
        # The running statistics of `normalize_observations` and `normalize_rewards`.
        "normalization": {
            name: statistics.state() for name, statistics in agent._running_statistics().items()
        },
    }
    if getattr(agent, "buffer", None) is not None:
        state["buffer"] = {k: np.array(v, copy=True) for k, v in agent.buffer.state().items()}
        state["buffer_rng"] = agent.buffer._rng.bit_generator.state
    if getattr(agent, "rollout", None) is not None:
        state["rollout_rng"] = agent.rollout._rng.bit_generator.state
    return state


class Snapshot(keras.callbacks.Callback):
    def on_train_begin(self, logs=None):
        self.state = snapshot(self.model)


def assert_same_arrays(actual, expected):
    assert len(actual) == len(expected)
    for left, right in zip(actual, expected):
        np.testing.assert_array_equal(left, right)


# ---------------------------------------------------------------------------- environments


def test_make_vector_env_is_a_same_step_sync_env():
    env = make_vector_env("CartPole-v1", 3)
    try:
        assert isinstance(env, gym.vector.SyncVectorEnv)
        assert env.num_envs == 3
        assert env.metadata["autoreset_mode"] == SAME_STEP
        observations, _ = env.reset(seed=0)
        assert observations.shape == (3, 4)
        assert as_vector_env(env) is env
    finally:
        env.close()


@pytest.mark.slow
def test_async_vector_env_trains_an_agent():
    start = time.perf_counter()
    env = make_vector_env("CartPole-v1", 2, asynchronous=True)
    try:
        assert isinstance(env, gym.vector.AsyncVectorEnv)
        assert env.metadata["autoreset_mode"] == SAME_STEP
        agent = make_ppo(env, n_steps=16, batch_size=16)
        agent.learn(env, 64, verbose=0)
    finally:
        env.close()
    # Two rollouts of 16 steps × 2 copies, each two minibatches of 16.
    assert agent.num_timesteps == 64
    assert agent.num_updates == 4
    assert time.perf_counter() - start < 60


@pytest.mark.parametrize("num_envs", [0, -2, 1.5, True])
def test_make_vector_env_rejects_bad_num_envs(num_envs):
    with pytest.raises(ValueError, match=r"`num_envs`.*Received: num_envs="):
        make_vector_env("CartPole-v1", num_envs)


def test_as_vector_env_wraps_a_single_env():
    single = gym.make("CartPole-v1")
    env = as_vector_env(single)
    assert isinstance(env, gym.vector.SyncVectorEnv)
    assert env.num_envs == 1 and env.envs[0] is single
    assert env.metadata["autoreset_mode"] == SAME_STEP
    observations, _ = env.reset(seed=3)
    expected, _ = gym.make("CartPole-v1").reset(seed=3)
    np.testing.assert_array_equal(observations[0], expected)


def test_next_step_vector_env_is_refused():
    env = next_step_env()
    with pytest.raises(ValueError, match=r"SAME_STEP(.|\n)*Received: env with autoreset_mode"):
        as_vector_env(env)
    with pytest.raises(ValueError, match=r"SAME_STEP(.|\n)*Received: train_env"):
        as_vector_env(env, name="train_env")
    agent = make_dqn()
    with pytest.raises(ValueError, match=r"SAME_STEP(.|\n)*Received"):
        agent.learn(env, 10, verbose=0)
    assert agent.num_timesteps == 0


def test_non_env_is_refused():
    with pytest.raises(TypeError, match=r"gymnasium\.Env(.|\n)*Received: env='CartPole-v1'"):
        as_vector_env("CartPole-v1")
    with pytest.raises(TypeError, match=r"Received: env="):
        make_dqn().learn("CartPole-v1", 10, verbose=0)


# ---------------------------------------------------------------------------- truncation


class StepRecorder(gym.Wrapper):
    """Keeps what every step of the wrapped environment returned."""

    def __init__(self, env):
        super().__init__(env)
        self.steps = []

    def step(self, action):
        observation, reward, terminated, truncated, info = self.env.step(action)
        self.steps.append((np.array(observation, copy=True), bool(terminated), bool(truncated)))
        return observation, reward, terminated, truncated, info


class InfoRecorder(gym.vector.VectorWrapper):
    """Keeps what every step of the wrapped vector environment returned, infos included."""

    def __init__(self, env):
        super().__init__(env)
        self.records = []

    def step(self, actions):
        observations, rewards, terminated, truncated, infos = self.env.step(actions)
        final = infos.get("final_obs")
        self.records.append(
            (
                np.array(observations, copy=True),
                None if final is None else [np.array(x, copy=True) for x in final],
                None if final is None else np.array(infos["_final_obs"], copy=True),
            )
        )
        return observations, rewards, terminated, truncated, infos


def test_truncated_transitions_bootstrap_from_the_final_observation():
    single = StepRecorder(gym.make("CartPole-v1", max_episode_steps=15))
    env = InfoRecorder(as_vector_env(single))
    # No gradient step (learning_starts) and uniformly random actions (ε stays 1).
    agent = make_dqn(learning_starts=10_000, exploration_final_epsilon=1.0)
    agent.learn(env, 200, verbose=0)
    assert len(agent.buffer) == len(single.steps) == 200

    reached = np.stack([step[0] for step in single.steps])
    terminated = np.array([step[1] for step in single.steps])
    truncated = np.array([step[2] for step in single.steps])
    cut = np.flatnonzero(truncated & ~terminated)
    ended = np.flatnonzero(terminated)
    assert len(cut) > 0 and len(ended) > 0
    # Every transition leads to the observation the environment really reached; done is
    # `terminated` only, so a time limit still bootstraps.
    np.testing.assert_array_equal(agent.buffer.next_observations[:200], reached)
    np.testing.assert_array_equal(agent.buffer.dones[:200], terminated.astype(np.float32))
    assert set(agent.buffer.dones[cut]) == {0.0} and set(agent.buffer.dones[ended]) == {1.0}
    for index in cut:
        returned, final, has_final = env.records[index]
        assert has_final[0]
        np.testing.assert_array_equal(agent.buffer.next_observations[index], final[0])
        # The vector env returned the next episode's first observation, which the next
        # transition starts from and this one must not end on.
        assert not np.array_equal(agent.buffer.next_observations[index], returned[0])
        if index + 1 < 200:
            np.testing.assert_array_equal(agent.buffer.observations[index + 1], returned[0])
    assert agent.num_episodes == len(cut) + len(ended)
    assert [length for length in agent.episode_lengths if length == 15] == [15] * len(cut)


# ---------------------------------------------------------------------------- counters, logs


@pytest.mark.parametrize("budget, expected", [(300, 300), (301, 303)])
def test_dqn_counts_the_steps_of_every_copy(budget, expected):
    """`num_timesteps` counts every copy's steps; a run stops at the first multiple of
    `num_envs` that reaches its budget."""
    env = make_vector_env("CartPole-v1", 3)
    # Seeded weights: an unseeded network can balance every copy for all 100 steps, which
    # leaves no finished episode to count.
    keras.utils.set_random_seed(0)
    agent = make_dqn(learning_starts=100)
    agent.learn(env, budget, verbose=0)
    assert agent.num_timesteps == expected
    assert len(agent.episode_returns) == len(agent.episode_lengths) == agent.num_episodes > 0
    # CartPole pays 1 per step: returns are lengths; finished plus running episodes hold
    # every step.
    np.testing.assert_array_equal(agent.episode_returns, agent.episode_lengths)
    assert sum(agent.episode_lengths) + int(agent._episode_length.sum()) == expected
    # One gradient step per multiple of train_frequency=4 passed once 100 steps are collected
    # (from the vector step reaching 102).
    assert agent.num_updates == expected // 4 - 99 // 4


@pytest.mark.parametrize("budget, expected", [(300, 300), (301, 360)])
def test_ppo_runs_whole_rollouts(budget, expected):
    """A PPO iteration is a rollout of n_steps × num_envs = 60 steps."""
    env = make_vector_env("CartPole-v1", 3)
    agent = make_ppo(env)
    agent.learn(env, budget, verbose=0)
    assert agent.num_timesteps == expected
    assert agent.num_updates == expected // 60 * 3  # 3 minibatches of 20 per rollout


def test_callbacks_receive_logs_and_evaluations():
    env = make_vector_env("CartPole-v1", 3)
    eval_env = make_vector_env("CartPole-v1", 2)
    agent = make_ppo(env)
    recorder = Recorder()
    agent.learn(
        env,
        300,
        callbacks=[recorder],
        eval_env=eval_env,
        eval_interval=100,
        eval_episodes=2,
        verbose=0,
    )
    assert recorder.events == ["train_begin"] + ["epoch_begin", "epoch_end"] * 5 + ["train_end"]
    assert [logs["timesteps"] for logs in recorder.epoch_logs] == [60, 120, 180, 240, 300]
    for logs in recorder.epoch_logs:
        assert {"timesteps", "episodes", "return", "steps/s", "loss"} <= set(logs)
        assert logs["steps/s"] > 0 and np.isfinite(logs["loss"])
    last = recorder.epoch_logs[-1]
    assert last["episodes"] == agent.num_episodes
    assert last["return"] == pytest.approx(np.mean(agent.episode_returns[-100:]))
    # An evaluation at the end of the first iteration reaching each multiple of 100.
    evaluated = [
        (logs["timesteps"], logs["eval_return"])
        for logs in recorder.epoch_logs
        if "eval_return" in logs
    ]
    assert [timesteps for timesteps, _ in evaluated] == [120, 240, 300]
    assert agent.evaluations == evaluated
    assert agent.evaluations[-1][1] == agent.evaluate(eval_env, 2, seed=10_000)


def test_dqn_evaluates_on_its_interval():
    """An off-policy iteration ends where an evaluation is due, not after 1,000 steps."""
    env = make_vector_env("CartPole-v1", 3)
    agent = make_dqn(learning_starts=100)
    recorder = Recorder()
    agent.learn(
        env,
        300,
        callbacks=[recorder],
        eval_env=gym.make("CartPole-v1"),
        eval_interval=100,
        eval_episodes=1,
        verbose=0,
    )
    assert [logs["timesteps"] for logs in recorder.epoch_logs] == [102, 201, 300]
    assert [timesteps for timesteps, _ in agent.evaluations] == [102, 201, 300]
    for logs in recorder.epoch_logs:
        assert {"timesteps", "return", "steps/s", "loss", "epsilon", "eval_return"} <= set(logs)
    assert recorder.epoch_logs[-1]["epsilon"] == pytest.approx(0.05)


def test_callback_stops_training():
    env = make_vector_env("CartPole-v1", 3)
    agent = make_ppo(env)
    recorder = Recorder()
    agent.learn(env, 300, callbacks=[StopAt(120), recorder], verbose=0)
    assert agent.num_timesteps == 120
    assert recorder.events[-1] == "train_end"
    assert len(recorder.epoch_logs) == 2


def test_tensorboard_logs_a_run(tmp_path):
    tf = pytest.importorskip("tensorflow")
    pytest.importorskip("tensorboard")  # tf.summary's implementation
    env = make_vector_env("CartPole-v1", 2)
    agent = make_ppo(env, n_steps=16, batch_size=16)
    agent.learn(env, 64, callbacks=[keras.callbacks.TensorBoard(log_dir=str(tmp_path))], verbose=0)
    files = list(tmp_path.rglob("events.out.tfevents.*"))
    assert files
    tags = set()
    for path in files:
        for record in tf.data.TFRecordDataset(str(path)):
            event = tf.compat.v1.Event.FromString(record.numpy())
            tags.update(value.tag for value in event.summary.value)
    assert {"epoch_timesteps", "epoch_return", "epoch_loss"} <= tags


# ---------------------------------------------------------------------------- evaluation


def test_evaluate_plays_copy_i_from_seed_plus_i():
    policy = Balancer()
    single = [dlkit.rl.evaluate(policy, gym.make("CartPole-v1"), 1, seed=s) for s in range(10)]
    assert len(set(single)) > 3  # the start states matter
    # Ten copies play one episode each, copy i from seed i: the episodes of `dlkit.rl.evaluate`.
    ten = evaluate_vector(policy.act, make_vector_env("CartPole-v1", 10), 10, seed=0)
    assert ten == single
    # Five copies play two episodes each; the first of copy i starts from seed i, the second
    # from the reset that follows it.
    five_env = make_vector_env("CartPole-v1", 5)
    five = evaluate_vector(policy.act, five_env, 10, seed=0)
    assert len(five) == 10
    assert five[0::2] == single[:5]
    assert evaluate_vector(policy.act, five_env, 10, seed=0) == five
    assert evaluate_vector(policy.act, five_env, 5, seed=3) == single[3:8]


def angle_dqn():
    """A DQN whose greedy policy is `Balancer`'s: Q(s) = (−θ, θ) for the pole angle θ."""
    agent = make_dqn(hidden_units=())
    kernel = np.zeros((4, 2), "float32")
    kernel[2] = [-1.0, 1.0]
    agent.q_network.set_weights([kernel, np.zeros(2, "float32")])
    return agent


def test_agent_evaluate_is_deterministic_and_matches_dlkit_evaluate():
    agent = angle_dqn()
    five_env = make_vector_env("CartPole-v1", 5)
    first = agent.evaluate(five_env, episodes=10)
    assert agent.evaluate(five_env, episodes=10) == first
    assert first == float(np.mean(evaluate_vector(Balancer().act, five_env, 10, seed=0)))
    # With one copy per episode the episodes are those of `dlkit.rl.evaluate`.
    ten = agent.evaluate(make_vector_env("CartPole-v1", 10), episodes=10)
    assert ten == dlkit.rl.evaluate(agent, gym.make("CartPole-v1"), episodes=10)
    assert ten != first
    # A single environment is wrapped: its first episode starts from `seed`.
    single = agent.evaluate(gym.make("CartPole-v1"), episodes=1, seed=4)
    assert single == dlkit.rl.evaluate(agent, gym.make("CartPole-v1"), episodes=1, seed=4)


class PayOnResetSteps(gym.vector.VectorWrapper):
    """Pays 100 on the steps that only reset a finished copy (next-step autoreset)."""

    def __init__(self, env):
        super().__init__(env)
        self._ended = np.zeros(env.num_envs, bool)

    def reset(self, **kwargs):
        self._ended[:] = False
        return self.env.reset(**kwargs)

    def step(self, actions):
        observations, rewards, terminated, truncated, infos = self.env.step(actions)
        rewards = np.where(self._ended, 100.0, rewards)
        self._ended = np.logical_or(terminated, truncated)
        return observations, rewards, terminated, truncated, infos


def test_evaluate_vector_skips_next_step_reset_steps():
    policy = Balancer()
    expected = evaluate_vector(policy.act, make_vector_env("CartPole-v1", 2), 6, seed=0)
    env = PayOnResetSteps(next_step_env(2))
    assert evaluate_vector(policy.act, env, 6, seed=0) == expected


# ---------------------------------------------------------------------------- checkpoints


def assert_restored(restored, recorded, num_envs):
    assert_same_arrays(restored["variables"], recorded["variables"])
    assert_same_arrays(restored["optimizer"], recorded["optimizer"])
    assert restored["counters"] == recorded["counters"]
    for name in ("buffer_rng", "rollout_rng"):
        assert restored.get(name) == recorded.get(name)
    assert restored["normalization"].keys() == recorded["normalization"].keys()
    for name, statistics in recorded["normalization"].items():
        for key, value in statistics.items():
            np.testing.assert_array_equal(restored["normalization"][name][key], value)
    if "buffer" in recorded:
        assert restored["buffer"].keys() == recorded["buffer"].keys()
        for key, value in recorded["buffer"].items():
            np.testing.assert_array_equal(restored["buffer"][key], value)
    # Before on_train_begin the resumed run drew the seeds of its environments' reset.
    generator = np.random.Generator(np.random.PCG64())
    generator.bit_generator.state = recorded["rng"]
    generator.integers(2**31, size=num_envs)
    assert restored["rng"] == generator.bit_generator.state


def check_checkpoint_file(path, recorded, class_name):
    with np.load(path) as saved:
        counters = json.loads(str(saved["counters"]))
        assert counters["class"] == class_name
        assert counters["num_timesteps"] == 200 and counters["run_target"] == 400
        count = sum(key.startswith("variable/") for key in saved.files)
        stored = [saved[f"variable/{index}"] for index in range(count)]
        assert_same_arrays(stored, recorded["variables"] + recorded["optimizer"])
        assert generator_from_json(str(saved["rng_state"])).bit_generator.state == recorded["rng"]


# Both normalisations on: their running statistics resume exactly too.
NORMALIZATION = {
    "plain": {},
    "normalized": dict(normalize_observations=True, normalize_rewards=True),
}


@pytest.mark.parametrize("normalization", sorted(NORMALIZATION))
def test_dqn_resumes_its_checkpoint_exactly(normalization, tmp_path):
    env = gym.make("CartPole-v1")
    first = make_dqn(**NORMALIZATION[normalization])
    learn_until_crash(first, env, 400, 200, tmp_path, 100)
    assert first.num_timesteps == 200 and first.num_updates > 0
    recorded = snapshot(first)
    check_checkpoint_file(tmp_path / "checkpoint.npz", recorded, "DQN")

    second = make_dqn(**NORMALIZATION[normalization])
    spy = Snapshot()
    # The checkpoint's run wins over this call's budget.
    second.learn(env, 1_000, callbacks=[spy], checkpoint_dir=tmp_path, verbose=0)
    assert_restored(spy.state, recorded, num_envs=1)
    assert second.num_timesteps == 400
    assert second.num_updates > first.num_updates
    with np.load(tmp_path / "checkpoint.npz") as saved:
        assert json.loads(str(saved["counters"]))["num_timesteps"] == 400


@pytest.mark.parametrize("normalization", sorted(NORMALIZATION))
def test_ppo_resumes_its_checkpoint_exactly(normalization, tmp_path):
    env = gym.make("CartPole-v1")
    settings = dict(n_steps=50, batch_size=25, epochs=2, **NORMALIZATION[normalization])
    first = make_ppo(env, **settings)
    learn_until_crash(first, env, 400, 200, tmp_path, 100)
    assert first.num_timesteps == 200 and first.num_updates == 16
    recorded = snapshot(first)
    check_checkpoint_file(tmp_path / "checkpoint.npz", recorded, "PPO")

    second = make_ppo(env, **settings)
    spy = Snapshot()
    second.learn(env, 400, callbacks=[spy], checkpoint_dir=tmp_path, verbose=0)
    assert_restored(spy.state, recorded, num_envs=1)
    assert second.num_timesteps == 400 and second.num_updates == 32


def noise_states(agent):
    layers = [layer for layer in agent.q_network.layers if isinstance(layer, NoisyDense)]
    return numpy_values([layer.seed_generator.state for layer in layers])


def test_checkpoint_keeps_the_noise_stream_of_noisy_layers(tmp_path):
    env = gym.make("CartPole-v1")
    noisy = dict(hidden_units=(8,), noisy=True)
    first = DQN(build_q_network((4,), 2, **noisy), learning_starts=10_000, seed=0)
    first.learn(env, 30, checkpoint_dir=tmp_path, verbose=0)
    recorded = noise_states(first)
    second = DQN(build_q_network((4,), 2, **noisy), learning_starts=10_000, seed=0)
    assert len(recorded) == 2
    second.load_checkpoint(tmp_path / "checkpoint.npz")
    assert second.num_timesteps == 30
    assert_same_arrays(noise_states(second), recorded)


def test_learn_extends_a_finished_checkpoint_run(tmp_path):
    env = gym.make("CartPole-v1")
    first = make_dqn(learning_starts=50, exploration_fraction=0.5)
    first.learn(env, 100, checkpoint_dir=tmp_path, verbose=0)
    assert first.num_timesteps == 100 and first.epsilon == pytest.approx(0.05)

    # A fresh agent given the finished run's directory trains 60 more steps as a new run.
    second = make_dqn(learning_starts=50, exploration_fraction=0.5)
    epsilons = []

    class Epsilons(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            epsilons.append(self.model.epsilon)

    second.learn(env, 60, callbacks=[Epsilons()], checkpoint_dir=tmp_path, verbose=0)
    assert second.num_timesteps == 160 and second.num_updates > first.num_updates
    assert epsilons and all(value == pytest.approx(0.05) for value in epsilons)
    counters = json.loads(str(np.load(tmp_path / "checkpoint.npz")["counters"]))
    assert (counters["num_timesteps"], counters["run_start"], counters["run_target"]) == (
        160,
        100,
        160,
    )
    assert counters["run_extends"] is True

    # Interrupted inside the extension, the resumed run keeps exploring at the final ε.
    third = make_dqn(learning_starts=50, exploration_fraction=0.5)
    learn_until_crash(third, env, 100, 200, tmp_path, 20)
    resumed = make_dqn(learning_starts=50, exploration_fraction=0.5)
    resumed.load_checkpoint(tmp_path / "checkpoint.npz")
    assert resumed.num_timesteps == 200 and resumed._run_target == 260
    assert resumed.epsilon == pytest.approx(0.05)
    # A plain second call of learn, without a checkpoint, starts its ε schedule over.
    epsilons.clear()
    resumed.learn(env, 10, callbacks=[Epsilons()], verbose=0)
    assert epsilons[0] == pytest.approx(1.0)


def test_checkpoint_of_another_agent_is_refused(tmp_path):
    env = gym.make("CartPole-v1")
    make_dqn(learning_starts=10_000).learn(env, 20, checkpoint_dir=tmp_path, verbose=0)
    path = tmp_path / "checkpoint.npz"
    pattern = r"Expected a checkpoint of a PPO\. Received: path=.* of a DQN"
    with pytest.raises(ValueError, match=pattern):
        make_ppo(env).learn(env, 40, checkpoint_dir=tmp_path, verbose=0)
    with pytest.raises(ValueError, match=pattern):
        make_ppo(env).load_checkpoint(path)  # an agent that never learned

    wider = make_dqn(hidden_units=(16,), learning_starts=10_000)
    before = numpy_values(wider.variables)
    with pytest.raises(ValueError, match=r"Expected variable .* of shape \(4, 16\)(.|\n)*\(4, 8\)"):
        wider.learn(env, 20, checkpoint_dir=tmp_path, verbose=0)
    assert wider.num_timesteps == 0
    assert_same_arrays(numpy_values(wider.variables), before)  # left as it was
    with pytest.raises(ValueError, match=r"variables, like this agent(.|\n)*with \d+$"):
        make_dqn(hidden_units=(8, 8)).learn(env, 20, checkpoint_dir=tmp_path, verbose=0)


# ---------------------------------------------------------------------------- failures


class Boom(gym.Env):
    """Random observations, episodes of 8 steps; raises at its `fail_at`-th step."""

    def __init__(self, fail_at=None):
        self.observation_space = gym.spaces.Box(-1.0, 1.0, (4,), np.float32)
        self.action_space = gym.spaces.Discrete(2)
        self.fail_at = fail_at
        self.steps = 0
        self._time = 0

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self._time = 0
        return self.np_random.uniform(-1, 1, 4).astype(np.float32), {}

    def step(self, action):
        self.steps += 1
        if self.steps == self.fail_at:
            raise RuntimeError("boom")
        self._time += 1
        observation = self.np_random.uniform(-1, 1, 4).astype(np.float32)
        return observation, 1.0, False, self._time >= 8, {}


class CheckpointWatch(keras.callbacks.Callback):
    def __init__(self, path):
        super().__init__()
        self.path = path
        self.content = None

    def on_epoch_begin(self, epoch, logs=None):
        if self.path.exists():
            self.content = self.path.read_bytes()


def test_environment_error_names_the_copy_and_keeps_the_checkpoint(tmp_path):
    env = gym.vector.SyncVectorEnv(
        [lambda: Boom(), lambda: Boom(fail_at=30)], autoreset_mode=SAME_STEP
    )
    path = tmp_path / "checkpoint.npz"
    watch = CheckpointWatch(path)
    agent = make_dqn(learning_starts=10_000)
    # Copy 1's 30th step is vector step 29, after 58 steps of both copies.
    message = r"environment 1 raised at timestep 58 \(vector step 29\): RuntimeError: boom"
    with pytest.raises(RuntimeError, match=message) as raised:
        agent.learn(
            env, 200, callbacks=[watch], checkpoint_dir=tmp_path, checkpoint_interval=10, verbose=0
        )
    assert str(raised.value.__cause__) == "boom"
    assert path.read_bytes() == watch.content
    # The last two checkpoints, each with its integrity record; no partial file left.
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "checkpoint.json",
        "checkpoint.npz",
        "checkpoint.previous.json",
        "checkpoint.previous.npz",
    ]
    with np.load(path) as saved:
        assert json.loads(str(saved["counters"]))["num_timesteps"] == 50

    healthy = gym.vector.SyncVectorEnv([lambda: Boom(), lambda: Boom()], autoreset_mode=SAME_STEP)
    resumed = make_dqn(learning_starts=10_000)
    spy = Snapshot()
    resumed.learn(healthy, 200, callbacks=[spy], checkpoint_dir=tmp_path, verbose=0)
    assert spy.state["counters"][0] == 50
    assert len(spy.state["buffer"]["observations"]) == 50
    assert resumed.num_timesteps == 200


# ---------------------------------------------------------------------------- policy heads


def test_greedy_action_rules():
    q_values = np.array([[0.1, 0.7, 0.3], [0.9, 0.2, -1.0]], "float32")
    actions = keras.ops.convert_to_numpy(GreedyAction("argmax")(q_values))
    assert actions.dtype == np.int32 and actions.tolist() == [1, 0]

    support = [-1.0, 0.0, 1.0]
    probabilities = np.array(
        [
            [[0.0, 1.0, 0.0], [0.4, 0.0, 0.6]],  # expectations 0.0 and 0.2
            [[0.0, 0.0, 1.0], [0.2, 0.0, 0.8]],  # expectations 1.0 and 0.6
        ],
        "float32",
    )
    layer = GreedyAction("expected_argmax", support=support)
    assert keras.ops.convert_to_numpy(layer(probabilities)).tolist() == [1, 0]

    means = np.array([[-3.0, 0.05], [2.0, -0.2]], "float32")
    clipped = GreedyAction("clip", low=[-1.0, -0.1], high=[1.0, 0.1])(means)
    clipped = keras.ops.convert_to_numpy(clipped)
    assert clipped.dtype == np.float32
    np.testing.assert_allclose(clipped, [[-1.0, 0.05], [1.0, -0.1]])


def test_greedy_action_breaks_ties_as_numpy_argmax():
    # Ties go to the first index; all-equal rows, negatives and a -0.0 beside 0.0 included.
    q_values = np.array(
        [[1.0, 3.0, 3.0, 0.0], [0.0] * 4, [-1.0, -2.0, -0.5, -3.0], [-0.0, 0.0, -1.0, -0.0]],
        "float32",
    )
    actions = keras.ops.convert_to_numpy(GreedyAction("argmax")(q_values))
    assert actions.dtype == np.int32
    assert actions.tolist() == np.argmax(q_values, axis=-1).tolist() == [1, 0, 2, 0]
    batch = np.random.default_rng(0).normal(size=(64, 6)).astype("float32")
    actions = keras.ops.convert_to_numpy(GreedyAction("argmax")(batch))
    np.testing.assert_array_equal(actions, np.argmax(batch, axis=-1))


@pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="exported in process")
def test_argmax_policy_exports_to_onnx(tmp_path):
    pytest.importorskip("tf2onnx")
    from dlkit.export import export, verify

    keras.utils.set_random_seed(0)
    agent = DQN(build_q_network((4,), 3, hidden_units=(8,)))
    x = np.random.default_rng(1).normal(size=(16, 4)).astype("float32")
    path = export(agent.policy_model(), tmp_path / "policy.onnx", format="onnx")
    assert verify(path, x, agent.act(x).astype("int32"), atol=0) == 0


def test_greedy_action_rejects_bad_arguments():
    with pytest.raises(ValueError, match=r"`rule`.*Received: rule='softmax'"):
        GreedyAction("softmax")
    with pytest.raises(ValueError, match=r"`support`.*Received: support=None"):
        GreedyAction("expected_argmax")
    with pytest.raises(ValueError, match=r"`low` and `high`.*Received: low=\[0\.0\], high=None"):
        GreedyAction("clip", low=[0.0])
    with pytest.raises(ValueError, match=r"Received: low=None, high=\[1\.0\]"):
        GreedyAction("clip", high=[1.0])


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(rule="argmax"),
        dict(rule="expected_argmax", support=[-1, 0, 1]),
        dict(rule="clip", low=[-1, -2], high=[1, 2]),
    ],
)
def test_greedy_action_config_round_trip(kwargs):
    layer = GreedyAction(name="greedy", **kwargs)
    config = layer.get_config()
    clone = GreedyAction.from_config(config)
    assert clone.get_config() == config
    assert (clone.rule, clone.support, clone.low, clone.high) == (
        layer.rule,
        layer.support,
        layer.low,
        layer.high,
    )
    restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(layer))
    assert isinstance(restored, GreedyAction) and restored.get_config() == config
    shape = (2, 3, 3) if kwargs["rule"] == "expected_argmax" else (2, 2)
    inputs = np.random.default_rng(0).random(shape).astype("float32")
    np.testing.assert_array_equal(
        keras.ops.convert_to_numpy(clone(inputs)), keras.ops.convert_to_numpy(layer(inputs))
    )


def test_policy_model_acts_like_the_agent():
    agent = make_dqn()
    observations = np.random.default_rng(0).normal(size=(5, 4)).astype("float32")
    model = agent.policy_model()
    actions = keras.ops.convert_to_numpy(model(observations))
    assert actions.dtype == np.int32
    np.testing.assert_array_equal(actions, agent.act(observations))


# ---------------------------------------------------------------------------- inference


def test_compile_inference_training_draws_new_noise():
    model = keras.Sequential([keras.Input((4,)), NoisyDense(3, seed=0)])
    layer = model.layers[0]
    inputs = np.ones((2, 4), "float32")
    noisy = compile_inference(model, training=True)
    assert noisy.training is True
    state = numpy_values([layer.seed_generator.state])[0]
    first, second = noisy(inputs), noisy(inputs)
    assert first.shape == (2, 3)
    assert not np.allclose(first, second)
    advanced = numpy_values([layer.seed_generator.state])[0]
    assert not np.array_equal(advanced, state)

    mean = compile_inference(model)
    assert mean.training is False
    np.testing.assert_array_equal(mean(inputs), mean(inputs))
    np.testing.assert_allclose(
        mean(inputs), keras.ops.convert_to_numpy(model(inputs, training=False)), atol=1e-6
    )
    assert not np.allclose(first, mean(inputs))
    # The mean weights draw no noise.
    np.testing.assert_array_equal(numpy_values([layer.seed_generator.state])[0], advanced)


# ---------------------------------------------------------------------------- layer checks

_SUPPORT = [-1.0, 0.0, 1.0]


@pytest.mark.parametrize(
    "kwargs, shape",
    [
        (dict(rule="argmax"), (4, 3)),
        (dict(rule="expected_argmax", support=_SUPPORT), (4, 2, 3)),
        (dict(rule="clip", low=[-1.0, -0.1], high=[1.0, 0.1]), (4, 2)),
    ],
)
def test_greedy_action_passes_the_layer_checks(kwargs, shape):
    inputs = np.random.default_rng(0).normal(size=shape).astype("float32")
    if kwargs["rule"] == "argmax":
        expected = inputs.argmax(axis=-1).astype("int32")
    elif kwargs["rule"] == "expected_argmax":
        expected = (inputs * np.array(_SUPPORT, "float32")).sum(axis=-1).argmax(axis=-1)
        expected = expected.astype("int32")
    else:
        expected = np.clip(inputs, kwargs["low"], kwargs["high"])
    run_layer_test(
        GreedyAction,
        kwargs,
        input_data=inputs,
        expected_output=expected,  # compared in shape too
        expected_num_trainable_weights=0,
        expected_num_non_trainable_weights=0,
        # A weightless rule at the end of an exported policy (argmax has no gradient): the
        # networks before it are trained and checked with their agents.
        run_training_check=False,
    )


@pytest.mark.parametrize("kind", ["dqn", "ppo"])
def test_checkpoints_of_the_layout_before_buffer_state_still_load(tmp_path, kind):
    env = make_vector_env("CartPole-v1", 2)
    agent = make_dqn() if kind == "dqn" else make_ppo(env)
    agent.learn(env, 100, verbose=0, checkpoint_dir=str(tmp_path))
    with np.load(tmp_path / "checkpoint.npz") as saved:
        arrays = dict(saved)
    # That layout kept only the buffer's generator apart, as `buffer_rng` or `rollout_rng`.
    if kind == "dqn":
        arrays["extra/buffer_rng"] = arrays.pop("extra/buffer/rng_state")
    else:
        arrays = {key: value for key, value in arrays.items() if "/rollout/" not in key}
        arrays["extra/rollout_rng"] = np.array(generator_to_json(agent.rollout._rng))
    np.savez(tmp_path / "legacy.npz", **arrays)
    restored = make_dqn() if kind == "dqn" else make_ppo(env)
    restored.load_checkpoint(tmp_path / "legacy.npz", env)
    buffer, expected = (
        (restored.buffer, agent.buffer) if kind == "dqn" else (restored.rollout, agent.rollout)
    )
    assert buffer._rng.bit_generator.state == expected._rng.bit_generator.state
    assert restored.num_timesteps == agent.num_timesteps >= 100
