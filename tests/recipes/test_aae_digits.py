import json

import keras
import numpy as np
import pytest

from dlkit.data import digits
from dlkit.recipes import aae_digits


def test_tiny_config_trains_and_writes_every_artefact(tmp_path):
    config = aae_digits.Config(export="none", epochs=2, output_dir=str(tmp_path), verbose=0)
    results = aae_digits.main(config)
    assert results["backend"] == keras.backend.backend()
    # The untrained decoder's outputs ≈ 0.5 give an error ≈ 0.17 per pixel on the digits.
    assert results["test_reconstruction_error_before"] > 0.15
    assert results["test_reconstruction_error"] < 0.8 * results["test_reconstruction_error_before"]
    assert len(results["code_mean"]) == len(results["code_std"]) == 2
    np.testing.assert_allclose(results["prior_mean"], 0.0, atol=0.05)
    np.testing.assert_allclose(results["prior_std"], 1.0, atol=0.05)
    for name in ("reconstruction_loss", "discriminator_loss", "generator_loss"):
        assert np.isfinite(results[name]), name
    for name in ("model.keras", "samples.png", "latent.png", "manifold.png", "history.png"):
        assert (tmp_path / name).stat().st_size > 0, name
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["test_reconstruction_error"] == results["test_reconstruction_error"]
    assert metrics["config"]["epochs"] == 2
    # The saved model encodes the test digits as the trained one did (same code statistics).
    images, _ = digits("test")
    restored = keras.saving.load_model(tmp_path / "model.keras")
    codes = keras.ops.convert_to_numpy(restored.encode(images))
    np.testing.assert_allclose(codes.mean(axis=0), results["code_mean"], atol=1e-3)
    np.testing.assert_allclose(codes.std(axis=0), results["code_std"], atol=1e-3)


def test_mixture_prior_with_a_3d_code_skips_the_2d_figures(tmp_path):
    config = aae_digits.Config(
        export="none", epochs=1, latent_dim=3, prior="mixture", output_dir=str(tmp_path), verbose=0
    )
    results = aae_digits.main(config)
    assert len(results["code_std"]) == 3
    # The mixture's radius 1.4 spreads the first two dimensions beyond a unit deviation.
    assert min(results["prior_std"][:2]) > 1.0
    assert "latent" not in results["files"] and not (tmp_path / "latent.png").exists()
    assert (tmp_path / "samples.png").stat().st_size > 0


def test_bad_config_values_are_rejected():
    with pytest.raises(ValueError, match="prior"):
        aae_digits.Config(export="none", prior="laplace")
    with pytest.raises(ValueError, match="reconstruction_weight"):
        aae_digits.Config(export="none", reconstruction_weight=-1.0)
    with pytest.raises(ValueError, match="latent_dim"):
        aae_digits.Config(export="none", latent_dim=1, prior="mixture")
    with pytest.raises(ValueError, match="dataset"):
        aae_digits.Config(export="none", dataset="imagenet")


def test_mnist_under_mock_data_trains_one_epoch(tmp_path, offline_tfds):
    data_dir, mock_data = offline_tfds
    config = aae_digits.Config(
        export="none",
        epochs=1,
        batch_size=8,
        dataset="mnist",
        data_dir=data_dir,
        output_dir=str(tmp_path / "run"),
        verbose=0,
    )
    with mock_data(num_examples=16):
        results = aae_digits.main(config)
    assert results["dataset"] == "mnist"
    assert np.isfinite(results["test_reconstruction_error"])
    restored = keras.saving.load_model(tmp_path / "run" / "model.keras")
    assert tuple(restored.sample(2).shape) == (2, 28, 28, 1)
    assert (tmp_path / "run" / "latent.png").stat().st_size > 0
