import json

import keras
import numpy as np
import pytest

from dlkit.data import digits
from dlkit.recipes import vae_digits


def test_tiny_config_improves_the_elbo_and_writes_every_artefact(tmp_path):
    config = vae_digits.Config(export="none", epochs=3, output_dir=str(tmp_path), verbose=0)
    results = vae_digits.main(config)
    assert results["backend"] == keras.backend.backend()
    assert results["test_elbo"] > results["test_elbo_before"] + 5  # nats per image
    assert np.isfinite(results["test_kl"]) and results["test_kl"] > 0
    for name in ("model.keras", "samples.png", "latent.png", "manifold.png", "history.png"):
        assert (tmp_path / name).stat().st_size > 0, name
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["test_elbo"] == results["test_elbo"]
    # The saved model reconstructs like the trained one (the mean code is used at inference).
    images, _ = digits("test")
    restored = keras.saving.load_model(tmp_path / "model.keras")
    assert restored.reconstruct(images[:4]).shape == (4, 8, 8, 1)


def test_a_tfds_dataset_trains_networks_sized_to_its_images(tmp_path, offline_tfds):
    data_dir, mock_data = offline_tfds
    config = vae_digits.Config(
        export="none",
        epochs=1,
        dataset="mnist",
        data_dir=data_dir,
        output_dir=str(tmp_path / "run"),
        verbose=0,
    )
    with mock_data(num_examples=64):
        results = vae_digits.main(config)
    assert results["dataset"] == "mnist"
    assert np.isfinite(results["test_elbo"])
    restored = keras.saving.load_model(tmp_path / "run" / "model.keras")
    assert tuple(restored.sample(2).shape) == (2, 28, 28, 1)


def test_unknown_dataset_is_rejected():
    with pytest.raises(ValueError, match="dataset"):
        vae_digits.Config(export="none", dataset="imagenet")
