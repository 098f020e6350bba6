import json

import keras
import numpy as np
import pytest

from dlkit.data import digits
from dlkit.export import verify
from dlkit.recipes import classifier_digits


def test_tiny_config_trains_and_writes_every_artefact(tmp_path):
    config = classifier_digits.Config(epochs=2, filters=4, output_dir=str(tmp_path), verbose=0)
    results = classifier_digits.main(config)
    assert results["backend"] == keras.backend.backend()
    assert results["test_accuracy"] > 0.5  # chance is 0.1
    for name in ("model.keras", "confusion_matrix.png", "misclassified.png", "history.png"):
        assert (tmp_path / name).stat().st_size > 0, name
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["test_accuracy"] == pytest.approx(results["test_accuracy"])
    assert metrics["num_train"] + metrics["num_test"] == 1797
    # The saved model reproduces the reported accuracy.
    images, labels = digits("test", seed=config.seed)
    model = keras.saving.load_model(tmp_path / "model.keras")
    accuracy = np.mean(np.argmax(model.predict(images, verbose=0), axis=-1) == labels)
    assert accuracy == pytest.approx(results["test_accuracy"], abs=1e-6)
    # The SavedModel written next to it serves the same probabilities.
    expected = model.predict(images[:5], verbose=0)
    assert verify(results["files"]["model_export"], images[:5], expected) <= 1e-5


def test_interrupted_run_resumes_from_its_backup(tmp_path, interrupt_after_second_epoch):

    config = classifier_digits.Config(
        export="none", epochs=3, filters=4, output_dir=str(tmp_path), verbose=0
    )
    with pytest.raises(KeyboardInterrupt):
        classifier_digits.main(config)
    interrupt_after_second_epoch()  # back to the original callback
    results = classifier_digits.main(config)
    assert results["epochs_run_this_session"] == 1  # epochs 1-2 came from the backup
    assert not (tmp_path / "backup").exists()  # removed once training completed


@pytest.mark.slow
def test_five_epochs_reach_90_percent_test_accuracy(tmp_path):
    config = classifier_digits.Config(export="none", epochs=5, output_dir=str(tmp_path), verbose=0)
    assert classifier_digits.main(config)["test_accuracy"] >= 0.90


@pytest.mark.parametrize(
    "field, value", [("epochs", 0), ("dropout", 1.0), ("learning_rate", -1.0), ("filters", 0)]
)
def test_bad_config_values_are_rejected(field, value):
    with pytest.raises(ValueError, match=field):
        classifier_digits.Config(**{field: value})
