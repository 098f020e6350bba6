import math

import keras
import numpy as np
import pytest

from dlkit.layers.noisy_dense import NoisyDense
from dlkit.testing import run_layer_test


def _random(shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype("float32")


def _numpy(x):
    return keras.ops.convert_to_numpy(x)


@pytest.mark.parametrize(
    "init_kwargs, input_shape, output_shape, num_weights",
    [
        ({"units": 3, "seed": 1}, (2, 4), (2, 3), 4),
        ({"units": 3, "factorised": False, "seed": 1}, (2, 4), (2, 3), 4),
        ({"units": 2, "use_bias": False, "activation": "tanh"}, (2, 5, 4), (2, 5, 2), 2),
    ],
)
def test_noisy_dense_passes_the_layer_checks(init_kwargs, input_shape, output_shape, num_weights):
    # The output comparisons of the check run at inference, with the mean weights.
    run_layer_test(
        NoisyDense,
        init_kwargs,
        input_shape=input_shape,
        expected_output_shape=output_shape,
        expected_num_trainable_weights=num_weights,
        expected_num_non_trainable_weights=0,
    )


def test_initialisation_follows_the_paper():
    inputs = np.ones((1, 16), dtype="float32")
    factorised = NoisyDense(8)
    factorised(inputs)
    assert np.max(np.abs(_numpy(factorised.kernel))) <= 1 / 4
    assert np.std(_numpy(factorised.kernel)) > 0.1  # spread over U[-1/√p, 1/√p], std 0.144
    np.testing.assert_allclose(_numpy(factorised.noisy_kernel), 0.5 / 4)
    np.testing.assert_allclose(_numpy(factorised.noisy_bias), 0.5 / 4)
    independent = NoisyDense(8, factorised=False)
    independent(inputs)
    assert np.max(np.abs(_numpy(independent.bias))) <= math.sqrt(3 / 16)
    np.testing.assert_allclose(_numpy(independent.noisy_kernel), 0.017)
    custom = NoisyDense(8, sigma_0=0.2, factorised=False)
    custom(inputs)
    np.testing.assert_allclose(_numpy(custom.noisy_bias), 0.2)


def test_without_noise_scale_it_equals_a_dense_layer():
    inputs = _random((3, 4), 1)
    layer = NoisyDense(5, activation="relu", seed=0)
    layer(inputs)
    kernel, bias = _random((4, 5), 2), _random((5,), 3)
    layer.set_weights([kernel, np.zeros((4, 5)), bias, np.zeros(5)])
    dense = keras.layers.Dense(5, activation="relu")
    dense(inputs)
    dense.set_weights([kernel, bias])
    np.testing.assert_allclose(_numpy(layer(inputs, training=True)), _numpy(dense(inputs)))


@pytest.mark.parametrize("factorised", [True, False])
def test_training_output_matches_numpy_with_the_same_noise(factorised):
    inputs = _random((3, 4), 1)
    weights = [_random((4, 2), 2), np.abs(_random((4, 2), 3)), _random((2,), 4), _random((2,), 5)]
    layer, twin = (NoisyDense(2, activation="tanh", factorised=factorised, seed=7) for _ in "ab")
    for noisy_dense in (layer, twin):
        noisy_dense(inputs)
        noisy_dense.set_weights(weights)
    received = _numpy(layer(inputs, training=True))
    epsilon_kernel, epsilon_bias = (_numpy(e) for e in twin.sample_noise())  # the same draw

    kernel, noisy_kernel, bias, noisy_bias = weights
    noise = noisy_bias * epsilon_bias + inputs @ (noisy_kernel * epsilon_kernel)
    expected = np.tanh(bias + inputs @ kernel + noise)
    np.testing.assert_allclose(received, expected, rtol=1e-5, atol=1e-5)
    if factorised:  # ε_W = f(ε_in) f(ε_out)ᵀ with ε_b = f(ε_out): rank one, columns ∝ ε_b
        epsilon_in = epsilon_kernel[:, 0] / epsilon_bias[0]
        np.testing.assert_allclose(epsilon_kernel, np.outer(epsilon_in, epsilon_bias), rtol=1e-5)


@pytest.mark.parametrize("factorised", [True, False])
def test_output_statistics_match_the_analytic_mean_and_variance(factorised):
    num_calls = 1000
    inputs = np.array([[1.0, -2.0, 0.5]], dtype="float32")
    layer = NoisyDense(2, factorised=factorised, seed=3)
    layer(inputs)
    kernel, bias = _random((3, 2), 1), _random((2,), 2)
    noisy_kernel = np.array([[0.4, 0.2], [0.3, 0.6], [0.8, 0.1]], dtype="float32")
    noisy_bias = np.array([0.5, 0.7], dtype="float32")
    layer.set_weights([kernel, noisy_kernel, bias, noisy_bias])
    samples = np.concatenate([_numpy(layer(inputs, training=True)) for _ in range(num_calls)])

    mean_output = (inputs @ kernel + bias)[0]
    squared_inputs = (inputs**2)[0] @ noisy_kernel**2  # Σ_i x_i² σ_ij²
    if factorised:  # E[f(ε)²] = E|ε| = √(2/π) for each factor of ε_W and for ε_b
        variance = (2 / math.pi) * squared_inputs + math.sqrt(2 / math.pi) * noisy_bias**2
    else:
        variance = squared_inputs + noisy_bias**2
    np.testing.assert_allclose(_numpy(layer(inputs))[0], mean_output, rtol=1e-5)
    assert np.all(np.abs(samples.mean(axis=0) - mean_output) < 5 * np.sqrt(variance / num_calls))
    np.testing.assert_allclose(samples.var(axis=0), variance, rtol=0.2)


def test_noise_is_redrawn_in_training_and_absent_at_inference():
    inputs = _random((2, 4), 1)
    layer = NoisyDense(3, seed=0)
    first, second = _numpy(layer(inputs, training=True)), _numpy(layer(inputs, training=True))
    assert not np.allclose(first, second)
    np.testing.assert_array_equal(_numpy(layer(inputs)), _numpy(layer(inputs, training=False)))
    noisy = NoisyDense(3, noisy_inference=True, seed=0)
    noisy(inputs)
    noisy.set_weights(layer.get_weights())
    assert not np.allclose(_numpy(noisy(inputs)), _numpy(noisy(inputs)))
    assert not np.allclose(_numpy(noisy(inputs)), _numpy(layer(inputs)))


def test_the_seed_fixes_the_noise_sequence():
    inputs = _random((2, 4), 1)

    def outputs(seed):
        layer = NoisyDense(3, seed=seed)
        layer(inputs)
        layer.set_weights([np.full((4, 3), 0.1), np.full((4, 3), 0.5), np.zeros(3), np.ones(3)])
        return [_numpy(layer(inputs, training=True)) for _ in range(3)]

    first, again, other = outputs(5), outputs(5), outputs(6)
    for a, b, c in zip(first, again, other):
        np.testing.assert_array_equal(a, b)
        assert not np.allclose(a, c)


def test_noisy_dense_rejects_bad_arguments():
    for units in (0, -1, 2.5, True):
        with pytest.raises(ValueError, match=r"`units`.*Received: units="):
            NoisyDense(units)
    for sigma_0 in (-0.1, "0.5"):
        with pytest.raises(ValueError, match=r"`sigma_0`.*Received: sigma_0="):
            NoisyDense(3, sigma_0=sigma_0)


def test_fit_learns_the_mapping_and_shrinks_useless_noise():
    # A noise-free target: the best noise scale is zero, and gradient descent moves towards it.
    keras.utils.set_random_seed(0)
    inputs = _random((256, 4), 1)
    targets = inputs @ _random((4, 2), 2)
    layer = NoisyDense(2, seed=0)
    model = keras.Sequential([keras.Input((4,)), layer])
    model.compile(keras.optimizers.Adam(0.05), "mse")
    model.fit(inputs, targets, epochs=20, batch_size=64, verbose=0)
    assert np.mean((model.predict(inputs, verbose=0) - targets) ** 2) < 1e-2
    assert np.mean(np.abs(_numpy(layer.noisy_kernel))) < 0.05  # from 0.5 / √4 = 0.25
