"""Verified checkpoints: integrity records, the previous checkpoint kept, fallback, refusals."""

import errno
import json
import warnings

import gymnasium as gym
import numpy as np
import pytest

from dlkit.rl import ReplayBuffer
from dlkit.rl.saving import (
    checkpoint_problem,
    generator_from_json,
    latest_verified,
    read_checkpoint_arrays,
    write_verified,
)
from tests.rl.test_agent_loop import learn_until_crash, make_dqn, numpy_values


def _crashed_run(tmp_path):
    """A DQN run stopped at 200 steps with checkpoints every 100: the newest at 200, the
    previous at 100. Returns the agent as the crash left it."""
    agent = make_dqn()
    learn_until_crash(agent, gym.make("CartPole-v1"), 400, 200, tmp_path, 100)
    return agent


def _timesteps(path):
    with np.load(path) as saved:
        return json.loads(str(saved["counters"]))["num_timesteps"]


def _resumed(tmp_path):
    """A fresh DQN that loads what `learn` would resume from; its `num_timesteps`."""
    agent = make_dqn()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        usable = latest_verified(tmp_path / "checkpoint.npz")
    agent.load_checkpoint(usable)
    return agent.num_timesteps, [str(w.message) for w in caught]


def test_learn_keeps_the_last_two_checkpoints_with_their_records(tmp_path):
    _crashed_run(tmp_path)
    names = sorted(path.name for path in tmp_path.iterdir())
    assert names == [
        "checkpoint.json",
        "checkpoint.npz",
        "checkpoint.previous.json",
        "checkpoint.previous.npz",
    ]
    assert _timesteps(tmp_path / "checkpoint.npz") == 200
    assert _timesteps(tmp_path / "checkpoint.previous.npz") == 100
    record = json.loads((tmp_path / "checkpoint.json").read_text())
    assert record["format_version"] == 2
    assert record["bytes"] == (tmp_path / "checkpoint.npz").stat().st_size
    assert checkpoint_problem(tmp_path / "checkpoint.npz") is None


