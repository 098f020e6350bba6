"""An independent judge of generated digits: a CNN trained on real digits labels the samples.

A generator's own discriminator, or an AC-GAN's auxiliary class head, learns alongside the
generator and can be fooled by it; a classifier trained once on real digits cannot. Its labels
measure two things [notes ch. 6, §6.3]:

- coverage of an unconditional generator: the share of its samples in each class
  (`class_shares`); a collapsed generator puts almost all of them in a few classes;
- label following of a conditional generator: of the samples requested per class
  (`sample_per_class`), the share that the judge puts in the requested class
  (`requested_class_accuracy`).

`digit_judge` trains the judge on the embedded 8×8 digits or on the 28×28 MNIST sample
(`JUDGE_DATASETS`) and keeps it for the process. The judge reads pixels in [0, 1]; images in
another `value_range` (e.g. a tanh generator's [-1, 1]) are mapped linearly. Images whose shape
is not the judge's input shape, or whose values leave `value_range`, raise a ValueError: such a
generator does not fit this judge, and its labels would mean nothing.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import keras
import numpy as np

from dlkit.validation import check_choice, check_int, check_range
from dlkit.vision.classifier import DIGIT_DATASETS, train_digits_classifier

__all__ = [
    "COVERAGE_THRESHOLD",
    "JUDGE_DATASETS",
    "JUDGE_EPOCHS",
    "REQUESTED_CLASS_THRESHOLD",
    "class_shares",
    "digit_judge",
    "judge_classes",
    "requested_class_accuracy",
    "sample_per_class",
]

# The real digit sets a judge is trained on, by name: 8×8 (1,437 training images) and 28×28
# (4,000 training images, the `mnist` extra).
JUDGE_DATASETS = DIGIT_DATASETS
# Training epochs per dataset. Test accuracy of the CNN, seed 0: about 0.98 on the digits and
# 0.97 on the MNIST sample.
JUDGE_EPOCHS = {"digits": 15, "mnist_sample": 4}
# The quality gates of the generative recipes: a conditional generator puts at least this share
# of the samples requested per class in that class; an unconditional one gives every class at
# least `COVERAGE_THRESHOLD` of its samples (no mode collapse).
REQUESTED_CLASS_THRESHOLD = 0.8
COVERAGE_THRESHOLD = 0.02
# Values outside `value_range` by less than this share of its width are rounding, not a misfit.
_RANGE_TOLERANCE = 1e-3


@functools.lru_cache(maxsize=4)
def digit_judge(dataset: str = "digits", seed: int = 0) -> keras.Model:
    """The judge: `build_cnn_classifier` trained on the real images of `dataset`, kept per process.

    Trained by `train_digits_classifier` for `JUDGE_EPOCHS[dataset]` epochs on the training
    split, never on generated images; later calls with the same arguments return the same model.

    Args:
        dataset: one of `JUDGE_DATASETS`: `"digits"` (8×8×1) or `"mnist_sample"` (28×28×1).
            Defaults to `"digits"`.
        seed: seed of the judge's weights, shuffling and split. Defaults to 0.

    Returns:
        A Keras classifier from images (N, H, W, 1) with pixels in [0, 1] to 10 logits.

    Raises:
        ValueError: for a `dataset` not in `JUDGE_DATASETS`.

    Example:

        >>> judge = digit_judge("digits")
        >>> print(judge.input_shape, judge.output_shape)
        (None, 8, 8, 1) (None, 10)
    """
    check_choice("dataset", dataset, JUDGE_DATASETS)
    judge, _ = train_digits_classifier(epochs=JUDGE_EPOCHS[dataset], seed=seed, dataset=dataset)
    return judge


def _judge_shapes(judge: keras.Model) -> tuple[tuple[int, ...], int]:
    """The judge's image shape (H, W, C) and its number of classes."""
    return tuple(judge.input_shape[1:]), int(judge.output_shape[-1])


def _check_images(judge, images, value_range) -> np.ndarray:
    """`images` as float32, mapped from `value_range` to the judge's [0, 1]; ValueError unless
    their shape is (N, *the judge's input shape) and their values lie in `value_range`."""
    low, high = check_range("value_range", value_range)
    images = np.asarray(keras.ops.convert_to_numpy(images), dtype="float32")
    image_shape, _ = _judge_shapes(judge)
    if images.ndim != 4 or images.shape[1:] != image_shape or len(images) == 0:
        raise ValueError(
            f"Expected images of shape (N, {', '.join(map(str, image_shape))}), the judge's "
            f"input shape, with N >= 1. Received: images.shape={images.shape}"
        )
    tolerance = _RANGE_TOLERANCE * (high - low)
    smallest, largest = float(np.min(images)), float(np.max(images))
    if not (low - tolerance <= smallest and largest <= high + tolerance):
        raise ValueError(
            f"Expected image values in value_range=({low}, {high}). "
            f"Received: values in [{smallest:.4g}, {largest:.4g}]"
        )
    return (np.clip(images, low, high) - low) / (high - low)


