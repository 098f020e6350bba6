"""Inceptionism (deep dream): amplify whatever a layer sees in an image [notes §4.10].

A trained classifier is run backwards to adjust the image itself: gradient ascent on the size
of chosen layers' activations makes the patterns those layers already half-detect stronger,
until the image is "incepted" by the network's features. Working over octaves, from a shrunk
copy of the image up to full size, lets the patterns grow at several scales.
"""

from __future__ import annotations

from collections.abc import Sequence

import keras
import numpy as np
from keras import ops

from dlkit.training import value_and_grad
from dlkit.validation import (
    check_int,
    check_non_negative,
    check_number,
    check_positive,
    check_range,
)
from dlkit.vision._checks import (
    check_images,
    find_layer,
)
from dlkit.vision.visualize import _call_features

__all__ = ["activation_norm", "deep_dream", "octave_shapes"]


def octave_shapes(
    image_size: tuple[int, int], octaves: int = 3, octave_scale: float = 1.4
) -> list[tuple[int, int]]:
    """The (height, width) of each octave of a deep dream, smallest first, full size last.

    Octave k of n (k = 0, …, n - 1) is the image shrunk by `octave_scale` ** (n - 1 - k),
    rounded, and at least 1 pixel.

    Args:
        image_size: (H, W) of the full image.
        octaves: the number of scales, >= 1. Defaults to 3.
        octave_scale: the size ratio between neighbouring octaves, > 1. Defaults to 1.4.

    Returns:
        A list of `octaves` pairs (h, w), the last equal to `image_size`.

    Example:

        >>> octave_shapes((64, 48), octaves=3, octave_scale=2.0)
        [(16, 12), (32, 24), (64, 48)]
    """
    octaves = check_int("octaves", octaves)
    octave_scale = check_number("octave_scale", octave_scale, 1, low_open=True)
    height, width = (int(size) for size in image_size)
    return [
        (
            max(1, round(height / octave_scale ** (octaves - 1 - k))),
            max(1, round(width / octave_scale ** (octaves - 1 - k))),
        )
        for k in range(octaves)
    ]


def _layer_names(layer_names) -> list[str]:
    names = [layer_names] if isinstance(layer_names, str) else list(layer_names)
    if not names or not all(isinstance(name, str) for name in names):
        raise ValueError(
            "Expected `layer_names` to be a layer name or a non-empty sequence of names. "
            f"Received: layer_names={layer_names!r}"
        )
    return names


def _dream_model(model: keras.Model, layer_names: Sequence[str], channels: int) -> keras.Model:
    """The named layers' outputs from an input of any height and width (weights shared).

    Only the layers between the input and the named layers are replayed, so the named layers
    must be reachable through layers that accept any image size (convolutions, pooling).
    """
    layers = [find_layer(model, name, "layer_names") for name in layer_names]
    fixed = keras.Model(model.inputs, [layer.output for layer in layers])
    try:
        return keras.models.clone_model(
            fixed,
            input_tensors=[keras.Input((None, None, channels))],
            clone_function=lambda layer: layer,
        )
    except (ValueError, TypeError) as error:
        raise ValueError(
            "Expected `layer_names` to name layers reachable from the input through layers "
            "that accept any image size (convolutions, pooling), as the octaves change the "
            f"image size. Received: layer_names={list(layer_names)!r}"
        ) from error


def _objective(dream_model, images, weights):
    """Σ_l w_l · mean(a_l²) per image, a tensor (N,)."""
    total = 0.0
    for features, weight in zip(_call_features(dream_model, images), weights):
        axes = tuple(range(1, len(features.shape)))
        total = total + weight * ops.mean(ops.square(features), axis=axes)
    return total


def activation_norm(model: keras.Model, images, layer_names) -> np.ndarray:
    """The root-mean-square activation of the named layers for each image, summed over layers.

    This is the size of the response that `deep_dream` amplifies.

    Args:
        model: a functional Keras model.
        images: a batch (N, H, W, C); any H and W the layers accept.
        layer_names: a layer name or a sequence of names.

    Returns:
        A float array (N,).

    Example:

        >>> from dlkit.vision import build_cnn_classifier
        >>> model = build_cnn_classifier()
        >>> activation_norm(model, np.zeros((2, 16, 16, 1)), "conv1").shape
        (2,)
    """
    images = check_images("images", images)
    dream_model = _dream_model(model, _layer_names(layer_names), images.shape[-1])
    total = np.zeros(len(images))
    for features in _call_features(dream_model, images):
        features = ops.convert_to_numpy(features)
        total += np.sqrt(np.mean(np.square(features), axis=tuple(range(1, features.ndim))))
    return total


