import numpy as np
import pytest

from dlkit.data import digits
from dlkit.vision import (
    class_shares,
    digit_judge,
    judge_classes,
    requested_class_accuracy,
    sample_per_class,
)


@pytest.fixture(scope="module")
def judge():
    return digit_judge("digits")


@pytest.fixture(scope="module")
def real_digits():
    return digits("test")


def real_digit_generator(real_digits, offset=0, value_range=(0.0, 1.0)):
    """A stand-in conditional generator that returns real test digits of class label + offset,
    with pixels in `value_range`."""
    images, labels = real_digits
    low, high = value_range

    def sample(requested):
        wanted = (np.asarray(requested) + offset) % 10
        picks = [np.flatnonzero(labels == label)[i % 30] for i, label in enumerate(wanted)]
        return low + (high - low) * images[picks]

    return sample


def test_the_judge_labels_real_held_out_digits(judge, real_digits):
    images, labels = real_digits
    overall, per_class = requested_class_accuracy(judge, images, labels)
    assert overall >= 0.95
    assert per_class.shape == (10,) and per_class.min() >= 0.8


def test_the_judge_reads_any_value_range_mapped_to_its_own(judge, real_digits):
    images, _ = real_digits
    np.testing.assert_array_equal(
        judge_classes(judge, 2.0 * images - 1.0, value_range=(-1.0, 1.0)),
        judge_classes(judge, images),
    )


def test_class_shares_of_real_digits_are_even_and_of_one_class_collapse(judge, real_digits):
    images, labels = real_digits
    shares = class_shares(judge, images)
    assert shares.sum() == pytest.approx(1.0)
    assert shares.min() >= 0.07  # 36 of 360 per class
    collapsed = class_shares(judge, images[labels == 3])
    assert collapsed[3] >= 0.9 and np.sum(collapsed >= 0.02) <= 2


def test_sample_per_class_asks_each_class_in_turn(judge, real_digits):
    images, labels = sample_per_class(real_digit_generator(real_digits), judge, (0.0, 1.0), 5)
    assert images.shape == (50, 8, 8, 1)
    np.testing.assert_array_equal(labels, np.repeat(np.arange(10), 5))
    assert requested_class_accuracy(judge, images, labels)[0] >= 0.9


def test_a_generator_that_ignores_the_label_fails_the_gate(judge, real_digits):
    sample = real_digit_generator(real_digits, offset=1, value_range=(-1.0, 1.0))
    images, labels = sample_per_class(sample, judge, (-1.0, 1.0), 10)
    overall, per_class = requested_class_accuracy(judge, images, labels, (-1.0, 1.0))
    assert overall <= 0.1 and np.nanmax(per_class) <= 0.3


def test_images_of_another_shape_are_rejected_naming_it(judge):
    with pytest.raises(ValueError, match=r"\(N, 8, 8, 1\).*images.shape=\(4, 28, 28, 1\)"):
        judge_classes(judge, np.zeros((4, 28, 28, 1)))
    with pytest.raises(ValueError, match=r"images.shape=\(20, 28, 28, 1\)"):
        sample_per_class(lambda labels: np.zeros((len(labels), 28, 28, 1)), judge, (0.0, 1.0), 2)
    with pytest.raises(ValueError, match=r"20 images. Received: images.shape=\(10, 8, 8, 1\)"):
        sample_per_class(lambda labels: np.zeros((10, 8, 8, 1)), judge, (0.0, 1.0), 2)


def test_images_outside_the_value_range_are_rejected_naming_it(judge, real_digits):
    images, labels = real_digits
    with pytest.raises(ValueError, match=r"value_range=\(-1.0, 1.0\).*values in \[0, 255\]"):
        class_shares(judge, 255.0 * images, value_range=(-1.0, 1.0))
    with pytest.raises(ValueError, match=r"value_range=\(0.0, 1.0\).*values in \[-1, 1\]"):
        sample_per_class(real_digit_generator(real_digits, value_range=(-1, 1)), judge, (0.0, 1.0))
    with pytest.raises(ValueError, match="value_range"):
        requested_class_accuracy(judge, images, labels, value_range=(1.0, 0.0))


def test_an_unknown_judge_dataset_is_rejected():
    with pytest.raises(ValueError, match="dataset"):
        digit_judge("cifar10")
