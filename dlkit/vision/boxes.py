"""Boxes: intersection over union and non-maximum suppression (notes §4.13, eq. 4.4).

Boxes are `(y_min, x_min, y_max, x_max)` normalised to [0, 1] by the image size, the layout of
`dlkit.data.shapes`. `iou` and `pairwise_iou` work in `keras.ops` (inside a loss, on any
backend); `non_max_suppression` works in NumPy on the host, after a detector has run.
"""

from __future__ import annotations

import numpy as np
from keras import ops

from dlkit.validation import check_int, check_unit_interval

__all__ = ["iou", "non_max_suppression", "pairwise_iou"]

# Keeps the IoU of two zero-area boxes at 0 instead of 0 / 0.
_EPSILON = 1e-9


def _check_last_axis(name: str, tensor, size: int) -> None:
    shape = tuple(tensor.shape)
    if not shape or shape[-1] != size:
        raise ValueError(
            f"Expected `{name}` to have a last axis of size {size}. Received: {name} with "
            f"shape {shape}"
        )


def iou(boxes_a, boxes_b):
    """Intersection over union of two sets of boxes, element by element (eq. 4.4).

    The overlap of two boxes divided by the area they cover together: 1 for identical boxes,
    0 for disjoint ones [notes §4.13]. Both arguments broadcast against each other, as in any
    `keras.ops` function; `pairwise_iou` compares every box with every other.

    Equation:

        IoU(A, B) = |A ∩ B| / |A ∪ B|
                  = inter / (area(A) + area(B) - inter)         (eq. 4.4)

    Args:
        boxes_a: boxes (..., 4) as `(y_min, x_min, y_max, x_max)`.
        boxes_b: boxes (..., 4), broadcastable against `boxes_a`.

    Returns:
        The IoU of each pair, shape of the broadcast leading axes; 0 where both boxes have zero
        area.

    Example:

        >>> import keras
        >>> import numpy as np
        >>> a = np.array([[0.0, 0.0, 0.5, 0.5], [0.0, 0.0, 0.5, 0.5]])
        >>> b = np.array([[0.0, 0.0, 0.5, 0.5], [0.0, 0.25, 0.5, 0.75]])
        >>> [round(float(v), 4) for v in keras.ops.convert_to_numpy(iou(a, b))]
        [1.0, 0.3333]

    Reference:
        Everingham et al., "The PASCAL Visual Object Classes (VOC) Challenge", IJCV 2010.
    """
    boxes_a = ops.convert_to_tensor(boxes_a, dtype="float32")
    boxes_b = ops.convert_to_tensor(boxes_b, dtype="float32")
    _check_last_axis("boxes_a", boxes_a, 4)
    _check_last_axis("boxes_b", boxes_b, 4)
    y_min = ops.maximum(boxes_a[..., 0], boxes_b[..., 0])
    x_min = ops.maximum(boxes_a[..., 1], boxes_b[..., 1])
    y_max = ops.minimum(boxes_a[..., 2], boxes_b[..., 2])
    x_max = ops.minimum(boxes_a[..., 3], boxes_b[..., 3])
    intersection = ops.relu(y_max - y_min) * ops.relu(x_max - x_min)
    area_a = ops.relu(boxes_a[..., 2] - boxes_a[..., 0]) * ops.relu(
        boxes_a[..., 3] - boxes_a[..., 1]
    )
    area_b = ops.relu(boxes_b[..., 2] - boxes_b[..., 0]) * ops.relu(
        boxes_b[..., 3] - boxes_b[..., 1]
    )
    union = area_a + area_b - intersection
    return intersection / ops.maximum(union, _EPSILON)