@pytest.mark.parametrize("fault", ["truncate", "garble", "remove_record"])
def test_a_damaged_newest_checkpoint_resumes_from_the_previous_one(tmp_path, fault):
    _crashed_run(tmp_path)
    newest = tmp_path / "checkpoint.npz"
    data = newest.read_bytes()
    if fault == "truncate":
        newest.write_bytes(data[: len(data) // 2])
    elif fault == "garble":
        middle = len(data) // 2
        newest.write_bytes(data[:middle] + bytes(b ^ 0xFF for b in data[middle : middle + 64]))
    else:
        (tmp_path / "checkpoint.json").unlink()
    timesteps, messages = _resumed(tmp_path)
    assert timesteps == 100
    assert len(messages) == 1 and str(newest) in messages[0] and "previous" in messages[0]

    # learn itself resumes from there, warns once, and goes on to the run's end.
    agent = make_dqn()
    with pytest.warns(RuntimeWarning, match="checkpoint.npz' is unusable"):
        agent.learn(gym.make("CartPole-v1"), 400, checkpoint_dir=tmp_path, verbose=0)
    assert agent.num_timesteps == 400
    assert checkpoint_problem(newest) is None  # rewritten whole


def test_no_usable_checkpoint_names_the_directory_and_how_to_start_over(tmp_path):
    _crashed_run(tmp_path)
    for name in ("checkpoint.npz", "checkpoint.previous.npz"):
        path = tmp_path / name
        path.write_bytes(path.read_bytes()[:100])
    agent = make_dqn()
    before = numpy_values(agent.variables)
    with pytest.raises(ValueError, match=r"No usable checkpoint in the directory .*To start over"):
        agent.learn(gym.make("CartPole-v1"), 400, checkpoint_dir=tmp_path, verbose=0)
    assert agent.num_timesteps == 0
    for value, expected in zip(numpy_values(agent.variables), before):
        np.testing.assert_array_equal(value, expected)


def test_loading_a_damaged_file_directly_says_what_is_wrong(tmp_path):
    agent = _crashed_run(tmp_path)
    newest = tmp_path / "checkpoint.npz"
    newest.write_bytes(newest.read_bytes()[:-10])
    with pytest.raises(ValueError, match=r"matches its integrity record.*truncated"):
        agent.load_checkpoint(newest)
    (tmp_path / "checkpoint.json").unlink()  # no record: the zip itself is refused, clearly
    with pytest.raises(ValueError, match=r"intact \.npz checkpoint.*BadZipFile"):
        agent.load_checkpoint(newest)


def test_nan_weights_and_object_arrays_are_refused_before_any_assignment(tmp_path):
    agent = _crashed_run(tmp_path)
    arrays = dict(read_checkpoint_arrays(tmp_path / "checkpoint.npz"))
    fresh = make_dqn()
    before = numpy_values(fresh.variables)

    poisoned = dict(arrays)
    poisoned["variable/0"] = np.full_like(arrays["variable/0"], np.nan)
    np.savez(tmp_path / "nan.npz", **poisoned)
    with pytest.raises(ValueError, match=r"finite values for variable .* NaN or infinity"):
        fresh.load_checkpoint(tmp_path / "nan.npz")

    typed = dict(arrays)
    typed["variable/0"] = arrays["variable/0"].astype("U8")
    np.savez(tmp_path / "text.npz", **typed)
    with pytest.raises(ValueError, match=r"to be saved as float32"):
        fresh.load_checkpoint(tmp_path / "text.npz")

    crafted = dict(arrays)
    crafted["extra/payload"] = np.array([{"run": "code"}], dtype=object)
    np.savez(tmp_path / "pickle.npz", **crafted)
    with pytest.raises(ValueError, match=r"Object arrays cannot be loaded"):
        fresh.load_checkpoint(tmp_path / "pickle.npz")

    # A buffer member that does not fit: refused before the weights and counters change.
    broken = dict(arrays)
    broken["extra/buffer/actions"] = broken["extra/buffer/actions"][:-1]
    np.savez(tmp_path / "buffer.npz", **broken)
    with pytest.raises(ValueError, match=r"buffer's 'actions'"):
        fresh.load_checkpoint(tmp_path / "buffer.npz")
    assert fresh.num_timesteps == 0
    for value, expected in zip(numpy_values(fresh.variables), before):
        np.testing.assert_array_equal(value, expected)
    fresh.load_checkpoint(tmp_path / "checkpoint.npz")  # the intact one still loads
    assert fresh.num_timesteps == agent.num_timesteps == 200


def test_a_full_disk_names_the_directory_and_keeps_the_checkpoint(tmp_path, monkeypatch):
    agent = _crashed_run(tmp_path)
    before = (tmp_path / "checkpoint.npz").read_bytes()

    def full_disk(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(np, "savez", full_disk)
    with pytest.raises(OSError, match=r"in the directory .*No space left.*intact") as error:
        agent.save_checkpoint(tmp_path / "checkpoint.npz", keep_previous=True)
    assert error.value.errno == errno.ENOSPC
    assert (tmp_path / "checkpoint.npz").read_bytes() == before
    assert checkpoint_problem(tmp_path / "checkpoint.npz") is None
    assert not list(tmp_path.glob("*.partial.*"))


def test_write_verified_records_a_format_version_that_is_checked(tmp_path):
    path = tmp_path / "state.npz"
    write_verified(path, {"a": np.arange(3)})
    assert checkpoint_problem(path) is None
    record = json.loads((tmp_path / "state.json").read_text())
    (tmp_path / "state.json").write_text(json.dumps({**record, "format_version": 99}))
    assert "format version 99" in checkpoint_problem(path)


def test_generator_states_name_only_numpy_bit_generators():
    with pytest.raises(ValueError, match=r"bit_generator='os\.system'"):
        generator_from_json(json.dumps({"bit_generator": "os.system", "state": {}}))
    with pytest.raises(ValueError, match="saved NumPy generator state"):
        generator_from_json("not json")


def test_a_buffer_refuses_counters_beyond_its_capacity():
    buffer = ReplayBuffer(capacity=8, observation_shape=(2,), seed=0)
    state = buffer.state()
    with pytest.raises(ValueError, match=r"capacity=8\)\. Received: size=9"):
        buffer.restore({**state, "size": np.int64(9)})
    with pytest.raises(ValueError, match=r"position=8"):
        buffer.restore({**state, "position": np.int64(8)})


def test_buffers_and_tabular_agents_save_atomically_with_a_record_and_check_it(tmp_path):
    from dlkit.rl import QLearning

    buffer = ReplayBuffer(capacity=8, observation_shape=(2,), seed=0)
    for step in range(5):
        buffer.add(np.full(2, step, "float32"), 1, 0.5, np.zeros(2, "float32"), False, False)
    path = buffer.save(tmp_path / "buffer")
    assert checkpoint_problem(path) is None
    assert ReplayBuffer.load(path).size == 5
    with open(path, "r+b") as file:
        file.truncate(100)
    with pytest.raises(ValueError, match=r"integrity record.*truncated"):
        ReplayBuffer.load(path)

    agent = QLearning(num_states=4, num_actions=2, seed=0)
    path = agent.save(tmp_path / "q_table")
    assert checkpoint_problem(path) is None
    np.testing.assert_array_equal(QLearning.load(path).q_table, agent.q_table)
    arrays = dict(read_checkpoint_arrays(path))
    np.savez(tmp_path / "nan.npz", **{**arrays, "q_table": np.full_like(agent.q_table, np.nan)})
    with pytest.raises(ValueError, match=r"finite Q-table of shape \(4, 2\)"):
        QLearning.load(tmp_path / "nan.npz")


def test_call_time_inputs_that_would_be_stored_or_acted_on_wrongly_are_refused():
    buffer = ReplayBuffer(capacity=8, observation_shape=(2,), seed=0)
    observation = np.zeros(2, "float32")
    with pytest.raises(ValueError, match=r"integer actions .* Received: action=7\.9"):
        buffer.add(observation, 7.9, 1.0, observation, False, False)
    with pytest.raises(ValueError, match=r"finite rewards\. Received: reward=\[nan\]"):
        buffer.add(observation, 1, np.nan, observation, False, False)
    buffer.add(observation, 7.0, 1.0, observation, False, False)  # an integral float is fine
    assert buffer.size == 1 and buffer.actions[0] == 7

    agent = make_dqn()
    with pytest.raises(ValueError, match=r"finite observations.*NaN or infinity at \[\[1\]\]"):
        agent.act(np.array([0.0, np.inf, 0.0, 0.0], "float32"))


def test_a_checkpoint_of_other_settings_loads_with_a_warning_listing_them(tmp_path):
    _crashed_run(tmp_path)
    other = make_dqn(gamma=0.9, target_update_interval=30)
    with pytest.warns(
        RuntimeWarning,
        match=r"gamma: saved 0\.99, this agent 0\.9.*"
        r"target_update_interval: saved 20, this agent 30",
    ):
        other.load_checkpoint(tmp_path / "checkpoint.npz")
    assert other.num_timesteps == 200
    same = make_dqn()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        same.load_checkpoint(tmp_path / "checkpoint.npz")


def test_a_non_finite_loss_stops_learn_before_the_next_checkpoint(tmp_path, monkeypatch):
    agent = make_dqn()
    train = type(agent)._collect_and_train

    def poisoned(self, env):
        logs = train(self, env)
        if self.num_timesteps >= 250:
            logs = {**logs, "loss": float("nan")}
        return logs

    monkeypatch.setattr(type(agent), "_collect_and_train", poisoned)
    env = gym.make("CartPole-v1")
    # Iterations end on checkpoint boundaries: the one to 300 is poisoned, its checkpoint unsaved.
    with pytest.raises(FloatingPointError, match=r"DQN's loss became NaN .* timestep 300 "):
        agent.learn(env, 400, checkpoint_dir=tmp_path, checkpoint_interval=100, verbose=0)
    assert _timesteps(tmp_path / "checkpoint.npz") == 200  # the last good one
    assert checkpoint_problem(tmp_path / "checkpoint.npz") is None
