"""Conditioning a convolutional network on a label: FiLM and label channels [notes §6.3]."""

from __future__ import annotations

import keras
from keras import ops

from dlkit.validation import check_int

__all__ = ["FiLM", "LabelChannels"]


@keras.saving.register_keras_serializable(package="dlkit")
class FiLM(keras.layers.Layer):
    """Feature-wise linear modulation: a condition scales and shifts every channel.

    A small learned network reads the condition (a one-hot label, an embedding, a question
    vector) and predicts two vectors of the size of the channel axis, a scale γ and a shift β.
    Every channel of the features is then multiplied by its γ and moved by its β, at every
    position in space or time. The condition thus decides which features matter, at the cost of
    only 2C numbers per example.

    Choice (the notes leave the parametrisation open; this follows Perez et al. 2018,
    appendix): the generator predicts Δγ and the layer uses γ = 1 + Δγ. Its final kernel starts
    small (variance 0.01 / fan_in) and its bias at zero, so at the start γ ≈ 1 and β ≈ 0 and the
    layer passes the features through nearly unchanged; a deep stack of FiLM layers then begins
    close to the unconditioned network instead of scaling activations towards zero.

    Equation:

        hidden              = hidden_dense(condition)   (B, hidden_units), only if hidden_units
        [delta_gamma, beta] = projection(hidden)        (B, 2C), split into two (B, C) halves
        gamma               = 1 + delta_gamma
        outputs             = gamma ⊙ features + beta    γ, β broadcast over every axis between
                                                        the batch and the channels [notes §6.3.2]

    Args:
        hidden_units: if an integer, the condition first goes through
            `Dense(hidden_units, hidden_activation)`; if `None` (default), γ and β are an affine
            function of the condition.
        hidden_activation: activation of the hidden layer. Defaults to `"relu"`.
        **kwargs: other keyword arguments of `keras.layers.Layer` (`name`, `dtype`, ...).

    Call arguments:
        features: channels-last features, shape (B, ..., C) of rank >= 2: (B, H, W, C) after a
            convolution, (B, T, C) for a sequence, (B, C) after a dense layer. A Keras mask
            attached to `features` passes through to the output unchanged.
        condition: the condition, shape (B, D).

    Returns:
        The modulated features, the shape of `features`.

    Example:

        >>> import numpy as np
        >>> film = FiLM(hidden_units=16)
        >>> features = np.ones((2, 8, 8, 3), dtype="float32")
        >>> condition = np.eye(2, 10, dtype="float32")
        >>> print(tuple(film(features, condition).shape))
        (2, 8, 8, 3)

    Reference:
        Perez et al., "FiLM: Visual Reasoning with a General Conditioning Layer", AAAI 2018
        (https://arxiv.org/abs/1709.07871).
    """

    def __init__(self, hidden_units=None, hidden_activation="relu", **kwargs):
        super().__init__(**kwargs)
        self.hidden_units = (
            None if hidden_units is None else check_int("hidden_units", hidden_units)
        )
        self.hidden_activation = keras.activations.get(hidden_activation)
        self.supports_masking = True
        self.hidden_dense = None
        if hidden_units is not None:
            self.hidden_dense = keras.layers.Dense(
                hidden_units,
                activation=self.hidden_activation,
                dtype=self.dtype_policy,
                name="hidden_dense",
            )
        self.projection = None

    def build(self, features_shape, condition_shape):
        _check_condition_shape(features_shape, condition_shape)
        num_channels = features_shape[-1]
        if num_channels is None:
            raise ValueError(
                "Expected the channel axis of `features` to be known. "
                f"Received: features.shape={tuple(features_shape)}"
            )
        projection_input_shape = condition_shape
        if self.hidden_dense is not None:
            self.hidden_dense.build(condition_shape)
            projection_input_shape = (condition_shape[0], self.hidden_units)
        # Small initial kernel and zero bias: Δγ ≈ 0 and β ≈ 0, so the layer starts near the
        # identity; zeros would leave the hidden layer without gradient at the first step.
        self.projection = keras.layers.Dense(
            2 * num_channels,
            kernel_initializer=keras.initializers.VarianceScaling(scale=0.01),
            dtype=self.dtype_policy,
            name="projection",
        )
        self.projection.build(projection_input_shape)

    def call(self, features, condition):
        _check_condition_shape(features.shape, condition.shape)
        hidden = condition if self.hidden_dense is None else self.hidden_dense(condition)
        delta_gamma, beta = ops.split(self.projection(hidden), 2, axis=-1)  # 2 × (B, C)
        gamma = 1.0 + delta_gamma
        # (B, C) -> (B, 1, ..., 1, C): one γ and β per example and channel, shared by positions.
        broadcast_shape = (-1,) + (1,) * (len(features.shape) - 2) + (features.shape[-1],)
        gamma = ops.reshape(gamma, broadcast_shape)  # (B, 1, ..., 1, C)
        beta = ops.reshape(beta, broadcast_shape)  # (B, 1, ..., 1, C)
        return gamma * features + beta

    def compute_output_shape(self, features_shape, condition_shape):
        return tuple(features_shape)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "hidden_units": self.hidden_units,
                "hidden_activation": keras.activations.serialize(self.hidden_activation),
            }
        )
        return config


