"""Images for the recipes that train on them: datasets by name, and a digits judge.

``ImageRunConfig`` holds the run settings that the image recipes' ``Config`` classes share;
``start_image_run`` starts a run on the images of such a ``Config``. ``load_images`` returns the
embedded 8×8 digits as NumPy arrays (the default, offline) or a
tensorflow-datasets image dataset (``mnist``, ``fashion_mnist``, ``cifar10``, ``cifar100``) as
batched ``tf.data`` pipelines, in one shape that ``fit`` accepts either way. The generative
recipes also take their optimizers and their conditional sample grids from here.

The judge is the ``classifier_digits`` CNN trained on the real digits: it labels generated
images, which measures class coverage of an unconditional generator and the share of
conditional samples drawn in the requested class [notes ch. 6].
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from dlkit.data import DATASETS, DIGITS_SHAPE, NUM_DIGIT_CLASSES, digits, load
from dlkit.plotting import plot_image_grid
from dlkit.recipes._recipe import check_config, start_run
from dlkit.validation import check_choice

# The image datasets a generative recipe accepts by its `dataset` field.
DATASET_CHOICES = ("digits", *(name for name in DATASETS if "/" not in name))
# Epochs of the judge's training on the embedded digits (test accuracy about 0.97).
_JUDGE_EPOCHS = 8
# Conditional samples: 10 per class in the grid, 100 per class (1,000) for the quality gate.
GRID_SAMPLES_PER_CLASS = 10
GATE_SAMPLES_PER_CLASS = 100
GATE_THRESHOLD = 0.8


def check_dataset(dataset: str) -> None:
    """Raises ValueError unless `dataset` is one of ``DATASET_CHOICES``."""
    check_choice("dataset", dataset, DATASET_CHOICES)


@dataclass
class ImageRunConfig:
    """The settings of an image recipe's run, shared by the generative recipes.

    A recipe's ``Config`` extends it (``class Config(ImageRunConfig)``) and writes only its own
    fields and the defaults it changes: a field redeclared with a new default and no docstring
    keeps the docstring written here; it gets its own docstring only where its meaning differs
    in that recipe. ``__post_init__`` checks that ``epochs``, ``batch_size``, ``learning_rate``
    and the fields the recipe names in ``POSITIVE_FIELDS`` are > 0, those in
    ``NON_NEGATIVE_FIELDS`` >= 0, ``export`` and ``dataset`` (one of ``DATASET_CHOICES``); a
    recipe with further checks overrides it, calling ``super().__post_init__()`` first.
    """

    POSITIVE_FIELDS: ClassVar[tuple[str, ...]] = ()
    NON_NEGATIVE_FIELDS: ClassVar[tuple[str, ...]] = ()
    DATASET_CHOICES: ClassVar[tuple[str, ...]] = DATASET_CHOICES

    epochs: int = 20
    """Passes over the training images."""
    batch_size: int = 32
    """Images per step."""
    learning_rate: float = 2e-3
    """Adam step size."""
    seed: int = 0
    """Seed of weights, shuffling and noise."""
    dataset: str = "digits"
    """Training images: digits (embedded) or mnist, fashion_mnist, cifar10, cifar100 (tfds)."""
    data_dir: str = ""
    """tensorflow-datasets data directory (empty: TFDS_DATA_DIR or ~/tensorflow_datasets)."""
    export: str = "saved_model"
    """Serving export of the trained network: saved_model, onnx or none."""
    output_dir: str = "runs"
    """Folder for the model, figures, metrics and the resumable backup."""
    verbose: int = 2
    """Keras progress output: 0 silent, 1 progress bar, 2 one line per epoch."""

    def __post_init__(self) -> None:
        check_config(
            self,
            positive=("epochs", "batch_size", "learning_rate", *self.POSITIVE_FIELDS),
            non_negative=self.NON_NEGATIVE_FIELDS,
            datasets=self.DATASET_CHOICES,
        )


@dataclass
class Images:
    """Training and test images of one dataset, with the shapes a model needs.

    ``train`` and ``test`` are ``(images, labels)`` NumPy arrays for the digits, or batched
    ``tf.data`` datasets of ``(images, labels)`` for a tensorflow-datasets dataset.
    """

    name: str
    train: Any
    test: Any
    image_shape: tuple[int, int, int]
    num_classes: int
    batch_size: int

    @property
    def is_embedded(self) -> bool:
        return self.name == "digits"

    def fit_arguments(self, split: str = "train", labels: bool = True) -> dict:
        """Keyword arguments of ``fit`` (split "train") or ``evaluate`` (split "test") feeding
        `split`, with or without labels."""
        data = self.train if split == "train" else self.test
        if not self.is_embedded:
            arguments = {"x": data if labels else data.map(lambda images, _: images)}
            if split == "train":
                arguments["shuffle"] = False  # the pipeline shuffles itself
            return arguments
        images, class_labels = data
        arguments = {"x": images, "batch_size": self.batch_size}
        if labels:
            arguments["y"] = class_labels
        return arguments

    def test_arrays(self, limit: int = 2000) -> tuple[np.ndarray, np.ndarray]:
        """Up to `limit` test images and labels as NumPy arrays."""
        if self.is_embedded:
            images, class_labels = self.test
            return images[:limit], class_labels[:limit]
        images, class_labels, count = [], [], 0
        for batch_images, batch_labels in self.test:
            images.append(np.asarray(batch_images))
            class_labels.append(np.asarray(batch_labels))
            count += len(class_labels[-1])
            if count >= limit:
                break
        return np.concatenate(images)[:limit], np.concatenate(class_labels)[:limit]


def load_images(
    dataset: str,
    value_range: tuple[float, float],
    batch_size: int,
    seed: int,
    data_dir: str | None = None,
) -> Images:
    """The train and test images of `dataset` ("digits" or a tensorflow-datasets name)."""
    check_dataset(dataset)
    if dataset == "digits":
        return Images(
            name=dataset,
            train=digits("train", value_range=value_range, seed=seed),
            test=digits("test", value_range=value_range, seed=seed),
            image_shape=DIGITS_SHAPE,
            num_classes=NUM_DIGIT_CLASSES,
            batch_size=batch_size,
        )
    description = DATASETS[dataset]
    common = {"batch_size": batch_size, "value_range": value_range, "data_dir": data_dir or None}
    return Images(
        name=dataset,
        train=load(dataset, "train", shuffle=True, seed=seed, **common),
        test=load(dataset, "test", shuffle=False, **common),
        image_shape=tuple(description["image_shape"]),
        num_classes=description["num_classes"],
        batch_size=batch_size,
    )


def start_image_run(config, value_range: tuple[float, float]) -> tuple[Path, Images]:
    """Starts the run (`start_run`: output folder and seeds) and loads the images of
    ``config.dataset`` with pixels in `value_range`; returns (output folder, images)."""
    output_dir = start_run(config)
    images = load_images(
        config.dataset, value_range, config.batch_size, config.seed, config.data_dir
    )
    return output_dir, images


@functools.lru_cache(maxsize=4)
def digits_judge(seed: int = 0):
    """The ``classifier_digits`` CNN trained on the real digits, cached per seed."""
    from dlkit.recipes import classifier_digits

    classifier = classifier_digits.build_model(classifier_digits.Config(seed=seed))
    images, labels = digits("train", seed=seed)
    classifier.fit(images, labels, batch_size=32, epochs=_JUDGE_EPOCHS, verbose=0)
    return classifier


def judge_digits(images: np.ndarray, value_range: tuple[float, float], seed: int = 0) -> np.ndarray:
    """The judge's class (N,) for each 8×8×1 image (N, 8, 8, 1) with pixels in `value_range`."""
    images = np.asarray(images, dtype="float32")
    if images.shape[1:] != DIGITS_SHAPE:
        raise ValueError(
            f"Expected digit images of shape (N, 8, 8, 1). Received: images.shape={images.shape}"
        )
    low, high = value_range
    unit_images = (images - low) / (high - low)  # the judge reads pixels in [0, 1]
    probabilities = digits_judge(seed).predict(unit_images, verbose=0)
    return np.argmax(probabilities, axis=-1)


