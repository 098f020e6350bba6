import keras
import numpy as np
import pytest

from dlkit.vision import build_cnn_classifier
from dlkit.vision.visualize import (
    _starting_noise,
    activation_maximization,
    alpha_norm,
    feature_distance,
    feature_inversion,
    guided_backpropagation,
    saliency_map,
    total_variation,
    unit_activation,
)


@pytest.fixture(scope="module")
def model():
    keras.utils.set_random_seed(0)
    return build_cnn_classifier(filters=4, dense_units=8)


@pytest.fixture(scope="module")
def digits_batch():
    return np.random.default_rng(1).uniform(size=(2, 8, 8, 1)).astype("float32")


@pytest.mark.parametrize("layer_name", ["logits", "conv2"])
def test_activation_maximization_raises_the_target_activation(model, layer_name):
    # Units active on the starting noise: a ReLU channel that is zero everywhere has no gradient.
    noise = _starting_noise((8, 8, 8, 1), 0, 1, 0)
    start = [unit_activation(model, layer_name, noise[:1], unit)[0] for unit in range(8)]
    units = list(np.argsort(start)[-3:]) if layer_name == "conv2" else [0, 3, 7]
    images = activation_maximization(model, layer_name, units, steps=8, step_size=0.1)
    assert images.shape == (len(units), 8, 8, 1)
    assert images.min() >= 0.0 and images.max() <= 1.0
    before = unit_activation(model, layer_name, _starting_noise(images.shape, 0, 1, 0), units)
    after = unit_activation(model, layer_name, images, units)
    assert np.all(after > before + 0.05 * np.abs(before) + 0.05), (before, after)


def test_activation_maximization_with_blur_and_total_variation(model):
    images = activation_maximization(
        model, "conv1", 2, steps=4, tv_weight=1.0, blur_every=2, value_range=(-1, 1), seed=3
    )
    assert images.shape == (1, 8, 8, 1)
    assert images.min() >= -1.0 and images.max() <= 1.0


def test_feature_inversion_reduces_the_feature_error(model, digits_batch):
    inverted = feature_inversion(model, "conv2", digits_batch, steps=15, step_size=0.05)
    assert inverted.shape == digits_batch.shape
    start = feature_distance(model, "conv2", _starting_noise(inverted.shape, 0, 1, 0), digits_batch)
    end = feature_distance(model, "conv2", inverted, digits_batch)
    assert np.all(end < 0.5 * start), (start, end)
    alpha = feature_inversion(
        model, "conv1", digits_batch[:1], steps=2, regularization="alpha_norm"
    )
    assert alpha.shape == (1, 8, 8, 1)


def test_regularizers():
    constant = np.full((1, 4, 4, 2), 0.3, "float32")
    checker = (np.indices((4, 4)).sum(axis=0) % 2).astype("float32")[None, :, :, None]
    values = keras.ops.convert_to_numpy(
        total_variation(np.concatenate([constant[..., :1], checker]))
    )
    np.testing.assert_allclose(values, [0.0, 2.0], atol=1e-6)
    values = keras.ops.convert_to_numpy(alpha_norm(constant, alpha=2.0, center=0.1))
    np.testing.assert_allclose(values, [0.04], atol=1e-6)


def _linear_model():
    inputs = keras.Input((3, 3, 2))
    outputs = keras.layers.Dense(4, use_bias=False, name="logits")(keras.layers.Flatten()(inputs))
    model = keras.Model(inputs, outputs)
    kernel = np.random.default_rng(2).normal(size=(18, 4)).astype("float32")
    model.get_layer("logits").set_weights([kernel])
    return model, kernel


def test_saliency_of_a_linear_model_is_the_weight_magnitude():
    model, kernel = _linear_model()
    images = np.random.default_rng(3).normal(size=(3, 3, 3, 2)).astype("float32")
    expected = np.max(np.abs(kernel.T.reshape(4, 3, 3, 2)), axis=-1)  # (classes, H, W)
    maps = saliency_map(model, images, class_index=[0, 2, 3])
    np.testing.assert_allclose(maps, expected[[0, 2, 3]], rtol=1e-5, atol=1e-6)
    predicted = np.argmax(images.reshape(3, -1) @ kernel, axis=-1)
    np.testing.assert_allclose(saliency_map(model, images), expected[predicted], rtol=1e-5)
    # SmoothGrad averages gradients that noise does not change for a linear model.
    smooth = saliency_map(model, images, class_index=1, samples=3, noise=0.5)
    np.testing.assert_allclose(smooth, np.repeat(expected[1:2], 3, axis=0), rtol=1e-5)


