"""Running normalisation of observations and rewards (dlkit.rl.normalization) in every agent."""

import importlib.util
import json
import pathlib
import sys

import gymnasium as gym
import keras
import numpy as np
import pytest

from dlkit.rl import (
    A2C,
    DQN,
    PPO,
    REINFORCE,
    ObservationNormalization,
    RewardScaler,
    RunningMeanStd,
    as_vector_env,
    build_q_network,
    make_vector_env,
)
from dlkit.rl.normalization import PRIOR_COUNT, standardize
from dlkit.testing import run_layer_test

NORMALIZED = dict(normalize_observations=True, normalize_rewards=True)
# The gain of PPO's training return on HalfCheetah-v5 (the mean of the last 5 episodes minus the
# first episode's) the slow test asks for. Measured with `benchmarks/rl_normalization.py
# --workload halfcheetah_ppo --seeds 0 1 2` at its default budget: 159, 132, 212 on PyTorch, 95,
# 388, 223 on JAX; a broken normalisation or learning rule stays near 0.
HALFCHEETAH_GAIN = 50.0
POLICY_GRADIENT = [REINFORCE, A2C, PPO]


def numpy(x):
    return np.asarray(keras.ops.convert_to_numpy(x))


def make_dqn(**kwargs):
    keras.utils.set_random_seed(0)
    arguments = dict(learning_starts=50, batch_size=16, buffer_size=1_000, seed=0, **NORMALIZED)
    arguments.update(kwargs)
    return DQN(build_q_network((4,), 2, hidden_units=(8,)), **arguments)


def make_policy_gradient(cls, env, **kwargs):
    keras.utils.set_random_seed(0)
    arguments = dict(hidden_units=(8,), seed=0, **NORMALIZED)
    if cls is PPO:
        arguments.update(n_steps=32, batch_size=32, epochs=1)
    arguments.update(kwargs)
    return cls.from_env(env, **arguments)


class RecordingVectorEnv(gym.vector.VectorWrapper):
    """Keeps every observation and reward its steps return."""

    def __init__(self, env):
        super().__init__(env)
        self.observations, self.rewards, self.dones = [], [], []

    def step(self, actions):
        observations, rewards, terminated, truncated, infos = self.env.step(actions)
        self.observations.append(np.array(observations, np.float64))
        self.rewards.append(np.array(rewards, np.float64))
        self.dones.append(np.logical_or(terminated, truncated))
        return observations, rewards, terminated, truncated, infos


def reference_statistics(samples, count=PRIOR_COUNT):
    """Mean and variance of `samples` (N, ...) pooled with the prior: `count` at mean 0, var 1."""
    samples = np.asarray(samples, np.float64)
    total = len(samples) + count
    mean = samples.sum(axis=0) / total
    var = (count * (1.0 + mean**2) + np.square(samples - mean).sum(axis=0)) / total
    return mean, var


# ---------------------------------------------------------------------------- statistics


