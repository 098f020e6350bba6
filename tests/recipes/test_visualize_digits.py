import json

import keras
import pytest

from dlkit.recipes import visualize_digits


@pytest.mark.slow
def test_tiny_config_writes_every_artefact(tmp_path):
    config = visualize_digits.Config(
        epochs=1,
        steps=4,
        conv2_channels=2,
        inversion_steps=4,
        num_images=2,
        smoothgrad_samples=2,
        output_dir=str(tmp_path),
    )
    results = visualize_digits.main(config)
    assert results["backend"] == keras.backend.backend()
    for name in ("model.keras", "activation_maximization.png", "feature_inversion.png"):
        assert (tmp_path / name).stat().st_size > 0, name
    assert (tmp_path / "saliency.png").stat().st_size > 0
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["logit_end_mean"] > metrics["logit_start_mean"]
    for layer in ("conv1", "conv2", "dense"):
        errors = metrics["feature_inversion_error"][layer]
        assert errors["end"] < errors["start"], layer


@pytest.mark.parametrize("field, value", [("steps", 0), ("conv2_channels", 65), ("num_images", 0)])
def test_bad_config_values_are_rejected(field, value):
    with pytest.raises(ValueError, match=field):
        visualize_digits.Config(**{field: value})
