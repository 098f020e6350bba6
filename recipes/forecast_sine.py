"""Forecast a noisy sum of sine waves with an LSTM, against two simple baselines.

Each example is a window of past values of one series and the next ``horizon`` values: an
LSTM reads the window step by step and a linear layer maps its final hidden state to the
forecast, trained with the mean squared error [notes §7.1, eqs. 7.1-7.6]. The windows are
split in time: the first ones train the model, the last ``test_fraction`` of them (later
times) test it. The test MSE is reported beside two baselines, repeating the window's last
value and predicting the training mean (whose MSE is about the series' variance), and beside
the noise floor ``noise²`` that no forecaster can beat on average.

Artefacts in ``output_dir``: ``model.keras``, ``predictions.png`` (forecasts vs truth over the
first test windows) and ``metrics.json``.

Run: ``dlkit run forecast_sine --epochs 20`` or ``python recipes/forecast_sine.py``.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import keras
import numpy as np

from dlkit.data.sequences import noisy_sine_windows
from dlkit.models.sequence_models import build_lstm_forecaster


@dataclass
class Config:
    num_windows: int = 2000
    """Windows cut from the series (consecutive start times)."""
    window: int = 32
    """Past values the model reads."""
    horizon: int = 1
    """Future values it predicts."""
    noise: float = 0.1
    """Standard deviation of the Gaussian noise on the series."""
    units: int = 32
    """Hidden and cell state size of each LSTM layer."""
    num_layers: int = 1
    """Stacked LSTM layers."""
    epochs: int = 10
    """Passes over the training windows."""
    batch_size: int = 32
    """Windows per gradient step."""
    learning_rate: float = 3e-3
    """Adam step size."""
    test_fraction: float = 0.2
    """Share of the windows, the latest in time, kept for the test."""
    validation_fraction: float = 0.1
    """Share of the training windows (the latest of them) held out for validation; may be 0."""
    seed: int = 0
    """Seed of the series, the weights and the shuffling."""
    output_dir: str = "runs/forecast_sine"
    """Folder for the model, the figure and the metrics."""
    verbose: int = 2
    """Keras progress output: 0 silent, 1 progress bar, 2 one line per epoch."""

    def __post_init__(self) -> None:
        for name in ("num_windows", "window", "horizon", "units", "num_layers", "epochs"):
            if getattr(self, name) < 1:
                raise ValueError(f"Expected {name} >= 1. Received: {name}={getattr(self, name)}")
        if self.batch_size < 1:
            raise ValueError(f"Expected batch_size >= 1. Received: batch_size={self.batch_size}")
        if self.noise < 0:
            raise ValueError(f"Expected noise >= 0. Received: noise={self.noise}")
        if self.learning_rate <= 0:
            raise ValueError(
                f"Expected learning_rate > 0. Received: learning_rate={self.learning_rate}"
            )
        if not 0.0 < self.test_fraction < 1.0:
            raise ValueError(
                f"Expected 0 < test_fraction < 1. Received: test_fraction={self.test_fraction}"
            )
        if not 0.0 <= self.validation_fraction < 1.0:
            raise ValueError(
                "Expected 0 <= validation_fraction < 1. "
                f"Received: validation_fraction={self.validation_fraction}"
            )
        num_test = round(self.test_fraction * self.num_windows)
        if not 1 <= num_test < self.num_windows:
            raise ValueError(
                "Expected test_fraction to leave at least one test and one training window. "
                f"Received: test_fraction={self.test_fraction}, num_windows={self.num_windows}"
            )


def baseline_mses(windows: np.ndarray, targets: np.ndarray, train_mean: float) -> dict:
    """Test MSE of repeating the last value of each window and of predicting the training mean."""
    last_value = np.repeat(windows[:, -1, :1], targets.shape[1], axis=1)  # (N, horizon)
    return {
        "last_value": float(np.mean((last_value - targets) ** 2)),
        "mean": float(np.mean((train_mean - targets) ** 2)),
    }


def plot_predictions(targets, predictions, path: Path, num_points: int = 200) -> Path:
    """The first forecast step against the truth over the first `num_points` test windows."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=(7.0, 2.8), dpi=100)
    axis = figure.subplots()
    steps = np.arange(min(num_points, len(targets)))
    axis.plot(steps, targets[steps, 0], color="0.5", label="truth")
    axis.plot(steps, predictions[steps, 0], label="LSTM forecast")
    axis.set_xlabel("test window (time step)")
    axis.set_ylabel("next value")
    axis.legend(fontsize=7)
    figure.savefig(path, bbox_inches="tight")
    return path


def main(config: Config) -> dict:
    """Trains the forecaster, compares it with the baselines and writes the artefacts."""
    output_dir = Path(config.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    keras.utils.set_random_seed(config.seed)
    windows, targets = noisy_sine_windows(
        config.num_windows, config.window, config.horizon, config.noise, config.seed
    )
    # A chronological split: every test window starts after every training window.
    num_train = config.num_windows - round(config.test_fraction * config.num_windows)
    train_windows, train_targets = windows[:num_train], targets[:num_train]
    test_windows, test_targets = windows[num_train:], targets[num_train:]

    model = build_lstm_forecaster(
        config.window, 1, config.horizon, units=config.units, num_layers=config.num_layers
    )
    model.compile(optimizer=keras.optimizers.Adam(config.learning_rate), loss="mse")
    print(f"Training {model.name} on {num_train} windows ({keras.backend.backend()})")
    start = time.perf_counter()
    history = model.fit(
        train_windows,
        train_targets,
        batch_size=config.batch_size,
        epochs=config.epochs,
        validation_split=config.validation_fraction,  # the latest training windows
        verbose=config.verbose,
    )
    train_seconds = time.perf_counter() - start
    predictions = np.asarray(model.predict(test_windows, batch_size=len(test_windows), verbose=0))
    test_mse = float(np.mean((predictions - test_targets) ** 2))
    baselines = baseline_mses(test_windows, test_targets, float(train_targets.mean()))
    print(
        f"test MSE {test_mse:.4f}; repeat last value {baselines['last_value']:.4f}, "
        f"training mean {baselines['mean']:.4f}, noise floor {config.noise**2:.4f}"
    )

    paths = {
        "model": output_dir / "model.keras",
        "predictions": plot_predictions(test_targets, predictions, output_dir / "predictions.png"),
        "metrics": output_dir / "metrics.json",
    }
    model.save(paths["model"])
    results = {
        "backend": keras.backend.backend(),
        "test_mse": test_mse,
        "last_value_mse": baselines["last_value"],
        "mean_mse": baselines["mean"],
        "noise_floor_mse": config.noise**2,
        "final_loss": float(history.history["loss"][-1]),
        "train_seconds": round(train_seconds, 2),
        "num_train": num_train,
        "num_test": len(test_targets),
        "config": asdict(config),
    }
    paths["metrics"].write_text(json.dumps(results, indent=2))
    results["files"] = {name: str(path) for name, path in paths.items()}
    return results


if __name__ == "__main__":
    from dlkit.cli import recipe_entry_point

    recipe_entry_point(Config, main)
