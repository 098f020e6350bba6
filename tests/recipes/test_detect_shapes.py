import json

import keras
import numpy as np
import pytest

from dlkit.recipes import detect_shapes


@pytest.mark.slow
def test_tiny_config_trains_and_writes_every_artefact(tmp_path):
    fpn = True
    config = detect_shapes.Config(
        image_size=16,
        grid_size=2,
        fpn=fpn,
        filters=4,
        num_train=32,
        num_test=8,
        epochs=1,
        batch_size=16,
        output_dir=str(tmp_path),
        verbose=0,
    )
    results = detect_shapes.main(config)
    assert results["backend"] == keras.backend.backend()
    assert results["variant"] == ("fpn" if fpn else "plain")
    assert 0.0 <= results["map_50"] <= 1.0
    assert set(results["ap_50_per_class"]) == {"circle", "square", "triangle"}
    for name in ("model.keras", "detections.png", "history.png"):
        assert (tmp_path / name).stat().st_size > 0, name
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["map_50"] == pytest.approx(results["map_50"])
    # The saved detector loads with its loss and reproduces the reported test loss.
    model = keras.saving.load_model(tmp_path / "model.keras")
    test = detect_shapes.make_data(config, config.num_test, seed=config.seed + 1)
    predictions = model.predict(test["images"], verbose=0)
    assert predictions.shape == (8, 2, 2, 13)
    loss = model.loss(test["targets"], predictions)
    assert np.isclose(float(loss), results["test_loss"], rtol=1e-4)


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"epochs": 0}, r"`epochs` to be a number > 0. Received: epochs=0"),
        ({"image_size": 24, "grid_size": 4}, r"Received: image_size=24, grid_size=4"),
        ({"image_size": 24, "grid_size": 3, "fpn": True}, r"Received: grid_size=3"),
        ({"score_threshold": 1.5}, r"Received: score_threshold=1.5"),
    ],
)
def test_bad_config_values_are_rejected(overrides, message):
    with pytest.raises(ValueError, match=message):
        detect_shapes.Config(**overrides)
