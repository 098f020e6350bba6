"""Compare an LSTM and a transformer-encoder classifier on one sequence-classification task.

Both models read the same padded token ids (id 0 is padding, masked): the LSTM classifier
carries its hidden and cell states along the sequence and classifies the last hidden state
[notes §7.1, eqs. 7.1-7.6]; the transformer classifier lets every position attend to every
other at once and classifies the mean over the unpadded positions [notes §7.3]. The default
task, ``palindrome`` (generated, no download), asks whether a digit string reads the same
backwards: near-palindromes differ in a single mirror pair, so a model must compare distant
positions. ``--dataset imdb_reviews`` classifies movie reviews as positive or negative
(tensorflow-datasets, prepared in ``data_dir``). ``--models lstm`` or ``--models transformer``
trains only one of the two.

Reported per model: test accuracy and training speed in steps per second, measured over
epochs 2 and later so that the first epoch's compilation is not counted.

Artefacts in ``output_dir``: ``lstm_classifier.keras``, ``transformer_classifier.keras``,
``validation_accuracy.png`` (both models' curves) and ``metrics.json``.

Run: ``dlkit run sequence_classifiers --epochs 20`` or ``python recipes/sequence_classifiers.py``.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import keras
import numpy as np

from dlkit.data import sequences
from dlkit.models.sequence_models import build_lstm_classifier, build_transformer_classifier

DATASETS = ("palindrome", "imdb_reviews")
MODEL_NAMES = ("lstm_classifier", "transformer_classifier")
MODEL_CHOICES = ("both", "lstm", "transformer")
# Test accuracy on the palindrome task that each trained classifier must reach (chance: 0.5).
ACCURACY_GATE = 0.8
# A small configuration of the palindrome task (strings of 4-5 digits, 1,620 for training,
# 25 epochs) in which both classifiers reach the gate in seconds:
# tests/recipes/test_sequence_classifiers.py trains it on every backend.
QUICK_CONFIG = {
    "num_train": 1800,
    "num_test": 400,
    "max_length": 5,
    "epochs": 25,
    "learning_rate": 5e-3,
}


@dataclass
class Config:
    dataset: str = "palindrome"
    """Task: palindrome (generated digit strings) or imdb_reviews (tensorflow-datasets)."""
    models: str = "both"
    """Which classifiers to train: both, lstm or transformer."""
    epochs: int = 15
    """Passes over the training sequences, for each model."""
    batch_size: int = 64
    """Sequences per gradient step."""
    learning_rate: float = 3e-3
    """Adam step size."""
    num_train: int = 8000
    """palindrome: number of training strings (validation_fraction of them held out)."""
    num_test: int = 500
    """palindrome: number of test strings."""
    max_length: int = 8
    """palindrome: longest string (lengths from 4); imdb_reviews: tokens kept per review."""
    vocabulary_size: int = 20000
    """imdb_reviews: most frequent words kept, padding and out-of-vocabulary ids included."""
    embedding_dim: int = 32
    """Width of the token embeddings of both models (the transformer's model_dim)."""
    units: int = 64
    """Hidden and cell state size of each LSTM layer."""
    num_heads: int = 4
    """Attention heads of each transformer block (they must divide embedding_dim)."""
    intermediate_dim: int = 64
    """Hidden width of each transformer block's feed-forward network."""
    num_lstm_layers: int = 1
    """Stacked LSTM layers of the LSTM classifier."""
    num_encoder_layers: int = 2
    """Encoder blocks of the transformer classifier (one block cannot find a string's mirror
    positions, which depend on its length)."""
    dropout: float = 0.0
    """Dropout rate of both models."""
    validation_fraction: float = 0.1
    """Share of the training data held out to draw the validation-accuracy curves."""
    data_dir: str = ""
    """tensorflow-datasets data directory (empty: TFDS_DATA_DIR or ~/tensorflow_datasets)."""
    seed: int = 0
    """Seed of the data, the weights and the shuffling."""
    output_dir: str = "runs/sequence_classifiers"
    """Folder for the models, the figure and the metrics."""
    verbose: int = 2
    """Keras progress output: 0 silent, 1 progress bar, 2 one line per epoch."""

    def __post_init__(self) -> None:
        if self.dataset not in DATASETS:
            raise ValueError(
                f"Expected `dataset` to be one of {DATASETS}. Received: dataset={self.dataset!r}"
            )
        if self.models not in MODEL_CHOICES:
            raise ValueError(
                f"Expected `models` to be one of {MODEL_CHOICES}. Received: models={self.models!r}"
            )
        for name in (
            "epochs",
            "batch_size",
            "num_train",
            "num_test",
            "max_length",
            "embedding_dim",
            "units",
            "num_heads",
            "intermediate_dim",
            "num_lstm_layers",
            "num_encoder_layers",
        ):
            if getattr(self, name) < 1:
                raise ValueError(f"Expected {name} >= 1. Received: {name}={getattr(self, name)}")
        if self.embedding_dim % self.num_heads:
            raise ValueError(
                "Expected num_heads to divide embedding_dim. "
                f"Received: num_heads={self.num_heads}, embedding_dim={self.embedding_dim}"
            )
        if self.vocabulary_size < 3:
            raise ValueError(
                f"Expected vocabulary_size >= 3. Received: vocabulary_size={self.vocabulary_size}"
            )
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"Expected 0 <= dropout < 1. Received: dropout={self.dropout}")
        if not 0.0 < self.validation_fraction < 1.0:
            raise ValueError(
                "Expected 0 < validation_fraction < 1. "
                f"Received: validation_fraction={self.validation_fraction}"
            )
        if self.learning_rate <= 0:
            raise ValueError(
                f"Expected learning_rate > 0. Received: learning_rate={self.learning_rate}"
            )


