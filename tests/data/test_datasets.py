"""Tests of dlkit.data.load over tensorflow-datasets, offline.

No test touches the network: the happy paths run under ``tfds.testing.mock_data`` and every
test that could reach a download patches ``_check_download_reachable``.
"""

import time

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")
tfds = pytest.importorskip("tensorflow_datasets")

from dlkit.data import DATASETS, DatasetUnavailableError, load  # noqa: E402
from dlkit.data import datasets as datasets_module  # noqa: E402

# The real network check, kept before the autouse fixture replaces it; only called with
# `socket.create_connection` patched.
_real_check_download_reachable = datasets_module._check_download_reachable


@pytest.fixture(autouse=True)
def no_network(monkeypatch):
    """Fails any test that would check the network without saying what it returns."""

    def fail(timeout):
        raise AssertionError("_check_download_reachable must be patched in tests")

    monkeypatch.setattr(datasets_module, "_check_download_reachable", fail)


@pytest.fixture
def reachable(monkeypatch):
    """Pretends the download host answers; downloads are no-ops under mock_data."""
    monkeypatch.setattr(datasets_module, "_check_download_reachable", lambda timeout: True)


def _collect(dataset):
    return [(np.asarray(images), np.asarray(labels)) for images, labels in dataset]


def test_datasets_description():
    for name, description in DATASETS.items():
        assert set(description) == {"tfds_name", "image_shape", "num_classes", "splits"}, name
        assert len(description["image_shape"]) == 3
    assert DATASETS["cycle_gan/horse2zebra"]["image_shape"] == (256, 256, 3)
    assert DATASETS["cycle_gan/horse2zebra"]["splits"] == ("trainA", "trainB", "testA", "testB")
    assert {"mnist", "fashion_mnist", "cifar10"} <= set(DATASETS)


@pytest.mark.usefixtures("reachable")
def test_mnist_batches_under_mock_data():
    with tfds.testing.mock_data(num_examples=10):
        dataset = load("mnist", batch_size=4, value_range=(-1.0, 1.0))
        batches = _collect(dataset)
    assert [len(labels) for _, labels in batches] == [4, 4, 2]
    images, labels = batches[0]
    assert images.shape == (4, 28, 28, 1) and images.dtype == np.float32
    assert labels.shape == (4,) and labels.dtype == np.int32
    all_images = np.concatenate([images for images, _ in batches])
    all_labels = np.concatenate([labels for _, labels in batches])
    assert all_images.min() >= -1.0 and all_images.max() <= 1.0
    assert all_images.min() < 0.0 < all_images.max()
    assert all_labels.min() >= 0 and all_labels.max() < DATASETS["mnist"]["num_classes"]


@pytest.mark.usefixtures("reachable")
@pytest.mark.parametrize(
    "name, split, image_size, expected_shape",
    [
        ("fashion_mnist", "test", (14, 20), (14, 20, 1)),
        ("cifar10", "test", None, (32, 32, 3)),
        # Mocked cycle_gan images have random sizes; they are resized to 256×256 to batch.
        ("cycle_gan/horse2zebra", "trainA", None, (256, 256, 3)),
        ("cycle_gan/horse2zebra", "testB", 64, (64, 64, 3)),
    ],
)
def test_image_shapes_and_resizing(name, split, image_size, expected_shape):
    with tfds.testing.mock_data(num_examples=3):
        dataset = load(name, split=split, batch_size=3, image_size=image_size)
        images, labels = next(iter(dataset))
    assert tuple(images.shape) == (3, *expected_shape)
    assert images.dtype == tf.float32
    assert 0.0 <= float(tf.reduce_min(images)) and float(tf.reduce_max(images)) <= 1.0
    assert np.all(np.asarray(labels) < DATASETS[name]["num_classes"])


def _constant_split_dataset(self, split, decoders=None, read_config=None, shuffle_files=False):
    """Stands in for tfds's reader: images are all 255 in "train", all 0 in "test"."""
    value = 255 if split.startswith("train") else 0
    example = {
        "image": tf.fill((28, 28, 1), tf.constant(value, tf.uint8)),
        "label": tf.constant(7, tf.int64),
    }
    return tf.data.Dataset.from_tensors(example).repeat(6)


@pytest.mark.usefixtures("reachable")
@pytest.mark.parametrize("split, expected", [("train", 0.5), ("test", -2.0), ("train[:50%]", 0.5)])
def test_split_selection_and_exact_scaling(split, expected):
    with tfds.testing.mock_data(as_dataset_fn=_constant_split_dataset):
        images, labels = next(iter(load("mnist", split=split, value_range=(-2.0, 0.5))))
    np.testing.assert_array_equal(np.asarray(images), expected)
    np.testing.assert_array_equal(np.asarray(labels), 7)


