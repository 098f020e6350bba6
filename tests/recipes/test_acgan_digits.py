import json

import keras
import numpy as np
import pytest

from dlkit.recipes import acgan_digits
from dlkit.vision.judge import REQUESTED_CLASS_THRESHOLD

GATE_KEYS = ("requested_class_accuracy", "requested_class_accuracy_per_class", "meets_80_percent")


def grid_aspect(path):
    """Height / width of a PNG: about 1.1 for the 10 × 10 sample grid."""
    import matplotlib.image

    height, width = matplotlib.image.imread(path).shape[:2]
    return height / width


def test_tiny_config_trains_and_writes_every_artefact(tmp_path):
    config = acgan_digits.Config(
        export="none", epochs=1, latent_dim=4, output_dir=str(tmp_path), verbose=0
    )
    results = acgan_digits.main(config)
    assert results["backend"] == keras.backend.backend()
    assert results["class_head_test_accuracy"] > 0.2  # chance is 0.1
    assert np.isfinite(results["discriminator_loss"]) and np.isfinite(results["generator_loss"])
    for name in ("generator.keras", "samples.png", "history.png", "metrics.json"):
        assert (tmp_path / name).stat().st_size > 0, name
    # One row of 10 samples per class: a square-ish 10 × 10 grid, not a wide strip.
    assert 0.9 < grid_aspect(tmp_path / "samples.png") < 1.3
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert set(GATE_KEYS) <= set(metrics)
    per_class = metrics["requested_class_accuracy_per_class"]
    assert len(per_class) == 10
    # 100 samples requested per class: the overall share is the mean of the per-class shares.
    assert metrics["requested_class_accuracy"] == pytest.approx(np.mean(per_class), abs=1e-3)
    assert metrics["config"]["epochs"] == 1
    generator = keras.saving.load_model(tmp_path / "generator.keras")
    noise = np.zeros((3, 4), "float32")
    one_hot = np.eye(10, dtype="float32")[:3]
    assert tuple(generator([noise, one_hot]).shape) == (3, 8, 8, 1)


@pytest.mark.parametrize(
    ("overrides", "name"),
    [
        ({"latent_dim": 0}, "latent_dim"),
        ({"epochs": 0}, "epochs"),
        ({"discriminator_steps": 0}, "discriminator_steps"),
        ({"learning_rate": 0.0}, "learning_rate"),
        ({"dataset": "svhn"}, "dataset"),
    ],
)
def test_bad_config_values_are_rejected(overrides, name):
    with pytest.raises(ValueError, match=name):
        acgan_digits.Config(**overrides)


def test_mnist_under_mock_data_trains_one_epoch(tmp_path, offline_tfds):
    data_dir, mock_data = offline_tfds
    config = acgan_digits.Config(
        export="none",
        epochs=1,
        batch_size=8,
        latent_dim=4,
        dataset="mnist",
        data_dir=data_dir,
        output_dir=str(tmp_path / "run"),
        verbose=0,
    )
    with mock_data(num_examples=16):
        results = acgan_digits.main(config)
    assert results["dataset"] == "mnist" and np.isfinite(results["generator_loss"])
    assert not set(GATE_KEYS) & set(results)  # the gate needs the digits judge
    generator = keras.saving.load_model(tmp_path / "run" / "generator.keras")
    assert tuple(generator.output_shape) == (None, 28, 28, 1)


@pytest.mark.slow
def test_default_config_draws_the_requested_digit(tmp_path):
    results = acgan_digits.main(
        acgan_digits.Config(export="none", output_dir=str(tmp_path), verbose=0)
    )
    print(f"acgan_digits on {keras.backend.backend()}:", results["requested_class_accuracy"])
    # The judge is a CNN trained on the real digits, not the auxiliary class head; chance is 0.1.
    assert results["requested_class_accuracy"] >= REQUESTED_CLASS_THRESHOLD
    assert results["meets_80_percent"]
