"""The network arguments of the models, and the blocks of their default networks.

Every model here takes its networks as arguments: the functions below check that they are
Keras layers, read their shapes before a call, and write them into, and back from, the
model's config.

The default networks fit small images whose height and width are divisible by 4: the embedded
8×8×1 digits, and MNIST (28×28×1) or CIFAR-10 (32×32×3) through ``dlkit.data.load``. A
generator goes noise → Dense → (H/4, W/4, 32) → two ×2 transposed convolutions; a
discriminator or encoder goes image → two stride-2 convolutions → features (H/4, W/4, 32).
"""

from __future__ import annotations

import copy

import keras

from dlkit.layers import FiLM, LabelChannels, TransposedConv2D

DIGITS_SHAPE = (8, 8, 1)


def network_shapes(network, attribute):
    """Per-example shapes of a built functional network's inputs or outputs, else None.

    Only functional and sequential networks expose their shapes before a call; subclassed
    networks are checked by their first call.
    """
    try:
        tensors = getattr(network, attribute)
        return [tuple(tensor.shape[1:]) for tensor in keras.tree.flatten(tensors)] or None
    except (AttributeError, ValueError, TypeError):
        return None


def network_shape(network, attribute):
    """The per-example shape of a functional network's single input or output, else None."""
    shapes = network_shapes(network, attribute)
    return shapes[0] if shapes is not None and len(shapes) == 1 else None


def check_layers(**networks) -> None:
    """Raises a ValueError naming the first argument that is not a Keras layer or model.

    A ValueError, where `dlkit.validation.check_model` raises a TypeError: the models' error
    type for their networks predates that module and stays.
    """
    for name, network in networks.items():
        if not isinstance(network, keras.Layer):
            raise ValueError(f"Expected `{name}` to be a keras.Model. Received: {name}={network!r}")


def networks_config(model) -> dict:
    """The constructor arguments of `model`: the attributes its class names in
    `_CONFIG_ARGUMENTS`, then its networks, named in `_NETWORKS`, serialised."""
    config = {name: getattr(model, name) for name in model._CONFIG_ARGUMENTS}
    for name in model._NETWORKS:
        config[name] = keras.saving.serialize_keras_object(getattr(model, name))
    return config


def networks_from_config(model_class, config) -> dict:
    """The constructor arguments in `config`, with the networks that `model_class` names in
    `_NETWORKS` deserialised."""
    config = dict(config)
    for name in model_class._NETWORKS:
        # Deserialising consumes nested dictionaries: work on a copy, keep the caller's config.
        config[name] = keras.saving.deserialize_keras_object(copy.deepcopy(config[name]))
    return config


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
