"""Building blocks of the default convolutional networks shared by the generative models.

The default networks fit small images whose height and width are divisible by 4: the embedded
8×8×1 digits, and MNIST (28×28×1) or CIFAR-10 (32×32×3) through ``dlkit.data.load``. A
generator goes noise → Dense → (H/4, W/4, 32) → two ×2 transposed convolutions; a
discriminator or encoder goes image → two stride-2 convolutions → features (H/4, W/4, 32).
"""

from __future__ import annotations

import keras

from dlkit.layers import FiLM, LabelChannels, TransposedConv2D

DIGITS_SHAPE = (8, 8, 1)


def check_int(name, value, minimum):
    """Raises ValueError unless `value` is an integer >= `minimum` (booleans refused)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(
            f"Expected `{name}` to be an integer >= {minimum}. Received: {name}={value!r}"
        )


def check_weight(name, value):
    """Returns `value` as a float if it is a number >= 0 (booleans refused), else ValueError."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0:
        raise ValueError(f"Expected `{name}` to be a number >= 0. Received: {name}={value!r}")
    return float(value)


def check_image_shape(image_shape, multiple=4):
    """Returns `image_shape` as a tuple (H, W, C) of positive integers with H and W divisible by
    `multiple` (4 for the convolutional networks here), else ValueError."""
    shape = tuple(image_shape) if isinstance(image_shape, (tuple, list)) else None
    if (
        shape is None
        or len(shape) != 3
        or not all(isinstance(size, int) and size > 0 for size in shape)
        or shape[0] % multiple
        or shape[1] % multiple
    ):
        divisible = f" with height and width divisible by {multiple}" if multiple > 1 else ""
        raise ValueError(
            f"Expected `image_shape` (height, width, channels) of positive integers{divisible}. "
            f"Received: image_shape={image_shape!r}"
        )
    return shape


def upsample(inputs, image_shape, labels=None, film=False, label_channels=False, activation="tanh"):
    """Code (B, D) → Dense → (B, H/4, W/4, 32) → two ×2 transposed convolutions → (B, H, W, C).

    With `labels`, FiLM (`film`) or label channels (`label_channels`) condition the hidden
    (B, H/2, W/2, 16) feature map.
    """
    height, width, channels = image_shape
    features = keras.layers.Dense((height // 4) * (width // 4) * 32, activation="relu")(inputs)
    features = keras.layers.Reshape((height // 4, width // 4, 32))(features)  # (B, H/4, W/4, 32)
    features = TransposedConv2D(16, 4, strides=2, padding="same")(features)  # (B, H/2, W/2, 16)
    if film:
        features = FiLM()(features, labels)
    if label_channels:
        features = LabelChannels(labels.shape[-1])(features, labels)  # (B, H/2, W/2, 16 + K)
    features = keras.layers.ReLU()(features)
    return TransposedConv2D(channels, 4, strides=2, padding="same", activation=activation)(
        features
    )  # (B, H, W, C)


def downsample(images, film_labels=None):
    """Images (B, H, W, C) → two stride-2 Conv2D + LeakyReLU(0.2) → (B, H/4, W/4, 32).

    With `film_labels`, FiLM conditions each convolution's output.
    """
    features = images
    for filters in (16, 32):  # (B, H, W, C) → (B, H/2, W/2, 16) → (B, H/4, W/4, 32)
        features = keras.layers.Conv2D(filters, 3, strides=2, padding="same")(features)
        if film_labels is not None:
            features = FiLM()(features, film_labels)
        features = keras.layers.LeakyReLU(0.2)(features)
    return features
