"""Object detection (notes §4.13): one import for the four modules that hold it.

Each topic lives in its own module; this one re-exports their public names, so that
`from dlkit.vision.detection import build_yolo` keeps working:

- `dlkit.vision.boxes`: `iou` and `pairwise_iou` (eq. 4.4, in `keras.ops`) and
  `non_max_suppression`;
- `dlkit.vision.yolo`: the YOLO detector, `encode_yolo_targets`, `yolo_loss` and `YoloLoss`
  (eqs. 4.6-4.8), `build_yolo` with its optional feature pyramid and `YoloHead`,
  `decode_predictions` (eq. 4.5);
- `dlkit.vision.multiscale_yolo`: the multi-scale detector on a feature pyramid (§4.13.2),
  `assign_pyramid_levels`, `encode_multiscale_targets`, `multiscale_yolo_loss`,
  `build_multiscale_yolo`, `decode_multiscale_predictions` (NMS across levels);
- `dlkit.vision.detection_metrics`: `average_precisions` and `mean_average_precision`, the
  VOC-style detection metric.
"""

from dlkit.vision.boxes import iou, non_max_suppression, pairwise_iou
from dlkit.vision.detection_metrics import average_precisions, mean_average_precision
from dlkit.vision.multiscale_yolo import (
    assign_pyramid_levels,
    build_multiscale_yolo,
    decode_multiscale_predictions,
    encode_multiscale_targets,
    multiscale_yolo_loss,
)
from dlkit.vision.yolo import (
    YoloHead,
    YoloLoss,
    build_yolo,
    decode_predictions,
    encode_yolo_targets,
    yolo_loss,
)

__all__ = [
    "YoloHead",
    "YoloLoss",
    "assign_pyramid_levels",
    "average_precisions",
    "build_multiscale_yolo",
    "build_yolo",
    "decode_multiscale_predictions",
    "decode_predictions",
    "encode_multiscale_targets",
    "encode_yolo_targets",
    "iou",
    "mean_average_precision",
    "multiscale_yolo_loss",
    "non_max_suppression",
    "pairwise_iou",
    "yolo_loss",
]
