"""YOLO: single-shot object detection on an S×S grid (notes §4.13, eqs. 4.5-4.8).

The image is cut into an S×S grid. The cell that holds the centre of an object is responsible
for it: each cell predicts B boxes, each with a confidence, and one set of C class
probabilities (§4.13.1). This module gives the pieces of that pipeline:

- `encode_yolo_targets`: ground-truth boxes and labels → the S×S×(5B + C) target tensor;
- `yolo_loss` and `YoloLoss`: the localisation and classification losses (eqs. 4.6-4.8);
- `build_yolo` and `YoloHead`: a small fully convolutional detector, optionally with a
  feature-pyramid top-down pathway (§4.13.2, option 4);
- `decode_predictions`: class-specific scores (eq. 4.5) and per-class non-maximum
  suppression → boxes, classes and scores per image.

Intersection over union and non-maximum suppression live in `dlkit.vision.boxes`, the mAP in
`dlkit.vision.detection_metrics`.

Boxes are `(y_min, x_min, y_max, x_max)` normalised to [0, 1] by the image size, the layout of
`dlkit.data.shapes`.

Layout of the S×S×(5B + C) tensor (targets and predictions alike): along the last axis, B
groups of five numbers `(x, y, w, h, confidence)` and then the C class probabilities. `x` and
`y` are the box centre's column and row offset inside its cell, in [0, 1]; `w` and `h` are the
box width and height relative to the whole image. A cell in row i and column j thus holds a box
with centre `((i + y) / S, (j + x) / S)` in image coordinates (row, column).
"""

from __future__ import annotations

import math

import keras
import numpy as np
from keras import ops

from dlkit.layers.feature_pyramid import FeaturePyramid
from dlkit.validation import check_int, check_unit_interval
from dlkit.vision._checks import check_boxes
from dlkit.vision.boxes import _greedy_suppression, iou

__all__ = [
    "YoloHead",
    "YoloLoss",
    "build_yolo",
    "decode_predictions",
    "encode_yolo_targets",
    "yolo_loss",
]

# Keeps the gradient of √w finite at w = 0.
_SQRT_EPSILON = 1e-9


def _check_grid(grid_size, num_boxes, num_classes) -> None:
    check_int("grid_size", grid_size)
    check_int("num_boxes", num_boxes)
    check_int("num_classes", num_classes)


