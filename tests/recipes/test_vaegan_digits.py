import json

import keras
import numpy as np
import pytest

from dlkit.data import digits
from dlkit.recipes import vaegan_digits


def test_tiny_config_trains_and_writes_every_artefact(tmp_path):
    config = vaegan_digits.Config(export="none", epochs=2, output_dir=str(tmp_path), verbose=0)
    results = vaegan_digits.main(config)
    assert results["backend"] == keras.backend.backend()
    # Two epochs already bring the held-out pixel error well below its starting value.
    assert results["test_pixel_mse"] < 0.9 * results["test_pixel_mse_before"]
    assert np.isfinite(results["test_kl"]) and results["test_kl"] > 0
    for name in ("encoder_loss", "decoder_loss", "discriminator_loss", "kl_loss", "feature_loss"):
        assert np.isfinite(results[name]), name
    assert len(results["class_shares"]) == 10
    assert sum(results["class_shares"]) == pytest.approx(1.0, abs=1e-2)
    for name in ("model.keras", "reconstructions.png", "samples.png", "history.png"):
        assert (tmp_path / name).stat().st_size > 0, name
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["test_pixel_mse"] == results["test_pixel_mse"]
    assert metrics["config"]["epochs"] == 2
    images, _ = digits("test", value_range=(-1, 1))
    restored = keras.saving.load_model(tmp_path / "model.keras")
    assert tuple(restored(images[:4]).shape) == (4, 8, 8, 1)
    assert tuple(restored.sample(3).shape) == (3, 8, 8, 1)


def test_bad_config_values_are_rejected():
    with pytest.raises(ValueError, match="feature_weight"):
        vaegan_digits.Config(export="none", feature_weight=-1.0)
    with pytest.raises(ValueError, match="beta"):
        vaegan_digits.Config(export="none", beta=-0.1)
    with pytest.raises(ValueError, match="latent_dim"):
        vaegan_digits.Config(export="none", latent_dim=0)
    with pytest.raises(ValueError, match="dataset"):
        vaegan_digits.Config(export="none", dataset="imagenet")


def test_mnist_under_mock_data_trains_one_epoch(tmp_path, offline_tfds):
    data_dir, mock_data = offline_tfds
    config = vaegan_digits.Config(
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
        results = vaegan_digits.main(config)
    assert results["dataset"] == "mnist"
    assert np.isfinite(results["test_pixel_mse"]) and np.isfinite(results["test_kl"])
    assert "class_shares" not in results
    restored = keras.saving.load_model(tmp_path / "run" / "model.keras")
    assert tuple(restored.sample(2).shape) == (2, 28, 28, 1)
