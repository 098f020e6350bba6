"""Synthetic images of coloured circles, squares and triangles, with masks and boxes.

Ground truth for semantic segmentation (notes §4.12) and object detection (notes §4.13) that
needs no download: every image carries a per-pixel class mask and one bounding box and label per
shape. Shapes never overlap, so the mask and the boxes agree exactly.

Each shape fills a square box of ``size × size`` pixels with top-left pixel ``(y0, x0)``. With
``r, c`` the pixel's row and column inside the box (``0 ≤ r, c < size``), the shape covers

- square: the whole box;
- circle: ``(r + ½ − size/2)² + (c + ½ − size/2)² ≤ (size/2)²``;
- triangle (apex up): ``|c + ½ − size/2| ≤ (r + 1)/2``.

Each of them touches all four sides of its box, so the box is tight to within one pixel.
"""

from __future__ import annotations

import numpy as np

from dlkit.validation import check_int

SHAPE_CLASSES = ("circle", "square", "triangle")

# Rejection sampling: proposals per shape before giving up on it (the image keeps fewer shapes).
_MAX_PLACEMENT_ATTEMPTS = 100
# Shape colours are bright, backgrounds dark, so that every shape stands out.
_COLOUR_RANGE = (0.35, 1.0)
_BACKGROUND_RANGE = (0.0, 0.15)


