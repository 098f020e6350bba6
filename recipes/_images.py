"""Images for the recipes that train on them: datasets by name, and the judge's metrics.

``ImageRunConfig`` holds the run settings that the image recipes' ``Config`` classes share;
``start_image_run`` starts a run on the images of such a ``Config``. ``load_images`` returns the
embedded 8×8 digits (the default) or the 28×28 MNIST sample (``mnist_sample``) as NumPy arrays,
both offline, or a tensorflow-datasets image dataset (``mnist``, ``fashion_mnist``, ``cifar10``,
``cifar100``) as batched ``tf.data`` pipelines, in one shape that ``fit`` accepts either way.
The generative recipes also take their optimizers and their conditional sample grids from here.

On the two offline digit sets, the independent judge of ``dlkit.vision.judge`` (a CNN trained
on the real digits) labels generated images: the class coverage of an unconditional generator
and the share of conditional samples drawn in the requested class [notes ch. 6].
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from dlkit.data import DATASETS, DIGITS_SHAPE, MNIST_SHAPE, NUM_DIGIT_CLASSES, digits, load
from dlkit.data import mnist_sample as mnist_sample_images
from dlkit.plotting import plot_image_grid
from dlkit.recipes._recipe import check_config, start_run
from dlkit.validation import check_choice
from dlkit.vision.judge import (
    COVERAGE_THRESHOLD,
    JUDGE_DATASETS,
    REQUESTED_CLASS_THRESHOLD,
    class_shares,
    digit_judge,
    requested_class_accuracy,
    sample_per_class,
)

# The offline digit sets, held in memory as NumPy arrays: loader and image shape.
_IN_MEMORY = {"digits": (digits, DIGITS_SHAPE), "mnist_sample": (mnist_sample_images, MNIST_SHAPE)}
# The image datasets an image recipe accepts by its `dataset` field.
DATASET_CHOICES = (*_IN_MEMORY, *(name for name in DATASETS if "/" not in name))
# Conditional samples: 10 per class in the grid, 100 per class (1,000) for the quality gate.
GRID_SAMPLES_PER_CLASS = 10
GATE_SAMPLES_PER_CLASS = 100


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
    """Training images: digits (8×8) or mnist_sample (28×28), both offline, or mnist,
    fashion_mnist, cifar10, cifar100 (tensorflow-datasets)."""
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

    ``train`` and ``test`` are ``(images, labels)`` NumPy arrays for the offline digit sets
    (``digits``, ``mnist_sample``), or batched ``tf.data`` datasets of ``(images, labels)`` for a
    tensorflow-datasets dataset.
    """

    name: str
    train: Any
    test: Any
    image_shape: tuple[int, int, int]
    num_classes: int
    batch_size: int

    @property
    def is_embedded(self) -> bool:
        """Whether the images are in memory as NumPy arrays (an offline digit set)."""
        return self.name in _IN_MEMORY

    @property
    def judge(self):
        """The independent judge of images like these (`digit_judge`), or None where there is
        none (the tensorflow-datasets sets)."""
        return digit_judge(self.name) if self.name in JUDGE_DATASETS else None

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
    """The train and test images of `dataset` (one of ``DATASET_CHOICES``)."""
    check_dataset(dataset)
    if dataset in _IN_MEMORY:
        loader, image_shape = _IN_MEMORY[dataset]
        return Images(
            name=dataset,
            train=loader("train", value_range=value_range, seed=seed),
            test=loader("test", value_range=value_range, seed=seed),
            image_shape=image_shape,
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


def class_coverage(generated: np.ndarray, images: Images, value_range, name: str = "class_shares"):
    """On an offline digit set, the judge's share of the `generated` images per class (under
    `name`) and the number of classes holding at least ``COVERAGE_THRESHOLD`` of them; on
    other datasets, nothing."""
    if images.judge is None:
        return {}
    shares = class_shares(images.judge, generated, value_range)
    return {
        name: [round(float(share), 3) for share in shares],
        "classes_with_at_least_2_percent": int(np.sum(shares >= COVERAGE_THRESHOLD)),
    }


def adversarial_optimizers(model, learning_rate: float) -> dict:
    """One Adam (beta_1 = 0.5, the DCGAN setting) per update of an alternating model."""
    import keras

    return {
        update.name: keras.optimizers.Adam(learning_rate, beta_1=0.5) for update in model.updates()
    }


def conditional_samples(sample, num_classes: int, path, value_range, images: Images):
    """Draws a grid of `sample(labels)` with one row per class to `path` and, on an offline
    digit set, returns the quality gate: the judge's requested-class accuracy over 1,000
    samples, 100 per class."""
    import keras

    grid_labels = np.repeat(np.arange(num_classes), GRID_SAMPLES_PER_CLASS)  # 0,…,0, 1,…,1, …
    grid = keras.ops.convert_to_numpy(sample(grid_labels))
    plot_image_grid(grid, path, num_columns=GRID_SAMPLES_PER_CLASS, value_range=value_range)
    if images.judge is None:
        return {}
    samples, labels = sample_per_class(sample, images.judge, value_range, GATE_SAMPLES_PER_CLASS)
    overall, per_class = requested_class_accuracy(images.judge, samples, labels, value_range)
    return {
        "requested_class_accuracy": round(overall, 4),
        "requested_class_accuracy_per_class": [round(float(a), 3) for a in per_class],
        "meets_80_percent": overall >= REQUESTED_CLASS_THRESHOLD,
    }
