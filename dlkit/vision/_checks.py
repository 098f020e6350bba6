"""Checks of the vision techniques' own arguments: image batches, layer names, boxes, value
ranges.

Scalar arguments (counts, step sizes, weights) are checked with `dlkit.validation`.
"""

from __future__ import annotations

import keras
import numpy as np

from dlkit.validation import check_model


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
    check_model("model", model)
    for layer in model.layers:
        if layer.name == layer_name:
            return layer
    names = [layer.name for layer in model.layers]
    raise ValueError(
        f"Expected `{name}` to name a layer of {model.name!r} (one of {names}). "
        f"Received: {name}={layer_name!r}"
    )


def check_boxes(name: str, boxes) -> np.ndarray:
    """`boxes` as a float array (..., 4) of valid normalised boxes, or a ValueError."""
    try:
        array = np.asarray(boxes, dtype=np.float64)
    except (TypeError, ValueError) as error:
        raise ValueError(
            f"Expected `{name}` to be an array of boxes (..., 4). Received: {name}={boxes!r}"
        ) from error
    if array.ndim < 1 or array.shape[-1] != 4:
        raise ValueError(
            f"Expected `{name}` to have shape (..., 4) (y_min, x_min, y_max, x_max). "
            f"Received: {name} with shape {array.shape}"
        )
    flat = array.reshape(-1, 4)
    bad = ~np.all(np.isfinite(flat), axis=-1)
    bad |= np.any((flat < 0.0) | (flat > 1.0), axis=-1)
    bad |= (flat[:, 2] < flat[:, 0]) | (flat[:, 3] < flat[:, 1])
    if np.any(bad):
        first = flat[np.argmax(bad)].tolist()
        raise ValueError(
            f"Expected `{name}` to hold boxes (y_min, x_min, y_max, x_max) inside [0, 1] with "
            f"y_min <= y_max and x_min <= x_max. Received: {name} containing {first}"
        )
    return array