def test_running_statistics_match_numpy_over_chunks():
    data = np.random.default_rng(0).normal(3.0, 2.0, size=(1_000, 3)) * [1.0, 10.0, 0.1]
    exact = RunningMeanStd((3,), count=0)
    prior = RunningMeanStd((3,))
    for chunk in np.split(data, [1, 7, 100, 101, 640]):
        exact.update(chunk)
        prior.update(chunk)
    np.testing.assert_allclose(exact.mean, data.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(exact.var, data.var(axis=0), rtol=1e-12)
    assert exact.count == 1_000
    mean, var = reference_statistics(data)
    np.testing.assert_allclose(prior.mean, mean, rtol=1e-12)
    np.testing.assert_allclose(prior.var, var, rtol=1e-12)


def test_reward_scaling_matches_a_hand_computed_reference():
    gamma, epsilon, clip = 0.9, 1e-8, 2.0
    rewards = np.array([[1.0, -2.0], [0.5, 30.0], [2.0, 1.0], [-1.0, 0.0], [4.0, 3.0]])
    dones = np.array([[False, False], [True, False], [False, False], [False, True], [False, False]])
    scaler = RewardScaler(num_envs=2, gamma=gamma, epsilon=epsilon, clip=clip)
    running = np.zeros(2)
    history = []
    for reward, done in zip(rewards, dones):
        running = gamma * running + reward
        history.extend(running)
        _, var = reference_statistics(history)
        expected = np.clip(reward / np.sqrt(var + epsilon), -clip, clip)
        np.testing.assert_allclose(scaler.scale(reward, done), expected, rtol=1e-6)
        running[done] = 0.0
    assert np.abs(expected).max() <= clip
    # The 30 of the second step was clipped.
    assert scaler.returns.tolist() == pytest.approx(running.tolist())


@pytest.mark.parametrize("cls", [DQN, *POLICY_GRADIENT], ids=lambda cls: cls.__name__)
def test_every_agent_learns_from_running_statistics_frozen_outside_learn(cls):
    env = RecordingVectorEnv(make_vector_env("CartPole-v1", 2))
    agent = make_dqn(gamma=0.95) if cls is DQN else make_policy_gradient(cls, env, gamma=0.95)
    agent.learn(env, 128, verbose=0)
    # The statistics follow every observation a step returned, and only those.
    stepped = np.concatenate(env.observations)
    assert len(stepped) == agent.num_timesteps
    mean, var = reference_statistics(stepped)
    statistics = agent._observation_statistics
    np.testing.assert_allclose(statistics.mean, mean, rtol=1e-9)
    np.testing.assert_allclose(statistics.var, var, rtol=1e-9)
    # The layer holds them (float32) after each iteration.
    np.testing.assert_allclose(numpy(agent.observation_normalization.mean), mean, rtol=1e-6)
    np.testing.assert_allclose(numpy(agent.observation_normalization.variance), var, rtol=1e-6)
    # The agent learns from scaled rewards; its logged returns stay CartPole's 1 per step.
    reference = RewardScaler(2, 0.95, agent.normalization_epsilon, agent.reward_clip)
    scaled = np.array([reference.scale(r, d) for r, d in zip(env.rewards, env.dones)])
    np.testing.assert_allclose(agent._reward_scaler.statistics.var, reference.statistics.var)
    if cls in (A2C, PPO):
        np.testing.assert_allclose(agent.rollout.rewards, scaled[-agent.n_steps :], rtol=1e-6)
    assert agent.episode_returns == [float(length) for length in agent.episode_lengths]

    # Frozen outside `learn`: acting and evaluating change no statistic.
    before = {name: s.state() for name, s in agent._running_statistics().items()}
    raw = np.random.default_rng(0).normal(size=(6, 4)).astype("float32") * 3.0
    actions = agent.act(raw, explore=False)
    agent.act(raw, explore=True)
    agent.evaluate(make_vector_env("CartPole-v1", 2), episodes=2)
    for name, frozen in agent._running_statistics().items():
        for key, value in frozen.state().items():
            np.testing.assert_array_equal(value, before[name][key])
    np.testing.assert_allclose(numpy(agent.observation_normalization.mean), mean, rtol=1e-6)
    # act standardises raw observations before the network, as the exported policy does.
    standardized = standardize(
        raw, statistics.mean, statistics.var, agent.normalization_epsilon, agent.observation_clip
    )
    network = agent.q_network if cls is DQN else agent.actor
    np.testing.assert_array_equal(actions, numpy(network(standardized)).argmax(axis=-1))
    np.testing.assert_array_equal(numpy(agent.policy_model()(raw)), actions)


# ---------------------------------------------------------------------------- layer


def test_layer_standardizes_and_clips_like_numpy():
    x = np.random.default_rng(0).normal(size=(5, 3)).astype("float32") * 20.0
    mean, variance = np.array([1.0, -2.0, 0.5]), np.array([4.0, 0.25, 9.0])
    layer = ObservationNormalization(epsilon=1e-3, clip=5.0)
    layer.build((None, 3))
    statistics = RunningMeanStd((3,))
    statistics.mean, statistics.var = mean, variance
    layer.set_statistics(statistics)
    expected = np.clip((x - mean) / np.sqrt(variance + 1e-3), -5.0, 5.0)
    np.testing.assert_allclose(numpy(layer(x)), expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(layer.standardize(x), expected, rtol=1e-5, atol=1e-6)
    assert np.abs(expected).max() == 5.0


def test_layer_passes_the_layer_checks_and_keras_round_trip(tmp_path):
    run_layer_test(
        ObservationNormalization,
        init_kwargs={"epsilon": 1e-6, "clip": 3.0},
        input_shape=(2, 4),
        expected_output_shape=(2, 4),
        expected_num_trainable_weights=0,
        expected_num_non_trainable_weights=2,
        run_training_check=False,
    )
    inputs = keras.Input((4,))
    layer = ObservationNormalization(clip=3.0)
    model = keras.Model(inputs, keras.layers.Dense(2)(layer(inputs)))
    statistics = RunningMeanStd((4,))
    statistics.update(np.random.default_rng(1).normal(5.0, 3.0, size=(50, 4)))
    layer.set_statistics(statistics)
    model.save(tmp_path / "model.keras")
    loaded = keras.saving.load_model(tmp_path / "model.keras")
    x = np.random.default_rng(2).normal(5.0, 3.0, size=(8, 4)).astype("float32")
    np.testing.assert_allclose(numpy(loaded(x)), numpy(model(x)), rtol=1e-6)
    np.testing.assert_allclose(numpy(loaded.layers[1].mean), statistics.mean, rtol=1e-6)


# ---------------------------------------------------------------------------- checkpoints


def test_gaussian_policy_model_and_keras_file_keep_the_statistics(tmp_path):
    env = gym.make("Pendulum-v1")
    agent = make_policy_gradient(PPO, env)
    agent.learn(env, 64, verbose=0)
    raw = np.random.default_rng(0).normal(2.0, 3.0, size=(64, 3)).astype("float32")
    policy = agent.policy_model()
    assert isinstance(policy.layers[1], ObservationNormalization)
    np.testing.assert_allclose(numpy(policy(raw)), agent.act(raw), rtol=1e-5, atol=1e-5)
    # The agent keeps the policy's layer in sync: more training moves the statistics.
    before = numpy(policy(raw))
    agent.learn(env, 64, verbose=0)
    np.testing.assert_allclose(
        numpy(policy.layers[1].mean), agent._observation_statistics.mean, rtol=1e-6
    )
    np.testing.assert_allclose(numpy(policy(raw)), agent.act(raw), rtol=1e-5, atol=1e-5)
    assert not np.allclose(numpy(policy(raw)), before)
    agent.save(tmp_path / "agent.keras")
    loaded = keras.saving.load_model(tmp_path / "agent.keras")
    assert loaded.normalize_observations and loaded.normalize_rewards
    np.testing.assert_allclose(loaded.act(raw), agent.act(raw), rtol=1e-6)
    np.testing.assert_allclose(loaded.value(raw), agent.value(raw), rtol=1e-5, atol=1e-6)


@pytest.mark.slow
@pytest.mark.skipif(
    keras.backend.backend() != "tensorflow",
    reason="the same TensorFlow graph whichever backend trained it; the other backends reach it "
    "through the .keras file of test_layer_passes_the_layer_checks_and_keras_round_trip",
)
def test_normalized_policy_exports_with_parity(tmp_path):
    from dlkit.export import export, verify

    env = gym.make("Pendulum-v1")
    agent = make_policy_gradient(PPO, env)
    agent.learn(env, 96, verbose=0)
    raw = np.random.default_rng(0).normal(2.0, 3.0, size=(16, 3)).astype("float32")
    expected = agent.act(raw, explore=False)
    for path, format in ((tmp_path / "policy", "saved_model"), (tmp_path / "p.onnx", "onnx")):
        written = export(agent.policy_model(), path, format=format)
        assert verify(written, raw, expected, atol=1e-5) <= 1e-5


# ---------------------------------------------------------------------------- MuJoCo


@pytest.mark.parametrize("cls", [PPO, A2C], ids=lambda cls: cls.__name__)
def test_gaussian_agents_run_on_halfcheetah_with_normalization(cls, in_tmp_dir):
    # in_tmp_dir: MuJoCo writes its warnings to MUJOCO_LOG.TXT in the working directory.
    pytest.importorskip("mujoco")
    env = make_vector_env("HalfCheetah-v5", 2)
    agent = make_policy_gradient(cls, env, hidden_units=(16,))
    agent.learn(env, 200, verbose=0)
    assert agent.num_timesteps >= 200 and agent.num_updates >= 1
    statistics = agent._observation_statistics
    assert statistics.mean.shape == (17,) and statistics.count == pytest.approx(agent.num_timesteps)
    # Every learned-from observation lies in the clip range; the policy acts on raw ones.
    assert np.abs(agent.rollout.observations).max() <= agent.observation_clip
    raw, _ = env.reset(seed=[0, 1])
    np.testing.assert_allclose(
        numpy(agent.policy_model()(raw.astype("float32"))), agent.act(raw), rtol=1e-5, atol=1e-5
    )


def load_benchmark():
    """benchmarks/rl_normalization.py, whose HalfCheetah settings the slow test shares."""
    directory = pathlib.Path(__file__).resolve().parents[2] / "benchmarks"
    if str(directory) not in sys.path:
        sys.path.insert(0, str(directory))  # the script imports its neighbour `_common`
    spec = importlib.util.spec_from_file_location(
        "benchmark_rl_normalization", directory / "rl_normalization.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
@pytest.mark.skipif(
    keras.backend.backend() != "torch",
    reason="held on PyTorch (about 12 s of CPU); every backend runs the plumbing test above",
)
def test_ppo_learns_halfcheetah_with_normalization(in_tmp_dir):
    pytest.importorskip("mujoco")
    benchmark = load_benchmark()
    # The benchmark's run of seed 0, step for step.
    keras.utils.set_random_seed(0)
    env = make_vector_env(benchmark.HALFCHEETAH_ENV, benchmark.HALFCHEETAH_NUM_ENVS["ppo"])
    agent = benchmark.halfcheetah_agent("ppo", env, 0, **benchmark.NORMALIZATION["on"])
    agent.learn(env, benchmark.HALFCHEETAH_TIMESTEPS, verbose=0)
    gain = np.mean(agent.episode_returns[-5:]) - agent.episode_returns[0]
    assert gain >= HALFCHEETAH_GAIN, agent.episode_returns


# ---------------------------------------------------------------------------- bad input


def checkpoint_of(agent, env, path):
    """`save_checkpoint` of an agent set up for `env` without training."""
    agent._setup_run(as_vector_env(env))
    return agent.save_checkpoint(path)


def test_nan_statistics_in_a_checkpoint_are_refused(tmp_path):
    env = gym.make("CartPole-v1")
    with np.load(checkpoint_of(make_policy_gradient(A2C, env), env, tmp_path / "a.npz")) as saved:
        arrays = {key: saved[key] for key in saved.files}
    fresh = make_policy_gradient(A2C, env)
    weights = [numpy(v).copy() for v in fresh.variables]
    for statistic in ("observations/var", "returns/mean", "observations/count"):
        key = f"normalization/{statistic}"
        broken = tmp_path / f"broken_{statistic.replace('/', '_')}.npz"
        np.savez(broken, **{**arrays, key: np.full_like(arrays[key], np.nan)})
        with pytest.raises(ValueError, match=rf"finite.*{key}=.*{broken.name}.*earlier checkpoint"):
            fresh.load_checkpoint(broken, env=env)
    # Refused before anything was assigned.
    for value, variable in zip(weights, fresh.variables):
        np.testing.assert_array_equal(numpy(variable), value)
    assert fresh._observation_statistics.count == PRIOR_COUNT


def test_checkpoint_without_the_agents_normalization_is_refused(tmp_path):
    env = gym.make("CartPole-v1")
    without = checkpoint_of(
        make_policy_gradient(A2C, env, normalize_rewards=False), env, tmp_path / "without.npz"
    )
    with pytest.raises(ValueError, match=r"returns normalisation statistics.*without them"):
        make_policy_gradient(A2C, env).load_checkpoint(without, env)
    with_returns = checkpoint_of(make_policy_gradient(A2C, env), env, tmp_path / "with.npz")
    agent = make_policy_gradient(A2C, env, normalize_rewards=False)
    with pytest.raises(ValueError, match=r"without returns normalisation.*holding them"):
        agent.load_checkpoint(with_returns, env)


def test_image_observations_are_refused():
    inputs = keras.Input((4, 84, 84), dtype="uint8")
    x = keras.layers.Flatten()(keras.ops.cast(inputs, "float32") / 255.0)
    network = keras.Model(inputs, keras.layers.Dense(3)(x))
    with pytest.raises(
        ValueError,
        match=r"normalize_observations=True.*shape \(4, 84, 84\) and dtype uint8.*"
        r"normalize_observations=False",
    ):
        DQN(network, normalize_observations=True)
    DQN(network, normalize_rewards=True)  # rewards of image environments may be scaled


@pytest.mark.parametrize(
    "name", ["observation_clip", "reward_clip", "normalization_epsilon"], ids=str
)
def test_bad_normalization_settings_are_refused(name):
    with pytest.raises(ValueError, match=rf"Expected `{name}`.*Received: {name}=0"):
        make_dqn(**{name: 0})


def test_normalization_is_in_the_agent_config():
    agent = make_dqn(observation_clip=5.0)
    config = json.loads(json.dumps(agent.get_config()))
    assert config["normalize_observations"] and config["normalize_rewards"]
    assert config["observation_clip"] == 5.0
    assert agent.observation_normalization.clip == 5.0
