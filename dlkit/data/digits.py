"""The embedded default dataset: scikit-learn's 1,797 real 8×8 handwritten digits.

The images ship inside scikit-learn, so this loader works on a machine that reaches no dataset
hub. It is small enough for tests and CPU recipes: an MLP or a
small CNN fits it in seconds on any Keras backend.
"""

from __future__ import annotations

import numpy as np

from dlkit.validation import check_choice, check_int, check_number, check_range

DIGITS_SHAPE = (8, 8, 1)
NUM_DIGIT_CLASSES = 10

# scikit-learn stores each pixel as a count of on-bits in a 4×4 block of the original
# 32×32 bitmap, so values are integers in 0..16.
_MAX_PIXEL_VALUE = 16.0
_SPLITS = ("train", "test", "all")


def digits(
    split: str = "train",
    value_range: tuple[float, float] = (0.0, 1.0),
    test_fraction: float = 0.2,
    seed: int = 0,
    as_dataset: bool = False,
    batch_size: int = 32,
    shuffle: bool = True,
    one_hot: bool = False,
):
    """Loads scikit-learn's 8×8 handwritten digits as images and labels.

    Pixels (integers 0..16) are mapped linearly to ``value_range``: ``(0, 1)`` for a
    classifier, ``(-1, 1)`` for a generator with a ``tanh`` output. The train/test split is
    stratified by class and deterministic: the same ``seed`` and ``test_fraction`` give the
    same split on every call and every machine.

    Args:
        split: ``"train"``, ``"test"`` or ``"all"`` (all 1,797 images in their original order).
        value_range: ``(low, high)`` that pixel values 0 and 16 map to; ``low < high``.
        test_fraction: fraction of the images held out for ``"test"``, in ``(0, 1)``.
        seed: seed of the train/test split and of the ``tf.data`` shuffle.
        as_dataset: if True, return a batched ``tf.data.Dataset`` instead of NumPy arrays. It
            can be passed to ``model.fit`` on every Keras backend.
        batch_size: batch size of the ``tf.data.Dataset`` (only with ``as_dataset``).
        shuffle: whether the ``tf.data.Dataset`` reshuffles each epoch (only with
            ``as_dataset``); the NumPy arrays are never shuffled beyond the split.
        one_hot: if True, labels are float32 one-hot vectors of shape ``(N, 10)``.

    Returns:
        ``(images, labels)``: images float32 of shape ``(N, 8, 8, 1)``; labels int32 of shape
        ``(N,)``, or float32 ``(N, 10)`` with ``one_hot``. With ``as_dataset``, a
        ``tf.data.Dataset`` of such ``(images, labels)`` batches.

    Example:

    >>> images, labels = digits("train", value_range=(-1.0, 1.0))
    >>> print(images.shape, labels.shape)
    (1437, 8, 8, 1) (1437,)
    >>> print(images.min(), images.max())
    -1.0 1.0
    """
    # Imported here so that `import dlkit.data` stays cheap.
    from sklearn.datasets import load_digits

    bunch = load_digits()
    return image_arrays(
        bunch.images[..., np.newaxis],  # (N, 8, 8, 1), values 0..16
        bunch.target,
        _MAX_PIXEL_VALUE,
        split=split,
        value_range=value_range,
        test_fraction=test_fraction,
        seed=seed,
        as_dataset=as_dataset,
        batch_size=batch_size,
        shuffle=shuffle,
        one_hot=one_hot,
    )


def image_arrays(
    images: np.ndarray,
    labels: np.ndarray,
    max_pixel_value: float,
    split: str,
    value_range: tuple[float, float],
    test_fraction: float,
    seed: int,
    as_dataset: bool,
    batch_size: int,
    shuffle: bool,
    one_hot: bool,
):
    """Splits, scales and packs a labelled image set held in memory, as ``digits`` returns it.

    Shared by the in-memory loaders of ``dlkit.data``. The split is stratified by class; pixel
    values 0..``max_pixel_value`` map linearly to ``value_range``.

    Args:
        images: (N, H, W, C) pixel values.
        labels: (N,) class indices 0..9.
        max_pixel_value: the value that maps to the top of ``value_range``.
        split, value_range, test_fraction, seed, as_dataset, batch_size, shuffle, one_hot: as
            in ``digits``.

    Returns:
        ``(images, labels)`` NumPy arrays, or a batched ``tf.data.Dataset`` with ``as_dataset``.
    """
    check_choice("split", split, _SPLITS)
    low, high = check_range("value_range", value_range)
    check_number("test_fraction", test_fraction, 0, 1, low_open=True, high_open=True)
    check_int("batch_size", batch_size)
    labels = np.asarray(labels).astype(np.int32)

    if split != "all":
        from sklearn.model_selection import train_test_split

        train_indices, test_indices = train_test_split(
            np.arange(len(labels)),
            test_size=test_fraction,
            random_state=seed,
            stratify=labels,
        )
        indices = train_indices if split == "train" else test_indices
        images, labels = images[indices], labels[indices]

    images = (low + (high - low) * (np.asarray(images, np.float32) / max_pixel_value)).astype(
        np.float32
    )
    if one_hot:
        labels = np.eye(NUM_DIGIT_CLASSES, dtype=np.float32)[labels]  # (N, 10)

    if not as_dataset:
        return images, labels

    import tensorflow as tf

    dataset = tf.data.Dataset.from_tensor_slices((images, labels))
    if shuffle:
        dataset = dataset.shuffle(len(labels), seed=seed, reshuffle_each_iteration=True)
    return dataset.batch(batch_size).prefetch(tf.data.AUTOTUNE)
