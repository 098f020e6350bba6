import json

import keras
import numpy as np
import pytest

from dlkit.data.sequences import noisy_sine_windows
from dlkit.recipes import forecast_sine


def test_tiny_config_trains_and_writes_every_artefact(tmp_path):
    # 96 training windows in batches of 32 and 24 test windows: one shape per step on JAX.
    config = forecast_sine.Config(
        num_windows=120,
        window=8,
        horizon=2,
        units=4,
        epochs=2,
        validation_fraction=0.0,
        output_dir=str(tmp_path),
        verbose=0,
    )
    results = forecast_sine.main(config)
    assert results["backend"] == keras.backend.backend()
    assert (results["num_train"], results["num_test"]) == (96, 24)
    for name in ("model.keras", "predictions.png"):
        assert (tmp_path / name).stat().st_size > 0, name
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["test_mse"] == pytest.approx(results["test_mse"])
    # The baselines, recomputed from the test windows (the last 24).
    windows, targets = noisy_sine_windows(120, 8, 2, config.noise, config.seed)
    last_values = windows[96:, -1, :]  # (24, 1)
    assert results["last_value_mse"] == pytest.approx(np.mean((last_values - targets[96:]) ** 2))
    mean = targets[:96].mean()
    assert results["mean_mse"] == pytest.approx(np.mean((mean - targets[96:]) ** 2), rel=1e-5)
    # The saved model reproduces the reported test MSE.
    model = keras.saving.load_model(tmp_path / "model.keras")
    predictions = np.asarray(model.predict_on_batch(windows[96:]))
    assert np.mean((predictions - targets[96:]) ** 2) == pytest.approx(
        results["test_mse"], rel=1e-4
    )


def test_baselines_repeat_the_last_value_and_predict_the_mean():
    windows = np.array([[[1.0], [2.0]], [[3.0], [5.0]]], "float32")  # (2, 2, 1)
    targets = np.array([[2.0, 4.0], [5.0, 5.0]], "float32")  # (2, horizon=2)
    mses = forecast_sine.baseline_mses(windows, targets, train_mean=4.0)
    assert mses["last_value"] == pytest.approx((0 + 4 + 0 + 0) / 4)
    assert mses["mean"] == pytest.approx((4 + 0 + 1 + 1) / 4)


@pytest.mark.parametrize(
    "field, value",
    [("window", 0), ("noise", -0.1), ("test_fraction", 1.0), ("validation_fraction", 1.0)],
)
def test_bad_config_values_are_rejected(field, value):
    with pytest.raises(ValueError, match=field):
        forecast_sine.Config(**{field: value})