def _check_condition_shape(features_shape, condition_shape):
    features_shape, condition_shape = tuple(features_shape), tuple(condition_shape)
    if len(features_shape) < 2:
        raise ValueError(
            "Expected `features` of rank >= 2, shape (B, ..., C). "
            f"Received: features.shape={features_shape}"
        )
    batch_sizes = (features_shape[0], condition_shape[0] if condition_shape else None)
    if len(condition_shape) != 2 or (None not in batch_sizes and batch_sizes[0] != batch_sizes[1]):
        raise ValueError(
            "Expected `condition` of shape (B, D) with the batch size B of `features` "
            f"{features_shape}. Received: condition.shape={condition_shape}"
        )


@keras.saving.register_keras_serializable(package="dlkit")
class LabelChannels(keras.layers.Layer):
    """Appends a one-hot label to every position of an image as extra channels.

    The simplest way to condition a convolutional layer on a class (vectorisation in the notes):
    the one-hot label is copied to every pixel and stacked after the image's own channels, so
    each filter of the next convolution sees the class wherever it looks. On a flat input of
    shape (B, C) it reduces to concatenating the label to the feature vector, the dense-layer
    case of the notes. The layer has no weights.

    Labels of shape (B,) or (B, 1) are class indices; labels of shape (B, num_classes) are used
    as given (one-hot, or soft labels). With `num_classes=1` a (B, 1) label is an index, so every
    example gets a channel of ones.

    Equation:

        one_hot = one_hot(labels, num_classes)                   (B, K)
        outputs = concatenate([images, one_hot[b, 1, ..., 1, k]  (B, ..., C + K), the label
                               repeated over every position], axis=-1)   [notes §6.3.1]

    Args:
        num_classes: the number of classes K (an integer >= 1).
        **kwargs: other keyword arguments of `keras.layers.Layer` (`name`, `dtype`, ...).

    Call arguments:
        images: channels-last inputs, shape (B, H, W, C), or any (B, ..., C) of rank >= 2.
        labels: class indices of shape (B,) or (B, 1), or one-hot labels of shape
            (B, num_classes).

    Returns:
        The images with K label channels appended, shape (B, H, W, C + num_classes).

    Example:

        >>> import numpy as np
        >>> images = np.zeros((2, 8, 8, 1), dtype="float32")
        >>> labels = np.array([3, 7])
        >>> print(tuple(LabelChannels(num_classes=10)(images, labels).shape))
        (2, 8, 8, 11)

    Reference:
        Mirza and Osindero, "Conditional Generative Adversarial Nets", 2014
        (https://arxiv.org/abs/1411.1784).
    """

    def __init__(self, num_classes, **kwargs):
        super().__init__(**kwargs)
        self.num_classes = check_int("num_classes", num_classes)

    def build(self, images_shape, labels_shape):
        self._check_shapes(images_shape, labels_shape)

    def call(self, images, labels):
        self._check_shapes(images.shape, labels.shape)
        dtype = keras.backend.standardize_dtype(images.dtype)
        is_one_hot = len(labels.shape) == 2 and labels.shape[-1] == self.num_classes
        if is_one_hot and self.num_classes > 1:
            one_hot = ops.cast(labels, dtype)  # (B, K)
        else:
            indices = ops.cast(ops.reshape(labels, (-1,)), "int32")  # (B,)
            one_hot = ops.one_hot(indices, self.num_classes, dtype=dtype)  # (B, K)
        label_shape = (-1,) + (1,) * (len(images.shape) - 2) + (self.num_classes,)
        one_hot = ops.reshape(one_hot, label_shape)  # (B, 1, ..., 1, K)
        # Multiplying by ones of the spatial shape repeats the label at every position.
        label_planes = one_hot * ops.ones_like(images[..., :1])  # (B, ..., K)
        return ops.concatenate([images, label_planes], axis=-1)  # (B, ..., C + K)

    def compute_output_shape(self, images_shape, labels_shape):
        channels = images_shape[-1]
        return (*images_shape[:-1], None if channels is None else channels + self.num_classes)

    def get_config(self):
        config = super().get_config()
        config.update({"num_classes": self.num_classes})
        return config

    def _check_shapes(self, images_shape, labels_shape):
        images_shape, labels_shape = tuple(images_shape), tuple(labels_shape)
        if len(images_shape) < 2:
            raise ValueError(
                "Expected `images` of rank >= 2, shape (B, ..., C). "
                f"Received: images.shape={images_shape}"
            )
        valid_rank = len(labels_shape) == 1 or (
            len(labels_shape) == 2 and labels_shape[-1] in (1, self.num_classes)
        )
        batch_sizes = (images_shape[0], labels_shape[0] if labels_shape else None)
        if not valid_rank or (None not in batch_sizes and batch_sizes[0] != batch_sizes[1]):
            raise ValueError(
                f"Expected `labels` of shape (B,), (B, 1) or (B, {self.num_classes}) with the "
                f"batch size B of `images` {images_shape}. Received: labels.shape={labels_shape}"
            )