def encode_yolo_targets(
    boxes, labels, grid_size: int = 4, num_boxes: int = 2, num_classes: int = 3
) -> np.ndarray:
    """Ground-truth boxes and labels → YOLO targets (N, S, S, 5B + C) (notes §4.13.1).

    The cell that holds a box's centre is responsible for it. Its first predictor slot gets
    the box as `(x, y, w, h, 1)`: the centre's offsets inside the cell, the size relative to
    the image and confidence 1; the cell's class part gets the one-hot label. The other B - 1
    slots and every cell without an object stay zero, so the target reads as a perfect
    prediction (`yolo_loss(t, t) == 0`). `yolo_loss` chooses which of the B predictors answers
    for the box during training; the target only says where the box is.

    As in YOLO v1, a cell detects one object: when two box centres fall in the same cell the
    first one (in the order given) is kept and the later ones are dropped.

    Equation:

        i, j = floor(S · y_centre), floor(S · x_centre)          (row, column of the cell)
        x, y = S · x_centre - j, S · y_centre - i                (offsets in the cell)
        w, h = x_max - x_min, y_max - y_min                      (relative to the image)

    Args:
        boxes: (N, K, 4) boxes `(y_min, x_min, y_max, x_max)` in [0, 1] (K boxes per image;
            padding rows are ignored through `labels`).
        labels: (N, K) integer classes in [0, num_classes); negative values mark padding.
        grid_size: S, cells per side. Defaults to 4.
        num_boxes: B, predictors per cell. Defaults to 2.
        num_classes: C. Defaults to 3.

    Returns:
        float32 targets of shape (N, S, S, 5B + C) in the layout of the module docstring.

    Raises:
        ValueError: for boxes outside [0, 1] or of negative size, labels out of range, or
            shapes that do not match.

    Example:

        >>> import numpy as np
        >>> boxes = np.array([[[0.1, 0.6, 0.3, 0.8]]])
        >>> targets = encode_yolo_targets(boxes, np.array([[2]]), 2, 1, 3)
        >>> targets.shape
        (1, 2, 2, 8)
        >>> [round(float(v), 2) for v in targets[0, 0, 1]]  # row 0, column 1
        [0.4, 0.4, 0.2, 0.2, 1.0, 0.0, 0.0, 1.0]

    Reference:
        Redmon et al., "You Only Look Once: Unified, Real-Time Object Detection", CVPR 2016
        (https://arxiv.org/abs/1506.02640).
    """
    _check_grid(grid_size, num_boxes, num_classes)
    boxes = check_boxes("boxes", boxes)
    try:
        labels = np.asarray(labels)
    except (TypeError, ValueError) as error:
        raise ValueError(
            f"Expected `labels` to be an integer array. Received: {labels!r}"
        ) from error
    if boxes.ndim != 3 or labels.shape != boxes.shape[:2]:
        raise ValueError(
            "Expected `boxes` of shape (N, K, 4) and `labels` of shape (N, K). "
            f"Received: boxes with shape {boxes.shape} and labels with shape {labels.shape}"
        )
    if labels.size and not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"Expected `labels` to be integers. Received: labels.dtype={labels.dtype}")
    if np.any(labels >= num_classes):
        raise ValueError(
            f"Expected `labels` < num_classes={num_classes}. Received: labels containing "
            f"{int(labels.max())}"
        )
    size = grid_size
    targets = np.zeros((len(boxes), size, size, 5 * num_boxes + num_classes), dtype=np.float32)
    for image_index in range(len(boxes)):
        for (y_min, x_min, y_max, x_max), label in zip(
            boxes[image_index], labels[image_index], strict=True
        ):
            if label < 0:
                continue
            y_centre, x_centre = (y_min + y_max) / 2, (x_min + x_max) / 2
            row = min(int(y_centre * size), size - 1)
            column = min(int(x_centre * size), size - 1)
            cell = targets[image_index, row, column]
            if cell[4] > 0:
                continue  # the cell already answers for an earlier object
            cell[:5] = (
                x_centre * size - column,
                y_centre * size - row,
                x_max - x_min,
                y_max - y_min,
                1.0,
            )
            cell[5 * num_boxes + int(label)] = 1.0
    return targets


def _cell_boxes_to_corners(cell_boxes, grid_size: int):
    """(..., S, S, B, 4) `(x, y, w, h)` in cell layout → `(y_min, x_min, y_max, x_max)`."""
    cell_boxes = ops.convert_to_tensor(cell_boxes, dtype="float32")
    cells = ops.arange(grid_size, dtype="float32")
    rows = ops.reshape(cells, (grid_size, 1, 1))
    columns = ops.reshape(cells, (1, grid_size, 1))
    x_centre = (columns + cell_boxes[..., 0]) / grid_size
    y_centre = (rows + cell_boxes[..., 1]) / grid_size
    half_w, half_h = cell_boxes[..., 2] / 2, cell_boxes[..., 3] / 2
    return ops.stack(
        [y_centre - half_h, x_centre - half_w, y_centre + half_h, x_centre + half_w], axis=-1
    )


def _check_layout(name: str, tensor, grid_size, num_boxes, num_classes) -> None:
    shape = tuple(tensor.shape)
    depth = 5 * num_boxes + num_classes
    if len(shape) != 4 or shape[-1] != depth or tuple(shape[1:3]) != (grid_size, grid_size):
        raise ValueError(
            f"Expected `{name}` of shape (N, {grid_size}, {grid_size}, {depth}) for "
            f"grid_size={grid_size}, num_boxes={num_boxes}, num_classes={num_classes} "
            f"(5 * num_boxes + num_classes = {depth}). Received: {name} with shape {shape}"
        )


