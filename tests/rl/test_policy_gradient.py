"""Tests of dlkit.rl.REINFORCE, A2C, PPO and build_actor_critic: distributions, losses, rollouts."""

import json
import math

import gymnasium as gym
import keras
import numpy as np
import pytest
from gymnasium.spaces import Box, Discrete, MultiDiscrete

from dlkit.rl import (
    A2C,
    PPO,
    REINFORCE,
    A2CConfig,
    PPOConfig,
    REINFORCEConfig,
    build_actor_critic,
    make_vector_env,
)

BOX = Box(-2.0, 2.0, (2,))
THREE = Discrete(3)
AGENTS = [REINFORCE, A2C, PPO]


def numpy(x):
    return np.asarray(keras.ops.convert_to_numpy(x), np.float64)


def log_softmax(logits):
    logits = np.asarray(logits, np.float64)
    shifted = logits - logits.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def make_agent(cls=PPO, space=THREE, observation_shape=(4,), **kwargs):
    keras.utils.set_random_seed(0)
    actor, critic = build_actor_critic(observation_shape, space, hidden_units=(8,))
    return cls(actor, critic, space, seed=0, **kwargs)


def set_output_bias(network, bias):
    layer = network.get_layer("output")
    layer.bias.assign(np.asarray(bias, np.float32))


def observations(batch, shape=(4,), seed=1):
    return np.random.default_rng(seed).normal(size=(batch, *shape)).astype(np.float32)


class CountingEnv(gym.Env):
    """Reward 1 per step, observation (steps taken, 1); ends after `length` steps.

    The episode is truncated (a time limit) or, with `terminate=True`, terminated.
    """

    def __init__(self, length=3, terminate=False, num_actions=2):
        self.observation_space = Box(-np.inf, np.inf, (2,), np.float32)
        self.action_space = Discrete(num_actions)
        self.length = length
        self.terminate = terminate
        self.t = 0

    def _observation(self):
        return np.array([self.t, 1.0], np.float32)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        return self._observation(), {}

    def step(self, action):
        self.t += 1
        done = self.t >= self.length
        return self._observation(), 1.0, done and self.terminate, done and not self.terminate, {}


def linear_critic(slope, intercept):
    """A critic with V(s) = slope · s_0 + intercept for the observations of CountingEnv."""
    inputs = keras.Input((2,))
    layer = keras.layers.Dense(1, name="value")
    critic = keras.Model(inputs, layer(inputs))
    layer.kernel.assign(np.array([[slope], [0.0]], np.float32))
    layer.bias.assign(np.array([intercept], np.float32))
    return critic


def counting_agent(cls, slope=0.1, intercept=2.0, **kwargs):
    keras.utils.set_random_seed(0)
    actor, _ = build_actor_critic((2,), Discrete(2), hidden_units=(8,))
    return cls(actor, linear_critic(slope, intercept), Discrete(2), seed=0, **kwargs)


# ---------------------------------------------------------------------------- distributions


def test_discrete_log_prob_and_entropy():
    agent = make_agent(space=Discrete(4))
    logits = np.random.default_rng(0).normal(scale=2.0, size=(6, 4)).astype(np.float32)
    actions = np.array([0, 1, 2, 3, 3, 1])
    log_prob, entropy = agent._log_prob_and_entropy(keras.ops.convert_to_tensor(logits), actions)
    log_p = log_softmax(logits)
    np.testing.assert_allclose(numpy(log_prob), log_p[np.arange(6), actions], atol=1e-5)
    np.testing.assert_allclose(numpy(entropy), -(np.exp(log_p) * log_p).sum(-1), atol=1e-5)


def test_gaussian_log_prob_and_entropy():
    agent = make_agent(space=BOX)
    log_std = np.array([0.3, -0.5], np.float32)
    agent.log_std.assign(log_std)
    rng = np.random.default_rng(0)
    means = rng.normal(size=(5, 2)).astype(np.float32)
    actions = rng.normal(size=(5, 2)).astype(np.float32)
    log_prob, entropy = agent._log_prob_and_entropy(keras.ops.convert_to_tensor(means), actions)
    sigma = np.exp(log_std.astype(np.float64))
    density = np.exp(-0.5 * ((actions - means) / sigma) ** 2) / (sigma * math.sqrt(2 * math.pi))
    np.testing.assert_allclose(numpy(log_prob), np.log(density).sum(-1), atol=1e-5)
    expected_entropy = (log_std + 0.5 * math.log(2 * math.pi * math.e)).sum()
    np.testing.assert_allclose(numpy(entropy), np.full(5, expected_entropy), atol=1e-5)


