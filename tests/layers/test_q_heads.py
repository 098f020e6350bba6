import keras
import numpy as np
import pytest

from dlkit.layers.q_heads import CategoricalQHead, DuelingHead
from dlkit.testing import run_layer_test


def to_numpy(x):
    return keras.ops.convert_to_numpy(x)


def assign_random(dense, rng):
    dense.kernel.assign(rng.normal(size=dense.kernel.shape).astype("float32"))
    dense.bias.assign(rng.normal(size=dense.bias.shape).astype("float32"))
    return to_numpy(dense.kernel), to_numpy(dense.bias)


# DuelingHead


@pytest.mark.parametrize("hidden_units", [None, 5])
def test_dueling_matches_numpy_reference(hidden_units):
    rng = np.random.default_rng(1)
    features = rng.normal(size=(3, 4)).astype("float32")
    head = DuelingHead(num_actions=3, hidden_units=hidden_units)
    head(features)
    value_features = advantage_features = features
    if hidden_units is not None:
        kernel, bias = assign_random(head.value_hidden, rng)
        value_features = np.maximum(features @ kernel + bias, 0.0)
        kernel, bias = assign_random(head.advantage_hidden, rng)
        advantage_features = np.maximum(features @ kernel + bias, 0.0)
    kernel, bias = assign_random(head.value_dense, rng)
    value = value_features @ kernel + bias  # (B, 1)
    kernel, bias = assign_random(head.advantage_dense, rng)
    advantage = advantage_features @ kernel + bias  # (B, A)
    expected = value + advantage - advantage.mean(axis=1, keepdims=True)
    np.testing.assert_allclose(to_numpy(head(features)), expected, atol=1e-5)


def test_dueling_advantages_have_zero_mean_and_keep_the_greedy_action():
    rng = np.random.default_rng(2)
    features = rng.normal(size=(6, 4)).astype("float32")
    head = DuelingHead(num_actions=4)
    head(features)
    assign_random(head.value_dense, rng)
    assign_random(head.advantage_dense, rng)
    q_values = to_numpy(head(features))
    value = to_numpy(head.value_dense(features))
    advantage = to_numpy(head.advantage_dense(features))
    np.testing.assert_allclose((q_values - value).mean(axis=1), np.zeros(6), atol=1e-5)
    assert np.abs(advantage.mean(axis=1)).max() > 0.1  # the correction did something
    np.testing.assert_array_equal(q_values.argmax(axis=1), advantage.argmax(axis=1))


@pytest.mark.parametrize(("hidden_units", "num_weights"), [(None, 4), (8, 8)])
def test_dueling_run_layer_test(hidden_units, num_weights):
    run_layer_test(
        DuelingHead,
        {"num_actions": 3, "hidden_units": hidden_units, "activation": "tanh"},
        input_shape=(4, 5),
        expected_output_shape=(4, 3),
        expected_num_trainable_weights=num_weights,
        expected_num_non_trainable_weights=0,
    )


@pytest.mark.parametrize("num_actions", [0, -2, 2.5, True, None])
def test_dueling_bad_num_actions(num_actions):
    with pytest.raises(ValueError, match="num_actions="):
        DuelingHead(num_actions=num_actions)


def test_dueling_bad_hidden_units():
    with pytest.raises(ValueError, match="hidden_units=0"):
        DuelingHead(num_actions=2, hidden_units=0)


# CategoricalQHead


def softmax(logits):
    exponentials = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return exponentials / exponentials.sum(axis=-1, keepdims=True)


def test_categorical_matches_numpy_reference_and_rows_sum_to_one():
    rng = np.random.default_rng(3)
    features = rng.normal(size=(4, 5)).astype("float32")
    head = CategoricalQHead(num_actions=3, num_atoms=7, v_min=-2.0, v_max=4.0)
    head(features)
    kernel, bias = assign_random(head.dense, rng)
    probabilities = to_numpy(head(features))
    expected = softmax((features @ kernel + bias).reshape(4, 3, 7))
    assert probabilities.shape == (4, 3, 7)
    np.testing.assert_allclose(probabilities, expected, atol=1e-5)
    np.testing.assert_allclose(probabilities.sum(axis=-1), np.ones((4, 3)), atol=1e-5)
    assert probabilities.min() >= 0.0


def test_categorical_support_and_q_values():
    head = CategoricalQHead(num_actions=2, num_atoms=5, v_min=-1.0, v_max=3.0)
    np.testing.assert_allclose(to_numpy(head.support), [-1.0, 0.0, 1.0, 2.0, 3.0], atol=1e-6)
    probabilities = softmax(np.random.default_rng(4).normal(size=(3, 2, 5))).astype("float32")
    expected = (probabilities * np.array([-1.0, 0.0, 1.0, 2.0, 3.0])).sum(axis=-1)
    q_values = to_numpy(head.q_values(probabilities))
    assert q_values.shape == (3, 2)
    np.testing.assert_allclose(q_values, expected, atol=1e-5)
    # A point mass on one atom has that atom as its expectation.
    one_hot = np.eye(5, dtype="float32")[[[0, 4]]]  # (1, 2, 5)
    np.testing.assert_allclose(to_numpy(head.q_values(one_hot)), [[-1.0, 3.0]], atol=1e-6)


def test_categorical_default_support_is_c51():
    support = to_numpy(CategoricalQHead(num_actions=2).support)
    assert support.shape == (51,)
    np.testing.assert_allclose(support[[0, 25, 50]], [-10.0, 0.0, 10.0], atol=1e-5)
    np.testing.assert_allclose(np.diff(support), np.full(50, 0.4), atol=1e-5)


def test_categorical_run_layer_test():
    run_layer_test(
        CategoricalQHead,
        {"num_actions": 3, "num_atoms": 5, "v_min": 0.0, "v_max": 1.0},
        input_shape=(4, 6),
        expected_output_shape=(4, 3, 5),
        expected_num_trainable_weights=2,
        expected_num_non_trainable_weights=0,
    )


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"num_actions": 0}, "num_actions=0"),
        ({"num_actions": -1}, "num_actions=-1"),
        ({"num_actions": 2, "num_atoms": 1}, "num_atoms=1"),
        ({"num_actions": 2, "num_atoms": 2.0}, "num_atoms=2.0"),
        ({"num_actions": 2, "v_min": 1.0, "v_max": 1.0}, "v_min=1.0, v_max=1.0"),
        ({"num_actions": 2, "v_min": 5.0, "v_max": -5.0}, "v_min=5.0, v_max=-5.0"),
        ({"num_actions": 2, "v_max": "ten"}, "v_max='ten'"),
    ],
)
def test_categorical_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        CategoricalQHead(**kwargs)
