import keras
import numpy as np
import pytest

from dlkit.training import list_devices, value_and_grad


def test_gradients_match_the_analytic_derivatives():
    # f(w, x) = Σ w ⊙ x²  ⇒  ∂f/∂w = x²,  ∂f/∂x = 2 w ⊙ x
    w = keras.Variable(np.array([1.0, -2.0, 0.5], dtype="float32"))
    x = np.array([3.0, 1.0, -4.0], dtype="float32")
    value, (dw,), (dx,) = value_and_grad(lambda t: keras.ops.sum(w * t * t), [w], [x])
    np.testing.assert_allclose(keras.ops.convert_to_numpy(value), np.sum(w.numpy() * x * x))
    np.testing.assert_allclose(keras.ops.convert_to_numpy(dw), x * x)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(dx), 2 * w.numpy() * x)


def test_layer_gradient_matches_finite_differences():
    layer = keras.layers.Dense(2, activation="tanh")
    x = np.random.default_rng(0).standard_normal((4, 3)).astype("float32")
    layer.build((None, 3))

    def loss():
        return keras.ops.sum(keras.ops.square(layer(x)))

    _, (kernel_gradient, _), _ = value_and_grad(loss, layer.trainable_variables)
    kernel = layer.kernel.numpy().astype("float64")
    epsilon = 1e-3
    numeric = np.zeros_like(kernel)
    for index in np.ndindex(kernel.shape):
        for sign in (1, -1):
            shifted = kernel.copy()
            shifted[index] += sign * epsilon
            layer.kernel.assign(shifted.astype("float32"))
            numeric[index] += sign * float(keras.ops.convert_to_numpy(loss())) / (2 * epsilon)
    layer.kernel.assign(kernel.astype("float32"))
    np.testing.assert_allclose(keras.ops.convert_to_numpy(kernel_gradient), numeric, rtol=2e-2)


def test_unused_variable_gets_zero_gradient():
    used, unused = keras.Variable(2.0), keras.Variable(np.ones((2,), "float32"))
    _, gradients, _ = value_and_grad(lambda: used * used, [used, unused])
    assert float(keras.ops.convert_to_numpy(gradients[0])) == pytest.approx(4.0)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(gradients[1]), [0.0, 0.0])


def test_state_variables_are_updated_on_every_backend():
    layer = keras.layers.BatchNormalization(momentum=0.5)
    x = np.full((8, 2), 4.0, dtype="float32")
    layer.build((None, 2))
    value_and_grad(
        lambda: keras.ops.sum(layer(x, training=True)),
        layer.trainable_variables,
        state_variables=layer.non_trainable_variables,
    )
    np.testing.assert_allclose(layer.moving_mean.numpy(), [2.0, 2.0])


def test_non_scalar_function_is_rejected():
    w = keras.Variable(np.ones((3,), "float32"))
    with pytest.raises(ValueError, match="scalar"):
        value_and_grad(lambda: w * 2.0, [w])


def test_non_variable_is_rejected():
    with pytest.raises(TypeError, match=r"variables\[0\]"):
        value_and_grad(lambda: keras.ops.ones(()), [np.ones(3)])


def test_list_devices_names_the_cpu():
    devices = list_devices()
    assert devices and all(":" in device for device in devices)
    assert any(device.startswith("cpu") for device in devices)