# ---------------------------------------------------------------------------- sampling


def test_discrete_sample_log_probs_and_frequencies():
    agent = make_agent(space=Discrete(4))
    set_output_bias(agent.actor, [1.0, 0.0, -1.0, 0.5])
    batch = np.repeat(observations(1), 20_000, axis=0)
    actions, log_probs, values = agent._sample(batch, explore=True)
    assert actions.shape == (20_000,) and log_probs.shape == (20_000,)
    logits = numpy(agent.actor(batch[:1]))[0]
    log_p = log_softmax(logits)
    np.testing.assert_allclose(log_probs, log_p[actions], atol=1e-5)
    np.testing.assert_allclose(values, numpy(agent.critic(batch[:1]))[0, 0], atol=1e-5)
    frequencies = np.bincount(actions, minlength=4) / len(actions)
    np.testing.assert_allclose(frequencies, np.exp(log_p), atol=0.02)
    # Different observations: log-probabilities at the sampled actions, row by row.
    batch = observations(64)
    actions, log_probs, _ = agent._sample(batch, explore=True)
    log_p = log_softmax(numpy(agent.actor(batch)))
    np.testing.assert_allclose(log_probs, log_p[np.arange(64), actions], atol=1e-5)


def test_gaussian_sample_statistics():
    agent = make_agent(space=BOX)
    log_std = np.array([0.3, -0.5], np.float32)
    agent.log_std.assign(log_std)
    set_output_bias(agent.actor, [0.7, -1.2])
    batch = np.repeat(observations(1), 20_000, axis=0)
    actions, log_probs, _ = agent._sample(batch, explore=True)
    mean = numpy(agent.actor(batch[:1]))[0]
    sigma = np.exp(log_std.astype(np.float64))
    assert actions.shape == (20_000, 2)
    np.testing.assert_allclose(actions.mean(0), mean, atol=0.05)
    np.testing.assert_allclose(actions.std(0), sigma, rtol=0.03)
    z = (actions - mean) / sigma
    expected = (-0.5 * z**2 - np.log(sigma) - 0.5 * math.log(2 * math.pi)).sum(-1)
    np.testing.assert_allclose(log_probs, expected, atol=1e-4)


def test_act_deterministic_is_argmax_and_clipped_mean():
    agent = make_agent(space=Discrete(4))
    set_output_bias(agent.actor, [0.0, 0.3, -0.2, 0.1])
    batch = observations(32)
    expected = numpy(agent.actor(batch)).argmax(-1)
    np.testing.assert_array_equal(agent.act(batch), expected)
    single = agent.act(batch[0])
    assert isinstance(single, int) and single == expected[0]

    agent = make_agent(space=BOX)
    set_output_bias(agent.actor, [3.0, -0.5])  # the first mean lies outside the box
    means = numpy(agent.actor(batch))
    actions = agent.act(batch, explore=False)
    assert actions.shape == (32, 2)
    np.testing.assert_allclose(actions, np.clip(means, -2.0, 2.0), atol=1e-5)
    assert np.all(actions[:, 0] == 2.0)
    np.testing.assert_allclose(agent.act(batch[0]), actions[0], atol=1e-6)
    explored = agent.act(np.repeat(batch[:1], 500, axis=0), explore=True)
    assert np.all(explored <= 2.0) and np.all(explored >= -2.0) and explored[:, 1].std() > 0.5


# ---------------------------------------------------------------------------- losses


def loss_batch(agent, batch=6, seed=2):
    obs = observations(batch, seed=seed)
    logits, values = agent(obs)
    logits, values = numpy(logits), numpy(values)
    rng = np.random.default_rng(seed)
    actions = rng.integers(0, logits.shape[-1], size=batch)
    log_p = log_softmax(logits)
    return obs, log_p, values, actions, rng