@pytest.mark.usefixtures("reachable")
def test_shuffle_is_seeded():
    def first_batch(seed, shuffle=True):
        with tfds.testing.mock_data(num_examples=32):
            dataset = load("mnist", batch_size=8, seed=seed, shuffle=shuffle)
            return np.asarray(next(iter(dataset))[0])

    unshuffled = first_batch(0, shuffle=False)
    assert np.array_equal(first_batch(0), first_batch(0))
    assert not np.array_equal(first_batch(0), unshuffled)


def test_prepared_dataset_loads_without_network(monkeypatch):
    # The autouse fixture makes any network check fail the test.
    monkeypatch.setattr(tfds.core.DatasetBuilder, "is_prepared", lambda self: True)
    with tfds.testing.mock_data(num_examples=2):
        images, _ = next(iter(load("cifar10", batch_size=2, download=False)))
    assert tuple(images.shape) == (2, 32, 32, 3)


@pytest.mark.usefixtures("reachable")
def test_dataset_trains_with_model_fit():
    import keras

    with tfds.testing.mock_data(num_examples=8):
        dataset = load("mnist", batch_size=4)
        model = keras.Sequential(
            [
                keras.Input((28, 28, 1)),
                keras.layers.Flatten(),
                keras.layers.Dense(10, activation="softmax"),
            ]
        )
        model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
        history = model.fit(dataset, epochs=1, verbose=0, shuffle=False)
    assert np.isfinite(history.history["loss"][0])


def test_offline_fails_fast_with_instructions(monkeypatch, tmp_path):
    timeouts = []

    def unreachable(timeout):
        timeouts.append(timeout)
        return False

    monkeypatch.setattr(datasets_module, "_check_download_reachable", unreachable)
    start = time.perf_counter()
    with pytest.raises(DatasetUnavailableError) as error_info:
        load("mnist", data_dir=tmp_path, connect_timeout=1.5)
    assert time.perf_counter() - start < 5.0
    assert timeouts == [1.5]
    message = str(error_info.value)
    assert "data_dir" in message and str(tmp_path) in message
    assert "tfds build mnist --data_dir DIR" in message
    assert "TFDS_DATA_DIR" in message and "dlkit.data.digits()" in message
    assert isinstance(error_info.value, RuntimeError)


def test_download_false_fails_without_network_check(tmp_path):
    # The autouse fixture makes any network check fail the test.
    with pytest.raises(DatasetUnavailableError, match="download=False"):
        load("cycle_gan/horse2zebra", split="trainB", data_dir=tmp_path, download=False)


def test_data_dir_defaults_to_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("TFDS_DATA_DIR", str(tmp_path))
    with pytest.raises(DatasetUnavailableError, match="data_dir") as error_info:
        load("fashion_mnist", download=False)
    assert str(tmp_path) in str(error_info.value)


def test_check_download_reachable(monkeypatch):
    calls = []

    class Connection:
        def __enter__(self):
            return self

        def __exit__(self, *exc_info):
            return False

    def connect(address, timeout):
        calls.append((address, timeout))
        return Connection()

    def refuse(address, timeout):
        raise OSError("network is unreachable")

    monkeypatch.setattr(datasets_module.socket, "create_connection", connect)
    assert _real_check_download_reachable(0.5) is True
    assert calls == [(("storage.googleapis.com", 443), 0.5)]
    monkeypatch.setattr(datasets_module.socket, "create_connection", refuse)
    assert _real_check_download_reachable(0.5) is False


@pytest.mark.parametrize(
    "kwargs, argument",
    [
        ({"name": "imagenet"}, "name='imagenet'"),
        ({"name": "mnist", "split": "validation"}, "split='validation'"),
        ({"name": "cycle_gan/horse2zebra", "split": "train"}, "split='train'"),
        ({"name": "mnist", "split": "train+valid"}, "split='train\\+valid'"),
        ({"name": "mnist", "batch_size": 0}, "batch_size=0"),
        ({"name": "mnist", "value_range": (1.0, -1.0)}, "value_range="),
        ({"name": "mnist", "image_size": (28,)}, "image_size="),
        ({"name": "mnist", "image_size": 0}, "image_size="),
        ({"name": "mnist", "connect_timeout": 0}, "connect_timeout="),
    ],
)
def test_invalid_arguments(kwargs, argument):
    with pytest.raises(ValueError, match=f"Received: {argument}"):
        load(**kwargs)


def test_unknown_name_lists_choices():
    with pytest.raises(ValueError, match="cycle_gan/horse2zebra"):
        load("mnist_corrupted")