def small_shape_sizes(image_size: int) -> tuple[int, int]:
    """The smallest and largest side, in pixels, of the small shapes of ``shapes(...,
    small_shapes=k)``: ``image_size // 8`` to ``image_size // 6`` (4 to 5 pixels on 32×32
    images), at least 2; the regular shapes then start at ``large_shape_min_size``."""
    return max(2, image_size // 8), max(2, image_size // 6)


def large_shape_min_size(image_size: int) -> int:
    """The default smallest side of the regular shapes when small shapes are added:
    ``image_size // 4`` (8 pixels on 32×32 images), so that the two groups never overlap."""
    return max(2, image_size // 4)


def _place_boxes(rng, num_shapes, image_size, min_size, max_size, placed=None):
    """Rejection-samples square boxes that overlap neither each other nor the `placed` ones;
    returns (y0, x0, size) lists, `placed` included first."""
    y0s, x0s, sizes = placed if placed is not None else ([], [], [])
    for _ in range(num_shapes):
        for _ in range(_MAX_PLACEMENT_ATTEMPTS):
            size = int(rng.integers(min_size, max_size + 1))
            y0, x0 = (int(value) for value in rng.integers(0, image_size - size + 1, size=2))
            overlaps = any(
                y0 < other_y0 + other_size
                and other_y0 < y0 + size
                and x0 < other_x0 + other_size
                and other_x0 < x0 + size
                for other_y0, other_x0, other_size in zip(y0s, x0s, sizes, strict=True)
            )
            if not overlaps:
                y0s.append(y0)
                x0s.append(x0)
                sizes.append(size)
                break
    return y0s, x0s, sizes


def shapes(
    num_images: int,
    image_size: int = 32,
    max_shapes: int = 3,
    min_size: int | None = None,
    max_size: int | None = None,
    seed: int = 0,
    small_shapes: int = 0,
) -> dict[str, np.ndarray]:
    """Generates RGB images of non-overlapping coloured shapes, with masks, boxes and labels.

    Each image has a uniform dark background and between 1 and ``max_shapes`` shapes (drawn
    uniformly) of random class, colour, size and position. Positions are rejection-sampled so
    that boxes never overlap; when a shape finds no free place after 100 proposals it is
    dropped, so crowded settings may give fewer shapes (never fewer than one). The result is
    deterministic for a ``seed``.

    With ``small_shapes=k > 0`` every image also gets ``k`` small shapes (sides from
    ``small_shape_sizes(image_size)``, 4 to 5 pixels on 32×32 images), placed after the
    regular ones in the free space, and the regular shapes default to large sides (from
    ``large_shape_min_size(image_size)``, 8 pixels on 32×32 images, to ``image_size // 2``):
    a variant with small and large objects, on which predicting at one coarse grid misses the
    small ones [notes §4.13.2]. Boxes of side at most ``small_shape_sizes(image_size)[1]`` are
    the small objects.

    Args:
        num_images: number of images, at least 1.
        image_size: height and width in pixels, at least 4.
        max_shapes: most shapes per image, at least 1.
        min_size: smallest box side in pixels, at least 2; defaults to
            ``max(2, image_size // 8)``.
        max_size: largest box side in pixels, from ``min_size`` to ``image_size``; defaults to
            ``max(min_size, image_size // 2)``.
        seed: seed of the NumPy random generator.
        small_shapes: small shapes added to every image, at least 0 (default 0: none; the
            images are then identical to those of earlier versions for the same seed).

    Returns:
        A dict of NumPy arrays:

        - ``images``: float32 ``(num_images, image_size, image_size, 3)`` in ``[0, 1]``.
        - ``masks``: int32 ``(num_images, image_size, image_size)``; 0 is background and
          ``label + 1`` marks a pixel of a shape of class ``label``.
        - ``boxes``: float32 ``(num_images, max_shapes + small_shapes, 4)``,
          ``(y_min, x_min, y_max, x_max)`` normalised by ``image_size`` to ``[0, 1]`` (the
          max edges are exclusive pixel borders); zero for padding.
        - ``labels``: int32 ``(num_images, max_shapes + small_shapes)`` indexing
          ``SHAPE_CLASSES``; -1 for padding.
        - ``num_shapes``: int32 ``(num_images,)``; slots ``[:num_shapes]`` are real shapes.

    Example:

    >>> data = shapes(4, image_size=16, max_shapes=2)
    >>> print(data["images"].shape, data["masks"].shape, data["boxes"].shape)
    (4, 16, 16, 3) (4, 16, 16) (4, 2, 4)
    """
    check_int("num_images", num_images, 1)
    check_int("image_size", image_size, 4)
    check_int("max_shapes", max_shapes, 1)
    check_int("small_shapes", small_shapes, 0)
    if min_size is None:
        min_size = large_shape_min_size(image_size) if small_shapes else max(2, image_size // 8)
    check_int("min_size", min_size, 2)
    if max_size is None:
        max_size = max(min_size, image_size // 2)
    check_int("max_size", max_size, 1)
    if min_size > image_size:
        raise ValueError(
            f"Expected `min_size` <= image_size={image_size}. Received: min_size={min_size}"
        )
    if not min_size <= max_size <= image_size:
        raise ValueError(
            f"Expected min_size={min_size} <= `max_size` <= image_size={image_size}. "
            f"Received: max_size={max_size}"
        )

    rng = np.random.default_rng(seed)
    small_min_size, small_max_size = small_shape_sizes(image_size)
    max_shapes += small_shapes  # slots per image: the regular shapes, then the small ones
    # Per slot s of each image: the box (y0, x0, size), the class and the colour.
    box_y0 = np.zeros((num_images, max_shapes), dtype=np.int32)
    box_x0 = np.zeros((num_images, max_shapes), dtype=np.int32)
    box_size = np.zeros((num_images, max_shapes), dtype=np.int32)
    num_shapes = np.zeros(num_images, dtype=np.int32)
    requested_shapes = rng.integers(1, max_shapes - small_shapes + 1, size=num_images)
    for index in range(num_images):
        y0s, x0s, sizes = _place_boxes(rng, requested_shapes[index], image_size, min_size, max_size)
        if small_shapes:
            y0s, x0s, sizes = _place_boxes(
                rng, small_shapes, image_size, small_min_size, small_max_size, (y0s, x0s, sizes)
            )
        num_shapes[index] = len(sizes)
        box_y0[index, : len(sizes)] = y0s
        box_x0[index, : len(sizes)] = x0s
        box_size[index, : len(sizes)] = sizes
    slots = np.arange(max_shapes)
    is_real = slots[np.newaxis, :] < num_shapes[:, np.newaxis]  # (N, S)
    labels = rng.integers(0, len(SHAPE_CLASSES), size=(num_images, max_shapes))
    labels = np.where(is_real, labels, -1).astype(np.int32)  # (N, S)
    colours = rng.uniform(*_COLOUR_RANGE, size=(num_images, max_shapes, 3))  # (N, S, 3)
    background = rng.uniform(*_BACKGROUND_RANGE, size=(num_images, 1, 1, 1))  # (N, 1, 1, 1)

    images = np.broadcast_to(background, (num_images, image_size, image_size, 3)).copy()
    masks = np.zeros((num_images, image_size, image_size), dtype=np.int32)
    pixel = np.arange(image_size)
    # One vectorised pass per slot: shapes never overlap, so the order of slots is irrelevant.
    for slot in range(max_shapes):
        size = box_size[:, slot, np.newaxis, np.newaxis].astype(np.float32)  # (N, 1, 1)
        rows = pixel[np.newaxis, :, np.newaxis] - box_y0[:, slot, np.newaxis, np.newaxis]
        columns = pixel[np.newaxis, np.newaxis, :] - box_x0[:, slot, np.newaxis, np.newaxis]
        # rows: (N, H, 1), columns: (N, 1, W); pixel coordinates inside the box.
        in_box = (rows >= 0) & (rows < size) & (columns >= 0) & (columns < size)  # (N, H, W)
        row_offset = rows + 0.5 - size / 2  # (N, H, 1)
        column_offset = columns + 0.5 - size / 2  # (N, 1, W)
        shape_masks = {
            "circle": row_offset**2 + column_offset**2 <= (size / 2) ** 2,
            "square": np.ones_like(in_box),
            "triangle": np.abs(column_offset) <= (rows + 1) / 2,
        }
        slot_labels = labels[:, slot, np.newaxis, np.newaxis]  # (N, 1, 1)
        covered = np.zeros_like(in_box)
        for class_index, class_name in enumerate(SHAPE_CLASSES):
            covered |= (slot_labels == class_index) & shape_masks[class_name]
        covered &= in_box  # (N, H, W); padding slots have size 0, so in_box is empty.
        masks = np.where(covered, slot_labels + 1, masks)
        images = np.where(
            covered[..., np.newaxis], colours[:, slot, np.newaxis, np.newaxis, :], images
        )

    boxes = np.stack([box_y0, box_x0, box_y0 + box_size, box_x0 + box_size], axis=-1).astype(
        np.float32
    )  # (N, S, 4)
    boxes = np.where(is_real[..., np.newaxis], boxes / image_size, 0.0).astype(np.float32)
    return {
        "images": images.astype(np.float32),
        "masks": masks.astype(np.int32),
        "boxes": boxes,
        "labels": labels,
        "num_shapes": num_shapes,
    }