def yolo_loss(
    y_true,
    y_pred,
    grid_size: int = 4,
    num_boxes: int = 2,
    num_classes: int = 3,
    lambda_coord: float = 5.0,
    lambda_noobj: float = 0.5,
    rescore: bool = True,
):
    """The YOLO v1 loss per image: localisation, confidence and class terms (eqs. 4.6-4.8).

    In a cell with an object, the predictor responsible for it (`1_ij^obj`) is the one of the
    B whose predicted box has the highest IoU with the ground truth. Only that predictor pays
    the localisation loss, on the centre offsets and on the square roots of width and height
    (so that an error of a few pixels matters more on a small box than on a large one), and its
    confidence is pulled to the IoU of its box with the truth (`rescore=True`, the notes'
    Pr(object) · IoU; or to 1 with `rescore=False`). Every other predictor's confidence is
    pulled to 0 with the smaller weight λ_noobj, since most cells hold no object. The class
    probabilities of a cell count only when it holds an object (`1_i^obj`).

    Equation:

        L_loc = Σ_i Σ_j 1_ij^obj [(x - x̂)² + (y - ŷ)² + (√w - √ŵ)² + (√h - √ĥ)²]  (eq. 4.6)
        L_cls = Σ_i Σ_j (1_ij^obj + λ_noobj (1 - 1_ij^obj)) (C_ij - Ĉ_ij)²
                + Σ_i 1_i^obj Σ_c (p_i(c) - p̂_i(c))²                             (eq. 4.7)
        L     = λ_coord L_loc + L_cls                                            (eq. 4.8)

    with C_ij = IoU(truth, predicted box j) for the responsible predictor (a constant, no
    gradient flows through it) and 0 for the others.

    Args:
        y_true: targets (N, S, S, 5B + C) from `encode_yolo_targets` (the truth is read from
            each cell's first slot).
        y_pred: predictions (N, S, S, 5B + C) in the same layout, with w and h >= 0 (as
            `YoloHead` gives them).
        grid_size: S. Defaults to 4.
        num_boxes: B. Defaults to 2.
        num_classes: C. Defaults to 3.
        lambda_coord: weight of the localisation loss. Defaults to 5.0 (YOLO).
        lambda_noobj: weight of the confidence loss of predictors without an object. Defaults
            to 0.5 (YOLO).
        rescore: if True (default), the responsible confidence's target is the IoU of its box
            with the truth; if False, it is 1.

    Returns:
        The loss of each image, shape (N,) (sums over cells, as in the paper).

    Raises:
        ValueError: when the shape of `y_true` or `y_pred` disagrees with S, B and C.

    Example:

        >>> import numpy as np
        >>> targets = encode_yolo_targets(np.array([[[0.1, 0.1, 0.4, 0.5]]]), np.array([[1]]))
        >>> keras.ops.convert_to_numpy(yolo_loss(targets, targets)).tolist()
        [0.0]

    Reference:
        Redmon et al., "You Only Look Once: Unified, Real-Time Object Detection", CVPR 2016
        (https://arxiv.org/abs/1506.02640).
    """
    _check_grid(grid_size, num_boxes, num_classes)
    y_true = ops.convert_to_tensor(y_true, dtype="float32")
    y_pred = ops.convert_to_tensor(y_pred, dtype="float32")
    _check_layout("y_true", y_true, grid_size, num_boxes, num_classes)
    _check_layout("y_pred", y_pred, grid_size, num_boxes, num_classes)
    box_depth = 5 * num_boxes
    shape = (-1, grid_size, grid_size, num_boxes, 5)
    predicted = ops.reshape(y_pred[..., :box_depth], shape)  # (N, S, S, B, 5)
    truth = y_true[..., :4]  # (N, S, S, 4)
    has_object = y_true[..., 4]  # (N, S, S)

    true_corners = _cell_boxes_to_corners(ops.expand_dims(truth, -2), grid_size)
    predicted_corners = _cell_boxes_to_corners(predicted[..., :4], grid_size)
    overlaps = iou(predicted_corners, true_corners)  # (N, S, S, B)
    responsible = ops.one_hot(ops.argmax(overlaps, axis=-1), num_boxes) * ops.expand_dims(
        has_object, -1
    )
    responsible = ops.stop_gradient(responsible)

    true_xy, pred_xy = ops.expand_dims(truth[..., :2], -2), predicted[..., :2]
    true_wh = ops.sqrt(ops.expand_dims(truth[..., 2:4], -2) + _SQRT_EPSILON)
    pred_wh = ops.sqrt(ops.relu(predicted[..., 2:4]) + _SQRT_EPSILON)
    coordinate_error = ops.sum(ops.square(true_xy - pred_xy), -1) + ops.sum(
        ops.square(true_wh - pred_wh), -1
    )
    localisation = ops.sum(responsible * coordinate_error, axis=(1, 2, 3))

    confidence_target = ops.stop_gradient(overlaps) if rescore else ops.ones_like(overlaps)
    confidence_target = responsible * confidence_target
    confidence_weight = responsible + lambda_noobj * (1.0 - responsible)
    confidence = ops.sum(
        confidence_weight * ops.square(confidence_target - predicted[..., 4]), axis=(1, 2, 3)
    )
    class_error = ops.sum(ops.square(y_true[..., box_depth:] - y_pred[..., box_depth:]), -1)
    classification = ops.sum(has_object * class_error, axis=(1, 2))
    return lambda_coord * localisation + confidence + classification