def pairwise_iou(boxes_a, boxes_b):
    """IoU (eq. 4.4) of every box of `boxes_a` (N, 4) with every box of `boxes_b` (M, 4).

    Args:
        boxes_a: boxes (N, 4) as `(y_min, x_min, y_max, x_max)`.
        boxes_b: boxes (M, 4).

    Returns:
        The (N, M) matrix of IoUs.

    Example:

        >>> import keras
        >>> import numpy as np
        >>> a = np.array([[0.0, 0.0, 0.5, 0.5]])
        >>> b = np.array([[0.0, 0.0, 0.5, 0.5], [0.5, 0.5, 1.0, 1.0]])
        >>> keras.ops.convert_to_numpy(pairwise_iou(a, b)).tolist()
        [[1.0, 0.0]]

    Reference:
        Everingham et al., "The PASCAL Visual Object Classes (VOC) Challenge", IJCV 2010.
    """
    boxes_a = ops.convert_to_tensor(boxes_a, dtype="float32")
    boxes_b = ops.convert_to_tensor(boxes_b, dtype="float32")
    return iou(ops.expand_dims(boxes_a, 1), ops.expand_dims(boxes_b, 0))


def _np_pairwise_iou(boxes_a: np.ndarray, boxes_b: np.ndarray) -> np.ndarray:
    """NumPy twin of `pairwise_iou` for the host-side decoding and evaluation."""
    a = boxes_a[:, np.newaxis, :]
    b = boxes_b[np.newaxis, :, :]
    height = np.clip(np.minimum(a[..., 2], b[..., 2]) - np.maximum(a[..., 0], b[..., 0]), 0, None)
    width = np.clip(np.minimum(a[..., 3], b[..., 3]) - np.maximum(a[..., 1], b[..., 1]), 0, None)
    intersection = height * width
    area_a = np.clip(a[..., 2] - a[..., 0], 0, None) * np.clip(a[..., 3] - a[..., 1], 0, None)
    area_b = np.clip(b[..., 2] - b[..., 0], 0, None) * np.clip(b[..., 3] - b[..., 1], 0, None)
    return intersection / np.maximum(area_a + area_b - intersection, _EPSILON)


def non_max_suppression(boxes, scores, iou_threshold: float = 0.5, max_outputs=None) -> np.ndarray:
    """Greedy non-maximum suppression: the indices of the boxes to keep, best first.

    Repeatedly keeps the highest-scoring remaining box and discards every remaining box whose
    IoU with it exceeds `iou_threshold`, so that one object yields one detection.

    Equation:

        keep b* = argmax_b score(b);   drop every b with IoU(b, b*) > iou_threshold;   repeat

    Args:
        boxes: (K, 4) boxes `(y_min, x_min, y_max, x_max)`.
        scores: (K,) scores.
        iou_threshold: overlap above which a lower-scoring box is suppressed. Defaults to 0.5.
        max_outputs: the most boxes to keep; `None` (default) for no limit.

    Returns:
        int64 indices into `boxes`, in decreasing order of score.

    Example:

        >>> import numpy as np
        >>> boxes = np.array([[0, 0, 0.5, 0.5], [0, 0.05, 0.5, 0.55], [0.5, 0.5, 1, 1]])
        >>> non_max_suppression(boxes, np.array([0.8, 0.9, 0.3])).tolist()
        [1, 2]

    Reference:
        Redmon et al., "You Only Look Once", CVPR 2016 (https://arxiv.org/abs/1506.02640).
    """
    boxes = (
        np.asarray(boxes, dtype=np.float64).reshape(-1, 4) if np.size(boxes) else np.zeros((0, 4))
    )
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    if len(scores) != len(boxes):
        raise ValueError(
            "Expected one score per box. Received: boxes with shape "
            f"{boxes.shape} and scores with shape {scores.shape}"
        )
    check_unit_interval("iou_threshold", iou_threshold)
    if max_outputs is not None:
        check_int("max_outputs", max_outputs)
    return _greedy_suppression(boxes, scores, iou_threshold, max_outputs)


def _greedy_suppression(
    boxes: np.ndarray, scores: np.ndarray, iou_threshold: float, max_outputs: int | None = None
) -> np.ndarray:
    """`non_max_suppression` on checked (K, 4) boxes and (K,) scores."""
    order = np.argsort(-scores, kind="stable")
    keep = []
    while len(order) and (max_outputs is None or len(keep) < max_outputs):
        best, order = order[0], order[1:]
        keep.append(best)
        if len(order):
            overlaps = _np_pairwise_iou(boxes[best][np.newaxis], boxes[order])[0]
            order = order[overlaps <= iou_threshold]
    return np.asarray(keep, dtype=np.int64)
