import keras
import numpy as np
import pytest

from dlkit.models.sequence_models import (
    build_lstm_classifier,
    build_lstm_forecaster,
    build_transformer_classifier,
)

VOCABULARY_SIZE = 13
# Two sequences of lengths 4 and 2, padded with id 0 to length 5.
TOKENS = np.array([[3, 7, 4, 9, 0], [5, 12, 0, 0, 0]], dtype="int32")


def _lstm_classifier(**kwargs):
    keras.utils.set_random_seed(0)
    return build_lstm_classifier(VOCABULARY_SIZE, num_classes=3, embedding_dim=6, units=5, **kwargs)


def _transformer_classifier(**kwargs):
    keras.utils.set_random_seed(0)
    return build_transformer_classifier(
        VOCABULARY_SIZE, num_classes=3, max_length=8, model_dim=8, intermediate_dim=16, **kwargs
    )


# Shared by the tests that only run the models (building one is slow on JAX); two layers each,
# so that the padding mask must reach the second layer too.
@pytest.fixture(scope="module")
def lstm_classifier():
    return _lstm_classifier(num_layers=2, dropout=0.5)


@pytest.fixture(scope="module")
def transformer_classifier():
    return _transformer_classifier(num_layers=2, dropout=0.1)


def _run(model, inputs):
    # Compiled on every backend; on TensorFlow a second sequence length retraces the function
    # with the length unknown, which the masked LSTM loop must handle.
    return keras.ops.convert_to_numpy(model.predict_on_batch(inputs))


@pytest.mark.parametrize("name", ["lstm_classifier", "transformer_classifier"])
def test_classifiers_ignore_padding_appended_to_the_sequences(request, name):
    model = request.getfixturevalue(name)
    logits = _run(model, TOKENS)
    assert logits.shape == (2, 3)
    longer = np.pad(TOKENS, ((0, 0), (0, 3)))  # three more PAD tokens: length 8
    np.testing.assert_allclose(_run(model, longer), logits, atol=1e-5)
    # A real token where there was padding does change the logits.
    changed = TOKENS.copy()
    changed[1, 2] = 6
    assert np.max(np.abs(_run(model, changed)[1] - logits[1])) > 1e-4


def test_stacked_lstm_layers_pass_whole_sequences_up(lstm_classifier):
    lstms = [layer for layer in lstm_classifier.layers if "lstm" in layer.name]
    assert [layer.return_sequences for layer in lstms] == [True, False]
    dropouts = [layer for layer in lstm_classifier.layers if "dropout" in layer.name]
    assert [layer.rate for layer in dropouts] == [0.5, 0.5]
    # Dropout is off at inference: two passes agree.
    np.testing.assert_allclose(
        _run(lstm_classifier, TOKENS), _run(lstm_classifier, TOKENS), atol=1e-6
    )


def test_transformer_pools_with_the_mean_over_unpadded_positions(transformer_classifier):
    model = transformer_classifier
    probe = keras.Model(
        model.input, [model.get_layer("encoder_1").output, model.get_layer("masked_mean").output]
    )
    encoded, pooled = (np.asarray(x) for x in probe.predict_on_batch(TOKENS))
    mask = (TOKENS != 0)[..., None].astype("float32")  # (B, T, 1)
    expected = (encoded * mask).sum(axis=1) / mask.sum(axis=1)  # (B, D)
    np.testing.assert_allclose(pooled, expected, atol=1e-5)
    assert np.max(np.abs(pooled - encoded.mean(axis=1))) > 1e-3  # not the plain mean


def test_transformer_rejects_sequences_longer_than_max_length(transformer_classifier):
    with pytest.raises(ValueError, match="max_length=8"):
        transformer_classifier(np.ones((1, 9), "int32"))


@pytest.fixture(scope="module")
def lstm_forecaster():
    keras.utils.set_random_seed(0)
    return build_lstm_forecaster(window=6, num_features=2, horizon=3, units=4, num_layers=2)