@keras.saving.register_keras_serializable(package="dlkit")
class YoloLoss(keras.losses.Loss):
    """`yolo_loss` (eqs. 4.6-4.8) as a Keras loss for `model.compile`.

    Each image's loss is the sum over its cells (as in YOLO v1); Keras then averages over the
    batch.

    Equation:

        L = λ_coord L_loc + L_cls                                               (eq. 4.8)

    Args:
        grid_size: S. Defaults to 4.
        num_boxes: B. Defaults to 2.
        num_classes: C. Defaults to 3.
        lambda_coord: weight of the localisation loss. Defaults to 5.0.
        lambda_noobj: weight of the empty predictors' confidence loss. Defaults to 0.5.
        rescore: confidence target IoU (True, default) or 1 (False).
        **kwargs: other arguments of `keras.losses.Loss` (`name`, `reduction`).

    Returns:
        A loss object; calling it on (y_true, y_pred) returns the batch mean.

    Example:

        >>> import numpy as np
        >>> targets = encode_yolo_targets(np.array([[[0.1, 0.1, 0.4, 0.5]]]), np.array([[1]]))
        >>> float(YoloLoss()(targets, np.zeros_like(targets))) > 0
        True

    Reference:
        Redmon et al., "You Only Look Once: Unified, Real-Time Object Detection", CVPR 2016
        (https://arxiv.org/abs/1506.02640).
    """

    def __init__(
        self,
        grid_size=4,
        num_boxes=2,
        num_classes=3,
        lambda_coord=5.0,
        lambda_noobj=0.5,
        rescore=True,
        name="yolo_loss",
        **kwargs,
    ):
        super().__init__(name=name, **kwargs)
        _check_grid(grid_size, num_boxes, num_classes)
        self.grid_size = grid_size
        self.num_boxes = num_boxes
        self.num_classes = num_classes
        self.lambda_coord = lambda_coord
        self.lambda_noobj = lambda_noobj
        self.rescore = rescore

    def call(self, y_true, y_pred):
        return yolo_loss(
            y_true,
            y_pred,
            self.grid_size,
            self.num_boxes,
            self.num_classes,
            self.lambda_coord,
            self.lambda_noobj,
            self.rescore,
        )

    def get_config(self):
        return {
            **super().get_config(),
            "grid_size": self.grid_size,
            "num_boxes": self.num_boxes,
            "num_classes": self.num_classes,
            "lambda_coord": self.lambda_coord,
            "lambda_noobj": self.lambda_noobj,
            "rescore": self.rescore,
        }


