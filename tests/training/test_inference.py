import keras
import numpy as np
import pytest

from dlkit.training import compile_inference


def policy_network():
    return keras.Sequential(
        [
            keras.Input((4,)),
            keras.layers.Dense(64, activation="relu"),
            keras.layers.Dropout(0.5),
            keras.layers.Dense(64, activation="relu"),
            keras.layers.Dense(2),
        ]
    )


def test_matches_the_model_in_inference_mode():
    model = policy_network()
    act = compile_inference(model)
    observations = np.random.default_rng(0).standard_normal((3, 4)).astype("float32")
    expected = keras.ops.convert_to_numpy(model(observations, training=False))
    received = act(observations)
    assert isinstance(received, np.ndarray) and received.shape == (3, 2)
    np.testing.assert_allclose(received, expected, atol=1e-6)
    np.testing.assert_array_equal(act(observations), received)  # dropout is off


def test_sees_weights_changed_by_fit_without_retracing():
    model = policy_network()
    model.compile(optimizer=keras.optimizers.Adam(1e-2), loss="mse")
    act = compile_inference(model)
    observation = np.ones((1, 4), "float32")
    first = act(observation)
    for _ in range(20):
        act(observation)
    model.fit(np.ones((32, 4), "float32"), np.full((32, 2), 5.0, "float32"), epochs=3, verbose=0)
    after = act(observation)
    assert not np.allclose(after, first)
    np.testing.assert_allclose(
        after, keras.ops.convert_to_numpy(model(observation, training=False)), atol=1e-5
    )
    # Every backend traces once for this shape: fit changed the weights, not the function.
    assert act.num_traces == 1


def test_one_trace_serves_every_batch_size_on_tensorflow():
    if keras.backend.backend() != "tensorflow":
        pytest.skip("jax.jit and the PyTorch graph specialise on shapes")
    act = compile_inference(policy_network())
    for batch in (1, 5, 17):
        assert act(np.zeros((batch, 4), "float32")).shape == (batch, 2)
    assert act.num_traces == 1


def test_bad_models_are_rejected():
    with pytest.raises(TypeError, match="Keras model or layer"):
        compile_inference(lambda x: x)
    with pytest.raises(ValueError, match="built=False"):
        compile_inference(keras.layers.Dense(2))


def test_a_layer_frozen_after_the_first_call_keeps_the_outputs_right():
    # On JAX the variables are read in a fixed order and split into trainable and
    # non-trainable ones when tracing; freezing a layer changes the split of a later trace.
    model = policy_network()
    act = compile_inference(model)
    rng = np.random.default_rng(1)
    act(rng.standard_normal((2, 4)).astype("float32"))
    model.layers[0].trainable = False
    for batch in (2, 3):  # the same shape, then a new one that traces again on JAX and torch
        observations = rng.standard_normal((batch, 4)).astype("float32")
        np.testing.assert_allclose(
            act(observations),
            keras.ops.convert_to_numpy(model(observations, training=False)),
            atol=1e-6,
        )


def test_outputs_keep_the_models_structure():
    inputs = keras.Input((3,))
    hidden = keras.layers.Dense(4)(inputs)
    model = keras.Model(inputs, {"a": hidden, "b": [keras.layers.Dense(1)(hidden), hidden]})
    received = compile_inference(model)(np.ones((2, 3), "float32"))
    assert sorted(received) == ["a", "b"] and isinstance(received["b"], list)
    assert received["a"].shape == (2, 4) and received["b"][0].shape == (2, 1)
    np.testing.assert_allclose(received["b"][1], received["a"], atol=1e-6)
