"""Multi-scale YOLO: one detection grid per level of a feature pyramid (notes §4.13.2).

YOLO v1 predicts at one S×S grid from its coarsest features, where a cell answers for one
object: small objects that share a cell are lost, and features eight pixels apart cannot place
a four-pixel box (§4.13.2, option 2). This module predicts at several grids instead, from the
outputs of a `dlkit.layers.FeaturePyramid` (option 4: a top-down pathway that brings the
coarse context back to the fine levels), each grid with its own targets:

- `assign_pyramid_levels`: the level whose cell size fits each object's size;
- `encode_multiscale_targets`: one `encode_yolo_targets` tensor per level, each holding the
  objects assigned to it;
- `multiscale_yolo_loss`: the sum over levels of `yolo_loss` (eqs. 4.6-4.8); the model compiles
  with one `YoloLoss` per output, which Keras sums the same way;
- `build_multiscale_yolo`: backbone, feature pyramid and one YOLO head per level;
- `decode_multiscale_predictions`: the scored boxes of all levels pooled, then per-class
  non-maximum suppression across levels.

Every level uses the layout of `dlkit.vision.yolo` (its module docstring); grid sizes go from
fine to coarse, each half the one before, e.g. `(8, 4)` on 32×32 images.
"""

from __future__ import annotations

import itertools

import keras
import numpy as np
from keras import ops

from dlkit.layers.feature_pyramid import FeaturePyramid
from dlkit.validation import check_int
from dlkit.vision.yolo import (
    YoloHead,
    _backbone,
    _check_decoding,
    _check_grid,
    _check_input_side,
    _check_layout,
    _conv,
    _scored_boxes,
    _suppress_per_class,
    encode_yolo_targets,
    yolo_loss,
)

__all__ = [
    "assign_pyramid_levels",
    "build_multiscale_yolo",
    "decode_multiscale_predictions",
    "encode_multiscale_targets",
    "multiscale_yolo_loss",
]

# Keeps log(size) finite for the zero-size padding boxes.
_SIZE_EPSILON = 1e-9


def _check_grid_sizes(grid_sizes, num_boxes: int, num_classes: int) -> tuple[int, ...]:
    """Two or more grid sizes from fine to coarse, each half the one before."""
    grid_sizes = tuple(grid_sizes) if isinstance(grid_sizes, (list, tuple)) else ()
    for size in grid_sizes:
        _check_grid(size, num_boxes, num_classes)
    halving = all(fine == 2 * coarse for fine, coarse in itertools.pairwise(grid_sizes))
    if len(grid_sizes) < 2 or not halving:
        raise ValueError(
            "Expected `grid_sizes` to hold two or more grid sizes from fine to coarse, each "
            f"half the one before, e.g. (8, 4). Received: grid_sizes={grid_sizes!r}"
        )
    return grid_sizes


def assign_pyramid_levels(boxes, grid_sizes=(8, 4)) -> np.ndarray:
    """The pyramid level of each box: the grid whose cell size is nearest the box's size.

    An object of side s (the geometric mean of its width and height) goes to the level l whose
    cell side 1/S_l is nearest s in ratio, so that each grid answers for objects about the size
    of its cells: on 32×32 images with grids (8, 4) (cells of 4 and 8 pixels) objects up to 5
    pixels go to the 8×8 grid, larger ones to the 4×4 grid [notes §4.13.2].

    Equation:

        s = √(w · h),      level = argmin_l | log(s · S_l) |

    Args:
        boxes: (..., 4) boxes `(y_min, x_min, y_max, x_max)` in [0, 1].
        grid_sizes: the grid sizes S_l from fine to coarse, each half the one before.
            Defaults to (8, 4).

    Returns:
        int64 level indices (into `grid_sizes`) of shape `boxes.shape[:-1]`.

    Example:

        >>> assign_pyramid_levels(np.array([[0.0, 0.0, 0.125, 0.125], [0.0, 0.0, 0.5, 0.5]]))
        array([0, 1])
    """
    grid_sizes = _check_grid_sizes(grid_sizes, 1, 1)
    boxes = np.asarray(boxes, dtype=np.float64)
    side = np.sqrt(
        np.maximum(boxes[..., 2] - boxes[..., 0], 0) * np.maximum(boxes[..., 3] - boxes[..., 1], 0)
    )
    cells = np.asarray(grid_sizes, dtype=np.float64)
    distance = np.abs(np.log(np.maximum(side[..., np.newaxis], _SIZE_EPSILON) * cells))
    return np.argmin(distance, axis=-1)


