"""The minibatch standard deviation feature: a discriminator's view of a batch's diversity."""

from __future__ import annotations

import keras
from keras import ops

from dlkit.validation import check_positive

__all__ = ["MinibatchStdDev"]


@keras.saving.register_keras_serializable(package="dlkit")
class MinibatchStdDev(keras.layers.Layer):
    """Appends the batch's average feature standard deviation as one extra channel.

    A discriminator that judges each image alone cannot see that a generator draws the same few
    images again and again (mode collapse, a failure of the alternating game of notes ch. 6
    that the notes do not treat). This layer gives it that view: it measures how much every
    feature varies across the batch, averages those standard deviations into one number and
    appends it to every example as a constant channel. Batches of real images vary; batches from
    a collapsed generator do not, so the discriminator can reject them and the generator is
    pushed to spread its samples. The layer has no weights. Deviation from Karras et al.: the
    whole batch is one group (they use groups of 4), so any batch size works, including a last
    partial batch.

    Equation:

        std[f]  = sqrt(mean_b (x[b, f] − mean_b x[b, f])² + epsilon)   for every feature f
        s       = mean_f std[f]                                         one number per batch
        outputs = concatenate([x, s · ones(B, ..., 1)], axis=−1)

    Args:
        epsilon: added to the variance before the square root, > 0 (keeps the gradient finite
            when a feature is constant across the batch). Defaults to 1e-8.
        **kwargs: other keyword arguments of `keras.layers.Layer` (`name`, `dtype`, ...).

    Call arguments:
        inputs: features (B, ..., C), e.g. feature maps (B, H, W, C) or vectors (B, C); B >= 1.

    Returns:
        (B, ..., C + 1): the inputs with the statistic as their last channel.

    Example:

        >>> import numpy as np
        >>> x = np.stack([np.zeros((2, 2, 3)), np.ones((2, 2, 3))]).astype("float32")
        >>> outputs = MinibatchStdDev()(x)
        >>> print(tuple(outputs.shape), np.round(float(outputs[0, 0, 0, -1]), 3))
        (2, 2, 2, 4) 0.5

    Reference:
        Karras, Aila, Laine and Lehtinen, "Progressive Growing of GANs for Improved Quality,
        Stability, and Variation", ICLR 2018, §3 (https://arxiv.org/abs/1710.10196).
    """

    def __init__(self, epsilon=1e-8, **kwargs):
        super().__init__(**kwargs)
        self.epsilon = check_positive("epsilon", epsilon)

    def build(self, input_shape):
        if len(input_shape) < 2:
            raise ValueError(
                "Expected inputs of shape (B, ..., C) with at least 2 dimensions. "
                f"Received: input_shape={tuple(input_shape)}"
            )
        self.built = True

    def call(self, inputs):
        inputs = ops.convert_to_tensor(inputs, dtype=self.compute_dtype)
        variance = ops.var(inputs, axis=0)  # (..., C), over the batch
        statistic = ops.mean(ops.sqrt(variance + self.epsilon))  # ()
        channel = ops.ones_like(inputs[..., :1]) * statistic  # (B, ..., 1)
        return ops.concatenate([inputs, channel], axis=-1)  # (B, ..., C + 1)

    def compute_output_shape(self, input_shape):
        channels = input_shape[-1]
        return (*input_shape[:-1], None if channels is None else channels + 1)

    def get_config(self):
        config = super().get_config()
        config.update({"epsilon": self.epsilon})
        return config
