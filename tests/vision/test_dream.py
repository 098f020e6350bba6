import keras
import numpy as np
import pytest

from dlkit.vision import build_cnn_classifier
from dlkit.vision.dream import activation_norm, deep_dream, octave_shapes


@pytest.fixture(scope="module")
def model():
    keras.utils.set_random_seed(0)
    return build_cnn_classifier(filters=4, dense_units=8)


@pytest.fixture(scope="module")
def image():
    return np.random.default_rng(0).uniform(0.2, 0.8, size=(2, 14, 14, 1)).astype("float32")


def test_octave_shapes():
    assert octave_shapes((28, 14), octaves=3, octave_scale=2.0) == [(7, 4), (14, 7), (28, 14)]
    assert octave_shapes((10, 10), octaves=3, octave_scale=1.4) == [(5, 5), (7, 7), (10, 10)]
    assert octave_shapes((9, 5), octaves=1) == [(9, 5)]
    with pytest.raises(ValueError, match=r"octave_scale.*Received: octave_scale=1.0"):
        octave_shapes((9, 9), octave_scale=1.0)
    with pytest.raises(ValueError, match=r"octaves.*Received: octaves=0"):
        octave_shapes((9, 9), octaves=0)


def test_deep_dream_raises_the_activation_norm_and_keeps_shape_and_range(model, image):
    layers = ["conv1", "conv2"]
    dream, per_octave = deep_dream(
        model,
        image,
        layers,
        octaves=2,
        octave_scale=1.4,
        steps_per_octave=4,
        step_size=0.03,
        return_octaves=True,
    )
    assert dream.shape == image.shape and dream.dtype == np.float32
    assert dream.min() >= 0.0 and dream.max() <= 1.0
    assert [o.shape[1:3] for o in per_octave] == [(10, 10), (14, 14)]
    np.testing.assert_array_equal(per_octave[-1], dream)
    before = activation_norm(model, image, layers)
    after = activation_norm(model, dream, layers)
    assert np.all(after > 1.1 * before), (before, after)


def test_deep_dream_respects_the_value_range(model, image):
    low_high = 2 * image - 1  # pixels in [-1, 1]
    dream = deep_dream(model, low_high, "conv2", octaves=1, steps_per_octave=2, value_range=(-1, 1))
    assert dream.min() >= -1.0 and dream.max() <= 1.0
    assert not np.allclose(dream, low_high)


def test_bad_inputs_are_rejected(model, image):
    with pytest.raises(ValueError, match=r"layer_names.*Received: layer_names='conv7'"):
        deep_dream(model, image, "conv7", steps_per_octave=1)
    with pytest.raises(ValueError, match=r"any image size"):
        deep_dream(model, image, "dense", octaves=2, steps_per_octave=1)
    with pytest.raises(ValueError, match=r"`image`"):
        deep_dream(model, np.zeros((14, 14, 1)), "conv1", steps_per_octave=1)
    with pytest.raises(ValueError, match=r"steps_per_octave.*Received: steps_per_octave=0"):
        deep_dream(model, image, "conv1", steps_per_octave=0)
    with pytest.raises(ValueError, match=r"layer_weights"):
        deep_dream(model, image, "conv1", steps_per_octave=1, layer_weights=[1.0, 2.0])