def encode_multiscale_targets(
    boxes, labels, grid_sizes=(8, 4), num_boxes: int = 2, num_classes: int = 3
) -> list[np.ndarray]:
    """Ground truth → one YOLO target tensor per level, each with the objects assigned to it.

    Each object goes to the level of `assign_pyramid_levels`; the targets of level l are
    `encode_yolo_targets` of those objects alone on the S_l×S_l grid (the others are treated
    as padding there), so the layout and the one-object-per-cell rule are those of
    `dlkit.vision.yolo`, level by level [notes §4.13.1-4.13.2].

    Equation:

        targets_l = encode_yolo_targets({objects with level = l}, S_l)

    Args:
        boxes: (N, K, 4) boxes `(y_min, x_min, y_max, x_max)` in [0, 1].
        labels: (N, K) integer classes; negative values mark padding.
        grid_sizes: S_l from fine to coarse, each half the one before. Defaults to (8, 4).
        num_boxes: B, predictors per cell. Defaults to 2.
        num_classes: C. Defaults to 3.

    Returns:
        A list with one float32 (N, S_l, S_l, 5B + C) array per level, fine to coarse.

    Raises:
        ValueError: for bad grid sizes, or any input `encode_yolo_targets` rejects.

    Example:

        >>> boxes = np.array([[[0.0, 0.0, 0.125, 0.125], [0.5, 0.5, 1.0, 1.0]]])
        >>> fine, coarse = encode_multiscale_targets(boxes, np.array([[0, 1]]))
        >>> fine.shape, coarse.shape, int(fine[..., 4].sum()), int(coarse[..., 4].sum())
        ((1, 8, 8, 13), (1, 4, 4, 13), 1, 1)
    """
    grid_sizes = _check_grid_sizes(grid_sizes, num_boxes, num_classes)
    labels = np.asarray(labels)
    levels = assign_pyramid_levels(boxes, grid_sizes)
    return [
        encode_yolo_targets(
            boxes, np.where(levels == level, labels, -1), size, num_boxes, num_classes
        )
        for level, size in enumerate(grid_sizes)
    ]