def test_ppo_loss_matches_numpy():
    agent = make_agent(PPO, clip_epsilon=0.2, value_coefficient=0.7, entropy_coefficient=0.05)
    obs, log_p, values, actions, rng = loss_batch(agent, batch=8)
    log_prob = log_p[np.arange(8), actions]
    # Ratios inside and outside [0.8, 1.2]; outside, the clip binds in rows 0, 5 and 6 only.
    ratios = np.array([0.5, 0.5, 0.9, 1.0, 1.15, 1.5, 2.0, 2.0])
    advantages = np.array([-1.0, 1.0, -1.0, 2.0, -0.5, 1.0, 2.0, -2.0])
    returns = rng.normal(size=8)
    batch = {
        "actions": actions,
        "log_probs": (log_prob - np.log(ratios)).astype(np.float32),
        "advantages": advantages.astype(np.float32),
        "returns": returns.astype(np.float32),
        "weights": np.ones(8, np.float32),
    }
    loss = agent.compute_loss(x=obs, y=batch, y_pred=agent(obs))
    surrogate = np.minimum(ratios * advantages, np.clip(ratios, 0.8, 1.2) * advantages)
    entropy = -(np.exp(log_p) * log_p).sum(-1)
    expected = -surrogate.mean() + 0.7 * ((returns - values) ** 2).mean() - 0.05 * entropy.mean()
    np.testing.assert_allclose(float(numpy(loss)), expected, rtol=1e-4, atol=1e-5)
    clipped_part = surrogate.mean() - (ratios * advantages).mean()
    assert clipped_part == pytest.approx(-(0.3 + 0.3 + 1.6) / 8)  # the clip matters here


@pytest.mark.parametrize("cls", [A2C, REINFORCE])
def test_policy_gradient_loss_matches_numpy_and_ignores_padding(cls):
    agent = make_agent(cls, value_coefficient=0.3, entropy_coefficient=0.02)
    obs, log_p, values, actions, rng = loss_batch(agent, batch=8)
    advantages = rng.normal(size=8)
    returns = rng.normal(size=8)
    weights = np.array([1, 1, 1, 1, 1, 0, 0, 0], np.float64)  # the last three are padding
    batch = {
        "actions": actions,
        "advantages": advantages.astype(np.float32),
        "returns": returns.astype(np.float32),
        "weights": weights.astype(np.float32),
    }
    loss = float(numpy(agent.compute_loss(x=obs, y=batch, y_pred=agent(obs))))
    real = slice(0, 5)
    log_prob = log_p[np.arange(8), actions][real]
    entropy = -(np.exp(log_p) * log_p).sum(-1)[real]
    expected = (
        -(advantages[real] * log_prob).mean()
        + 0.3 * ((returns[real] - values[real]) ** 2).mean()
        - 0.02 * entropy.mean()
    )
    np.testing.assert_allclose(loss, expected, rtol=1e-4, atol=1e-5)
    # The same loss from the five real rows alone.
    trimmed = {key: value[real] for key, value in batch.items()}
    alone = agent.compute_loss(x=obs[real], y=trimmed, y_pred=agent(obs[real]))
    np.testing.assert_allclose(float(numpy(alone)), loss, rtol=1e-5, atol=1e-6)
    # Whatever the padding rows hold, they do not count.
    batch["advantages"][5:] = 100.0
    batch["returns"][5:] = -100.0
    changed = agent.compute_loss(x=obs, y=batch, y_pred=agent(obs))
    np.testing.assert_allclose(float(numpy(changed)), loss, rtol=1e-5, atol=1e-6)


# ---------------------------------------------------------------------------- PPO schedules


class RecordSchedules(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.records = []

    def on_epoch_end(self, epoch, logs=None):
        rate = float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))
        clip = float(keras.ops.convert_to_numpy(self.model._clip))
        self.records.append((logs["timesteps"], rate, clip))


@pytest.mark.parametrize("anneal", [True, False])
def test_ppo_anneal_schedules(anneal):
    env = make_vector_env("CartPole-v1", 2)
    agent = PPO.from_env(
        env,
        hidden_units=(8,),
        n_steps=16,
        batch_size=16,
        epochs=1,
        learning_rate=1e-3,
        clip_epsilon=0.2,
        anneal=anneal,
        seed=0,
    )
    recorder = RecordSchedules()
    agent.learn(env, 128, callbacks=[recorder], verbose=0)
    assert [record[0] for record in recorder.records] == [32, 64, 96, 128]
    for timesteps, rate, clip in recorder.records:
        # Set at the start of the rollout that ended at `timesteps`.
        remaining = 1.0 - (timesteps - 32) / 128 if anneal else 1.0
        np.testing.assert_allclose(rate, 1e-3 * remaining, rtol=1e-5)
        np.testing.assert_allclose(clip, 0.2 * remaining, rtol=1e-5)
    if anneal:
        assert recorder.records[-1][1] == pytest.approx(0.25e-3, rel=1e-5)
        assert recorder.records[-1][2] == pytest.approx(0.05, rel=1e-5)


