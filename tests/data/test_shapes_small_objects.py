"""The shapes variant with small and large objects (`shapes(..., small_shapes=k)`)."""

import numpy as np
import pytest

from dlkit.data.shapes import large_shape_min_size, shapes, small_shape_sizes


def sides_in_pixels(data, image_size):
    boxes, labels = data["boxes"], data["labels"]
    return np.round((boxes[..., 2] - boxes[..., 0]) * image_size)[labels >= 0]


def test_every_image_gets_the_small_shapes_and_the_regular_ones_are_large():
    data = shapes(200, image_size=32, max_shapes=3, small_shapes=3, seed=0)
    assert data["boxes"].shape == (200, 6, 4) and data["labels"].shape == (200, 6)
    sides = sides_in_pixels(data, 32)
    small_min, small_max = small_shape_sizes(32)
    assert (small_min, small_max, large_shape_min_size(32)) == (4, 5, 8)
    small = sides <= small_max
    assert set(np.unique(sides[small])) == {4, 5}
    assert sides[~small].min() == 8 and sides[~small].max() == 16
    # Every image keeps its 1-3 large shapes and, in the room left, its 3 small ones.
    slot_sides = np.round((data["boxes"][..., 2] - data["boxes"][..., 0]) * 32)
    num_small = np.sum((data["labels"] >= 0) & (slot_sides <= small_max), axis=1)
    assert np.mean(num_small == 3) > 0.95
    # The masks agree with the boxes: every small box holds pixels of its class.
    for image, (boxes, labels) in enumerate(zip(data["boxes"][:20], data["labels"][:20])):
        for box, label in zip(boxes, labels):
            if label < 0:
                continue
            y0, x0, y1, x1 = np.round(box * 32).astype(int)
            assert np.any(data["masks"][image, y0:y1, x0:x1] == label + 1)


def test_without_small_shapes_the_images_are_unchanged():
    plain = shapes(8, image_size=32, seed=3)
    explicit = shapes(8, image_size=32, seed=3, small_shapes=0)
    for key in plain:
        np.testing.assert_array_equal(plain[key], explicit[key])


def test_negative_small_shapes_are_rejected():
    with pytest.raises(ValueError, match="small_shapes"):
        shapes(2, small_shapes=-1)
