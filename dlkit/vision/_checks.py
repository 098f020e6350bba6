"""Argument checks shared by the vision techniques: image batches and layer names."""

from __future__ import annotations

import keras
import numpy as np


def check_images(name: str, images, channels: int | None = None) -> np.ndarray:
    """Returns `images` as a float32 array (N, H, W, C), or raises ValueError naming `name`.

    A single image (H, W, C) is not accepted: the techniques work on batches, so the caller
    adds the batch axis explicitly.
    """
    try:
        array = np.asarray(keras.ops.convert_to_numpy(images), dtype=np.float32)
    except (TypeError, ValueError) as error:
        raise ValueError(
            f"Expected `{name}` to be a batch of images (N, H, W, C). Received: {name}={images!r}"
        ) from error
    if array.ndim != 4 or min(array.shape, default=0) < 1:
        raise ValueError(
            f"Expected `{name}` to be a batch of images of shape (N, H, W, C). "
            f"Received: {name} with shape {array.shape}"
        )
    if channels is not None and array.shape[-1] != channels:
        raise ValueError(
            f"Expected `{name}` to have {channels} channels. Received: {name} with shape "
            f"{array.shape}"
        )
    if not np.all(np.isfinite(array)):
        raise ValueError(f"Expected `{name}` to hold finite values. Received: NaN or inf")
    return array


def find_layer(model: keras.Model, layer_name: str, name: str = "layer_name") -> keras.Layer:
    """The layer of `model` called `layer_name`, or a ValueError listing the names there are."""
    if not isinstance(model, keras.Model):
        raise TypeError(f"Expected `model` to be a keras.Model. Received: model={model!r}")
    for layer in model.layers:
        if layer.name == layer_name:
            return layer
    names = [layer.name for layer in model.layers]
    raise ValueError(
        f"Expected `{name}` to name a layer of {model.name!r} (one of {names}). "
        f"Received: {name}={layer_name!r}"
    )


def check_positive_int(name: str, value) -> int:
    """`value` as an int >= 1, or a ValueError naming `name`."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
        raise ValueError(f"Expected `{name}` to be an integer >= 1. Received: {name}={value!r}")
    return int(value)


def check_non_negative_int(name: str, value) -> int:
    """`value` as an int >= 0, or a ValueError naming `name`."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 0:
        raise ValueError(f"Expected `{name}` to be an integer >= 0. Received: {name}={value!r}")
    return int(value)


def check_positive(name: str, value) -> float:
    """`value` as a float > 0, or a ValueError naming `name`."""
    if isinstance(value, bool) or not isinstance(value, int | float | np.number) or not value > 0:
        raise ValueError(f"Expected `{name}` to be a number > 0. Received: {name}={value!r}")
    return float(value)


def check_non_negative(name: str, value) -> float:
    """`value` as a float >= 0, or a ValueError naming `name`."""
    if isinstance(value, bool) or not isinstance(value, int | float | np.number) or not value >= 0:
        raise ValueError(f"Expected `{name}` to be a number >= 0. Received: {name}={value!r}")
    return float(value)


def check_range(name: str, value_range) -> tuple[float, float]:
    """A pair (low, high) of finite numbers with low < high, or a ValueError naming `name`."""
    try:
        low, high = (float(value) for value in value_range)
    except (TypeError, ValueError) as error:
        raise ValueError(
            f"Expected `{name}` to be a pair (low, high) of numbers. "
            f"Received: {name}={value_range!r}"
        ) from error
    if not (np.isfinite(low) and np.isfinite(high) and low < high):
        raise ValueError(
            f"Expected `{name}` (low, high) with finite low < high. "
            f"Received: {name}={value_range!r}"
        )
    return low, high
