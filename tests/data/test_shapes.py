"""Tests of dlkit.data.shapes: synthetic images with masks, boxes and labels."""

import time

import numpy as np
import pytest

from dlkit.data import SHAPE_CLASSES, shapes


def _pixel_boxes(data, image_size):
    """Boxes in integer pixel units (y0, x0, y1, x1), y1/x1 exclusive."""
    return np.rint(data["boxes"] * image_size).astype(int)


def test_shapes_and_dtypes():
    data = shapes(20, image_size=24, max_shapes=4)
    expected = {
        "images": ((20, 24, 24, 3), np.float32),
        "masks": ((20, 24, 24), np.int32),
        "boxes": ((20, 4, 4), np.float32),
        "labels": ((20, 4), np.int32),
        "num_shapes": ((20,), np.int32),
    }
    assert set(data) == set(expected)
    for key, (shape, dtype) in expected.items():
        assert data[key].shape == shape, key
        assert data[key].dtype == dtype, key
    assert 0.0 <= data["images"].min() and data["images"].max() <= 1.0
    assert 0.0 <= data["boxes"].min() and data["boxes"].max() <= 1.0
    assert data["masks"].min() >= 0 and data["masks"].max() <= len(SHAPE_CLASSES)


def test_deterministic_for_a_seed():
    first, second, other = shapes(8, seed=1), shapes(8, seed=1), shapes(8, seed=2)
    for key in first:
        np.testing.assert_array_equal(first[key], second[key])
    assert not np.array_equal(first["images"], other["images"])


def test_padding_and_counts():
    max_shapes = 3
    data = shapes(200, image_size=32, max_shapes=max_shapes)
    num_shapes = data["num_shapes"]
    assert num_shapes.min() >= 1 and num_shapes.max() <= max_shapes
    # All counts occur; the default sizes leave room for max_shapes shapes.
    assert set(np.unique(num_shapes)) == {1, 2, 3}
    is_real = np.arange(max_shapes)[None, :] < num_shapes[:, None]
    assert np.all((data["labels"] >= 0) == is_real)
    assert np.all(data["labels"][~is_real] == -1)
    assert np.all(data["boxes"][~is_real] == 0.0)
    assert set(np.unique(data["labels"][is_real])) == set(range(len(SHAPE_CLASSES)))


def test_masks_agree_with_boxes_and_labels():
    image_size = 32
    data = shapes(100, image_size=image_size, max_shapes=3, min_size=3)
    boxes = _pixel_boxes(data, image_size)
    for index in range(len(data["images"])):
        mask = data["masks"][index]
        covered_by_boxes = np.zeros_like(mask, dtype=bool)
        for slot in range(data["num_shapes"][index]):
            y0, x0, y1, x1 = boxes[index, slot]
            class_id = data["labels"][index, slot] + 1
            inside = mask[y0:y1, x0:x1]
            # Non-overlapping boxes: a box holds only background and its own shape.
            assert set(np.unique(inside)) <= {0, class_id}
            rows, columns = np.nonzero(inside == class_id)
            assert len(rows) > 0
            # The box is tight around the shape's pixels to within one pixel.
            assert rows.min() <= 1 and columns.min() <= 1
            assert rows.max() >= y1 - y0 - 2 and columns.max() >= x1 - x0 - 2
            covered_by_boxes[y0:y1, x0:x1] |= inside == class_id
        # Every shape pixel of the mask lies inside the box of a shape of its class.
        np.testing.assert_array_equal(covered_by_boxes, mask > 0)


def test_square_fills_its_box():
    image_size = 16
    data = shapes(50, image_size=image_size, max_shapes=1)
    boxes = _pixel_boxes(data, image_size)
    square = SHAPE_CLASSES.index("square")
    for index in np.nonzero(data["labels"][:, 0] == square)[0]:
        y0, x0, y1, x1 = boxes[index, 0]
        assert np.all(data["masks"][index, y0:y1, x0:x1] == square + 1)
        assert (data["masks"][index] > 0).sum() == (y1 - y0) * (x1 - x0)


def test_boxes_do_not_overlap():
    data = shapes(200, image_size=32, max_shapes=5)
    boxes = data["boxes"]
    for index in range(len(boxes)):
        count = data["num_shapes"][index]
        for first in range(count):
            for second in range(first + 1, count):
                a, b = boxes[index, first], boxes[index, second]
                overlap_height = min(a[2], b[2]) - max(a[0], b[0])
                overlap_width = min(a[3], b[3]) - max(a[1], b[1])
                assert overlap_height <= 1e-6 or overlap_width <= 1e-6


def test_colours_are_uniform_per_shape_and_background():
    data = shapes(30, image_size=20, max_shapes=3)
    for image, mask in zip(data["images"], data["masks"], strict=True):
        background = image[mask == 0]
        assert np.ptp(background, axis=0).max() == 0.0
        assert background.max() <= 0.15
        assert image[mask > 0].max(axis=-1).min() >= 0.35


def test_crowded_images_keep_at_least_one_shape():
    data = shapes(10, image_size=8, max_shapes=5, min_size=8, max_size=8)
    np.testing.assert_array_equal(data["num_shapes"], 1)
    np.testing.assert_allclose(data["boxes"][:, 0], [[0.0, 0.0, 1.0, 1.0]] * 10)


def test_fast():
    start = time.perf_counter()
    shapes(1000, image_size=32)
    assert time.perf_counter() - start < 2.0


@pytest.mark.parametrize(
    "kwargs, argument",
    [
        ({"num_images": 0}, "num_images="),
        ({"num_images": 2.5}, "num_images="),
        ({"image_size": 3}, "image_size="),
        ({"max_shapes": 0}, "max_shapes="),
        ({"min_size": 1}, "min_size="),
        ({"min_size": 40}, "min_size="),
        ({"max_size": 33}, "max_size="),
        ({"min_size": 8, "max_size": 6}, "max_size="),
    ],
)
def test_invalid_arguments(kwargs, argument):
    kwargs = {"num_images": 2, **kwargs}
    with pytest.raises(ValueError, match=f"Received: {argument}"):
        shapes(**kwargs)
