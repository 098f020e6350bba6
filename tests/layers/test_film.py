import keras
import numpy as np
import pytest

from dlkit.layers.film import FiLM, LabelChannels
from dlkit.testing import run_layer_test


def _random(shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype("float32")


@pytest.mark.parametrize(
    "hidden_units, features_shape, num_weights",
    [(None, (2, 4, 4, 3), 2), (5, (2, 6, 3), 4), (None, (2, 3), 2)],
)
def test_film_passes_the_layer_checks(hidden_units, features_shape, num_weights):
    layer = run_layer_test(
        FiLM,
        {"hidden_units": hidden_units},
        input_shape=(features_shape, (2, 7)),
        expected_output_shape=features_shape,
        expected_num_trainable_weights=num_weights,
        expected_num_non_trainable_weights=0,
    )
    assert tuple(layer.projection.kernel.shape) == (hidden_units or 7, 2 * features_shape[-1])


def test_film_matches_numpy():
    features, condition = _random((2, 3, 4, 3), 1), _random((2, 5), 2)
    layer = FiLM(hidden_units=6, hidden_activation="tanh")
    layer(features, condition)
    hidden_kernel, hidden_bias = _random((5, 6), 3), _random((6,), 4)
    kernel, bias = _random((6, 6), 5), _random((6,), 6)
    layer.set_weights([hidden_kernel, hidden_bias, kernel, bias])

    modulation = np.tanh(condition @ hidden_kernel + hidden_bias) @ kernel + bias
    gamma, beta = 1.0 + modulation[:, :3], modulation[:, 3:]
    expected = gamma[:, None, None, :] * features + beta[:, None, None, :]
    received = keras.ops.convert_to_numpy(layer(features, condition))
    np.testing.assert_allclose(received, expected, rtol=1e-5, atol=1e-5)


def test_film_starts_close_to_the_identity():
    features = _random((4, 5, 5, 8), 1)
    condition = np.eye(4, 10, dtype="float32")
    for hidden_units in (None, 16):
        layer = FiLM(hidden_units=hidden_units)
        shift = keras.ops.convert_to_numpy(layer(np.zeros_like(features), condition))  # β
        scale = keras.ops.convert_to_numpy(layer(np.ones_like(features), condition)) - shift  # γ
        assert np.max(np.abs(scale - 1.0)) < 0.25
        assert np.max(np.abs(shift)) < 0.25
        assert np.std(scale) > 0  # not exactly the identity: every weight gets a gradient


def test_film_passes_the_features_mask_through():
    features = _random((2, 5, 3), 1)
    features[0, 3:] = 0.0  # the last two steps of the first sequence are padding
    features[1, 4:] = 0.0
    condition = _random((2, 4), 2)
    film = FiLM()
    feature_input, condition_input = keras.Input((5, 3)), keras.Input((4,))
    modulated = film(keras.layers.Masking(mask_value=0.0)(feature_input), condition_input)
    pooled = keras.layers.GlobalAveragePooling1D()(modulated)
    model = keras.Model([feature_input, condition_input], pooled)

    outputs = keras.ops.convert_to_numpy(film(features, condition))
    expected = np.stack([outputs[0, :3].mean(axis=0), outputs[1, :4].mean(axis=0)])
    received = keras.ops.convert_to_numpy(model([features, condition]))
    np.testing.assert_allclose(received, expected, rtol=1e-5, atol=1e-6)
    assert not np.allclose(received, outputs.mean(axis=1), atol=1e-3)  # padding was ignored


def test_film_rejects_bad_arguments():
    with pytest.raises(ValueError, match="hidden_units=0"):
        FiLM(hidden_units=0)
    features = np.ones((2, 4, 4, 3), dtype="float32")
    with pytest.raises(ValueError, match=r"`condition`.*Received: condition.shape=\(2, 1, 5\)"):
        FiLM()(features, np.ones((2, 1, 5), dtype="float32"))
    with pytest.raises(ValueError, match=r"Received: condition.shape=\(3, 5\)"):
        FiLM()(features, np.ones((3, 5), dtype="float32"))
    layer = FiLM()
    layer(features, np.ones((2, 5), dtype="float32"))
    with pytest.raises(ValueError, match=r"Received: condition.shape=\(4, 5\)"):
        layer(features, np.ones((4, 5), dtype="float32"))


def _label_channels_expected(images, indices, num_classes):
    one_hot = np.eye(num_classes, dtype="float32")[indices]  # (B, K)
    planes = np.broadcast_to(one_hot[:, None, None, :], (*images.shape[:3], num_classes))
    return np.concatenate([images, planes], axis=-1)


def test_label_channels_passes_the_layer_checks_and_matches_numpy():
    images, labels = _random((2, 4, 4, 3)), np.array([7, 2], dtype="int32")
    run_layer_test(
        LabelChannels,
        {"num_classes": 10},
        input_data=(images, labels),
        expected_output_shape=(2, 4, 4, 13),
        expected_output=_label_channels_expected(images, labels, 10),
        expected_num_trainable_weights=0,
        expected_num_non_trainable_weights=0,
        run_training_check=False,
    )


def test_label_channels_accepts_indices_in_a_column_and_one_hot_labels():
    images, indices = _random((3, 2, 5, 1)), np.array([0, 3, 1])
    expected = _label_channels_expected(images, indices, 4)
    layer = LabelChannels(4)
    for labels in (indices[:, None], np.eye(4, dtype="float32")[indices]):
        received = keras.ops.convert_to_numpy(layer(images, labels))
        np.testing.assert_array_equal(received, expected)
    flat = keras.ops.convert_to_numpy(LabelChannels(4)(images[:, 0, 0, :], indices))  # (B, C)
    np.testing.assert_array_equal(flat, expected[:, 0, 0, :])


def test_conditional_network_runs_with_an_unknown_batch_size():
    image_input = keras.Input((6, 6, 1))
    label_input = keras.Input((), dtype="int32")
    hidden = keras.layers.Conv2D(4, 3, padding="same")(LabelChannels(3)(image_input, label_input))
    condition = keras.layers.CategoryEncoding(3, output_mode="one_hot")(label_input)
    outputs = FiLM(hidden_units=8)(hidden, condition)
    model = keras.Model([image_input, label_input], outputs)
    predictions = model.predict([_random((5, 6, 6, 1)), np.array([0, 1, 2, 1, 0])], verbose=0)
    assert predictions.shape == (5, 6, 6, 4)
    assert np.all(np.isfinite(predictions))


def test_label_channels_rejects_bad_arguments():
    with pytest.raises(ValueError, match="num_classes=0"):
        LabelChannels(0)
    images = np.ones((2, 4, 4, 3), dtype="float32")
    with pytest.raises(ValueError, match=r"`labels`.*Received: labels.shape=\(2, 3\)"):
        LabelChannels(10)(images, np.ones((2, 3), dtype="float32"))
    with pytest.raises(ValueError, match=r"Received: labels.shape=\(3,\)"):
        LabelChannels(10)(images, np.ones((3,), dtype="int32"))


def test_fit_learns_a_condition_dependent_scale_and_shift():
    keras.utils.set_random_seed(0)
    features = _random((256, 2), 1)
    condition = np.eye(3, dtype="float32")[np.random.default_rng(2).integers(0, 3, 256)]
    scales = np.array([[-1.0, 2.0], [3.0, 0.5], [1.0, -2.0]], dtype="float32")
    targets = features * (condition @ scales) + condition @ scales[::-1]
    feature_input, condition_input = keras.Input((2,)), keras.Input((3,))
    model = keras.Model([feature_input, condition_input], FiLM()(feature_input, condition_input))
    model.compile(keras.optimizers.Adam(0.05), "mse")
    history = model.fit([features, condition], targets, epochs=20, batch_size=64, verbose=0)
    assert history.history["loss"][-1] < 1e-3 * history.history["loss"][0]