def class_shares(images: np.ndarray, value_range: tuple[float, float], seed: int = 0) -> np.ndarray:
    """Share (10,) of `images` that the judge assigns to each digit class."""
    predictions = judge_digits(images, value_range, seed)
    return np.bincount(predictions, minlength=NUM_DIGIT_CLASSES) / len(predictions)


def class_coverage(
    generated: np.ndarray, images: Images, value_range, seed: int, name: str = "class_shares"
) -> dict:
    """On the digits, the judge's share of the `generated` images per class (under `name`) and
    the number of classes holding at least 2 % of them; on other datasets, nothing."""
    if not images.is_embedded:
        return {}
    shares = class_shares(generated, value_range, seed)
    return {
        name: [round(float(share), 3) for share in shares],
        "classes_with_at_least_2_percent": int(np.sum(shares >= 0.02)),
    }


def requested_class_accuracy(
    images: np.ndarray, labels: np.ndarray, value_range: tuple[float, float], seed: int = 0
) -> tuple[float, np.ndarray]:
    """Share of conditional samples the judge puts in their requested class, overall and per
    class (10,)."""
    labels = np.asarray(labels).reshape(-1)
    hits = judge_digits(images, value_range, seed) == labels
    per_class = np.array(
        [hits[labels == label].mean() if np.any(labels == label) else np.nan for label in range(10)]
    )
    return float(hits.mean()), per_class


def adversarial_optimizers(model, learning_rate: float) -> dict:
    """One Adam (beta_1 = 0.5, the DCGAN setting) per update of an alternating model."""
    import keras

    return {
        update.name: keras.optimizers.Adam(learning_rate, beta_1=0.5) for update in model.updates()
    }


def conditional_samples(sample, num_classes: int, path, value_range, images: Images, seed: int):
    """Draws a grid of `sample(labels)` with one row per class to `path` and, on the digits,
    returns the quality gate: the judge's requested-class accuracy over 1,000 samples."""
    import keras

    grid_labels = np.repeat(np.arange(num_classes), GRID_SAMPLES_PER_CLASS)  # 0,…,0, 1,…,1, …
    grid = keras.ops.convert_to_numpy(sample(grid_labels))
    plot_image_grid(grid, path, num_columns=GRID_SAMPLES_PER_CLASS, value_range=value_range)
    if not images.is_embedded:
        return {}
    gate_labels = np.repeat(np.arange(num_classes), GATE_SAMPLES_PER_CLASS)
    samples = keras.ops.convert_to_numpy(sample(gate_labels))
    overall, per_class = requested_class_accuracy(samples, gate_labels, value_range, seed)
    return {
        "requested_class_accuracy": round(overall, 4),
        "requested_class_accuracy_per_class": [round(float(a), 3) for a in per_class],
        "meets_80_percent": overall >= GATE_THRESHOLD,
    }