def multiscale_yolo_loss(
    y_true,
    y_pred,
    grid_sizes=(8, 4),
    num_boxes: int = 2,
    num_classes: int = 3,
    lambda_coord: float = 5.0,
    lambda_noobj: float = 0.5,
):
    """The YOLO loss summed over the levels of a multi-scale detector (eqs. 4.6-4.8).

    Each level pays `yolo_loss` on its own grid against its own targets; the image's loss is
    the sum. Compiling a `build_multiscale_yolo` model with one `YoloLoss(S_l, ...)` per
    output gives the same total (Keras sums the outputs' losses), batch-averaged.

    Equation:

        L = Σ_l L_YOLO(targets_l, predictions_l; S_l)                           (eq. 4.8)

    Args:
        y_true: one target tensor (N, S_l, S_l, 5B + C) per level, fine to coarse.
        y_pred: one prediction tensor per level, in the same order.
        grid_sizes: S_l from fine to coarse. Defaults to (8, 4).
        num_boxes: B. Defaults to 2.
        num_classes: C. Defaults to 3.
        lambda_coord: weight of the localisation loss. Defaults to 5.0.
        lambda_noobj: weight of the empty predictors' confidence loss. Defaults to 0.5.

    Returns:
        The loss of each image, shape (N,).

    Raises:
        ValueError: when the number of tensors or their shapes disagree with the grids.

    Example:

        >>> boxes = np.array([[[0.0, 0.0, 0.125, 0.125], [0.5, 0.5, 1.0, 1.0]]])
        >>> targets = encode_multiscale_targets(boxes, np.array([[0, 1]]))
        >>> keras.ops.convert_to_numpy(multiscale_yolo_loss(targets, targets)).tolist()
        [0.0]
    """
    grid_sizes = _check_grid_sizes(grid_sizes, num_boxes, num_classes)
    if len(y_true) != len(grid_sizes) or len(y_pred) != len(grid_sizes):
        raise ValueError(
            f"Expected one tensor per level of grid_sizes={grid_sizes} in `y_true` and "
            f"`y_pred`. Received: {len(y_true)} and {len(y_pred)} tensors"
        )
    losses = [
        yolo_loss(truth, prediction, size, num_boxes, num_classes, lambda_coord, lambda_noobj)
        for truth, prediction, size in zip(y_true, y_pred, grid_sizes, strict=True)
    ]
    return ops.sum(ops.stack(losses), axis=0)


def build_multiscale_yolo(
    input_shape: tuple[int, int, int] = (32, 32, 3),
    grid_sizes=(8, 4),
    num_boxes: int = 2,
    num_classes: int = 3,
    filters: int = 16,
    name: str = "multiscale_yolo",
) -> keras.Model:
    """A YOLO-style detector that predicts at every level of a feature pyramid.

    The backbone of `build_yolo` (3×3 convolutions with batch normalisation and leaky ReLU,
    max pooling, doubling the channels) runs down to the finest grid S_1, then one pooling and
    convolution per coarser grid. A `FeaturePyramid` recombines these maps top-down (lateral
    1×1 convolutions, ×2 upsampling and addition, 3×3 smoothing); each of its outputs goes
    through a 3×3 convolution, a 1×1 convolution to 5B + C channels and a `YoloHead`, so that
    every level predicts boxes on its own grid [notes §4.13.2, option 4].

    Equation:

        C_1       = backbone(image)                  S_1 × S_1 (as `build_yolo` at grid S_1)
        C_l       = conv(pool(C_{l-1}))              S_l × S_l, l = 2 … L
        P_1 … P_L = FeaturePyramid(C_1 … C_L)
        y_l       = YoloHead(conv1×1(conv3×3(P_l)))  (N, S_l, S_l, 5B + C)

    Args:
        input_shape: (H, W, channels), H = W = S_1 · 2^k for some k >= 1. Defaults to
            (32, 32, 3).
        grid_sizes: S_l from fine to coarse, each half the one before. Defaults to (8, 4).
        num_boxes: B, boxes per cell. Defaults to 2.
        num_classes: C. Defaults to 3.
        filters: channels of the first convolution. Defaults to 16.
        name: the model's name. Defaults to "multiscale_yolo".

    Returns:
        An uncompiled functional model from images (N, H, W, channels) to a list of
        predictions, one (N, S_l, S_l, 5B + C) per level, fine to coarse; compile it with
        `[YoloLoss(S_l, num_boxes, num_classes) for S_l in grid_sizes]`.

    Example:

        >>> model = build_multiscale_yolo((16, 16, 3), grid_sizes=(4, 2), filters=4)
        >>> [tuple(shape) for shape in model.output_shape]
        [(None, 4, 4, 13), (None, 2, 2, 13)]

    Reference:
        Lin et al., "Feature Pyramid Networks for Object Detection", CVPR 2017
        (https://arxiv.org/abs/1612.03144); Redmon et al., "You Only Look Once", CVPR 2016
        (https://arxiv.org/abs/1506.02640).
    """
    grid_sizes = _check_grid_sizes(grid_sizes, num_boxes, num_classes)
    check_int("filters", filters)
    num_poolings = _check_input_side(input_shape, grid_sizes[0])
    inputs = keras.Input(tuple(input_shape), name="image")
    levels = [_backbone(inputs, filters, num_poolings)]
    width = levels[0].shape[-1]
    for size in grid_sizes[1:]:
        pooled = keras.layers.MaxPooling2D(2, name=f"level{size}_pool")(levels[-1])
        levels.append(_conv(pooled, 2 * levels[-1].shape[-1], 3, name=f"level{size}_conv"))
    pyramid = FeaturePyramid(width, name="feature_pyramid")(levels)
    outputs = []
    for size, features in zip(grid_sizes, pyramid, strict=True):
        features = _conv(features, width, 3, name=f"head{size}_conv")
        raw = keras.layers.Conv2D(5 * num_boxes + num_classes, 1, name=f"head{size}_predictions")(
            features
        )
        outputs.append(YoloHead(num_boxes, num_classes, name=f"yolo_head{size}")(raw))
    return keras.Model(inputs, outputs, name=name)


