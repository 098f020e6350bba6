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


def test_compiled_gradients_at_other_values_and_their_apply_match_the_optimizer():
    from dlkit.training import compile_gradients

    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [keras.Input((3,)), keras.layers.Dense(4, "tanh"), keras.layers.Dense(1)]
    )
    model.compile(optimizer=keras.optimizers.RMSprop(0.01), loss="mse")
    rng = np.random.default_rng(0)
    x = rng.normal(size=(8, 3)).astype("float32")
    y = rng.normal(size=(8, 1)).astype("float32")
    compiled = compile_gradients(model)
    own = [keras.ops.convert_to_numpy(v.value).copy() for v in model.trainable_variables]
    other = [value + rng.normal(size=value.shape).astype("float32") for value in own]

    loss, gradients = compiled(other, x, y)
    # The reference: the model's variables set to those values, differentiated in place.
    for variable, value in zip(model.trainable_variables, other):
        variable.assign(value)
    reference_loss, reference, _ = value_and_grad(
        lambda: keras.ops.mean(keras.ops.square(model(x) - keras.ops.convert_to_tensor(y))),
        model.trainable_variables,
    )
    for variable, value in zip(model.trainable_variables, own):
        variable.assign(value)
    assert loss == pytest.approx(float(keras.ops.convert_to_numpy(reference_loss)), rel=1e-5)
    for gradient, expected in zip(gradients, reference):
        np.testing.assert_allclose(
            keras.ops.convert_to_numpy(gradient),
            keras.ops.convert_to_numpy(expected),
            rtol=1e-5,
            atol=1e-7,
        )
    # The model's own variables were neither read nor changed.
    for variable, value in zip(model.trainable_variables, own):
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(variable.value), value)

    # `apply` is the optimizer's step, twice in a row (its state carries over).
    twin = keras.models.clone_model(model)
    twin.set_weights(model.get_weights())
    twin_optimizer = keras.optimizers.RMSprop(0.01)
    for _ in range(2):
        compiled.apply(gradients)
        twin_optimizer.apply(gradients, twin.trainable_variables)
    for mine, theirs in zip(model.trainable_variables, twin.trainable_variables):
        np.testing.assert_allclose(
            keras.ops.convert_to_numpy(mine.value),
            keras.ops.convert_to_numpy(theirs.value),
            rtol=1e-6,
            atol=1e-7,
        )
    assert not np.allclose(keras.ops.convert_to_numpy(model.trainable_variables[0].value), own[0])