def deep_dream(
    model: keras.Model,
    image,
    layer_names,
    octaves: int = 3,
    octave_scale: float = 1.4,
    steps_per_octave: int = 20,
    step_size: float = 0.01,
    layer_weights: Sequence[float] | None = None,
    value_range: tuple[float, float] = (0.0, 1.0),
    return_octaves: bool = False,
):
    """Deep dream: gradient ascent on the size of chosen layers' activations, over octaves.

    Notes §4.10: take a trained classifier, pick some layers, and adjust the image by
    backpropagation so as to strengthen their activations. The objective is the weighted mean
    square activation of the layers, so every feature the layers already detect a little is
    pushed further, and the image fills with the network's patterns. Each step moves the image
    along the gradient divided by its mean absolute value (a normalised step, so `step_size` is
    the mean change of a pixel, as a share of the value range, whatever the layer's scale), then
    clips it to `value_range`.

    Octaves (Mordvintsev et al. 2015): the dream starts on the image shrunk by
    `octave_scale` ** (octaves - 1) and moves up one octave at a time. At each octave the dream
    so far is enlarged to the octave's size, the detail that shrinking removed from the original
    (the original at this size minus the shrunk original enlarged to it) is added back, and the
    ascent runs `steps_per_octave` steps. Patterns dreamt at a small scale thus become large
    structures at full size, while the original's fine detail is kept.

    Equation:

        J(x) = Σ_l w_l · mean(a_l(x)²)
        x ← clip(x + step_size · s · g / mean|g|),   g = ∂J/∂x,  s = high - low

    Args:
        model: a functional Keras model; the named layers must be reachable through layers
            that accept any image size (convolutions, pooling) when `octaves` > 1.
        image: the batch (N, H, W, C) to dream on, pixels in `value_range`.
        layer_names: a layer name or a sequence of names.
        octaves: the number of scales, >= 1. Defaults to 3.
        octave_scale: the size ratio between octaves, > 1. Defaults to 1.4.
        steps_per_octave: ascent steps at each octave, >= 1. Defaults to 20.
        step_size: mean pixel change per step, as a share of the value range. Defaults to 0.01.
        layer_weights: a weight >= 0 per layer; defaults to 1 for every layer.
        value_range: (low, high) pixel range. Defaults to (0, 1).
        return_octaves: also return the dream at the end of each octave. Defaults to False.

    Returns:
        The dreamt images, float32 (N, H, W, C) in `value_range`; with `return_octaves`,
        `(images, per_octave)`, `per_octave` a list of `octaves` arrays, smallest first.

    Example:

        >>> from dlkit.vision import build_cnn_classifier
        >>> model = build_cnn_classifier()
        >>> x = np.random.default_rng(0).uniform(size=(1, 16, 16, 1))
        >>> deep_dream(model, x, "conv2", octaves=2, steps_per_octave=1).shape
        (1, 16, 16, 1)

    Reference:
        Mordvintsev, Olah & Tyka, "Inceptionism: Going Deeper into Neural Networks", Google
        Research blog, 2015; Chollet, "Deep Learning with Python", 2nd ed., §12.2.
    """
    originals = check_images("image", image)
    names = _layer_names(layer_names)
    steps_per_octave = check_int("steps_per_octave", steps_per_octave)
    step_size = check_positive("step_size", step_size)
    low, high = check_range("value_range", value_range)
    if layer_weights is None:
        weights = [1.0] * len(names)
    else:
        weights = [check_non_negative("layer_weights", float(w)) for w in layer_weights]
        if len(weights) != len(names):
            raise ValueError(
                f"Expected one weight per layer ({len(names)}). "
                f"Received: layer_weights={layer_weights!r}"
            )
    shapes = octave_shapes(originals.shape[1:3], octaves, octave_scale)
    dream_model = _dream_model(model, names, originals.shape[-1])
    if len(shapes) > 1:
        try:
            _call_features(dream_model, np.zeros((1, *shapes[0], originals.shape[-1]), "float32"))
        except ValueError as error:
            raise ValueError(
                "Expected `layer_names` to name layers that accept any image size "
                "(convolutions, pooling), as the octaves change the image size; use octaves=1 "
                f"otherwise. Received: layer_names={names!r}"
            ) from error
    span = high - low

    def objective(images):
        return ops.sum(_objective(dream_model, images, weights))

    original = ops.convert_to_tensor(originals)
    shrunk_original = ops.image.resize(original, shapes[0], interpolation="bilinear")
    images = shrunk_original
    per_octave = []
    for index, shape in enumerate(shapes):
        if index > 0:
            # Enlarge the dream and re-inject the detail the shrinking lost.
            images = ops.image.resize(images, shape, interpolation="bilinear")
            same_size = ops.image.resize(original, shape, interpolation="bilinear")
            enlarged = ops.image.resize(shrunk_original, shape, interpolation="bilinear")
            images = ops.clip(images + same_size - enlarged, low, high)
            shrunk_original = same_size
        for _ in range(steps_per_octave):
            _, _, (gradient,) = value_and_grad(objective, inputs=[images])
            scale = ops.mean(ops.abs(gradient), axis=(1, 2, 3), keepdims=True) + 1e-8
            images = ops.clip(images + step_size * span * gradient / scale, low, high)
        per_octave.append(ops.convert_to_numpy(images).astype("float32"))
    result = per_octave[-1]
    return (result, per_octave) if return_octaves else result