# ---------------------------------------------------------------------------- truncations


def truncating_and_terminating_env(length=3):
    """Copy 0 is truncated after `length` steps, copy 1 terminated."""
    return gym.vector.SyncVectorEnv(
        [lambda: CountingEnv(length), lambda: CountingEnv(length, terminate=True)],
        autoreset_mode=gym.vector.AutoresetMode.SAME_STEP,
    )


def test_reinforce_returns_bootstrap_truncated_episodes(monkeypatch):
    gamma, slope, intercept = 0.9, 0.1, 2.0
    agent = counting_agent(
        REINFORCE, slope=slope, intercept=intercept, gamma=gamma, episodes_per_update=4
    )
    calls = []
    original = agent._episode_arrays

    def spy(steps, tail):
        result = original(steps, tail)
        calls.append((tail, result))
        return result

    monkeypatch.setattr(agent, "_episode_arrays", spy)
    agent.learn(truncating_and_terminating_env(), 12, verbose=0)
    assert len(calls) == 4 and agent.num_updates == 1
    # Truncated: V of the final observation (3, 1), not of the next episode's first (0, 1).
    truncation_tail = slope * 3 + intercept
    np.testing.assert_allclose(
        [tail for tail, _ in calls], [truncation_tail, 0.0] * 2, rtol=1e-6, atol=1e-6
    )
    for tail, (obs, _, returns, values) in calls:
        expected = np.array([1 + gamma + gamma**2, 1 + gamma, 1.0])
        expected += gamma ** np.arange(3, 0, -1) * tail  # G_2 = r + γ tail
        np.testing.assert_allclose(returns, expected, rtol=1e-5)
        np.testing.assert_allclose(obs[:, 0], [0, 1, 2])
        np.testing.assert_allclose(values, slope * np.arange(3) + intercept, atol=1e-5)
    # The returns with an explicit tail, computed from the stored steps alone.
    steps = [(np.zeros(2), 0, 1.0, 0.0)] * 2
    _, _, returns, _ = agent._episode_arrays(steps, 5.0)
    np.testing.assert_allclose(returns, [1 + gamma + gamma**2 * 5, 1 + gamma * 5], rtol=1e-6)


@pytest.mark.parametrize("cls", [A2C, PPO])
def test_rollouts_bootstrap_truncated_episodes(cls):
    gamma, slope, intercept = 0.9, 0.1, 2.0
    kwargs = {"batch_size": 8, "epochs": 1} if cls is PPO else {}
    agent = counting_agent(
        cls,
        slope=slope,
        intercept=intercept,
        gamma=gamma,
        gae_lambda=1.0,
        n_steps=4,
        learning_rate=1e-6,
        **kwargs,
    )
    agent.learn(truncating_and_terminating_env(), 8, verbose=0)
    assert agent.num_timesteps == 8 and agent.num_episodes == 2 and agent.num_updates == 1
    rollout = agent.rollout
    np.testing.assert_allclose(rollout.observations[:, :, 0], [[0, 0], [1, 1], [2, 2], [0, 0]])
    np.testing.assert_array_equal(rollout.truncated[2], [True, False])
    np.testing.assert_array_equal(rollout.terminated[2], [False, True])
    # Copy 0 bootstraps from V of its final observation (3, 1); copy 1 from nothing.
    tails = np.array([slope * 3 + intercept, 0.0])
    np.testing.assert_allclose(rollout.rewards[[0, 1, 3]], 1.0)
    np.testing.assert_allclose(rollout.rewards[2], 1 + gamma * tails, rtol=1e-6)
    # λ = 1: Monte-Carlo returns within the episode, the last step bootstraps from V((1, 1)).
    last = 1 + gamma * (slope + intercept)
    expected = [
        1 + gamma + gamma**2 * (1 + gamma * tails),
        1 + gamma * (1 + gamma * tails),
        1 + gamma * tails,
        [last, last],
    ]
    np.testing.assert_allclose(rollout.returns, expected, rtol=1e-5)


