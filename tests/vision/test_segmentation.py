import keras
import numpy as np
import pytest

from dlkit.data import shapes
from dlkit.vision.classifier import build_cnn_classifier
from dlkit.vision.segmentation import (
    build_fcn,
    class_iou,
    convolutionalize,
    mean_iou,
    predict_masks,
    train_fcn,
)


def _images(shape, seed=0):
    return np.random.default_rng(seed).uniform(size=shape).astype("float32")


def _valid_padding_classifier():
    """10×10 input, valid convolution: every heat-map cell is exactly the classifier on a crop."""
    keras.utils.set_random_seed(1)
    inputs = keras.Input((10, 10, 2))
    x = keras.layers.Conv2D(3, 3, name="conv")(inputs)  # (8, 8, 3)
    x = keras.layers.BatchNormalization(name="norm")(x)
    x = keras.layers.ReLU(name="relu")(x)
    x = keras.layers.MaxPooling2D(2, name="pool")(x)  # (4, 4, 3)
    x = keras.layers.Flatten(name="flatten")(x)
    x = keras.layers.Dropout(0.5, name="dropout")(x)
    x = keras.layers.Dense(6, activation="tanh", name="hidden")(x)
    x = keras.layers.Dense(5, name="logits")(x)
    outputs = keras.layers.Softmax(name="probabilities")(x)
    return keras.Model(inputs, outputs)


def test_convolutionalized_cnn_matches_the_classifier_and_gives_a_heat_map():
    keras.utils.set_random_seed(0)
    classifier = build_cnn_classifier(filters=4, dense_units=8)
    before = [np.copy(w) for w in classifier.get_weights()]
    fcn = convolutionalize(classifier)
    images = _images((3, 8, 8, 1))
    outputs = keras.ops.convert_to_numpy(fcn(images))
    assert outputs.shape == (3, 1, 1, 10)
    expected = keras.ops.convert_to_numpy(classifier(images))
    np.testing.assert_allclose(outputs[:, 0, 0], expected, atol=1e-5)
    assert tuple(fcn.input.shape) == (None, None, None, 1)
    dense, logits = fcn.get_layer("dense"), fcn.get_layer("logits")
    assert isinstance(dense, keras.layers.Conv2D) and dense.kernel_size == (4, 4)
    assert isinstance(logits, keras.layers.Conv2D) and logits.kernel_size == (1, 1)
    # 16×16 → pooled 8×8 map → a 4×4 kernel fits 8 − 4 + 1 = 5 times along each axis.
    assert tuple(fcn(_images((2, 16, 16, 1))).shape) == (2, 5, 5, 10)
    assert tuple(fcn(_images((1, 8, 20, 1))).shape) == (1, 1, 7, 10)
    # The classifier keeps its own weights: the new layers hold copies.
    fcn.get_layer("logits").bias.assign(np.ones(10, "float32"))
    for old, new in zip(before, classifier.get_weights(), strict=True):
        np.testing.assert_array_equal(old, new)


def test_every_heat_map_cell_is_the_classifier_on_its_window():
    classifier = _valid_padding_classifier()
    # Non-trivial statistics so that the copied normalisation matters.
    norm = classifier.get_layer("norm")
    norm.set_weights(
        [w + np.linspace(0.5, 1.5, w.size).reshape(w.shape) for w in norm.get_weights()]
    )
    fcn = convolutionalize(classifier, name="heat")
    assert fcn.name == "heat"
    image = _images((1, 14, 12, 2), seed=3)
    heat = keras.ops.convert_to_numpy(fcn(image))
    # conv: 12×10, pool: 6×5, kernel 4×4: 3×2 windows offset by the pooling stride 2.
    assert heat.shape == (1, 3, 2, 5)
    crops = np.stack(
        [image[0, 2 * i : 2 * i + 10, 2 * j : 2 * j + 10] for i in range(3) for j in range(2)]
    )
    expected = keras.ops.convert_to_numpy(classifier(crops)).reshape(3, 2, 5)
    np.testing.assert_allclose(heat[0], expected, atol=1e-5)
    np.testing.assert_allclose(heat.sum(axis=-1), 1.0, atol=1e-5)  # softmax over classes kept


def _model(*layers, input_shape=(8, 8, 1)):
    inputs = keras.Input(input_shape)
    x = inputs
    for layer in layers:
        x = layer(x)
    return keras.Model(inputs, x)


@pytest.mark.parametrize(
    "layers, match",
    [
        (
            lambda: [
                keras.layers.Conv2D(2, 3, name="conv"),
                keras.layers.GlobalAveragePooling2D(name="gap"),
                keras.layers.Dense(3, name="out"),
            ],
            r"'gap'",
        ),
        (lambda: [keras.layers.Conv2D(2, 3, name="conv")], r"without a Dense layer"),
        (
            lambda: [
                keras.layers.Flatten(name="flatten"),
                keras.layers.BatchNormalization(name="feature_norm"),
                keras.layers.Dense(3, name="out"),
            ],
            r"'feature_norm'",
        ),
        (
            lambda: [keras.layers.Reshape((64, 1), name="reshape"), keras.layers.Flatten()],
            r"'reshape'",
        ),
    ],
)
def test_unsupported_models_name_the_layer(layers, match):
    with pytest.raises(ValueError, match=match):
        convolutionalize(_model(*layers()))