WINDOWS = np.random.default_rng(0).normal(size=(5, 6, 2)).astype("float32")


def test_forecaster_maps_windows_to_the_horizon(lstm_forecaster):
    model = lstm_forecaster
    forecast = _run(model, WINDOWS)
    assert forecast.shape == (5, 3)
    # The read-out is linear in the last LSTM's final hidden state.
    hidden = np.asarray(
        keras.Model(model.input, model.get_layer("lstm_1").output).predict_on_batch(WINDOWS)
    )
    kernel, bias = model.get_layer("forecast").get_weights()
    np.testing.assert_allclose(forecast, hidden @ kernel + bias, atol=1e-5)


@pytest.mark.parametrize(
    "name, inputs",
    [
        ("lstm_classifier", TOKENS),
        ("transformer_classifier", TOKENS),
        ("lstm_forecaster", WINDOWS),
    ],
)
def test_keras_file_round_trip_keeps_the_outputs(tmp_path, request, name, inputs):
    model = request.getfixturevalue(name)
    path = tmp_path / "model.keras"
    model.save(path)
    restored = keras.saving.load_model(path)
    assert restored.name == model.name
    np.testing.assert_allclose(_run(restored, inputs), _run(model, inputs), atol=1e-6)


@pytest.mark.parametrize(
    "build, arguments, name",
    [
        (build_lstm_classifier, dict(vocabulary_size=1, num_classes=2), "vocabulary_size"),
        (build_lstm_classifier, dict(vocabulary_size=13, num_classes=1), "num_classes"),
        (build_lstm_classifier, dict(vocabulary_size=13, num_classes=2, units=0), "units"),
        (build_lstm_classifier, dict(vocabulary_size=13, num_classes=2, dropout=1.0), "dropout"),
        (
            build_lstm_classifier,
            dict(vocabulary_size=13, num_classes=2, num_layers=2.0),
            "num_layers",
        ),
        (
            build_transformer_classifier,
            dict(vocabulary_size=13, num_classes=2, max_length=0),
            "max_length",
        ),
        (
            build_transformer_classifier,
            dict(vocabulary_size=13, num_classes=2, max_length=8, model_dim=6, num_heads=4),
            "num_heads",
        ),
        (build_lstm_forecaster, dict(window=0), "window"),
        (build_lstm_forecaster, dict(window=4, horizon=True), "horizon"),
    ],
)
def test_bad_arguments_are_rejected_by_name(build, arguments, name):
    with pytest.raises(ValueError, match=rf"`{name}`.*Received: .*{name}="):
        build(**arguments)


def _contains_token_task(num_examples, length=6, seed=0):
    """Label 1 when the (padded) sequence holds token 3: the answer may sit at any position."""
    rng = np.random.default_rng(seed)
    tokens = rng.integers(4, VOCABULARY_SIZE, size=(num_examples, length))
    labels = rng.integers(0, 2, size=num_examples)
    positions = rng.integers(0, length, size=num_examples)
    tokens[labels == 1, positions[labels == 1]] = 3
    lengths = rng.integers(2, length + 1, size=num_examples)
    lengths = np.where(labels == 1, np.maximum(lengths, positions + 1), lengths)
    tokens[np.arange(length) >= lengths[:, None]] = 0
    return tokens.astype("int32"), labels.astype("int32")


@pytest.mark.slow
def test_lstm_classifier_learns_whether_a_token_occurs():
    # The LSTM must remember across steps that token 3 went by; the recipe's tests train the
    # transformer classifier.
    tokens, labels = _contains_token_task(1024)
    test_tokens, test_labels = _contains_token_task(256, seed=1)
    model = _lstm_classifier()
    model.compile(
        optimizer=keras.optimizers.Adam(1e-2),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    model.fit(tokens, labels, batch_size=64, epochs=4, verbose=0)
    accuracy = np.mean(np.argmax(_run(model, test_tokens), axis=-1) == test_labels)
    assert accuracy >= 0.9  # chance is 0.5