# ---------------------------------------------------------------------------- REINFORCE batches


def test_reinforce_pads_batches_to_a_power_of_two(monkeypatch):
    agent = counting_agent(REINFORCE, episodes_per_update=4)
    batches = []
    original = agent._train_batch

    def spy(x, y):
        batches.append((np.array(x), {key: np.array(value) for key, value in y.items()}))
        return original(x, y)

    monkeypatch.setattr(agent, "_train_batch", spy)
    for length, padded in [(3, 16), (4, 16), (5, 32)]:
        batches.clear()
        updates = agent.num_updates
        agent.learn(CountingEnv(length=length), 8 * length, verbose=0)
        assert len(batches) == 2 and agent.num_updates == updates + 2
        size = 4 * length  # four episodes of `length` steps
        for x, y in batches:
            assert x.shape == (padded, 2)
            assert set(y) == {"actions", "advantages", "returns", "weights"}
            for value in y.values():
                assert value.shape[0] == padded
            assert y["weights"].sum() == size
            np.testing.assert_array_equal(y["weights"], np.arange(padded) < size)
            np.testing.assert_array_equal(x[size:], 0.0)
            np.testing.assert_array_equal(y["advantages"][size:], 0.0)
            np.testing.assert_allclose(x[:size, 0], np.tile(np.arange(length), 4))


# ---------------------------------------------------------------------------- saving, export


def _round_trip(agent, path, batch):
    agent.save(path)
    loaded = keras.saving.load_model(path)
    assert type(loaded) is type(agent)
    # Compared as JSON: the loaded networks' configs hold lists where the originals hold tuples.
    assert json.dumps(loaded.get_config(), sort_keys=True) == json.dumps(
        agent.get_config(), sort_keys=True
    )
    np.testing.assert_allclose(loaded.value(batch), agent.value(batch), atol=1e-6)
    np.testing.assert_allclose(
        loaded.act(batch, explore=False), agent.act(batch, explore=False), atol=1e-6
    )
    return loaded


@pytest.mark.parametrize("cls", AGENTS)
def test_keras_round_trip_discrete(cls, tmp_path):
    env = gym.make("CartPole-v1")
    keras.utils.set_random_seed(0)
    agent = cls.from_env(env, hidden_units=(8,), gamma=0.97, entropy_coefficient=0.01, seed=3)
    batch = observations(16)
    loaded = _round_trip(agent, str(tmp_path / "agent.keras"), batch)
    assert loaded.gamma == 0.97 and loaded.seed == 3 and loaded.discrete


def test_keras_round_trip_gaussian_ppo(tmp_path):
    env = gym.make("Pendulum-v1")
    keras.utils.set_random_seed(0)
    agent = PPO.from_env(env, hidden_units=(8,), n_steps=64, log_std_init=-0.5, seed=0)
    agent.log_std.assign(np.array([0.4], np.float32))
    set_output_bias(agent.actor, [1.5])  # some means beyond the box [-2, 2]
    batch = observations(16, shape=(3,)) * 2.0
    loaded = _round_trip(agent, str(tmp_path / "agent.keras"), batch)
    np.testing.assert_allclose(numpy(loaded.log_std.value), [0.4], atol=1e-7)
    assert loaded.action_space == agent.action_space and not loaded.discrete


@pytest.mark.parametrize("space", [Discrete(3), BOX], ids=["discrete", "box"])
def test_policy_model_equals_deterministic_act(space):
    agent = make_agent(PPO, space=space)
    set_output_bias(agent.actor, [0.2, 3.0, -0.1][: agent.actor.output.shape[-1]])
    batch = observations(64) * 2.0
    policy = agent.policy_model()
    np.testing.assert_allclose(
        numpy(policy(batch)), agent.act(batch, explore=False), rtol=1e-5, atol=1e-5
    )


# ---------------------------------------------------------------------------- bad input


@pytest.mark.parametrize("value", [0, -0.1])
def test_rejects_bad_clip_epsilon(value):
    with pytest.raises(ValueError, match=r"clip_epsilon.*Received: clip_epsilon="):
        make_agent(PPO, clip_epsilon=value)


@pytest.mark.parametrize("cls", AGENTS)
def test_rejects_bad_gamma(cls):
    with pytest.raises(ValueError, match=r"gamma.*Received: gamma=-0\.1"):
        make_agent(cls, gamma=-0.1)


