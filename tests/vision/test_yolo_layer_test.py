"""The shared layer checks of `YoloHead`; the detection tests are in test_detection.py."""

import numpy as np
import pytest

from dlkit.testing import run_layer_test
from dlkit.vision import YoloHead


@pytest.mark.parametrize("num_boxes, num_classes", [(1, 2), (2, 3)])
def test_yolo_head_passes_the_layer_checks(num_boxes, num_classes):
    raw = np.random.default_rng(0).normal(size=(2, 3, 3, 5 * num_boxes + num_classes))
    raw = raw.astype("float32")
    boxes, scores = raw[..., : 5 * num_boxes], raw[..., 5 * num_boxes :]
    probabilities = np.exp(scores - scores.max(axis=-1, keepdims=True))
    probabilities /= probabilities.sum(axis=-1, keepdims=True)
    expected = np.concatenate([1.0 / (1.0 + np.exp(-boxes)), probabilities], axis=-1)
    run_layer_test(
        YoloHead,
        {"num_boxes": num_boxes, "num_classes": num_classes},
        input_data=raw,
        expected_output_shape=raw.shape,
        expected_output=expected,
        expected_num_trainable_weights=0,
        expected_num_non_trainable_weights=0,
        # The head only squashes the last convolution's outputs: it has no weights to train.
        run_training_check=False,
    )
