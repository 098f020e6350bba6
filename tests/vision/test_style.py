import keras
import numpy as np
import pytest

from dlkit.vision.classifier import build_cnn_classifier
from dlkit.vision.style import (
    content_loss,
    gram_matrix,
    style_feature_model,
    style_loss,
    style_transfer,
)


def _numpy(x):
    return keras.ops.convert_to_numpy(x)


def _features(shape, seed):
    return np.random.default_rng(seed).normal(size=shape).astype("float32")


def test_gram_matrix_matches_numpy_einsum():
    features = _features((2, 3, 5, 4), 0)
    expected = np.einsum("bhwc,bhwd->bcd", features, features) / 15.0
    np.testing.assert_allclose(_numpy(gram_matrix(features)), expected, rtol=1e-5, atol=1e-6)


def test_style_loss_is_zero_for_identical_features_and_matches_the_formula():
    a = [_features((1, 4, 4, 3), 1), _features((1, 2, 2, 5), 2)]
    b = [_features((1, 6, 6, 3), 3), _features((1, 3, 3, 5), 4)]
    assert float(_numpy(style_loss(a, a))) == 0.0
    weights = [0.3, 2.0]
    expected = 0.0
    for w, s, g in zip(weights, a, b):
        gs = np.einsum("bhwc,bhwd->bcd", s, s) / (s.shape[1] * s.shape[2])
        gg = np.einsum("bhwc,bhwd->bcd", g, g) / (g.shape[1] * g.shape[2])
        expected += w * np.sum((gg - gs) ** 2) / (4 * s.shape[-1] ** 2)
    value = float(_numpy(style_loss(a, b, weights=weights)))
    assert value > 0
    assert value == pytest.approx(expected, rel=1e-5)


def test_content_loss_matches_the_formula():
    a, b = _features((2, 3, 3, 4), 5), _features((2, 3, 3, 4), 6)
    assert float(_numpy(content_loss(a, b))) == pytest.approx(0.5 * np.mean((a - b) ** 2), rel=1e-5)
    assert float(_numpy(content_loss([a], [a]))) == 0.0


def test_style_transfer_decreases_the_loss_in_a_few_steps():
    keras.utils.set_random_seed(0)
    model = build_cnn_classifier(input_shape=(8, 8, 3), filters=4, dense_units=8)
    rng = np.random.default_rng(0)
    content = rng.random((1, 8, 8, 3)).astype("float32")
    style = rng.random((1, 8, 8, 3)).astype("float32")
    steps = []
    image, history = style_transfer(
        model,
        content,
        style,
        ["conv2"],
        ["conv1", "conv2"],
        steps=5,
        learning_rate=0.01,
        style_weight=1000.0,
        tv_weight=0.001,
        callback=lambda step, losses: steps.append(step),
    )
    assert image.shape == content.shape
    assert 0.0 <= image.min() and image.max() <= 1.0
    assert steps == [1, 2, 3, 4, 5]
    assert set(history) == {"loss", "content_loss", "style_loss", "tv_loss"}
    assert all(len(values) == 6 for values in history.values())
    assert history["content_loss"][0] == 0.0  # starts from the content image
    assert history["loss"][-1] < history["loss"][0]
    assert history["style_loss"][-1] < history["style_loss"][0]


def test_bad_inputs_are_rejected():
    model = build_cnn_classifier(input_shape=(8, 8, 3), filters=4, dense_units=8)
    image = np.zeros((1, 8, 8, 3), dtype="float32")
    with pytest.raises(ValueError, match=r"content_image"):
        style_transfer(model, np.zeros((8, 8, 3)), image, ["conv2"], ["conv1"], steps=1)
    with pytest.raises(ValueError, match=r"style_image"):
        style_transfer(model, image, np.zeros((1, 8, 8, 1)), ["conv2"], ["conv1"], steps=1)
    with pytest.raises(ValueError, match=r"1 channels of the model"):
        gray = build_cnn_classifier(input_shape=(8, 8, 1), filters=4, dense_units=8)
        style_transfer(gray, image, image, ["conv2"], ["conv1"], steps=1)
    with pytest.raises(ValueError, match=r"style_layers='conv7'"):
        style_transfer(model, image, image, ["conv2"], ["conv7"], steps=1)
    with pytest.raises(ValueError, match=r"'dense' with output shape"):
        style_feature_model(model, ["dense"], ["conv1"])
    with pytest.raises(ValueError, match=r"steps=0"):
        style_transfer(model, image, image, ["conv2"], ["conv1"], steps=0)
    with pytest.raises(ValueError, match=r"shape \(4, 4\)"):
        gram_matrix(np.zeros((4, 4)))
    with pytest.raises(ValueError, match=r"same channels"):
        style_loss(np.zeros((1, 2, 2, 3)), np.zeros((1, 2, 2, 4)))
    with pytest.raises(ValueError, match=r"as many style as generated"):
        style_loss([np.zeros((1, 2, 2, 3))] * 2, [np.zeros((1, 2, 2, 3))])
    with pytest.raises(ValueError, match=r"weights="):
        style_loss(np.zeros((1, 2, 2, 3)), np.zeros((1, 2, 2, 3)), weights=[1.0, 2.0])