class StepTimer(keras.callbacks.Callback):
    """Counts training steps and their seconds from the second epoch on (compilation, done in
    the first epoch, is left out; validation is not timed)."""

    def __init__(self):
        super().__init__()
        self.num_steps = 0
        self.seconds = 0.0

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch
        self._epoch_start = time.perf_counter()
        self._last_step_end = self._epoch_start

    def on_train_batch_end(self, batch, logs=None):
        self._last_step_end = time.perf_counter()
        if self._epoch >= 1:
            self.num_steps += 1

    def on_epoch_end(self, epoch, logs=None):
        if epoch >= 1:
            self.seconds += self._last_step_end - self._epoch_start

    @property
    def steps_per_second(self) -> float | None:
        return self.num_steps / self.seconds if self.seconds > 0 else None


def load_task(config: Config) -> dict:
    """Training, validation and test data of the task as `fit` arguments, with its sizes."""
    if config.dataset == "palindrome":
        data = sequences.digit_classification(
            "palindrome",
            num_train=config.num_train,
            num_test=config.num_test,
            max_length=config.max_length,
            seed=config.seed,
        )
        tokens, labels = data["train"]
        num_validation = max(1, round(config.validation_fraction * len(labels)))
        return {
            "train": {"x": tokens[num_validation:], "y": labels[num_validation:]},
            "validation": (tokens[:num_validation], labels[:num_validation]),
            "test": {"x": data["test"][0], "y": data["test"][1]},
            "vocabulary_size": sequences.VOCABULARY_SIZE,
            "num_classes": 2,
            "num_train": len(labels) - num_validation,
        }

    from dlkit.data.text import TEXT_DATASETS, load_text

    cut = round(100 * (1 - config.validation_fraction))
    arguments = dict(
        sequence_length=config.max_length,
        vocabulary_size=config.vocabulary_size,
        batch_size=config.batch_size,
        data_dir=config.data_dir or None,
        seed=config.seed,
    )
    train, vocabulary = load_text(config.dataset, f"train[:{cut}%]", **arguments)
    validation, _ = load_text(
        config.dataset, f"train[{cut}%:]", shuffle=False, vocabulary=vocabulary, **arguments
    )
    test, _ = load_text(config.dataset, "test", shuffle=False, vocabulary=vocabulary, **arguments)
    return {
        "train": {"x": train, "shuffle": False},  # the pipeline shuffles itself
        "validation": validation,
        "test": {"x": test},
        "vocabulary_size": len(vocabulary),
        "num_classes": TEXT_DATASETS[config.dataset]["num_classes"],
        "num_train": None,
    }


