"""TF-Agents saved policies: called as TF-Agents' loader calls them, without tf-agents.

`SavedModelPyTFEagerPolicy` loads a policy with `tf.saved_model.load`, reads its specs from
`policy_specs.pbtxt`, and calls `get_initial_state(batch_size)`, `action(time_step,
policy_state)`, `get_train_step()` and `get_metadata()`; its `TimeStep` is a namedtuple of its
own class, so the tests call with one of theirs too. benchmarks/tf_agents_interop.py runs the
real loader where tf-agents is installed.
"""

import collections
import importlib
import importlib.util
import json
import pathlib
import sys

import gymnasium as gym
import keras
import numpy as np
import pytest
from gymnasium.spaces import Box, Discrete

from dlkit.export import (
    POLICY_SPECS_FILE,
    TF_AGENTS_SIGNATURES,
    _tf_agents_specs,
    export_tf_agents_policy,
)
from dlkit.rl import (
    A2C,
    DQN,
    PPO,
    REINFORCE,
    GreedyAction,
    build_actor_critic,
    build_q_network,
)

# TF-Agents' classes, matched by type name and fields (not imported from dlkit.export).
TimeStep = collections.namedtuple("TimeStep", ("step_type", "reward", "discount", "observation"))


def dqn(**kwargs):
    keras.utils.set_random_seed(0)
    network = build_q_network((4,), 2, hidden_units=(16,), **kwargs)
    return DQN(network, batch_size=8, learning_starts=16, seed=0)


def policy_gradient(cls, space, **kwargs):
    keras.utils.set_random_seed(0)
    actor, critic = build_actor_critic((3,), space, hidden_units=(8,))
    return cls(actor, critic, space, seed=0, **kwargs)


def trained(kind):
    """A DQN on CartPole (discrete) or a PPO on Pendulum (Box), after a few updates."""
    if kind == "discrete":
        agent, env = dqn(), gym.make("CartPole-v1")
    else:
        agent = policy_gradient(PPO, Box(-2.0, 2.0, (1,)), n_steps=32, batch_size=16)
        env = gym.make("Pendulum-v1")
        # Means on either side of the bound 2: the export must clip as `act` does.
        agent.actor.get_layer("output").bias.assign(np.array([2.0], np.float32))
    agent.learn(env, total_timesteps=48, verbose=0)
    return agent


def decoded_specs(path):
    import tensorflow as tf
    from google.protobuf import text_format
    from tensorflow.core.protobuf import struct_pb2

    proto = text_format.Parse((path / POLICY_SPECS_FILE).read_text(), struct_pb2.StructuredValue())
    return tf.__internal__.saved_model.decode_proto(proto)  # TF-Agents' decoder of this file


# Off TensorFlow each export is a TensorFlow subprocess (about 8 s): one kind per backend there,
# both on TensorFlow. What differs by kind (the action head) runs in TensorFlow either way.
KINDS = {"tensorflow": ["discrete", "box"], "jax": ["discrete"], "torch": ["box"]}


