"""Classify the embedded 8x8 handwritten digits with a small CNN.

Two 3x3 convolutional layers with ReLU, max pooling and a softmax read-out, trained by
mini-batch gradient descent with Adam on scikit-learn's digits (1,797 images that ship with
scikit-learn, no download) [notes ch. 3, §4.2-4.3]. ``--dataset mnist_sample`` trains the same
network, sized to 28x28, on 5,000 real MNIST digits (offline, the ``mnist`` extra). Runs on any
Keras backend.

Artefacts in ``output_dir``: ``model.keras``, ``confusion_matrix.png``, ``misclassified.png``,
``history.png`` and ``metrics.json``. An interrupted run resumes from ``output_dir/backup`` when
started again with the same command.

Run: ``dlkit run classifier_digits --epochs 5`` or ``python recipes/classifier_digits.py``.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import keras
import numpy as np

from dlkit import plotting
from dlkit.data import DIGITS_SHAPE, NUM_DIGIT_CLASSES
from dlkit.recipes._recipe import EXPORT_FORMATS, export_for_serving
from dlkit.validation import check_choice
from dlkit.vision.classifier import DIGIT_DATASETS, digit_images


@dataclass
class Config:
    dataset: str = "digits"
    """Images: digits (embedded, 8×8) or mnist_sample (28×28, needs the mnist extra)."""
    epochs: int = 10
    """Passes over the training images."""
    batch_size: int = 32
    """Images per gradient step."""
    learning_rate: float = 1e-3
    """Adam step size."""
    filters: int = 32
    """Channels of the first convolution; the second has twice as many."""
    dropout: float = 0.25
    """Dropout rate before the read-out layer."""
    validation_fraction: float = 0.1
    """Share of the training images held out to report validation accuracy per epoch."""
    seed: int = 0
    """Seed of weights, shuffling and dropout."""
    export: str = "saved_model"
    """Serving export of the classifier (image → class probabilities): saved_model, onnx or none."""
    output_dir: str = "runs/classifier_digits"
    """Folder for the model, figures, metrics and the resumable backup."""
    verbose: int = 2
    """Keras progress output: 0 silent, 1 progress bar, 2 one line per epoch."""

    def __post_init__(self) -> None:
        check_choice("dataset", self.dataset, DIGIT_DATASETS)
        for name in ("epochs", "batch_size", "filters"):
            if getattr(self, name) < 1:
                raise ValueError(f"Expected {name} >= 1. Received: {name}={getattr(self, name)}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"Expected 0 <= dropout < 1. Received: dropout={self.dropout}")
        if not 0.0 <= self.validation_fraction < 1.0:
            raise ValueError(
                "Expected 0 <= validation_fraction < 1. "
                f"Received: validation_fraction={self.validation_fraction}"
            )
        if self.learning_rate <= 0:
            raise ValueError(f"Expected learning_rate > 0. Received: {self.learning_rate}")
        if self.export not in EXPORT_FORMATS:
            raise ValueError(
                f"Expected export to be one of {EXPORT_FORMATS}. Received: export={self.export!r}"
            )


def build_model(config: Config, image_shape: tuple[int, int, int] = DIGITS_SHAPE) -> keras.Model:
    """The CNN for images of `image_shape`: conv-conv-pool-dropout-dense, logits over the 10
    digit classes."""
    inputs = keras.Input(image_shape, name="image")
    x = keras.layers.Conv2D(config.filters, 3, padding="same", activation="relu")(inputs)
    x = keras.layers.Conv2D(2 * config.filters, 3, padding="same", activation="relu")(x)
    x = keras.layers.MaxPooling2D(2)(x)  # (B, H/2, W/2, 2F)
    x = keras.layers.Flatten()(x)
    x = keras.layers.Dropout(config.dropout, seed=config.seed)(x)
    outputs = keras.layers.Dense(NUM_DIGIT_CLASSES, name="logits")(x)
    model = keras.Model(inputs, outputs, name="digits_cnn")
    model.compile(
        optimizer=keras.optimizers.Adam(config.learning_rate),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    return model


def main(config: Config) -> dict:
    """Trains, evaluates and writes the artefacts; returns the test metrics and file paths."""
    output_dir = Path(config.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    keras.utils.set_random_seed(config.seed)
    train_images, train_labels = digit_images(config.dataset, "train", config.seed)
    test_images, test_labels = digit_images(config.dataset, "test", config.seed)

    model = build_model(config, train_images.shape[1:])
    start = time.perf_counter()
    history = model.fit(
        train_images,
        train_labels,
        batch_size=config.batch_size,
        epochs=config.epochs,
        validation_split=config.validation_fraction,
        callbacks=[keras.callbacks.BackupAndRestore(str(output_dir / "backup"))],
        verbose=config.verbose,
    )
    train_seconds = time.perf_counter() - start
    test_loss, test_accuracy = model.evaluate(test_images, test_labels, verbose=0)
    predictions = np.argmax(model.predict(test_images, verbose=0), axis=-1)

    matrix = plotting.confusion_matrix(test_labels, predictions, NUM_DIGIT_CLASSES)
    wrong = np.flatnonzero(predictions != test_labels)[:32]
    paths = {
        "model": output_dir / "model.keras",
        "confusion_matrix": plotting.plot_confusion_matrix(
            matrix, output_dir / "confusion_matrix.png"
        ),
        "misclassified": plotting.plot_image_grid(
            test_images[wrong],
            output_dir / "misclassified.png",
            titles=[f"{test_labels[i]} as {predictions[i]}" for i in wrong],
        ),
        "history": plotting.plot_history(history.history, output_dir / "history.png"),
        "metrics": output_dir / "metrics.json",
    }
    model.save(paths["model"])
    export_for_serving(paths, "model_export", model, output_dir, config.export)
    results = {
        "backend": keras.backend.backend(),
        "dataset": config.dataset,
        "test_accuracy": float(test_accuracy),
        "test_loss": float(test_loss),
        "epochs_run_this_session": len(history.history["loss"]),
        "train_seconds": round(train_seconds, 2),
        "num_train": len(train_labels),
        "num_test": len(test_labels),
        "config": asdict(config),
    }
    paths["metrics"].write_text(json.dumps(results, indent=2))
    results["files"] = {name: str(path) for name, path in paths.items()}
    return results


if __name__ == "__main__":
    from dlkit.cli import recipe_entry_point

    recipe_entry_point(Config, main)
