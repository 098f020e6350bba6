"""Tests of dlkit.rl.A3C: bad input, serialisation, the asynchrony itself, failures, resuming.

Its learning gate (CartPole-v1 solved on every backend) is the recipe's, in
tests/recipes/test_deep_rl_quality.py.
"""

import threading
import time

import gymnasium as gym
import keras
import numpy as np
import pytest

from dlkit.rl import A3C, A3CConfig, make_vector_env


def make_agent(num_workers=2, **kwargs):
    keras.utils.set_random_seed(0)
    env = make_vector_env("CartPole-v1", num_envs=num_workers)
    return A3C.from_env(env, hidden_units=(16,), num_workers=num_workers, seed=0, **kwargs), env


def worker_threads():
    return [thread for thread in threading.enumerate() if thread.name.startswith("a3c-worker")]


class SlowStep(gym.Wrapper):
    """Sleeps `seconds` in every step."""

    def __init__(self, env, seconds):
        super().__init__(env)
        self.seconds = seconds

    def step(self, action):
        time.sleep(self.seconds)
        return self.env.step(action)


class FailAfter(gym.Wrapper):
    """Raises from its `steps + 1`-th step on."""

    def __init__(self, env, steps):
        super().__init__(env)
        self.remaining = steps

    def step(self, action):
        self.remaining -= 1
        if self.remaining < 0:
            raise OSError("simulator lost")
        return self.env.step(action)


@pytest.mark.parametrize(
    "field, value",
    [("num_workers", 0), ("num_workers", -2), ("log_interval", 0), ("normalize_rewards", True)],
)
def test_rejects_bad_config_values(field, value):
    with pytest.raises(ValueError, match=f"{field}={value!r}"):
        A3CConfig(**{field: value})


def test_learn_rejects_an_environment_of_another_number_of_copies():
    agent, _ = make_agent(num_workers=2)
    with pytest.raises(ValueError, match=r"num_workers \(2\).*num_envs=3"):
        agent.learn(make_vector_env("CartPole-v1", num_envs=3), 100, verbose=0)
    # Copies the workers cannot reach (an AsyncVectorEnv keeps them in its processes).
    hidden = make_vector_env("CartPole-v1", num_envs=2)
    del hidden.envs
    with pytest.raises(ValueError, match="SyncVectorEnv"):
        agent.learn(hidden, 100, verbose=0)
    assert not worker_threads()


def test_keras_round_trip(tmp_path):
    agent, env = make_agent(num_workers=3, gamma=0.97, n_steps=4)
    agent.learn(env, 120, verbose=0)
    agent.save(tmp_path / "agent.keras")
    loaded = keras.saving.load_model(tmp_path / "agent.keras")
    assert type(loaded) is A3C and loaded.config == agent.config
    observations = np.random.default_rng(0).normal(size=(16, 4)).astype("float32")
    np.testing.assert_array_equal(loaded.act(observations), agent.act(observations))
    policy = keras.ops.convert_to_numpy(agent.policy_model()(observations))
    np.testing.assert_array_equal(policy, agent.act(observations))


def test_learn_keeps_the_agent_contract_and_applies_every_update_once():
    agent, env = make_agent(n_steps=5, log_interval=100)
    logs = []
    callback = keras.callbacks.LambdaCallback(on_epoch_end=lambda epoch, log: logs.append(log))
    agent.learn(
        env,
        600,
        callbacks=[callback],
        eval_env=make_vector_env("CartPole-v1", num_envs=2),
        eval_interval=300,
        eval_episodes=2,
        verbose=0,
    )
    assert agent.num_timesteps == 600 and agent.num_updates == 600 // 5
    assert [log["timesteps"] for log in logs] == list(range(100, 601, 100))
    assert {"timesteps", "episodes", "return", "steps/s", "loss"} <= set(logs[0])
    assert [log["timesteps"] for log in logs if "eval_return" in log] == [300, 600]
    assert [t for t, _ in agent.evaluations] == [300, 600]
    versions = np.array(agent.update_versions)
    # Each update is applied at its own version, 0, 1, 2, ..., read at that version or earlier.
    np.testing.assert_array_equal(np.sort(versions[:, 2]), np.arange(len(versions)))
    assert np.all(versions[:, 1] <= versions[:, 2])
    assert set(versions[:, 0]) == {0, 1}
    assert not worker_threads()


