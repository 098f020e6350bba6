"""tensorflow-datasets image datasets as batched ``(image, label)`` pipelines, failing fast offline.

Without network, ``tfds.load`` retries its downloads for about 200 s before it fails.
``load`` instead checks, within ``connect_timeout`` seconds, that the download
host answers before it starts a download, and otherwise raises ``DatasetUnavailableError`` with
the steps to prepare the data on another machine. A dataset already prepared in ``data_dir``
loads without touching the network.
"""

from __future__ import annotations

import math
import numbers
import os
import socket

from dlkit.validation import check_choice, check_int, check_positive, check_range, check_shape

# Each entry: the tfds name, the shape of one image, the number of classes and the splits.
# cycle_gan's "label" is its domain: 0 for A (horses), 1 for B (zebras).
DATASETS = {
    "mnist": {
        "tfds_name": "mnist",
        "image_shape": (28, 28, 1),
        "num_classes": 10,
        "splits": ("train", "test"),
    },
    "fashion_mnist": {
        "tfds_name": "fashion_mnist",
        "image_shape": (28, 28, 1),
        "num_classes": 10,
        "splits": ("train", "test"),
    },
    "cifar10": {
        "tfds_name": "cifar10",
        "image_shape": (32, 32, 3),
        "num_classes": 10,
        "splits": ("train", "test"),
    },
    "cifar100": {
        "tfds_name": "cifar100",
        "image_shape": (32, 32, 3),
        "num_classes": 100,
        "splits": ("train", "test"),
    },
    "cycle_gan/horse2zebra": {
        "tfds_name": "cycle_gan/horse2zebra",
        "image_shape": (256, 256, 3),
        "num_classes": 2,
        "splits": ("trainA", "trainB", "testA", "testB"),
    },
}

# Where tfds downloads from (its GCS mirror); reaching it is the precondition of a download.
_DOWNLOAD_HOST = ("storage.googleapis.com", 443)
# The shuffle buffer holds decoded uint8 images: at most this many bytes, or 10,000 images.
_SHUFFLE_BUFFER_BYTES = 256 * 2**20
_MAX_SHUFFLE_BUFFER = 10_000


class DatasetUnavailableError(RuntimeError):
    """Raised when a dataset is not prepared locally and cannot be downloaded."""


def _check_download_reachable(timeout: float) -> bool:
    """Returns whether a TCP connection to the tfds download host opens within ``timeout`` s."""
    try:
        with socket.create_connection(_DOWNLOAD_HOST, timeout=timeout):
            return True
    except OSError:
        return False


def _check_split(name: str, split: str, table: dict | None = None) -> None:
    """Accepts a split name or a tfds split expression over valid names (``"train[:10%]"``) of
    dataset ``name`` in ``table`` (``DATASETS`` by default)."""
    valid_splits = (DATASETS if table is None else table)[name]["splits"]
    parts = split.split("+") if isinstance(split, str) else [split]
    for part in parts:
        base_name = part.split("[")[0].strip() if isinstance(part, str) else part
        if base_name not in valid_splits:
            raise ValueError(
                f"Expected `split` of {name!r} to be one of {valid_splits} (optionally sliced, "
                f"e.g. 'train[:10%]'). Received: split={split!r}"
            )


def _image_size_pair(image_size: int | tuple[int, int] | None) -> tuple[int, int] | None:
    if image_size is None:
        return None
    pair = check_shape("image_size", image_size, minimum=1)
    if isinstance(image_size, numbers.Integral):
        pair = pair * 2  # a square
    if len(pair) != 2:
        raise ValueError(
            "Expected `image_size` to be None, a positive integer or a pair of positive "
            f"integers (height, width). Received: image_size={image_size!r}"
        )
    return pair


def _unavailable_message(
    name: str,
    data_dir: str,
    data_path: str,
    reason: str,
    table: dict | None = None,
    loader: str = "dlkit.data.load",
    offline_alternative: str = "dlkit.data.digits() needs no download: it loads 8×8 digits "
    "shipped with scikit-learn.",
) -> str:
    """How to prepare dataset ``name`` of ``table`` (``DATASETS`` by default) for ``loader``."""
    tfds_name = (DATASETS if table is None else table)[name]["tfds_name"]
    return (
        f"Dataset {name!r} is not prepared in data_dir={data_dir!r} (expected under "
        f"{data_path}) and {reason}.\n"
        "To use it on this machine, prepare it on a machine with network access:\n"
        f"    tfds build {tfds_name} --data_dir DIR\n"
        "or\n"
        f"    python -c \"import tensorflow_datasets as tfds; tfds.load('{tfds_name}', "
        "data_dir='DIR')\"\n"
        f"then copy DIR to this machine and pass data_dir=DIR to {loader} (or set the "
        "TFDS_DATA_DIR environment variable).\n" + offline_alternative
    )