def decode_multiscale_predictions(
    y_pred,
    grid_sizes=(8, 4),
    num_boxes: int = 2,
    num_classes: int = 3,
    score_threshold: float = 0.1,
    iou_threshold: float = 0.5,
    max_detections: int | None = None,
) -> list[list[tuple[np.ndarray, int, float]]]:
    """Outputs of every level → boxes, classes and scores per image, NMS across levels.

    The S_l·S_l·B boxes of every level are scored as in `decode_predictions` (class
    probability times confidence, eq. 4.5) and pooled; per class, non-maximum suppression then
    runs over the pooled boxes, so an object seen at two levels yields one detection.

    Equation:

        candidates = ∪_l {(box, score_c) of level l}
        detections = per-class NMS(candidates)

    Args:
        y_pred: one prediction tensor (N, S_l, S_l, 5B + C) per level, fine to coarse.
        grid_sizes: S_l from fine to coarse. Defaults to (8, 4).
        num_boxes: B. Defaults to 2.
        num_classes: C. Defaults to 3.
        score_threshold: as in `decode_predictions`. Defaults to 0.1.
        iou_threshold: as in `decode_predictions`. Defaults to 0.5.
        max_detections: as in `decode_predictions`. Defaults to None (all).

    Returns:
        One list per image of `(box, class, score)`, in decreasing score (as
        `decode_predictions`).

    Raises:
        ValueError: when the number of tensors or their shapes disagree with the grids.

    Example:

        >>> boxes = np.array([[[0.0, 0.0, 0.125, 0.125], [0.5, 0.5, 1.0, 1.0]]])
        >>> targets = encode_multiscale_targets(boxes, np.array([[0, 1]]))
        >>> [label for _, label, _ in decode_multiscale_predictions(targets)[0]]
        [0, 1]
    """
    grid_sizes = _check_grid_sizes(grid_sizes, num_boxes, num_classes)
    _check_decoding(score_threshold, iou_threshold, max_detections)
    if len(y_pred) != len(grid_sizes):
        raise ValueError(
            f"Expected one tensor per level of grid_sizes={grid_sizes} in `y_pred`. "
            f"Received: {len(y_pred)} tensors"
        )
    all_corners, all_scores = [], []
    for prediction, size in zip(y_pred, grid_sizes, strict=True):
        prediction = np.asarray(keras.ops.convert_to_numpy(prediction), dtype=np.float32)
        _check_layout("y_pred", prediction, size, num_boxes, num_classes)
        corners, scores = _scored_boxes(prediction, size, num_boxes, num_classes)
        all_corners.append(corners)
        all_scores.append(scores)
    return _suppress_per_class(
        np.concatenate(all_corners, axis=1),
        np.concatenate(all_scores, axis=1),
        score_threshold,
        iou_threshold,
        max_detections,
    )
