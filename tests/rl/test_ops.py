import keras
import numpy as np
import pytest

from dlkit.rl.ops import categorical_projection, huber_loss, q_learning_targets


def numpy_projection(next_probabilities, rewards, dones, discounts, support):
    """Algorithm 1 of Bellemare et al. (2017), one atom at a time."""
    batch_size, num_atoms = next_probabilities.shape
    v_min, v_max = support[0], support[-1]
    delta = (v_max - v_min) / (num_atoms - 1)
    target = np.zeros((batch_size, num_atoms))
    for i in range(batch_size):
        for j in range(num_atoms):
            shifted = rewards[i] + discounts[i] * (1 - dones[i]) * support[j]
            position = (np.clip(shifted, v_min, v_max) - v_min) / delta
            lower, upper = int(np.floor(position)), int(np.ceil(position))
            if lower == upper:
                target[i, lower] += next_probabilities[i, j]
            else:
                target[i, lower] += next_probabilities[i, j] * (upper - position)
                target[i, upper] += next_probabilities[i, j] * (position - lower)
    return target


def test_q_learning_targets_bootstrap_only_before_a_termination():
    rewards = np.array([1.0, 1.0, 0.5], "float32")
    dones = np.array([0.0, 1.0, 0.0], "float32")
    discounts = np.array([0.9, 0.9, 0.81], "float32")
    next_q = np.array([[2.0, 3.0], [2.0, 3.0], [-1.0, -4.0]], "float32")
    targets = keras.ops.convert_to_numpy(q_learning_targets(rewards, dones, discounts, next_q))
    np.testing.assert_allclose(targets, [1.0 + 0.9 * 3.0, 1.0, 0.5 - 0.81], rtol=1e-6)


def test_double_q_learning_evaluates_the_online_choice_with_the_target_network():
    rewards = np.zeros(2, "float32")
    dones = np.zeros(2, "float32")
    discounts = np.ones(2, "float32")
    target_q = np.array([[1.0, 5.0, 2.0], [4.0, 0.0, 3.0]], "float32")
    online_q = np.array([[9.0, 0.0, 0.0], [0.0, 0.0, 9.0]], "float32")
    targets = q_learning_targets(rewards, dones, discounts, target_q, online_q)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(targets), [1.0, 3.0])
    plain = q_learning_targets(rewards, dones, discounts, target_q)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(plain), [5.0, 4.0])


def test_categorical_projection_matches_algorithm_1():
    rng = np.random.default_rng(0)
    batch_size, num_atoms = 64, 11
    support = np.linspace(-5.0, 5.0, num_atoms)
    logits = rng.standard_normal((batch_size, num_atoms))
    probabilities = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    rewards = rng.uniform(-3, 3, batch_size)
    dones = (rng.uniform(size=batch_size) < 0.3).astype("float64")
    discounts = rng.choice([0.99, 0.99**3], batch_size)
    rewards[:4] = [0.0, 1.0, 10.0, -10.0]  # on an atom, on an atom, clipped high and low
    discounts[:2] = 1.0
    expected = numpy_projection(probabilities, rewards, dones, discounts, support)
    target = categorical_projection(
        probabilities.astype("float32"),
        rewards.astype("float32"),
        dones.astype("float32"),
        discounts.astype("float32"),
        support.astype("float32"),
    )
    target = keras.ops.convert_to_numpy(target)
    np.testing.assert_allclose(target, expected, atol=1e-5)
    np.testing.assert_allclose(target.sum(-1), 1.0, atol=1e-5)
    assert target.min() >= 0.0
    # Without clipping, the projection keeps the mean of the shifted distribution.
    inside = np.abs(rewards) + discounts * (1 - dones) * support[-1] <= support[-1]
    assert inside.sum() >= 5
    shifted_mean = rewards + discounts * (1 - dones) * (probabilities @ support)
    np.testing.assert_allclose((target @ support)[inside], shifted_mean[inside], atol=1e-4)


def test_categorical_projection_of_a_terminal_puts_all_mass_next_to_the_reward():
    support = np.linspace(-2.0, 2.0, 5).astype("float32")  # atoms every 1.0
    probabilities = np.full((1, 5), 0.2, "float32")
    target = categorical_projection(
        probabilities,
        np.array([0.25], "float32"),
        np.ones(1, "float32"),
        np.ones(1, "float32"),
        support,
    )
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(target), [[0, 0, 0.75, 0.25, 0]], atol=1e-6
    )


def test_huber_loss_matches_the_formula_and_keras():
    errors = np.array([-3.0, -1.0, -0.2, 0.0, 0.5, 1.0, 2.5], "float32")
    for delta in (1.0, 0.5, 2.0):
        expected = np.where(
            np.abs(errors) <= delta, 0.5 * errors**2, delta * (np.abs(errors) - 0.5 * delta)
        )
        loss = keras.ops.convert_to_numpy(huber_loss(errors, delta))
        np.testing.assert_allclose(loss, expected, rtol=1e-6)
        column = errors[:, None]  # Keras averages over the last axis: one error per row
        keras_loss = keras.losses.Huber(delta=delta, reduction=None)(column, np.zeros_like(column))
        np.testing.assert_allclose(loss, keras.ops.convert_to_numpy(keras_loss), rtol=1e-6)


def test_huber_loss_rejects_a_non_positive_delta():
    with pytest.raises(ValueError, match="delta"):
        huber_loss(np.zeros(3), delta=0.0)