def test_convolutionalize_rejects_non_image_models():
    with pytest.raises(ValueError, match=r"image input"):
        convolutionalize(_model(keras.layers.Dense(3), input_shape=(5,)))
    with pytest.raises(ValueError, match=r"model="):
        convolutionalize("not a model")


def test_mean_iou_on_hand_made_masks():
    truth = np.array([[[0, 0, 1], [0, 2, 2]]])
    assert mean_iou(truth, truth, 3) == 1.0
    assert mean_iou(np.zeros((2, 2), int), np.ones((2, 2), int), 2) == 0.0
    prediction = np.array([[[0, 1, 1], [0, 2, 0]]])
    # class 0: ∩ 2, ∪ 4; class 1: ∩ 1, ∪ 2; class 2: ∩ 1, ∪ 2.
    np.testing.assert_allclose(class_iou(truth, prediction, 3), [0.5, 0.5, 0.5])
    assert mean_iou(truth, prediction, 3) == pytest.approx(0.5)
    # Classes absent from truth and prediction are left out; a false class counts as 0.
    np.testing.assert_allclose(class_iou(truth, truth, 5), [1, 1, 1, np.nan, np.nan])
    assert mean_iou(np.array([0, 0, 1, 1]), np.array([0, 0, 1, 3]), 5) == pytest.approx(
        (1 + 0.5 + 0) / 3
    )
    # Scores are reduced by argmax over their last axis.
    scores = keras.ops.one_hot(prediction, 3)
    assert mean_iou(truth, scores, 3) == pytest.approx(0.5)


@pytest.mark.parametrize(
    "y_true, y_pred, num_classes, match",
    [
        (np.zeros((2, 2), int), np.zeros((2, 2, 3)), 4, r"num_classes=4"),
        (np.zeros((2, 2), int), np.full((2, 2), 4), 4, r"y_pred"),
        (np.zeros((2, 2), int), np.zeros((2, 3), int), 4, r"shape"),
        (np.zeros((2, 2)), np.zeros((2, 2), int), 4, r"integer classes"),
    ],
)
def test_mean_iou_rejects_mismatched_inputs(y_true, y_pred, num_classes, match):
    with pytest.raises(ValueError, match=match):
        mean_iou(y_true, y_pred, num_classes)


def test_fcn_shapes_and_keras_round_trip(tmp_path):
    model = build_fcn(num_classes=4, filters=4, depth=1)  # layer sizes of the training test
    images = _images((2, 16, 24, 3))
    outputs = keras.ops.convert_to_numpy(model(images))
    assert outputs.shape == (2, 16, 24, 4)
    model.save(tmp_path / "fcn.keras")
    restored = keras.saving.load_model(tmp_path / "fcn.keras")
    np.testing.assert_allclose(keras.ops.convert_to_numpy(restored(images)), outputs, atol=1e-6)
    assert predict_masks(restored, images).shape == (2, 16, 24)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"input_shape": (30, 32, 3)}, r"input_shape"),
        ({"input_shape": (32, 32)}, r"input_shape"),
        ({"num_classes": 1}, r"num_classes"),
        ({"filters": 0}, r"filters"),
    ],
)
def test_build_fcn_rejects_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        build_fcn(**kwargs)


def test_a_few_epochs_reduce_the_per_pixel_loss():
    keras.utils.set_random_seed(0)
    data = shapes(32, image_size=16, seed=0)
    model = build_fcn((16, 16, 3), num_classes=4, filters=4, depth=1)
    history = train_fcn(
        model, data["images"], data["masks"], epochs=5, batch_size=8, learning_rate=3e-2
    )
    losses = history.history["loss"]  # 20 steps from about log(4) = 1.39
    assert losses[-1] < 0.85 * losses[0]
    masks = predict_masks(model, data["images"])
    assert masks.dtype == np.int32 and masks.shape == (32, 16, 16)


def test_train_fcn_rejects_bad_inputs():
    data = shapes(2, image_size=8, seed=0)
    model = build_fcn((8, 8, 3), num_classes=3, filters=2, depth=1)
    masks = np.where(data["masks"] > 2, 2, data["masks"])
    masks[0, 0, 0] = 3  # the class count of dlkit.data.shapes masks exceeds the model's 3
    with pytest.raises(ValueError, match=r"num_classes=3"):
        train_fcn(model, data["images"], masks, epochs=1)
    with pytest.raises(ValueError, match=r"masks"):
        train_fcn(model, data["images"], masks[:, :4], epochs=1)
    with pytest.raises(ValueError, match=r"images"):
        train_fcn(model, data["images"][0], masks[0], epochs=1)
    with pytest.raises(ValueError, match=r"images"):
        predict_masks(model, "pixels")