def test_gradients_read_at_one_version_are_applied_at_later_ones():
    agent, env = make_agent(n_steps=5)
    agent.learn(env, 2_000, verbose=0)
    read, applied = np.array(agent.update_versions)[:, 1:].T
    # Another worker's update landed between the read and the apply: a stale gradient.
    stale = applied > read
    assert stale.sum() >= 0.1 * len(stale), stale.mean()


def test_a_slow_worker_does_not_block_the_other():
    agent, env = make_agent(n_steps=5, log_interval=10_000)
    env.envs[0] = SlowStep(env.envs[0], seconds=0.01)
    agent.learn(env, 1_500, verbose=0)
    updates = np.bincount(np.array(agent.update_versions)[:, 0], minlength=2)
    # Worker 0 spends at least 50 ms per rollout asleep; worker 1 updates on meanwhile.
    assert updates[1] >= 5 * updates[0] and updates[0] >= 1, updates


def test_a_failing_worker_stops_the_run_and_leaves_the_last_checkpoint(tmp_path, monkeypatch):
    agent, env = make_agent(n_steps=5)
    env.envs[1] = FailAfter(env.envs[1], steps=170)
    saved = []
    save = A3C.save_checkpoint

    def recording_save(self, path, keep_previous=False):
        result = save(self, path, keep_previous)
        saved.append((self.num_timesteps, (tmp_path / "checkpoint.npz").read_bytes()))
        return result

    monkeypatch.setattr(A3C, "save_checkpoint", recording_save)
    with pytest.raises(RuntimeError, match=r"A3C worker 1 .* at timestep \d+") as raised:
        agent.learn(env, 2_000, checkpoint_dir=tmp_path, checkpoint_interval=100, verbose=0)
    assert isinstance(raised.value.__cause__, RuntimeError)
    assert isinstance(raised.value.__cause__.__cause__, OSError)
    assert not worker_threads()
    # Checkpoints every 100 steps up to the failure, none at the end of the run.
    assert saved and saved[-1][0] % 100 == 0 and saved[-1][0] < 2_000
    assert (tmp_path / "checkpoint.npz").read_bytes() == saved[-1][1]

    # The run resumes from that checkpoint with healthy copies and finishes.
    monkeypatch.setattr(A3C, "save_checkpoint", save)
    resumed, _ = make_agent(n_steps=5)
    healthy = make_vector_env("CartPole-v1", num_envs=2)
    resumed.learn(healthy, 2_000, checkpoint_dir=tmp_path, checkpoint_interval=100, verbose=0)
    assert resumed.num_timesteps == 2_000
    assert min(read for _, read, _ in resumed.update_versions) == saved[-1][0] // 5


def test_a_resumed_run_restores_parameters_optimizer_counters_and_version(tmp_path):
    first, env = make_agent(n_steps=5)
    first.learn(env, 300, checkpoint_dir=tmp_path, verbose=0)
    second, _ = make_agent(n_steps=5)
    second.load_checkpoint(tmp_path / "checkpoint.npz", env)
    for mine, theirs in zip(second._state_variables(), first._state_variables()):
        np.testing.assert_array_equal(
            keras.ops.convert_to_numpy(mine.value), keras.ops.convert_to_numpy(theirs.value)
        )
    assert (second.num_timesteps, second.num_updates, second._version) == (300, 60, 60)
    assert second.episode_returns == first.episode_returns

    # The finished run goes on as a new run extending it; its workers start at version 60.
    second.learn(env, 200, checkpoint_dir=tmp_path, verbose=0)
    assert (second.num_timesteps, second.num_updates) == (500, 100)
    assert sorted(applied for _, _, applied in second.update_versions) == list(range(60, 100))
