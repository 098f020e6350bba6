import json

import keras
import numpy as np
import pytest

from dlkit.recipes import gan_digits


def test_tiny_config_trains_and_writes_every_artefact(tmp_path):
    config = gan_digits.Config(epochs=2, sample_every=1, output_dir=str(tmp_path), verbose=0)
    results = gan_digits.main(config)
    assert results["backend"] == keras.backend.backend()
    assert np.isfinite(results["discriminator_loss"]) and np.isfinite(results["generator_loss"])
    assert sum(results["class_shares_of_samples"]) == pytest.approx(1.0, abs=1e-6)
    assert [p.rsplit("/", 1)[-1] for p in results["files"]["samples"]] == [
        "samples_epoch_001.png",
        "samples_epoch_002.png",
    ]
    generator = keras.saving.load_model(tmp_path / "generator.keras")
    noise = np.zeros((3, config.latent_dim), "float32")
    assert tuple(generator(noise).shape) == (3, 8, 8, 1)
    assert json.loads((tmp_path / "metrics.json").read_text())["config"]["epochs"] == 2


def test_bad_config_values_are_rejected():
    with pytest.raises(ValueError, match="discriminator_steps"):
        gan_digits.Config(discriminator_steps=0)
