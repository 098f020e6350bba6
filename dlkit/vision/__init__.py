"""Vision techniques of chapter 4 (§4.7-4.13) on any Keras backend.

- the networks studied: `build_cnn_classifier`, `build_dense_classifier`,
  `train_digits_classifier` (embedded digits or the MNIST sample);
- transfer learning (§4.7): `freeze_up_to`, `unfreeze_from`, `transfer_model`;
- seeing what a CNN learned (§4.8): `activation_maximization`, `feature_inversion` (eq. 4.3),
  `saliency_map`, `guided_backpropagation`, with the regularisers `total_variation` and
  `alpha_norm`;
- fooling (§4.9): `fgsm`, `iterative_attack`, `evolutionary_attack`, `attack_report`;
- inceptionism (§4.10): `deep_dream`, `octave_shapes`;
- style transfer (§4.11): `gram_matrix`, `style_loss`, `content_loss`, `style_transfer`;
- segmentation by convolutionalisation (§4.12): `convolutionalize`, `build_fcn`, `mean_iou`;
- judging generated digits (ch. 6): `digit_judge` (a CNN trained on real digits, 8×8 or
  28×28), `judge_classes`, `class_shares`, `sample_per_class`, `requested_class_accuracy`;
- detection (§4.13): boxes (`iou`, `non_max_suppression`), YOLO (`encode_yolo_targets`,
  `yolo_loss`, `build_yolo`, `decode_predictions`) and its metric (`mean_average_precision`),
  also importable together from `dlkit.vision.detection`.

Gradients with respect to input images come from `dlkit.training.value_and_grad` (its
`inputs` argument), the one place that holds backend autodiff.
"""

from dlkit.vision.adversarial import attack_report, evolutionary_attack, fgsm, iterative_attack
from dlkit.vision.classifier import (
    build_cnn_classifier,
    build_dense_classifier,
    train_digits_classifier,
)
from dlkit.vision.detection import (
    YoloHead,
    YoloLoss,
    average_precisions,
    build_yolo,
    decode_predictions,
    encode_yolo_targets,
    iou,
    mean_average_precision,
    non_max_suppression,
    pairwise_iou,
    yolo_loss,
)
from dlkit.vision.dream import activation_norm, deep_dream, octave_shapes
from dlkit.vision.judge import (
    class_shares,
    digit_judge,
    judge_classes,
    requested_class_accuracy,
    sample_per_class,
)
from dlkit.vision.segmentation import (
    build_fcn,
    class_iou,
    convolutionalize,
    mean_iou,
    predict_masks,
    train_fcn,
)
from dlkit.vision.style import (
    content_loss,
    gram_matrix,
    style_feature_model,
    style_loss,
    style_transfer,
)
from dlkit.vision.transfer import freeze_up_to, transfer_model, unfreeze_from
from dlkit.vision.visualize import (
    activation_maximization,
    alpha_norm,
    feature_distance,
    feature_inversion,
    guided_backpropagation,
    saliency_map,
    total_variation,
    unit_activation,
)

__all__ = [
    "YoloHead",
    "YoloLoss",
    "activation_maximization",
    "activation_norm",
    "alpha_norm",
    "attack_report",
    "average_precisions",
    "build_cnn_classifier",
    "build_dense_classifier",
    "build_fcn",
    "build_yolo",
    "class_iou",
    "class_shares",
    "content_loss",
    "convolutionalize",
    "decode_predictions",
    "deep_dream",
    "digit_judge",
    "encode_yolo_targets",
    "evolutionary_attack",
    "feature_distance",
    "feature_inversion",
    "fgsm",
    "freeze_up_to",
    "gram_matrix",
    "guided_backpropagation",
    "iou",
    "iterative_attack",
    "judge_classes",
    "mean_average_precision",
    "mean_iou",
    "non_max_suppression",
    "octave_shapes",
    "pairwise_iou",
    "predict_masks",
    "requested_class_accuracy",
    "saliency_map",
    "sample_per_class",
    "style_feature_model",
    "style_loss",
    "style_transfer",
    "total_variation",
    "train_digits_classifier",
    "train_fcn",
    "transfer_model",
    "unfreeze_from",
    "unit_activation",
    "yolo_loss",
]