@keras.saving.register_keras_serializable(package="dlkit")
class YoloHead(keras.layers.Layer):
    """Turns raw detector outputs into YOLO's box, confidence and class predictions.

    The last convolution of a detector outputs 5B + C unconstrained numbers per cell. This
    layer squashes each predictor's `(x, y, w, h, confidence)` into [0, 1] with a sigmoid (the
    offsets live inside the cell, the sizes inside the image, the confidence is an IoU) and
    turns the C class scores into the conditional probabilities Pr(class | object) with a
    softmax (notes §4.13.1). The layout is unchanged.

    Equation:

        (x, y, w, h, C)_j = sigmoid(raw_j)            for each of the B predictors
        p(c | object)     = softmax(raw_classes)_c

    Args:
        num_boxes: B, predictors per cell.
        num_classes: C, the number of classes.
        **kwargs: other arguments of `keras.layers.Layer`.

    Returns:
        Predictions of the input's shape (N, S, S, 5B + C).

    Example:

        >>> import numpy as np
        >>> head = YoloHead(num_boxes=1, num_classes=2)
        >>> out = keras.ops.convert_to_numpy(head(np.zeros((1, 1, 1, 7), "float32")))
        >>> out.round(2).tolist()
        [[[[0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5]]]]

    Reference:
        Redmon et al., "You Only Look Once: Unified, Real-Time Object Detection", CVPR 2016
        (https://arxiv.org/abs/1506.02640).
    """

    def __init__(self, num_boxes, num_classes, **kwargs):
        super().__init__(**kwargs)
        check_int("num_boxes", num_boxes)
        check_int("num_classes", num_classes)
        self.num_boxes = num_boxes
        self.num_classes = num_classes

    def call(self, inputs):
        box_depth = 5 * self.num_boxes
        boxes = ops.sigmoid(inputs[..., :box_depth])
        classes = ops.softmax(inputs[..., box_depth:], axis=-1)
        return ops.concatenate([boxes, classes], axis=-1)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {
            **super().get_config(),
            "num_boxes": self.num_boxes,
            "num_classes": self.num_classes,
        }


def _conv(x, filters, kernel_size, name):
    x = keras.layers.Conv2D(filters, kernel_size, padding="same", use_bias=False, name=name)(x)
    x = keras.layers.BatchNormalization(name=f"{name}_bn")(x)
    return keras.layers.LeakyReLU(0.1, name=f"{name}_act")(x)


def _backbone(inputs, filters: int, num_poolings: int):
    """3×3 convolutions and 2×2 max pooling, `num_poolings` times, then two convolutions at
    the grid: (N, H, W, channels) → (N, H / 2^K, W / 2^K, filters · 2^K), K = num_poolings."""
    x = inputs
    for level in range(num_poolings):
        x = _conv(x, filters * 2**level, 3, name=f"conv{level + 1}")
        x = keras.layers.MaxPooling2D(2, name=f"pool{level + 1}")(x)
    width_grid = filters * 2**num_poolings
    x = _conv(x, width_grid, 3, name="grid_conv1")
    return _conv(x, width_grid, 3, name="grid_conv2")


def _check_input_side(input_shape, grid_size: int) -> int:
    """The number of poolings K of a square `input_shape` of side grid_size · 2^K, K >= 1."""
    if len(input_shape) != 3:
        raise ValueError(f"Expected `input_shape` (H, W, C). Received: input_shape={input_shape!r}")
    height, width = input_shape[0], input_shape[1]
    ratio = height // grid_size if height % grid_size == 0 else 0
    if height != width or ratio < 2 or ratio & (ratio - 1):
        raise ValueError(
            "Expected a square `input_shape` whose side is grid_size times a power of two "
            f"(>= 2). Received: input_shape={tuple(input_shape)!r}, grid_size={grid_size}"
        )
    return int(math.log2(ratio))


