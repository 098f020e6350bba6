"""Vision techniques of chapter 4 (§4.7-4.13) on any Keras backend.

`build_cnn_classifier` and `train_digits_classifier` give the small CNN the techniques study.
Gradients with respect to input images come from `dlkit.training.value_and_grad` (its
`inputs` argument), the one place that holds backend autodiff.
"""

from dlkit.vision.classifier import build_cnn_classifier, train_digits_classifier

__all__ = ["build_cnn_classifier", "train_digits_classifier"]
