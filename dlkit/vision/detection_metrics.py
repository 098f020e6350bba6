"""The VOC-style detection metric: average precision per class and its mean (mAP).

A detector's output, one list of `(box, class, score)` per image as
`dlkit.vision.yolo.decode_predictions` returns it, is compared with the ground-truth boxes and
labels of each image; boxes are `(y_min, x_min, y_max, x_max)` as in `dlkit.vision.boxes`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from dlkit.validation import check_int, check_unit_interval
from dlkit.vision.boxes import _np_pairwise_iou

__all__ = ["average_precisions", "mean_average_precision"]


def _average_precision(recall: np.ndarray, precision: np.ndarray) -> float:
    """Area under the precision envelope (VOC 2010 onwards: every recall point)."""
    recall = np.concatenate([[0.0], recall, [1.0]])
    precision = np.concatenate([[0.0], precision, [0.0]])
    precision = np.maximum.accumulate(precision[::-1])[::-1]
    steps = np.flatnonzero(recall[1:] != recall[:-1])
    return float(np.sum((recall[steps + 1] - recall[steps]) * precision[steps + 1]))


def average_precisions(
    detections: Sequence, ground_truth: Sequence, num_classes: int, iou_threshold: float = 0.5
) -> np.ndarray:
    """VOC-style average precision of each class; NaN for a class without ground truth.

    Detections of a class, pooled over all images, are ranked by score. Going down the list,
    a detection is a true positive if its IoU with a not-yet-matched ground-truth box of its
    class in its image reaches `iou_threshold` (the best-overlapping one is matched), and a
    false positive otherwise (duplicates included). AP is the area under the precision-recall
    curve after making precision monotonically decreasing (every-point interpolation of
    PASCAL VOC 2010 onwards).

    Equation:

        precision(k) = TP(k) / k,        recall(k) = TP(k) / #ground truth
        AP           = Σ_k (r_k - r_{k-1}) · max_{k' >= k} precision(k')

    Args:
        detections: one list per image of `(box, class, score)` (as `decode_predictions`
            returns).
        ground_truth: one `(boxes (K, 4), labels (K,))` pair per image; negative labels
            (padding) are ignored, so `zip(data["boxes"], data["labels"])` of
            `dlkit.data.shapes` works as it is.
        num_classes: C.
        iou_threshold: the overlap that makes a match. Defaults to 0.5.

    Returns:
        float64 (C,) array of AP per class.

    Example:

        >>> truth = [(np.array([[0.1, 0.1, 0.5, 0.5]]), np.array([0]))]
        >>> found = [[(np.array([0.1, 0.1, 0.5, 0.5]), 0, 0.9)]]
        >>> average_precisions(found, truth, num_classes=2).tolist()
        [1.0, nan]

    Reference:
        Everingham et al., "The PASCAL Visual Object Classes (VOC) Challenge", IJCV 2010.
    """
    check_int("num_classes", num_classes)
    check_unit_interval("iou_threshold", iou_threshold)
    ground_truth = list(ground_truth)
    detections = list(detections)
    if len(detections) != len(ground_truth):
        raise ValueError(
            "Expected one list of detections per image of `ground_truth`. Received: "
            f"len(detections)={len(detections)}, len(ground_truth)={len(ground_truth)}"
        )
    truth_boxes, truth_labels = [], []
    for boxes, labels in ground_truth:
        labels = np.asarray(labels).reshape(-1)
        boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
        truth_boxes.append(boxes[labels >= 0])
        truth_labels.append(labels[labels >= 0])
    results = np.full(num_classes, np.nan)
    for label in range(num_classes):
        num_truth = sum(int(np.sum(labels == label)) for labels in truth_labels)
        if num_truth == 0:
            continue
        ranked = [
            (score, image, np.asarray(box, dtype=np.float64))
            for image, image_detections in enumerate(detections)
            for box, detected_label, score in image_detections
            if int(detected_label) == label
        ]
        ranked.sort(key=lambda item: -item[0])
        matched = [np.zeros(int(np.sum(labels == label)), bool) for labels in truth_labels]
        hits = np.zeros(len(ranked))
        for rank, (_, image, box) in enumerate(ranked):
            candidates = truth_boxes[image][truth_labels[image] == label]
            if not len(candidates):
                continue
            overlaps = _np_pairwise_iou(box[np.newaxis], candidates)[0]
            overlaps[matched[image]] = -1.0
            best = int(np.argmax(overlaps))
            if overlaps[best] >= iou_threshold:
                matched[image][best] = True
                hits[rank] = 1.0
        true_positives = np.cumsum(hits)
        recall = true_positives / num_truth
        precision = true_positives / np.arange(1, len(ranked) + 1)
        results[label] = _average_precision(recall, precision)
    return results


def mean_average_precision(
    detections: Sequence, ground_truth: Sequence, num_classes: int, iou_threshold: float = 0.5
) -> float:
    """VOC-style mAP: the mean over classes of `average_precisions` (mAP@0.5 by default).

    Classes without any ground-truth box are left out of the mean.

    Equation:

        mAP = (1 / |classes with ground truth|) Σ_c AP_c

    Args:
        detections: one list per image of `(box, class, score)`.
        ground_truth: one `(boxes (K, 4), labels (K,))` pair per image (negative labels
            ignored).
        num_classes: C.
        iou_threshold: the overlap that makes a match. Defaults to 0.5.

    Returns:
        The mAP as a float in [0, 1] (NaN when no class has ground truth).

    Example:

        >>> truth = [(np.array([[0.1, 0.1, 0.5, 0.5]]), np.array([0]))]
        >>> found = [[(np.array([0.1, 0.1, 0.5, 0.5]), 0, 0.9)]]
        >>> mean_average_precision(found, truth, num_classes=2)
        1.0

    Reference:
        Everingham et al., "The PASCAL Visual Object Classes (VOC) Challenge", IJCV 2010.
    """
    values = average_precisions(detections, ground_truth, num_classes, iou_threshold)
    if np.all(np.isnan(values)):
        return float("nan")
    return float(np.nanmean(values))
