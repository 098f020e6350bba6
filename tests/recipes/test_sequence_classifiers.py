import json

import keras
import numpy as np
import pytest

from dlkit.data.sequences import digit_classification
from dlkit.recipes import sequence_classifiers

TINY = dict(
    epochs=2,
    batch_size=32,
    # Every batch of the same size (32): on JAX each new shape compiles the step again.
    num_train=160,
    num_test=32,
    validation_fraction=0.2,
    embedding_dim=8,
    units=8,
    num_heads=2,
    intermediate_dim=8,
    num_encoder_layers=1,
    verbose=0,
)


@pytest.mark.slow
def test_quick_config_trains_both_models_to_the_gate_and_writes_every_artefact(tmp_path):
    quick = sequence_classifiers.QUICK_CONFIG
    config = sequence_classifiers.Config(**quick, verbose=0, output_dir=str(tmp_path))
    results = sequence_classifiers.main(config)
    assert results["backend"] == keras.backend.backend()
    num_validation = round(config.validation_fraction * config.num_train)
    assert results["num_train"] == config.num_train - num_validation
    for name in (
        "lstm_classifier.keras",
        "transformer_classifier.keras",
        "validation_accuracy.png",
    ):
        assert (tmp_path / name).stat().st_size > 0, name
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    tokens, labels = digit_classification(
        num_train=config.num_train, num_test=config.num_test, max_length=config.max_length
    )["test"]
    for name in sequence_classifiers.MODEL_NAMES:
        assert results[name]["test_accuracy"] >= sequence_classifiers.ACCURACY_GATE, name
        assert metrics[name]["test_accuracy"] == pytest.approx(results[name]["test_accuracy"])
        assert metrics[name]["steps_per_second"] > 0  # timed over the second epoch on
    # The saved model reproduces the reported accuracy (one model: each compiles on JAX).
    model = keras.saving.load_model(tmp_path / "lstm_classifier.keras")
    predictions = np.argmax(model.predict_on_batch(tokens), axis=-1)
    accuracy = np.mean(predictions == labels)
    assert accuracy == pytest.approx(results["lstm_classifier"]["test_accuracy"])


def test_imdb_reviews_trains_on_token_ids_from_tensorflow_datasets(tmp_path, offline_tfds):
    data_dir, mock_data = offline_tfds
    config = sequence_classifiers.Config(
        **{**TINY, "epochs": 1, "batch_size": 20, "validation_fraction": 0.5},
        dataset="imdb_reviews",
        models="transformer",
        max_length=16,
        vocabulary_size=50,
        data_dir=data_dir,
        output_dir=str(tmp_path),
    )
    with mock_data(num_examples=40):
        results = sequence_classifiers.main(config)
    assert results["dataset"] == "imdb_reviews"
    assert "lstm_classifier" not in results
    # Mock reviews of random tokens: nothing to learn, but the metrics file holds the results.
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["transformer_classifier"] == pytest.approx(results["transformer_classifier"])
    assert results["transformer_classifier"]["steps_per_second"] is None  # one epoch: not timed
    model = keras.saving.load_model(tmp_path / "transformer_classifier.keras")
    assert model.get_layer("embedding").max_length == 16


@pytest.mark.parametrize(
    "field, value",
    [
        ("dataset", "mnist"),
        ("models", "gru"),
        ("epochs", 0),
        ("num_heads", 3),
        ("dropout", 1.0),
        ("learning_rate", 0.0),
        ("validation_fraction", 0.0),
    ],
)
def test_bad_config_values_are_rejected(field, value):
    with pytest.raises(ValueError, match=field):
        sequence_classifiers.Config(**{field: value})