def judge_classes(
    judge: keras.Model, images, value_range: tuple[float, float] = (0.0, 1.0)
) -> np.ndarray:
    """The class the judge gives each image: the arg-max of its logits.

    Args:
        judge: a classifier from images with pixels in [0, 1] to class logits, as
            `digit_judge` returns it.
        images: (N, H, W, C) images of the judge's input shape.
        value_range: `(low, high)` of the images' pixels, mapped to [0, 1] for the judge.
            Defaults to (0.0, 1.0).

    Returns:
        int64 classes (N,).

    Raises:
        ValueError: for images of another shape, or with values outside `value_range`; the
            message names the shape or the range received.

    Example:

        >>> import numpy as np
        >>> judge = digit_judge("digits")
        >>> print(judge_classes(judge, np.zeros((3, 8, 8, 1))).shape)
        (3,)
    """
    unit_images = _check_images(judge, images, value_range)
    logits = judge.predict(unit_images, batch_size=256, verbose=0)
    return np.argmax(logits, axis=-1)


def class_shares(
    judge: keras.Model, images, value_range: tuple[float, float] = (0.0, 1.0)
) -> np.ndarray:
    """The share of `images` that the judge puts in each class: an unconditional generator's
    coverage. A generator free of mode collapse gives every class at least
    `COVERAGE_THRESHOLD`.

    Args:
        judge: the classifier, as in `judge_classes`.
        images: (N, H, W, C) images of the judge's input shape.
        value_range: `(low, high)` of the images' pixels. Defaults to (0.0, 1.0).

    Returns:
        float64 shares (K,) summing to 1, K the judge's number of classes.

    Raises:
        ValueError: as `judge_classes`.
    """
    classes = judge_classes(judge, images, value_range)
    _, num_classes = _judge_shapes(judge)
    return np.bincount(classes, minlength=num_classes) / len(classes)


def sample_per_class(
    sample: Callable,
    judge: keras.Model,
    value_range: tuple[float, float],
    samples_per_class: int = 100,
) -> tuple[np.ndarray, np.ndarray]:
    """Asks a conditional generator for `samples_per_class` images of each of the judge's classes.

    Args:
        sample: the generator, a function from int labels (N,) to images (N, H, W, C), such as
            `ConditionalGAN.sample` or `ConditionalVAE.sample`.
        judge: the judge the images are for (`digit_judge`): its number of classes K sets the
            labels, its input shape the images' shape.
        value_range: `(low, high)` of the generator's pixels.
        samples_per_class: images requested per class. Defaults to 100.

    Returns:
        `(images, labels)`: float32 images (K·samples_per_class, H, W, C) and int32 labels,
        class 0 first: 0, …, 0, 1, …, 1, ….

    Raises:
        ValueError: when the generator's images do not fit the judge: another shape (or
            another number of images than labels) or values outside `value_range`.

    Example:

        >>> import numpy as np
        >>> judge = digit_judge("digits")
        >>> images, labels = sample_per_class(
        ...     lambda labels: np.zeros((len(labels), 8, 8, 1)), judge, (0.0, 1.0), 2
        ... )
        >>> print(images.shape, labels[:4])
        (20, 8, 8, 1) [0 0 1 1]
    """
    check_int("samples_per_class", samples_per_class)
    _, num_classes = _judge_shapes(judge)
    labels = np.repeat(np.arange(num_classes, dtype="int32"), samples_per_class)
    images = np.asarray(keras.ops.convert_to_numpy(sample(labels)), dtype="float32")
    if images.shape[:1] != labels.shape:
        raise ValueError(
            f"Expected the generator to return one image per label, {len(labels)} images. "
            f"Received: images.shape={images.shape}"
        )
    _check_images(judge, images, value_range)
    return images, labels


def requested_class_accuracy(
    judge: keras.Model, images, labels, value_range: tuple[float, float] = (0.0, 1.0)
) -> tuple[float, np.ndarray]:
    """The share of conditional samples that the judge puts in their requested class.

    Args:
        judge: the classifier, as in `judge_classes`.
        images: (N, H, W, C) images of the judge's input shape.
        labels: int (N,) the class each image was requested as.
        value_range: `(low, high)` of the images' pixels. Defaults to (0.0, 1.0).

    Returns:
        `(overall, per_class)`: the share over all images, and per class (K,) (NaN for a class
        with no image).

    Raises:
        ValueError: as `judge_classes`, or for `labels` of another length than `images`.

    Example:

        >>> from dlkit.data import digits
        >>> images, labels = digits("test")
        >>> overall, per_class = requested_class_accuracy(digit_judge("digits"), images, labels)
        >>> print(overall > 0.9, per_class.shape)
        True (10,)
    """
    labels = np.asarray(labels).reshape(-1)
    classes = judge_classes(judge, images, value_range)
    if len(labels) != len(classes):
        raise ValueError(
            f"Expected one label per image, {len(classes)} labels. "
            f"Received: labels.shape={labels.shape}"
        )
    hits = classes == labels
    _, num_classes = _judge_shapes(judge)
    per_class = np.array(
        [hits[labels == k].mean() if np.any(labels == k) else np.nan for k in range(num_classes)]
    )
    return float(hits.mean()), per_class