def build_yolo(
    input_shape: tuple[int, int, int] = (32, 32, 3),
    grid_size: int = 4,
    num_boxes: int = 2,
    num_classes: int = 3,
    filters: int = 16,
    fpn: bool = False,
    name: str = "yolo",
) -> keras.Model:
    """A small fully convolutional YOLO-style detector with an S×S×(5B + C) output.

    A backbone of 3×3 convolutions (batch normalisation, leaky ReLU) halves the resolution
    with max pooling, doubling the channels each time, until the feature map is S×S: each
    position of it is one grid cell. A 1×1 convolution then predicts the 5B + C numbers per
    cell and `YoloHead` squashes them (notes §4.13.1).

    With `fpn=True` the backbone goes one level deeper (S/2 × S/2, features that see the
    whole image) and a two-level `dlkit.layers.FeaturePyramid` brings that context back: the
    deeper map is upsampled ×2 and added to a 1×1 lateral projection of the S×S backbone
    features, a 3×3 convolution smooths the sum and the prediction is made from the merged
    map. This is §4.13.2's option 4 (a top-down pathway with lateral connections), at the one
    scale YOLO predicts at; `dlkit.vision.multiscale_yolo` predicts at every level.

    Equation:

        C_k    = pool(conv(C_{k-1}))                H / 2^k, filters · 2^(k-1) channels
        C_grid = conv(conv(C_K))                    S × S, filters · 2^K channels, K = log2(H / S)
        P      = C_grid                             (plain)
        C_deep = conv(pool(C_grid))                 S/2 × S/2 (fpn)
        P      = FeaturePyramid([C_grid, C_deep])[0]   (fpn)
        y      = YoloHead(conv1×1(P))               (N, S, S, 5B + C)

    Args:
        input_shape: (H, W, channels) with H = W = S · 2^k for some k >= 1. Defaults to
            (32, 32, 3).
        grid_size: S, cells per side; even when `fpn` is True. Defaults to 4.
        num_boxes: B, boxes per cell. Defaults to 2.
        num_classes: C. Defaults to 3.
        filters: channels of the first convolution. Defaults to 16.
        fpn: add the feature-pyramid top-down pathway. Defaults to False.
        name: the model's name. Defaults to "yolo".

    Returns:
        An uncompiled functional model from images (N, H, W, channels) to predictions
        (N, S, S, 5B + C); compile it with `YoloLoss(grid_size, num_boxes, num_classes)`.

    Example:

        >>> model = build_yolo((16, 16, 3), grid_size=4, num_boxes=2, num_classes=3, filters=4)
        >>> model.output_shape
        (None, 4, 4, 13)

    Reference:
        Redmon et al., "You Only Look Once", CVPR 2016 (https://arxiv.org/abs/1506.02640);
        Lin et al., "Feature Pyramid Networks for Object Detection", CVPR 2017
        (https://arxiv.org/abs/1612.03144).
    """
    _check_grid(grid_size, num_boxes, num_classes)
    check_int("filters", filters)
    num_poolings = _check_input_side(input_shape, grid_size)
    if fpn and grid_size % 2:
        raise ValueError(
            f"Expected an even `grid_size` when fpn=True. Received: grid_size={grid_size}"
        )
    inputs = keras.Input(tuple(input_shape), name="image")
    grid_features = _backbone(inputs, filters, num_poolings)
    if fpn:
        width_grid = grid_features.shape[-1]
        deep = keras.layers.MaxPooling2D(2, name="deep_pool")(grid_features)
        deep = _conv(deep, width_grid, 3, name="deep_conv")
        pyramid = FeaturePyramid(width_grid, num_outputs=1, name="feature_pyramid")
        grid_features = pyramid([grid_features, deep])[0]
    raw = keras.layers.Conv2D(5 * num_boxes + num_classes, 1, name="predictions")(grid_features)
    outputs = YoloHead(num_boxes, num_classes, name="yolo_head")(raw)
    return keras.Model(inputs, outputs, name=name)