def build_model(config: Config, name: str, vocabulary_size: int, num_classes: int):
    """One of the two classifiers (`name` in MODEL_NAMES), compiled as the other (Adam,
    cross-entropy on logits, accuracy)."""
    if name == "lstm_classifier":
        model = build_lstm_classifier(
            vocabulary_size,
            num_classes,
            embedding_dim=config.embedding_dim,
            units=config.units,
            num_layers=config.num_lstm_layers,
            dropout=config.dropout,
        )
    else:
        model = build_transformer_classifier(
            vocabulary_size,
            num_classes,
            max_length=config.max_length,
            model_dim=config.embedding_dim,
            num_heads=config.num_heads,
            intermediate_dim=config.intermediate_dim,
            num_layers=config.num_encoder_layers,
            dropout=config.dropout,
        )
    model.compile(
        optimizer=keras.optimizers.Adam(config.learning_rate),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    return model


def plot_validation_accuracy(histories: dict, path: Path) -> Path:
    """Validation accuracy per epoch of each model (training accuracy dashed)."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=(5.0, 3.2), dpi=100)
    axis = figure.subplots()
    for name, history in histories.items():
        epochs = np.arange(1, len(history["val_accuracy"]) + 1)
        (line,) = axis.plot(epochs, history["val_accuracy"], label=f"{name} (validation)")
        axis.plot(epochs, history["accuracy"], "--", color=line.get_color(), alpha=0.6)
    axis.set_xlabel("epoch")
    axis.set_ylabel("accuracy (dashed: training)")
    axis.set_ylim(0.4, 1.02)
    axis.legend(fontsize=7)
    figure.savefig(path, bbox_inches="tight")
    return path


def main(config: Config) -> dict:
    """Trains the classifiers `config.models` names, evaluates them and writes the artefacts;
    returns the metrics."""
    output_dir = Path(config.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    task = load_task(config)
    # Arrays are batched by `fit`; a tf.data pipeline comes batched.
    batch_size = config.batch_size if config.dataset == "palindrome" else None
    print(f"{config.dataset}: {task['vocabulary_size']} token ids, {keras.backend.backend()}")

    results = {"backend": keras.backend.backend(), "dataset": config.dataset}
    histories, paths = {}, {}
    names = MODEL_NAMES if config.models == "both" else (f"{config.models}_classifier",)
    for name in names:
        keras.utils.set_random_seed(config.seed)
        model = build_model(config, name, task["vocabulary_size"], task["num_classes"])
        print(f"Training {name} ({model.count_params():,} parameters)")
        timer = StepTimer()
        start = time.perf_counter()
        history = model.fit(
            **task["train"],
            batch_size=batch_size,
            epochs=config.epochs,
            validation_data=task["validation"],
            callbacks=[timer],
            verbose=config.verbose,
        )
        train_seconds = time.perf_counter() - start
        test_loss, test_accuracy = model.evaluate(**task["test"], batch_size=batch_size, verbose=0)
        histories[name] = history.history
        paths[name] = output_dir / f"{name}.keras"
        model.save(paths[name])
        results[name] = {
            "test_accuracy": float(test_accuracy),
            "test_loss": float(test_loss),
            "final_validation_accuracy": float(history.history["val_accuracy"][-1]),
            "steps_per_second": timer.steps_per_second,
            "train_seconds": round(train_seconds, 2),
            "num_parameters": model.count_params(),
        }
        steps = timer.steps_per_second
        print(
            f"{name}: test accuracy {test_accuracy:.3f}, "
            + (f"{steps:.1f} steps/s" if steps else "steps/s needs 2+ epochs")
            + f", {train_seconds:.1f} s"
        )

    paths["validation_accuracy"] = plot_validation_accuracy(
        histories, output_dir / "validation_accuracy.png"
    )
    paths["metrics"] = output_dir / "metrics.json"
    results["num_train"] = task["num_train"]
    results["config"] = asdict(config)
    paths["metrics"].write_text(json.dumps(results, indent=2))
    results["files"] = {name: str(path) for name, path in paths.items()}
    return results


if __name__ == "__main__":
    from dlkit.cli import recipe_entry_point

    recipe_entry_point(Config, main)