@pytest.mark.slow
@pytest.mark.parametrize("kind", KINDS[keras.backend.backend()])
def test_export_runs_as_tf_agents_loader_calls_it(kind, tmp_path):
    tf = pytest.importorskip("tensorflow")
    agent = trained(kind)
    assert agent.num_updates > 0
    path = export_tf_agents_policy(agent, tmp_path / "policy", metadata={"seed": 7})
    policy = tf.saved_model.load(str(path))
    batch = 7  # a batch size never seen at export
    shape = agent._observation_shape
    observations = np.random.default_rng(1).normal(0.0, 3.0, (batch, *shape)).astype("float32")
    expected = agent.act(observations, explore=False)
    time_step = TimeStep(
        step_type=tf.constant([0] + [1] * (batch - 1), tf.int32),
        reward=tf.zeros(batch, tf.float32),
        discount=tf.ones(batch, tf.float32),
        observation=tf.constant(observations),
    )

    policy_state = policy.get_initial_state(batch_size=batch)
    assert policy_state == ()
    step = policy.action(time_step, policy_state)
    assert step._fields == ("action", "state", "info") and step.state == () and step.info == ()
    actions = step.action.numpy()
    flat = policy.signatures["action"](
        **{f"0/{name}": t for name, t in time_step._asdict().items()}
    )
    if kind == "discrete":
        assert actions.dtype == np.int32 and actions.shape == (batch,)
        np.testing.assert_array_equal(actions, expected)
    else:
        assert actions.shape == (batch, 1) and (actions == 2.0).any() and (actions < 2.0).any()
        np.testing.assert_allclose(actions, expected, atol=1e-6)
    np.testing.assert_array_equal(policy.action(time_step).action.numpy(), actions)
    np.testing.assert_array_equal(flat["action"].numpy(), actions)

    assert sorted(policy.signatures) == sorted(TF_AGENTS_SIGNATURES)
    assert policy.signatures["get_initial_state"](batch_size=tf.constant(batch)) == {}
    assert int(policy.get_train_step()) == agent.num_updates
    assert int(policy.signatures["get_train_step"]()["int64"]) == agent.num_updates
    metadata = {name: int(value) for name, value in policy.get_metadata().items()}
    assert metadata == {
        "num_timesteps": agent.num_timesteps,
        "num_episodes": agent.num_episodes,
        "seed": 7,
    }
    assert len(policy.model_variables) == len(agent.policy_model().weights)

    specs = decoded_specs(path)
    assert specs["policy_state_spec"] == ()
    data = specs["collect_data_spec"]
    assert type(data).__name__ == "Trajectory" and data.policy_info == ()
    assert data.observation.shape == shape and data.step_type.dtype == tf.int32
    assert (float(data.discount.minimum), float(data.discount.maximum)) == (0.0, 1.0)
    action = data.action
    if kind == "discrete":
        assert (action.shape, action.dtype) == ((), tf.int32)
        assert (int(action.minimum), int(action.maximum)) == (0, 1)
    else:
        assert (action.shape, action.dtype) == ((1,), tf.float32)
        np.testing.assert_array_equal([action.minimum, action.maximum], [[-2.0], [2.0]])


@pytest.mark.parametrize(
    "make, dtype, shape, bounds",
    [
        (lambda: dqn(), "int32", (), (0, 1)),
        (lambda: dqn(num_atoms=11), "int32", (), (0, 1)),  # C51: argmax over (B, A, N)
        (lambda: policy_gradient(REINFORCE, Discrete(3)), "int32", (), (0, 2)),
        (lambda: policy_gradient(A2C, Discrete(3)), "int32", (), (0, 2)),
        (lambda: policy_gradient(PPO, Box(-1.0, 2.0, (2,))), "float32", (2,), ([-1, -1], [2, 2])),
    ],
    ids=["dqn", "c51", "reinforce", "a2c", "ppo-box"],
)
def test_action_spec_of_every_agent(make, dtype, shape, bounds):
    agent = make()
    time_step_spec, action = _tf_agents_specs(agent.policy_model())
    assert (action.dtype, action.shape) == (dtype, shape)
    np.testing.assert_array_equal([action.minimum, action.maximum], bounds)
    assert time_step_spec.observation.shape == agent._observation_shape
    assert [spec.dtype for spec in time_step_spec[:3]] == ["int32", "float32", "float32"]


@pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="in-process export is fast")
def test_policy_model_exports_without_counters(tmp_path):
    import tensorflow as tf

    agent = dqn()
    path = export_tf_agents_policy(agent.policy_model(), tmp_path / "policy", train_step=5)
    policy = tf.saved_model.load(str(path))
    assert int(policy.get_train_step()) == 5 and policy.get_metadata() == {}
    path = export_tf_agents_policy(agent.policy_model(), tmp_path / "default")
    loaded = tf.saved_model.load(str(path))
    assert int(loaded.get_train_step()) == -1  # TF-Agents' default


@pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="in-process export is fast")
def test_uint8_frames_are_the_observation_spec(tmp_path):
    import tensorflow as tf

    frames = keras.Input((2, 6, 6), dtype="uint8", name="observations")  # raw frame stacks
    x = keras.layers.Flatten()(keras.layers.Rescaling(1 / 255)(frames))
    policy = keras.Model(frames, GreedyAction("argmax")(keras.layers.Dense(3)(x)))
    path = export_tf_agents_policy(policy, tmp_path / "policy")
    observation = decoded_specs(path)["collect_data_spec"].observation
    assert (observation.shape, observation.dtype) == ((2, 6, 6), tf.uint8)
    batch = np.random.default_rng(0).integers(0, 256, (4, 2, 6, 6), dtype=np.uint8)
    time_step = TimeStep(tf.zeros(4, tf.int32), tf.zeros(4), tf.ones(4), tf.constant(batch))
    loaded = tf.saved_model.load(str(path))  # a reference keeps its variables alive
    actions = loaded.action(time_step).action.numpy()
    np.testing.assert_array_equal(actions, keras.ops.convert_to_numpy(policy(batch)))


# ---------------------------------------------------------------------------- bad input


def test_a_model_that_is_not_a_policy_is_rejected():
    network = build_q_network((4,), 2, hidden_units=(8,))  # Q-values, not actions
    with pytest.raises(ValueError, match=r"Expected `policy` to be a dlkit agent or its"):
        export_tf_agents_policy(network, "unused")
    with pytest.raises(ValueError, match=r"Received: policy='policy.keras'"):
        export_tf_agents_policy("policy.keras", "unused")


def test_an_existing_path_is_rejected(tmp_path):
    with pytest.raises(ValueError, match=r"Expected `path` to be a new directory.*which exists"):
        export_tf_agents_policy(dqn(), tmp_path)


@pytest.mark.parametrize(
    "options, message",
    [
        ({"train_step": 1.5}, r"Expected `train_step` to be an integer. Received: train_step=1.5"),
        ({"metadata": {"seed": "0"}}, r"Expected `metadata` to map names to ints or floats"),
        ({"metadata": [1]}, r"Expected `metadata` to be a dict of numbers by name"),
    ],
)
def test_bad_counters_are_rejected(options, message, tmp_path):
    with pytest.raises((ValueError, TypeError), match=message):
        export_tf_agents_policy(dqn(), tmp_path / "policy", **options)


# ---------------------------------------------------------------------------- the benchmark

BENCHMARKS = pathlib.Path(__file__).resolve().parents[1] / "benchmarks"


def interop_benchmark():
    sys.path.insert(0, str(BENCHMARKS))  # the script imports its neighbour `_common`
    try:
        return importlib.import_module("tf_agents_interop")
    finally:
        sys.path.remove(str(BENCHMARKS))


def test_interop_benchmark_says_where_tf_agents_is_missing(monkeypatch, capsys):
    if importlib.util.find_spec("tf_agents") is not None:
        pytest.skip("tf-agents is installed here")
    benchmark = interop_benchmark()
    monkeypatch.delenv(benchmark.PYTHON_VARIABLE, raising=False)
    monkeypatch.setenv("KERAS_BACKEND", keras.backend.backend())
    benchmark.main([])
    result = json.loads(capsys.readouterr().out)
    assert result["tf_agents"]["installed"] is False and "policies" not in result
    assert "--tf-agents-python" in result["tf_agents"]["reason"]


def test_stored_interop_results_back_the_docs():
    """docs/pages/deploy-and-scale.md quotes these: every backend, both policies, all actions
    equal, the train step and the episode return the same under TF-Agents' loader."""
    record = json.loads((BENCHMARKS / "results" / "tf_agents_interop.json").read_text())
    assert [result["backend"] for result in record["results"]] == ["tensorflow", "jax", "torch"]
    for result in record["results"]:
        assert result["tf_agents"]["installed"] and result["tf_agents"]["versions"]["tf-agents"]
        assert [p["action_space"] for p in result["policies"]] == ["discrete", "box"]
        for entry in result["policies"]:
            assert entry["loaded"] and entry["train_step_matches"]
            assert entry["matching_actions"] == entry["num_observations"] == 500
            assert entry["max_abs_difference"] < 1e-7
            assert abs(entry["episode_return_tf_agents"] - entry["episode_return_dlkit"]) < 1e-3
