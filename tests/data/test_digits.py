"""Tests of dlkit.data.digits and of the public API of dlkit.data."""

import subprocess
import sys

import numpy as np
import pytest

import dlkit.data
from dlkit.data import DIGITS_SHAPE, NUM_DIGIT_CLASSES, digits

NUM_DIGITS = 1797


def test_public_api():
    # The names themselves are pinned in tests/test_packaging.py.
    assert {"DIGITS_SHAPE", "NUM_DIGIT_CLASSES", "digits"} <= set(dlkit.data.__all__)
    for name in dlkit.data.__all__:
        assert hasattr(dlkit.data, name)


def test_import_is_cheap():
    code = (
        "import sys, dlkit.data; "
        "print(any(name in sys.modules for name in ('tensorflow', 'tensorflow_datasets', 'keras')))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "False"


def test_splits_shapes_and_dtypes():
    train_images, train_labels = digits("train")
    test_images, test_labels = digits("test")
    all_images, _ = digits("all")
    assert DIGITS_SHAPE == (8, 8, 1) and NUM_DIGIT_CLASSES == 10
    assert train_images.shape == (1437, *DIGITS_SHAPE)
    assert test_images.shape == (360, *DIGITS_SHAPE)
    assert all_images.shape == (NUM_DIGITS, *DIGITS_SHAPE)
    for images, labels in [(train_images, train_labels), (test_images, test_labels)]:
        assert images.dtype == np.float32 and labels.dtype == np.int32
        assert labels.shape == (len(images),)
        assert set(np.unique(labels)) == set(range(NUM_DIGIT_CLASSES))
    # Train and test partition "all": same multiset of images.
    merged = np.concatenate([train_images, test_images]).reshape(NUM_DIGITS, -1)
    reference = all_images.reshape(NUM_DIGITS, -1)
    assert np.array_equal(merged[np.lexsort(merged.T)], reference[np.lexsort(reference.T)])


def test_split_is_stratified():
    _, all_labels = digits("all")
    _, test_labels = digits("test", test_fraction=0.25)
    expected = np.bincount(all_labels) * 0.25
    assert np.all(np.abs(np.bincount(test_labels) - expected) <= 1)


def test_split_is_deterministic_per_seed():
    images_a, labels_a = digits("test", seed=3)
    images_b, labels_b = digits("test", seed=3)
    images_c, _ = digits("test", seed=4)
    assert np.array_equal(images_a, images_b) and np.array_equal(labels_a, labels_b)
    assert not np.array_equal(images_a, images_c)


@pytest.mark.parametrize("value_range", [(0.0, 1.0), (-1.0, 1.0), (2, 5)])
def test_value_range_is_a_linear_map_of_pixels(value_range):
    from sklearn.datasets import load_digits

    images, _ = digits("all", value_range=value_range)
    low, high = value_range
    expected = low + (high - low) * load_digits().images[..., None] / 16.0
    np.testing.assert_allclose(images, expected, rtol=1e-6, atol=1e-6)
    assert images.min() == low and images.max() == high


def test_one_hot_labels():
    _, labels = digits("train")
    _, one_hot_labels = digits("train", one_hot=True)
    assert one_hot_labels.shape == (len(labels), NUM_DIGIT_CLASSES)
    assert one_hot_labels.dtype == np.float32
    np.testing.assert_array_equal(one_hot_labels.argmax(axis=1), labels)
    np.testing.assert_array_equal(one_hot_labels.sum(axis=1), 1.0)


def test_as_dataset_batches():
    images, labels = digits("test")
    dataset = digits("test", as_dataset=True, batch_size=100, shuffle=False)
    batches = [(np.asarray(x), np.asarray(y)) for x, y in dataset]
    assert [len(y) for _, y in batches] == [100, 100, 100, 60]
    assert batches[0][0].shape == (100, *DIGITS_SHAPE) and batches[0][0].dtype == np.float32
    assert batches[0][1].dtype == np.int32
    np.testing.assert_array_equal(np.concatenate([x for x, _ in batches]), images)
    np.testing.assert_array_equal(np.concatenate([y for _, y in batches]), labels)


def test_as_dataset_shuffle_is_seeded():
    def first_labels(seed):
        dataset = digits("train", as_dataset=True, batch_size=64, seed=seed)
        return np.asarray(next(iter(dataset))[1])

    _, labels = digits("train")
    assert np.array_equal(first_labels(0), first_labels(0))
    assert not np.array_equal(first_labels(0), labels[:64])


def test_as_dataset_trains_with_model_fit():
    import keras

    keras.utils.set_random_seed(0)
    dataset = digits("train", as_dataset=True, batch_size=64).take(3)
    model = keras.Sequential(
        [
            keras.Input(DIGITS_SHAPE),
            keras.layers.Flatten(),
            keras.layers.Dense(NUM_DIGIT_CLASSES, activation="softmax"),
        ]
    )
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    history = model.fit(dataset, epochs=1, verbose=0, shuffle=False)
    assert np.isfinite(history.history["loss"][0])


@pytest.mark.parametrize(
    "kwargs, argument",
    [
        ({"split": "validation"}, "split="),
        ({"value_range": (1.0, 0.0)}, "value_range="),
        ({"value_range": (1.0,)}, "value_range="),
        ({"test_fraction": 1.0}, "test_fraction="),
        ({"batch_size": 0}, "batch_size="),
    ],
)
def test_invalid_arguments(kwargs, argument):
    with pytest.raises(ValueError, match=f"Received: {argument}"):
        digits(**kwargs)