@pytest.mark.parametrize("cls", [A2C, PPO])
def test_rejects_bad_gae_lambda_and_n_steps(cls):
    with pytest.raises(ValueError, match=r"gae_lambda.*Received: gae_lambda=1\.5"):
        make_agent(cls, gae_lambda=1.5)
    with pytest.raises(ValueError, match=r"n_steps.*Received: n_steps=0"):
        make_agent(cls, n_steps=0)


@pytest.mark.parametrize("cls", AGENTS)
def test_rejects_networks_that_do_not_fit(cls):
    actor, critic = build_actor_critic((4,), Discrete(3), hidden_units=(8,))
    with pytest.raises(ValueError, match=r"actor.*Received: actor output shape"):
        cls(actor, critic, Discrete(2))
    with pytest.raises(ValueError, match=r"actor.*Received: actor output shape"):
        cls(actor, critic, Box(-1.0, 1.0, (2,)))
    inputs = keras.Input((4,))
    wide_critic = keras.Model(inputs, keras.layers.Dense(2)(inputs))
    with pytest.raises(ValueError, match=r"critic.*Received: critic output shape"):
        cls(actor, wide_critic, Discrete(3))


def test_rejects_unsupported_action_spaces():
    with pytest.raises(ValueError, match=r"action_space.*Received: action_space=MultiDiscrete"):
        build_actor_critic((4,), MultiDiscrete([2, 3]))

    class MultiEnv(CountingEnv):
        def __init__(self):
            super().__init__()
            self.action_space = MultiDiscrete([2, 3])

    with pytest.raises(ValueError, match=r"action_space.*Received: action_space=MultiDiscrete"):
        PPO.from_env(MultiEnv())


@pytest.mark.parametrize("cls", AGENTS)
def test_learn_rejects_other_action_space(cls):
    agent = counting_agent(cls)
    with pytest.raises(ValueError, match=r"action space.*Received: action_space=Discrete\(3\)"):
        agent.learn(CountingEnv(num_actions=3), 8, verbose=0)


# ---------------------------------------------------------------------------- learning


@pytest.mark.slow
def test_ppo_gaussian_pendulum_runs():
    keras.utils.set_random_seed(0)
    env = make_vector_env("Pendulum-v1", 4)
    agent = PPO.from_env(env, hidden_units=(32,), n_steps=100, batch_size=100, epochs=2, seed=0)
    losses = []

    class Losses(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            losses.append(logs["loss"])

    agent.learn(env, 2000, callbacks=[Losses()], verbose=0)
    assert agent.num_timesteps == 2000 and agent.num_updates == 5 * 4 * 2
    assert len(losses) == 5 and np.all(np.isfinite(losses))
    assert agent.num_episodes == 8  # Pendulum truncates at 200 steps
    assert np.all(np.isfinite(numpy(agent.log_std.value)))
    actions = agent.act(observations(10, shape=(3,)), explore=True)
    assert actions.shape == (10, 1) and np.all(np.abs(actions) <= 2.0)


@pytest.mark.parametrize(
    "cls, config_class, learning_rate, normalize_advantages",
    [(REINFORCE, REINFORCEConfig, 1e-3, True), (A2C, A2CConfig, 7e-4, False),
     (PPO, PPOConfig, 3e-4, True)],
)  # fmt: skip
def test_each_agent_takes_its_config_or_keyword_arguments(
    cls, config_class, learning_rate, normalize_advantages
):
    config = config_class(gamma=0.9, entropy_coefficient=0.01, seed=0)
    assert (config.learning_rate, config.normalize_advantages) == (
        learning_rate,
        normalize_advantages,
    )
    agent = make_agent(cls, config=config)
    assert agent.config == config and agent.gamma == 0.9 and agent.entropy_coefficient == 0.01
    assert make_agent(cls, gamma=0.9, entropy_coefficient=0.01).config == config
    # A keyword argument overrides the config's field.
    assert make_agent(cls, config=config, gamma=0.5).config.gamma == 0.5
    restored = cls.from_config(agent.get_config())
    assert restored.config == config
    with pytest.raises(TypeError, match=rf"`config` to be a {config_class.__name__}"):
        make_agent(cls, config=PPOConfig() if cls is not PPO else A2CConfig())