def load(
    name: str,
    split: str = "train",
    batch_size: int = 32,
    value_range: tuple[float, float] = (0.0, 1.0),
    shuffle: bool = True,
    seed: int = 0,
    data_dir: str | os.PathLike | None = None,
    image_size: int | tuple[int, int] | None = None,
    download: bool = True,
    connect_timeout: float = 5.0,
):
    """Loads a tensorflow-datasets image dataset as batched ``(image, label)`` pairs.

    Pixels (uint8 0..255) are mapped linearly to ``value_range``. The result is a batched,
    prefetched ``tf.data.Dataset`` that ``model.fit`` accepts on every Keras backend. With
    ``shuffle``, file order and examples are shuffled with ``seed``, reshuffling each epoch.

    Args:
        name: one of ``DATASETS``: ``"mnist"``, ``"fashion_mnist"``, ``"cifar10"``,
            ``"cifar100"``, ``"cycle_gan/horse2zebra"``.
        split: one of ``DATASETS[name]["splits"]`` (``"trainA"`` etc. for cycle_gan), or a tfds
            split expression over them such as ``"train[:10%]"``.
        batch_size: number of examples per batch; the last batch may be smaller.
        value_range: ``(low, high)`` that pixel values 0 and 255 map to; ``low < high``.
        shuffle: whether to shuffle files and examples.
        seed: seed of the shuffle.
        data_dir: tfds data directory; defaults to the ``TFDS_DATA_DIR`` environment variable,
            else ``~/tensorflow_datasets`` (the tfds default).
        image_size: if given, an int or ``(height, width)`` that images are resized to
            (bilinear). Datasets of varying image sizes are resized to
            ``DATASETS[name]["image_shape"]`` so that they can be batched.
        download: whether to download and prepare the dataset when it is not in ``data_dir``.
        connect_timeout: seconds to wait for the download host before giving up.

    Returns:
        A ``tf.data.Dataset`` of ``(images, labels)``: images float32 of shape
        ``(batch, height, width, channels)`` in ``value_range``, labels int32 of shape
        ``(batch,)``.

    Raises:
        ValueError: for an unknown ``name`` or ``split`` or an invalid argument.
        DatasetUnavailableError: if the dataset is not prepared in ``data_dir`` and
            ``download`` is False or the download host cannot be reached.

    Example:

    >>> print(DATASETS["cifar10"]["image_shape"])
    (32, 32, 3)
    >>> dataset = load("cifar10", "test", batch_size=128)  # doctest: +SKIP
    >>> images, labels = next(iter(dataset))  # doctest: +SKIP
    >>> print(images.shape, labels.shape)  # doctest: +SKIP
    (128, 32, 32, 3) (128,)
    """
    check_choice("name", name, DATASETS)
    _check_split(name, split)
    check_int("batch_size", batch_size)
    low, high = check_range("value_range", value_range)
    target_size = _image_size_pair(image_size)
    check_positive("connect_timeout", connect_timeout)

    # Imported here so that `import dlkit.data` stays cheap for digits and shapes.
    import tensorflow as tf
    import tensorflow_datasets as tfds

    description = DATASETS[name]
    if data_dir is None:
        data_dir = os.environ.get("TFDS_DATA_DIR") or os.path.join(
            os.path.expanduser("~"), "tensorflow_datasets"
        )
    data_dir = os.fspath(data_dir)
    builder = tfds.builder(description["tfds_name"], data_dir=data_dir)
    if not builder.is_prepared():
        data_path = os.fspath(builder.data_path)
        if not download:
            raise DatasetUnavailableError(
                _unavailable_message(name, data_dir, data_path, "download=False")
            )
        if not _check_download_reachable(connect_timeout):
            host, port = _DOWNLOAD_HOST
            raise DatasetUnavailableError(
                _unavailable_message(
                    name,
                    data_dir,
                    data_path,
                    f"the download host {host}:{port} did not answer within "
                    f"{connect_timeout} s (this machine seems to be offline)",
                )
            )
        builder.download_and_prepare()

    dataset = builder.as_dataset(
        split=split,
        as_supervised=True,
        shuffle_files=shuffle,
        read_config=tfds.ReadConfig(shuffle_seed=seed),
    )
    if shuffle:
        # Shuffle the uint8 images before conversion: 4× less memory than float32.
        images_in_budget = _SHUFFLE_BUFFER_BYTES // math.prod(description["image_shape"])
        buffer_size = max(batch_size, min(_MAX_SHUFFLE_BUFFER, images_in_budget))
        dataset = dataset.shuffle(buffer_size, seed=seed, reshuffle_each_iteration=True)

    if target_size is None and not dataset.element_spec[0].shape.is_fully_defined():
        target_size = description["image_shape"][:2]

    def to_model_input(image, label):
        image = tf.cast(image, tf.float32)  # (H, W, C), values 0..255
        if target_size is not None:
            image = tf.image.resize(image, target_size)  # (height, width, C)
        image = low + (high - low) * (image / 255.0)
        # Resizing may overshoot by a rounding error; keep the promised range exact.
        image = tf.clip_by_value(image, low, high)
        return image, tf.cast(label, tf.int32)

    dataset = dataset.map(to_model_input, num_parallel_calls=tf.data.AUTOTUNE)
    return dataset.batch(batch_size).prefetch(tf.data.AUTOTUNE)
