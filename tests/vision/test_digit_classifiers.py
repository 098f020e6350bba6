import keras
import numpy as np
import pytest

from dlkit.vision.classifier import (
    CLASSIFIER_ARCHITECTURES,
    build_dense_classifier,
    train_digits_classifier,
)


def test_dense_classifier_without_hidden_layers_is_affine():
    model = build_dense_classifier((2, 2, 1), num_classes=3, hidden_units=())
    weights = np.arange(12, dtype="float32").reshape(4, 3) / 10
    bias = np.array([0.5, -1.0, 0.0], "float32")
    model.get_layer("logits").set_weights([weights, bias])
    images = np.random.default_rng(0).uniform(size=(5, 2, 2, 1)).astype("float32")
    expected = images.reshape(5, 4) @ weights + bias
    np.testing.assert_allclose(keras.ops.convert_to_numpy(model(images)), expected, rtol=1e-5)


def test_dense_classifier_layers_and_round_trip(tmp_path):
    model = build_dense_classifier((8, 8, 1), hidden_units=(16, 8))
    assert [layer.name for layer in model.layers[1:]] == ["flatten", "dense1", "dense2", "logits"]
    assert model.get_layer("dense2").units == 8 and model.output_shape == (None, 10)
    images = np.random.default_rng(1).uniform(size=(3, 8, 8, 1)).astype("float32")
    model.save(tmp_path / "mlp.keras")
    restored = keras.saving.load_model(tmp_path / "mlp.keras")
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(restored(images)),
        keras.ops.convert_to_numpy(model(images)),
        rtol=1e-6,
    )


@pytest.mark.parametrize("hidden_units", [(0,), (16, -1), (2.5,), (True,)])
def test_dense_classifier_rejects_bad_widths(hidden_units):
    with pytest.raises(ValueError, match="hidden_units"):
        build_dense_classifier(hidden_units=hidden_units)


# Epochs that bring each architecture above 85% on the 360 test digits (chance is 10%): the
# softmax regression learns slowest at Adam's 1e-3 (65% after 3 epochs, 90% after 15).
_EPOCHS = {"cnn": 3, "mlp": 3, "linear": 15}


def test_the_epochs_table_covers_every_architecture():
    assert sorted(_EPOCHS) == sorted(CLASSIFIER_ARCHITECTURES)


@pytest.mark.parametrize("architecture", CLASSIFIER_ARCHITECTURES)
def test_every_architecture_learns_the_digits(architecture):
    model, (images, labels) = train_digits_classifier(
        epochs=_EPOCHS[architecture], architecture=architecture
    )
    assert model.name == architecture
    predictions = np.argmax(keras.ops.convert_to_numpy(model(images)), axis=-1)
    assert np.mean(predictions == labels) > 0.85


def test_unknown_architecture_is_rejected():
    with pytest.raises(ValueError, match="architecture='resnet'"):
        train_digits_classifier(epochs=1, architecture="resnet")
