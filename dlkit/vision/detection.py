"""Object detection (notes §4.13): one import for the three modules that hold it.

Each topic lives in its own module; this one re-exports their public names, so that
`from dlkit.vision.detection import build_yolo` keeps working:

- `dlkit.vision.boxes`: `iou` and `pairwise_iou` (eq. 4.4, in `keras.ops`) and
  `non_max_suppression`;
- `dlkit.vision.yolo`: the YOLO detector, `encode_yolo_targets`, `yolo_loss` and `YoloLoss`
  (eqs. 4.6-4.8), `build_yolo` with its optional feature pyramid and `YoloHead`,
  `decode_predictions` (eq. 4.5);
- `dlkit.vision.detection_metrics`: `average_precisions` and `mean_average_precision`, the
  VOC-style detection metric.
"""

from dlkit.vision.boxes import iou, non_max_suppression, pairwise_iou
from dlkit.vision.detection_metrics import average_precisions, mean_average_precision
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
    "average_precisions",
    "build_yolo",
    "decode_predictions",
    "encode_yolo_targets",
    "iou",
    "mean_average_precision",
    "non_max_suppression",
    "pairwise_iou",
    "yolo_loss",
]