@pytest.mark.parametrize("relu", ["dense_activation", "relu_layer", "activation_layer"])
def test_guided_backpropagation_matches_the_hand_derived_gradient(relu):
    # The ReLU as the hidden layer's activation, or as a ReLU or Activation layer after it.
    inputs = keras.Input((2, 2, 1))
    flat = keras.layers.Flatten()(inputs)
    if relu == "dense_activation":
        hidden = keras.layers.Dense(6, activation="relu", name="hidden")(flat)
    else:
        hidden = keras.layers.Dense(6, name="hidden")(flat)
        if relu == "relu_layer":
            hidden = keras.layers.ReLU()(hidden)
        else:
            hidden = keras.layers.Activation("relu")(hidden)
    model = keras.Model(inputs, keras.layers.Dense(3, name="logits")(hidden))
    rng = np.random.default_rng(4)
    w1, b1 = rng.normal(size=(4, 6)).astype("f"), rng.normal(size=6).astype("f")
    w2, b2 = rng.normal(size=(6, 3)).astype("f"), np.zeros(3, "f")
    model.get_layer("hidden").set_weights([w1, b1])
    model.get_layer("logits").set_weights([w2, b2])
    images = rng.normal(size=(2, 2, 2, 1)).astype("float32")
    active = (images.reshape(2, 4) @ w1 + b1) > 0  # (2, 6)
    upstream = w2[:, 1]
    expected = (active * (upstream > 0) * upstream) @ w1.T
    guided = guided_backpropagation(model, images, class_index=1)
    np.testing.assert_allclose(guided.reshape(2, 4), expected, rtol=1e-5, atol=1e-6)
    plain = (active * upstream) @ w1.T
    np.testing.assert_allclose(
        saliency_map(model, images, class_index=1), np.abs(plain).reshape(2, 2, 2), rtol=1e-5
    )
    # The model's own gradients are back to normal afterwards.
    if relu == "dense_activation":
        assert model.get_layer("hidden").activation is keras.activations.relu


def _all_layers(model):
    for layer in model.layers:
        yield layer
        if isinstance(layer, keras.Model):
            yield from _all_layers(layer)


def test_guided_backpropagation_leaves_the_model_unchanged():
    keras.utils.set_random_seed(5)
    inputs = keras.Input((4, 4, 1))
    x = keras.layers.Conv2D(2, 3, padding="same", activation="relu", name="conv")(inputs)
    x = keras.layers.Conv2D(2, 3, padding="same", name="conv_linear")(x)
    x = keras.layers.ReLU(name="relu")(x)
    x = keras.layers.Flatten(name="flatten")(x)
    head = keras.Sequential(
        [keras.Input((32,)), keras.layers.Dense(5, activation="relu"), keras.layers.Dense(3)],
        name="head",
    )
    model = keras.Model(inputs, head(x))
    images = np.random.default_rng(6).normal(size=(3, 4, 4, 1)).astype("float32")
    outputs_before = keras.ops.convert_to_numpy(model(images))
    weights_before = model.get_weights()
    layers_before = [(layer, type(layer), layer.name) for layer in _all_layers(model)]
    activations_before = [getattr(layer, "activation", None) for layer, _, _ in layers_before]

    guided = guided_backpropagation(model, images, class_index=2)
    plain = saliency_map(model, images, class_index=2)
    assert guided.shape == (3, 4, 4, 1) and np.all(np.isfinite(guided))
    assert not np.allclose(np.abs(guided[..., 0]), plain)  # the guided gradient differs

    assert [(layer, type(layer), layer.name) for layer in _all_layers(model)] == layers_before
    for (layer, _, _), activation in zip(layers_before, activations_before, strict=True):
        assert "call" not in vars(layer)  # no instance attribute shadows the class's call
        assert getattr(layer, "activation", None) is activation
    for before, after in zip(weights_before, model.get_weights(), strict=True):
        np.testing.assert_array_equal(before, after)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(model(images)), outputs_before)
    # A second call gives the same map: nothing of the first one stayed behind.
    np.testing.assert_array_equal(guided_backpropagation(model, images, class_index=2), guided)


def test_bad_inputs_are_rejected(model, digits_batch):
    with pytest.raises(ValueError, match=r"layer_name.*Received: layer_name='conv9'"):
        activation_maximization(model, "conv9", 0, steps=1)
    with pytest.raises(ValueError, match=r"unit.*Received: unit=8"):
        activation_maximization(model, "conv1", 8, steps=1)
    with pytest.raises(ValueError, match=r"steps.*Received: steps=0"):
        activation_maximization(model, "logits", 0, steps=0)
    with pytest.raises(ValueError, match=r"Received: steps=-1"):
        feature_inversion(model, "conv1", digits_batch, steps=-1)
    with pytest.raises(ValueError, match=r"`image`"):
        feature_inversion(model, "conv1", np.zeros((8, 8)), steps=1)
    with pytest.raises(ValueError, match=r"regularization"):
        feature_inversion(model, "conv1", digits_batch, steps=1, regularization="l1")
    with pytest.raises(ValueError, match=r"`images`"):
        saliency_map(model, "not an image")
    with pytest.raises(ValueError, match=r"class_index.*Received: class_index=10"):
        saliency_map(model, digits_batch, class_index=10)
    with pytest.raises(ValueError, match=r"value_range"):
        activation_maximization(model, "logits", 0, steps=1, value_range=(1, 0))


def test_guided_backpropagation_follows_the_weights_of_a_model_trained_between_calls():
    keras.utils.set_random_seed(0)
    model = build_cnn_classifier()
    images = np.random.default_rng(0).uniform(size=(2, 8, 8, 1)).astype("float32")
    before = guided_backpropagation(model, images, class_index=1)
    new_weights = [2.0 * w + 0.01 for w in model.get_weights()]
    model.set_weights(new_weights)
    after = guided_backpropagation(model, images, class_index=1)
    twin = build_cnn_classifier()
    twin.set_weights(new_weights)
    expected = guided_backpropagation(twin, images, class_index=1)
    np.testing.assert_allclose(after, expected, rtol=1e-5, atol=1e-6)
    assert not np.allclose(after, before)