def decode_predictions(
    y_pred,
    grid_size: int = 4,
    num_boxes: int = 2,
    num_classes: int = 3,
    score_threshold: float = 0.1,
    iou_threshold: float = 0.5,
    max_detections: int | None = None,
) -> list[list[tuple[np.ndarray, int, float]]]:
    """Detector outputs → boxes, classes and scores per image (eq. 4.5 and NMS).

    Each of the S·S·B predicted boxes gets one class-specific confidence score per class: the
    cell's conditional class probability times the box's confidence. Boxes scoring below
    `score_threshold` are dropped and, class by class, non-maximum suppression removes the
    duplicates of one object. Boxes are clipped to the image.

    Equation:

        score_c = Pr(class_c | object) · Pr(object) · IoU(truth, pred)
                = p(c) · confidence                                              (eq. 4.5)

    Args:
        y_pred: predictions (N, S, S, 5B + C) (a `build_yolo` output, or encoded targets).
        grid_size: S. Defaults to 4.
        num_boxes: B. Defaults to 2.
        num_classes: C. Defaults to 3.
        score_threshold: the smallest class-specific score kept. Defaults to 0.1.
        iou_threshold: the NMS overlap threshold. Defaults to 0.5.
        max_detections: the most detections per image (best first); `None` (default) keeps
            all.

    Returns:
        One list per image of `(box, class, score)`: box a float32 (4,) array
        `(y_min, x_min, y_max, x_max)`, class an int and score a float, in decreasing score.

    Example:

        >>> boxes = np.array([[[0.1, 0.6, 0.3, 0.8]]])
        >>> targets = encode_yolo_targets(boxes, np.array([[2]]), 2, 1, 3)
        >>> [(box, label, score)] = decode_predictions(targets, 2, 1, 3)[0]
        >>> [round(float(v), 2) for v in box], label, round(score, 2)
        ([0.1, 0.6, 0.3, 0.8], 2, 1.0)

    Reference:
        Redmon et al., "You Only Look Once", CVPR 2016 (https://arxiv.org/abs/1506.02640).
    """
    _check_grid(grid_size, num_boxes, num_classes)
    _check_decoding(score_threshold, iou_threshold, max_detections)
    y_pred = np.asarray(keras.ops.convert_to_numpy(y_pred), dtype=np.float32)
    _check_layout("y_pred", y_pred, grid_size, num_boxes, num_classes)
    corners, scores = _scored_boxes(y_pred, grid_size, num_boxes, num_classes)
    return _suppress_per_class(corners, scores, score_threshold, iou_threshold, max_detections)


def _check_decoding(score_threshold, iou_threshold, max_detections) -> None:
    check_unit_interval("score_threshold", score_threshold)
    check_unit_interval("iou_threshold", iou_threshold)
    if max_detections is not None:
        check_int("max_detections", max_detections)


def _scored_boxes(y_pred: np.ndarray, grid_size: int, num_boxes: int, num_classes: int):
    """Checked predictions (N, S, S, 5B + C) → every predicted box as clipped corners
    (N, S·S·B, 4) and its class-specific scores (N, S·S·B, C) (eq. 4.5)."""
    box_depth = 5 * num_boxes
    cell_boxes = y_pred[..., :box_depth].reshape(len(y_pred), grid_size, grid_size, num_boxes, 5)
    corners = keras.ops.convert_to_numpy(_cell_boxes_to_corners(cell_boxes[..., :4], grid_size))
    corners = np.clip(corners, 0.0, 1.0).reshape(len(y_pred), -1, 4)
    confidence = cell_boxes[..., 4]  # (N, S, S, B)
    classes = y_pred[..., box_depth:]  # (N, S, S, C)
    scores = (confidence[..., np.newaxis] * classes[..., np.newaxis, :]).reshape(
        len(y_pred), -1, num_classes
    )
    return corners, scores


def _suppress_per_class(
    corners: np.ndarray,
    scores: np.ndarray,
    score_threshold: float,
    iou_threshold: float,
    max_detections: int | None,
) -> list[list[tuple[np.ndarray, int, float]]]:
    """Boxes (N, K, 4) with scores (N, K, C) → per image the `(box, class, score)` above the
    threshold that survive per-class non-maximum suppression, best first."""
    num_classes = scores.shape[-1]
    results = []
    for image_boxes, image_scores in zip(corners, scores, strict=True):
        detections = []
        for label in range(num_classes):
            candidates = np.flatnonzero(image_scores[:, label] >= score_threshold)
            if not len(candidates):
                continue
            kept = _greedy_suppression(
                image_boxes[candidates].astype(np.float64),
                image_scores[candidates, label].astype(np.float64),
                iou_threshold,
            )
            for index in candidates[kept]:
                detections.append(
                    (
                        image_boxes[index].astype(np.float32),
                        label,
                        float(image_scores[index, label]),
                    )
                )
        detections.sort(key=lambda detection: -detection[2])
        results.append(detections[:max_detections] if max_detections else detections)
    return results
