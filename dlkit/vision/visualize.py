"""Seeing what a CNN learned: activation maximisation, feature inversion, saliency [notes §4.8].

Training differentiates the loss with respect to the weights for a fixed image; the techniques
here fix the weights and differentiate with respect to the image instead. Gradient ascent on
one unit's activation, starting from noise, synthesises the pattern that unit responds to
(activation maximisation). Gradient descent on the distance between an image's internal
encoding and a target encoding, plus a regulariser that keeps the image natural, shows what a
layer retains of the image (feature inversion, eq. 4.3). The gradient of a class score at a real
image shows which pixels the decision depends on (saliency maps).

Every function works on any Keras backend: the model is called through `keras.ops` and the
input gradients come from `dlkit.training.value_and_grad`.
"""

from __future__ import annotations

import weakref
from collections.abc import Sequence

import keras
import numpy as np
from keras import ops

from dlkit.training import value_and_grad
from dlkit.validation import check_int, check_model, check_non_negative, check_positive, check_range
from dlkit.vision._checks import check_images, find_layer

__all__ = [
    "activation_maximization",
    "alpha_norm",
    "feature_distance",
    "feature_inversion",
    "guided_backpropagation",
    "saliency_map",
    "total_variation",
    "unit_activation",
]

_ADAM_BETA_1 = 0.9
_ADAM_BETA_2 = 0.999
_ADAM_EPSILON = 1e-8
_INITIAL_NOISE = 0.1  # standard deviation of the starting noise, as a share of the value range
_REGULARIZERS = ("total_variation", "alpha_norm")


# --------------------------------------------------------------------------------------------
# Argument checks and shared pieces.


def _feature_model(model: keras.Model, layer_names: Sequence[str]) -> keras.Model:
    """A model from the input of `model` to the outputs of the named layers (a list)."""
    layers = [find_layer(model, name) for name in layer_names]
    return keras.Model(model.inputs, [layer.output for layer in layers])


def _call_features(feature_model: keras.Model, images) -> list:
    outputs = feature_model([images])
    return list(outputs) if isinstance(outputs, (list, tuple)) else [outputs]


def _channel_means(features):
    """(B, ..., C) → (B, C): the mean of each channel over every axis between batch and
    channels; a dense layer's (B, C) is returned as is."""
    if len(features.shape) < 2:
        raise ValueError(
            f"Expected a layer output of rank >= 2 (B, ..., C). Received: shape {features.shape}"
        )
    if len(features.shape) == 2:
        return features
    return ops.mean(features, axis=tuple(range(1, len(features.shape) - 1)))


def _input_image_shape(model: keras.Model, image_shape) -> tuple[int, ...]:
    if image_shape is None:
        image_shape = tuple(model.inputs[0].shape[1:])
    image_shape = tuple(image_shape)
    if len(image_shape) != 3 or not all(
        isinstance(size, (int, np.integer)) and size > 0 for size in image_shape
    ):
        raise ValueError(
            "Expected `image_shape` (H, W, C) of positive integers, or a model with a fixed "
            f"input shape. Received: image_shape={image_shape!r}"
        )
    return tuple(int(size) for size in image_shape)


def _starting_noise(shape, low: float, high: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    noise = (low + high) / 2 + _INITIAL_NOISE * (high - low) * rng.standard_normal(shape)
    return np.clip(noise, low, high).astype("float32")


def _gaussian_blur(images, sigma: float = 0.5):
    """A 3×3 Gaussian blur of every channel, with reflected borders."""
    taps = np.exp(-np.array([1.0, 0.0, 1.0]) / (2 * sigma**2))
    kernel = np.outer(taps, taps) / np.sum(np.outer(taps, taps))
    channels = images.shape[-1]
    kernel = np.tile(kernel[:, :, None, None], (1, 1, channels, 1)).astype("float32")
    padded = ops.pad(images, [[0, 0], [1, 1], [1, 1], [0, 0]], mode="reflect")
    return ops.depthwise_conv(padded, kernel, strides=1, padding="valid")


class _Adam:
    """Adam steps on an image tensor (Kingma & Ba 2015), in `keras.ops`."""

    def __init__(self, learning_rate: float):
        self.learning_rate = learning_rate
        self.step = 0
        self.m = None
        self.v = None

    def update(self, gradient):
        if self.m is None:
            self.m = ops.zeros_like(gradient)
            self.v = ops.zeros_like(gradient)
        self.step += 1
        self.m = _ADAM_BETA_1 * self.m + (1 - _ADAM_BETA_1) * gradient
        self.v = _ADAM_BETA_2 * self.v + (1 - _ADAM_BETA_2) * gradient * gradient
        m_hat = self.m / (1 - _ADAM_BETA_1**self.step)
        v_hat = self.v / (1 - _ADAM_BETA_2**self.step)
        return self.learning_rate * m_hat / (ops.sqrt(v_hat) + _ADAM_EPSILON)


# --------------------------------------------------------------------------------------------
# Regularisers.


def total_variation(images, beta: float = 2.0):
    """Total variation of each image: how much neighbouring pixels differ.

    Natural images are mostly smooth; penalising the differences between horizontal and vertical
    neighbours keeps synthesised images from filling with high-frequency noise that excites a
    unit without resembling anything. With `beta` = 2 the penalty is smooth everywhere; `beta`
    closer to 1 tolerates sharp edges more (Mahendran & Vedaldi use `beta` = 2).

    Equation:

        TV_β(x) = mean over i, j, c of ((x[i, j+1] - x[i, j])² + (x[i+1, j] - x[i, j])²)^(β/2)

    Args:
        images: a batch (N, H, W, C), a backend tensor or an array, H and W >= 2.
        beta: the exponent β > 0. Defaults to 2.

    Returns:
        A tensor (N,): the total variation of each image.

    Example:

        >>> import numpy as np
        >>> flat = np.zeros((1, 4, 4, 1), "float32")
        >>> step = np.concatenate([flat[:, :, :2], flat[:, :, 2:] + 1.0], axis=2)
        >>> [round(float(v), 4) for v in keras.ops.convert_to_numpy(total_variation(
        ...     np.concatenate([flat, step])))]
        [0.0, 0.3333]

    Reference:
        Mahendran & Vedaldi, "Understanding Deep Image Representations by Inverting Them",
        CVPR 2015 (https://arxiv.org/abs/1412.0035).
    """
    beta = check_positive("beta", beta)
    images = ops.convert_to_tensor(images, dtype="float32")
    dx = images[:, :-1, 1:, :] - images[:, :-1, :-1, :]
    dy = images[:, 1:, :-1, :] - images[:, :-1, :-1, :]
    squared = dx * dx + dy * dy
    if beta != 2.0:
        squared = ops.power(squared + 1e-8, beta / 2)
    return ops.mean(squared, axis=(1, 2, 3))


def alpha_norm(images, alpha: float = 6.0, center: float = 0.0):
    """The α-norm regulariser of each image: the mean of |x - center|^α over its pixels.

    A large α (6 in Mahendran & Vedaldi) barely penalises ordinary pixel values but grows very
    fast for extreme ones, so it keeps an image inside a plausible range without pulling it
    towards a flat colour.

    Equation:

        R_α(x) = mean over i, j, c of |x[i, j, c] - center|^α

    Args:
        images: a batch (N, H, W, C), a backend tensor or an array.
        alpha: the exponent α > 0. Defaults to 6.
        center: the value that costs nothing (the middle of the value range). Defaults to 0.

    Returns:
        A tensor (N,): the penalty of each image.

    Example:

        >>> import numpy as np
        >>> images = np.stack([np.full((2, 2, 1), 0.5), np.full((2, 2, 1), 2.0)]).astype("f")
        >>> [round(float(v), 4) for v in keras.ops.convert_to_numpy(
        ...     alpha_norm(images, alpha=2.0, center=0.5))]
        [0.0, 2.25]

    Reference:
        Mahendran & Vedaldi, "Understanding Deep Image Representations by Inverting Them",
        CVPR 2015 (https://arxiv.org/abs/1412.0035).
    """
    alpha = check_positive("alpha", alpha)
    images = ops.convert_to_tensor(images, dtype="float32")
    return ops.mean(ops.power(ops.abs(images - center) + 1e-12, alpha), axis=(1, 2, 3))


# --------------------------------------------------------------------------------------------
# Activation maximisation.


def unit_activation(model: keras.Model, layer_name: str, images, unit) -> np.ndarray:
    """The mean activation of one channel (or unit) of a layer for each image.

    For a convolutional layer the channel's activation map is averaged over its positions; for a
    dense layer (or the logits) the unit's value is returned as is.

    Args:
        model: a functional Keras model.
        layer_name: the name of a layer of `model`.
        images: a batch (N, H, W, C) the model accepts.
        unit: a channel index, or a sequence of N indices (one per image).

    Returns:
        A float array (N,).

    Example:

        >>> from dlkit.vision import build_cnn_classifier
        >>> model = build_cnn_classifier()
        >>> unit_activation(model, "conv1", np.zeros((2, 8, 8, 1)), [0, 1]).shape
        (2,)
    """
    images = check_images("images", images)
    feature_model = _feature_model(model, [layer_name])
    units = _check_units(unit, _num_channels(feature_model), len(images))
    means = _channel_means(_call_features(feature_model, images)[0])
    return np.take_along_axis(ops.convert_to_numpy(means), units[:, None], axis=1)[:, 0]


def _num_channels(feature_model: keras.Model) -> int:
    return int(feature_model.outputs[0].shape[-1])


def _check_units(unit, num_channels: int, count: int | None = None) -> np.ndarray:
    units = np.atleast_1d(np.asarray(unit))
    if units.ndim != 1 or units.size == 0 or not np.issubdtype(units.dtype, np.integer):
        raise ValueError(
            f"Expected `unit` to be an integer or a sequence of integers. Received: unit={unit!r}"
        )
    if np.any(units < 0) or np.any(units >= num_channels):
        raise ValueError(
            f"Expected `unit` in [0, {num_channels}) (the layer's channels). "
            f"Received: unit={unit!r}"
        )
    if count is not None:
        if units.size == 1:
            units = np.repeat(units, count)
        elif units.size != count:
            raise ValueError(
                f"Expected one `unit` or one per image ({count}). Received: unit={unit!r}"
            )
    return units.astype("int64")


def activation_maximization(
    model: keras.Model,
    layer_name: str,
    unit,
    steps: int = 200,
    step_size: float = 0.05,
    l2_weight: float = 0.1,
    tv_weight: float = 0.0,
    blur_every: int = 0,
    blur_sigma: float = 0.5,
    image_shape: tuple[int, int, int] | None = None,
    seed: int = 0,
    value_range: tuple[float, float] = (0.0, 1.0),
) -> np.ndarray:
    """Synthesises the image that most excites one channel of a layer, by gradient ascent.

    Starting from faint noise around the middle of `value_range`, the image moves step by step
    along the gradient of the target's activation with respect to its pixels (notes §4.8: fix
    the weights, differentiate with respect to the input). For a convolutional layer the target
    is the mean of one channel's map over all positions; for a dense layer or the logits it is
    one unit (a class score). Without a prior the ascent finds high-frequency patterns that
    excite the unit but look like noise, so the objective subtracts an L2 penalty on the
    distance from mid-grey and, optionally, total variation; a light Gaussian blur every
    `blur_every` steps adds a smoothness prior of its own (Yosinski et al. 2015). Pixels are
    clipped to `value_range` after each step; the steps are Adam steps of size
    `step_size × (high - low)`.

    Several units are optimised at once, one image per unit, in a single batch: the images do
    not interact, since the objective is a sum of per-image terms.

    Equation:

        x* = argmax_x  a_u(x) - l2_weight · mean((x - c)²) / s² - tv_weight · TV(x) / s²
        a_u(x) = mean over positions of the layer's channel u,   c = (low + high) / 2,
        s = high - low

    Args:
        model: a functional Keras model (a classifier that outputs logits, for class scores).
        layer_name: the layer whose channel is maximised (e.g. "conv2", "logits").
        unit: a channel index, or a sequence of indices (one image each).
        steps: ascent steps, >= 1. Defaults to 200.
        step_size: Adam step size as a share of the value range. Defaults to 0.05.
        l2_weight: weight of the L2 penalty. Defaults to 0.1.
        tv_weight: weight of the total-variation penalty. Defaults to 0 (none).
        blur_every: blur the images every this many steps; 0 never. Defaults to 0.
        blur_sigma: standard deviation of the 3×3 Gaussian blur in pixels. Defaults to 0.5.
        image_shape: (H, W, C) of the images; defaults to the model's input shape.
        seed: seed of the starting noise. Defaults to 0.
        value_range: (low, high) pixel range of the model's inputs. Defaults to (0, 1).

    Returns:
        A float32 array (len(units), H, W, C) with pixels in `value_range`.

    Example:

        >>> from dlkit.vision import build_cnn_classifier
        >>> model = build_cnn_classifier()
        >>> activation_maximization(model, "logits", [3, 7], steps=2).shape
        (2, 8, 8, 1)

    Reference:
        Erhan et al., "Visualizing Higher-Layer Features of a Deep Network", 2009; Simonyan et
        al., "Deep Inside Convolutional Networks", 2014 (https://arxiv.org/abs/1312.6034);
        Yosinski et al., "Understanding Neural Networks Through Deep Visualization", 2015
        (https://arxiv.org/abs/1506.06579).
    """
    steps = check_int("steps", steps)
    step_size = check_positive("step_size", step_size)
    l2_weight = check_non_negative("l2_weight", l2_weight)
    tv_weight = check_non_negative("tv_weight", tv_weight)
    blur_every = check_int("blur_every", blur_every, 0)
    blur_sigma = check_positive("blur_sigma", blur_sigma)
    low, high = check_range("value_range", value_range)
    feature_model = _feature_model(model, [layer_name])
    units = _check_units(unit, _num_channels(feature_model))
    image_shape = _input_image_shape(model, image_shape)
    center, span = (low + high) / 2, high - low
    selector = ops.convert_to_tensor(np.eye(_num_channels(feature_model), dtype="float32")[units])

    def objective(images):
        means = _channel_means(_call_features(feature_model, images)[0])
        activation = ops.sum(means * selector, axis=-1)
        penalty = l2_weight * ops.mean(ops.square(images - center), axis=(1, 2, 3)) / span**2
        if tv_weight:
            penalty = penalty + tv_weight * total_variation(images) / span**2
        return ops.sum(activation - penalty)

    images = ops.convert_to_tensor(_starting_noise((len(units), *image_shape), low, high, seed))
    optimizer = _Adam(step_size * span)
    for step in range(1, steps + 1):
        _, _, (gradient,) = value_and_grad(objective, inputs=[images])
        images = ops.clip(images + optimizer.update(gradient), low, high)
        if blur_every and step % blur_every == 0 and step < steps:
            images = _gaussian_blur(images, blur_sigma)
    return ops.convert_to_numpy(images).astype("float32")


# --------------------------------------------------------------------------------------------
# Feature inversion.


def feature_distance(model: keras.Model, layer_name: str, images, reference_images) -> np.ndarray:
    """The relative squared distance between two batches' encodings at a layer.

    Equation:

        d(x, x0) = ||Φ(x) - Φ(x0)||² / ||Φ(x0)||²    per image, Φ the layer's output

    Args:
        model: a functional Keras model.
        layer_name: the layer whose output is the encoding Φ.
        images: a batch (N, H, W, C).
        reference_images: the batch (N, H, W, C) of the originals x0.

    Returns:
        A float array (N,); 0 for identical encodings, 1 for an all-zero encoding.

    Example:

        >>> from dlkit.vision import build_cnn_classifier
        >>> model = build_cnn_classifier()
        >>> x = np.random.default_rng(0).uniform(size=(2, 8, 8, 1))
        >>> feature_distance(model, "conv1", x, x).tolist()
        [0.0, 0.0]
    """
    images = check_images("images", images)
    reference_images = check_images("reference_images", reference_images)
    if images.shape != reference_images.shape:
        raise ValueError(
            "Expected `images` and `reference_images` of the same shape. Received: "
            f"images.shape={images.shape}, reference_images.shape={reference_images.shape}"
        )
    feature_model = _feature_model(model, [layer_name])
    features = ops.convert_to_numpy(_call_features(feature_model, images)[0])
    targets = ops.convert_to_numpy(_call_features(feature_model, reference_images)[0])
    axes = tuple(range(1, features.ndim))
    error = np.sum(np.square(features - targets), axis=axes)
    return error / np.maximum(np.sum(np.square(targets), axis=axes), 1e-12)


def feature_inversion(
    model: keras.Model,
    layer_name: str,
    image,
    steps: int = 300,
    step_size: float = 0.02,
    regularization_weight: float = 0.05,
    regularization: str = "total_variation",
    alpha: float = 6.0,
    beta: float = 2.0,
    seed: int = 0,
    value_range: tuple[float, float] = (0.0, 1.0),
) -> np.ndarray:
    """Reconstructs images from their encoding at a layer (eq. 4.3 of the notes).

    The encoding Φ0 = Φ(x0) of each image at the layer is fixed; starting from noise, gradient
    descent looks for an image whose encoding is as close to Φ0 as possible, while a regulariser
    R keeps it image-like. What the reconstruction keeps shows what the layer retains: early
    convolutions give back nearly the original, later layers only the aspects the classifier
    needs (roughly where the strokes are, not their exact shape). The distance is normalised by
    ||Φ0||², so that `regularization_weight` means the same at every layer (Mahendran & Vedaldi
    2015). Pixels are clipped to `value_range`; the steps are Adam steps of size
    `step_size × (high - low)`.

    Equation:

        x* = argmin_x  ||Φ(x) - Φ0||² / ||Φ0||²  +  λ R(x)                       (4.3)
        R = TV_β((x - low) / s)   (total variation)  or  R_α((x - c) / s)   (α-norm),
        c = (low + high) / 2, s = high - low, λ = regularization_weight

    Args:
        model: a functional Keras model.
        layer_name: the layer Φ to invert (e.g. "conv1", "conv2", "dense").
        image: the batch (N, H, W, C) of originals x0.
        steps: descent steps, >= 1. Defaults to 300.
        step_size: Adam step size as a share of the value range. Defaults to 0.02.
        regularization_weight: λ >= 0. Defaults to 0.05.
        regularization: "total_variation" or "alpha_norm". Defaults to "total_variation".
        alpha: the exponent of the α-norm. Defaults to 6.
        beta: the exponent of the total variation. Defaults to 2.
        seed: seed of the starting noise. Defaults to 0.
        value_range: (low, high) pixel range of the model's inputs. Defaults to (0, 1).

    Returns:
        A float32 array of the shape of `image`: the reconstructions, pixels in `value_range`.

    Example:

        >>> from dlkit.vision import build_cnn_classifier
        >>> model = build_cnn_classifier()
        >>> x0 = np.random.default_rng(0).uniform(size=(1, 8, 8, 1))
        >>> feature_inversion(model, "conv2", x0, steps=2).shape
        (1, 8, 8, 1)

    Reference:
        Mahendran & Vedaldi, "Understanding Deep Image Representations by Inverting Them",
        CVPR 2015 (https://arxiv.org/abs/1412.0035).
    """
    originals = check_images("image", image)
    steps = check_int("steps", steps)
    step_size = check_positive("step_size", step_size)
    weight = check_non_negative("regularization_weight", regularization_weight)
    if regularization not in _REGULARIZERS:
        raise ValueError(
            f"Expected `regularization` to be one of {_REGULARIZERS}. "
            f"Received: regularization={regularization!r}"
        )
    alpha = check_positive("alpha", alpha)
    beta = check_positive("beta", beta)
    low, high = check_range("value_range", value_range)
    center, span = (low + high) / 2, high - low
    feature_model = _feature_model(model, [layer_name])
    targets = _call_features(feature_model, originals)[0]
    axes = tuple(range(1, len(targets.shape)))
    target_norms = ops.maximum(ops.sum(ops.square(targets), axis=axes), 1e-12)

    def loss(images):
        features = _call_features(feature_model, images)[0]
        error = ops.sum(ops.square(features - targets), axis=axes) / target_norms
        if regularization == "total_variation":
            penalty = total_variation((images - low) / span, beta=beta)
        else:
            penalty = alpha_norm((images - center) / span, alpha=alpha)
        return ops.sum(error + weight * penalty)

    images = ops.convert_to_tensor(_starting_noise(originals.shape, low, high, seed))
    optimizer = _Adam(step_size * span)
    for _ in range(steps):
        _, _, (gradient,) = value_and_grad(loss, inputs=[images])
        images = ops.clip(images - optimizer.update(gradient), low, high)
    return ops.convert_to_numpy(images).astype("float32")


# --------------------------------------------------------------------------------------------
# Saliency.


def _class_indices(class_index, logits) -> np.ndarray:
    num_images, num_classes = logits.shape
    if class_index is None:
        return np.argmax(logits, axis=-1)
    indices = np.atleast_1d(np.asarray(class_index))
    if indices.ndim != 1 or not np.issubdtype(indices.dtype, np.integer):
        raise ValueError(
            "Expected `class_index` to be None, an integer or one integer per image. "
            f"Received: class_index={class_index!r}"
        )
    if np.any(indices < 0) or np.any(indices >= num_classes):
        raise ValueError(
            f"Expected `class_index` in [0, {num_classes}). Received: class_index={class_index!r}"
        )
    if indices.size == 1:
        return np.repeat(indices, num_images)
    if indices.size != num_images:
        raise ValueError(
            f"Expected one `class_index` or one per image ({num_images}). "
            f"Received: class_index={class_index!r}"
        )
    return indices


def _score_gradients(model: keras.Model, images: np.ndarray, class_index):
    """The gradient of each image's class score with respect to its pixels, and the classes."""
    logits = ops.convert_to_numpy(model(images))
    if logits.ndim != 2:
        raise ValueError(
            f"Expected `model` to output class scores (N, num_classes). Received: outputs of "
            f"shape {logits.shape}"
        )
    indices = _class_indices(class_index, logits)
    selector = ops.convert_to_tensor(np.eye(logits.shape[-1], dtype="float32")[indices])
    return selector, indices


def _input_gradient(model, images, selector):
    _, _, (gradient,) = value_and_grad(lambda x: ops.sum(model(x) * selector), inputs=[images])
    return ops.convert_to_numpy(gradient)


def saliency_map(
    model: keras.Model,
    images,
    class_index=None,
    samples: int = 0,
    noise: float = 0.1,
    seed: int = 0,
) -> np.ndarray:
    """How strongly each pixel sways a class score: |∂ score_c / ∂ x|, largest over channels.

    The gradient of the class score with respect to the image (notes §4.8: derivatives with
    respect to the input instead of the weights) is the first-order sensitivity of the score to
    each pixel; its magnitude, maximised over the colour channels, is the saliency map of
    Simonyan et al. (2014). Plain gradients are noisy; SmoothGrad averages the maps of
    `samples` copies of the image with Gaussian noise added (standard deviation `noise` times
    the image's value spread), which keeps the structure that survives small perturbations.

    Equation:

        M_c(x)[i, j] = max over k of |∂ S_c / ∂ x[i, j, k]|
        SmoothGrad:    mean over n = 1..samples of M_c(x + ε_n),  ε_n ~ N(0, (noise · spread)²)

    Args:
        model: a Keras model from images to class scores (logits, not probabilities: the
            softmax couples the classes and saturates).
        images: a batch (N, H, W, C).
        class_index: the class c of each map: None for the predicted class, an integer for all
            images, or a sequence of N integers. Defaults to None.
        samples: SmoothGrad's number of noisy copies; 0 gives the plain gradient map.
            Defaults to 0.
        noise: SmoothGrad's noise level, a share of each image's max - min. Defaults to 0.1.
        seed: seed of SmoothGrad's noise. Defaults to 0.

    Returns:
        A float32 array (N, H, W) of non-negative saliencies.

    Example:

        >>> from dlkit.vision import build_cnn_classifier
        >>> model = build_cnn_classifier()
        >>> saliency_map(model, np.zeros((2, 8, 8, 1)), class_index=3).shape
        (2, 8, 8)

    Reference:
        Simonyan et al., "Deep Inside Convolutional Networks: Visualising Image Classification
        Models and Saliency Maps", 2014 (https://arxiv.org/abs/1312.6034); Smilkov et al.,
        "SmoothGrad: removing noise by adding noise", 2017 (https://arxiv.org/abs/1706.03825).
    """
    images = check_images("images", images)
    samples = check_int("samples", samples, 0)
    noise = check_non_negative("noise", noise)
    selector, _ = _score_gradients(model, images, class_index)
    if samples == 0:
        return np.max(np.abs(_input_gradient(model, images, selector)), axis=-1)
    rng = np.random.default_rng(seed)
    spread = np.ptp(images.reshape(len(images), -1), axis=1).reshape(-1, 1, 1, 1)
    total = np.zeros(images.shape[:-1], dtype="float32")
    for _ in range(samples):
        noisy = images + noise * spread * rng.standard_normal(images.shape).astype("float32")
        total += np.max(np.abs(_input_gradient(model, noisy, selector)), axis=-1)
    return total / samples


# --------------------------------------------------------------------------------------------
# Guided backpropagation.


@ops.custom_gradient
def _guided_relu(x):
    def gradient(*args, upstream=None):
        if upstream is None:
            (upstream,) = args
        # Pass back only positive signals through units that were active (Springenberg et al.).
        return upstream * ops.cast(x > 0, x.dtype) * ops.cast(upstream > 0, x.dtype)

    return ops.relu(x), gradient


def _is_relu(activation) -> bool:
    return activation is keras.activations.relu or getattr(activation, "__name__", "") == "relu"


def _guided_layer(layer: keras.Layer) -> keras.Layer:
    """A new layer built from `layer`'s config, with the guided gradient at its ReLU.

    The `clone_function` of `keras.models.clone_model`: a `keras.layers.ReLU` becomes an
    `Activation` layer of the guided ReLU; a layer whose activation is ReLU (Dense, Conv,
    Activation) is rebuilt with the guided ReLU as its activation; any other layer is rebuilt
    as it is, as `clone_model` does by default.
    """
    if isinstance(layer, keras.layers.ReLU):
        default = (
            layer.max_value is None
            and float(layer.negative_slope) == 0.0
            and float(layer.threshold) == 0.0
        )
        if not default:
            raise ValueError(
                "Expected ReLU layers without max_value, negative_slope or threshold "
                f"for guided backpropagation. Received: layer {layer.name!r}"
            )
        return keras.layers.Activation(_guided_relu, name=layer.name)
    config = layer.get_config()
    if _is_relu(getattr(layer, "activation", None)):
        config["activation"] = _guided_relu
    return layer.__class__.from_config(config)


# The guided copy of each model, built once: rebuilding it costs more than the gradient.
_GUIDED_MODELS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _guided_model(model: keras.Model) -> keras.Model:
    """A copy of `model`, with its current weights, whose ReLUs pass back only positive signals.

    The copy is built on the first call for `model` and kept; each call gives it the model's
    current weights, so training the model between calls is seen.
    """
    check_model("model", model)
    guided = _GUIDED_MODELS.get(model)
    if guided is None:
        guided = keras.models.clone_model(model, clone_function=_guided_layer, recursive=True)
        _GUIDED_MODELS[model] = guided
    for target, source in zip(guided.weights, model.weights, strict=True):
        target.assign(source.value)
    return guided


def guided_backpropagation(model: keras.Model, images, class_index=None) -> np.ndarray:
    """The gradient of a class score with ReLUs that pass back only positive signals.

    Guided backpropagation (Springenberg et al. 2015) is the plain input gradient of
    `saliency_map` with one change at every ReLU: on the way back, a signal passes only where
    the unit was active in the forward pass (as for the ordinary gradient) and where the signal
    itself is positive (as in the deconvolution network of notes §4.8, which reverses the
    network from a feature map back to image space). Only features that increase the score
    survive, which gives sharp, edge-like pictures of what the network looked at. The gradient
    is taken through a copy of the model rebuilt from its layers' configs, with the model's
    weights, in which every ReLU (the activation of a Dense, Conv or Activation layer, or a
    `keras.layers.ReLU` layer, in nested models too) is the guided one; the forward pass is
    the same and the model itself is left untouched. ReLUs inside a custom layer keep the
    plain gradient.

    Equation:

        forward:  y = max(x, 0)
        backward: ∂S/∂x = ∂S/∂y · [x > 0] · [∂S/∂y > 0]

    Args:
        model: a functional or Sequential Keras model from images to class scores (logits)
            using ReLU activations.
        images: a batch (N, H, W, C).
        class_index: the class of each map: None for the predicted class, an integer for all
            images, or a sequence of N integers. Defaults to None.

    Returns:
        A float32 array (N, H, W, C): the guided gradient (signed, per channel).

    Example:

        >>> from dlkit.vision import build_cnn_classifier
        >>> model = build_cnn_classifier()
        >>> x = np.random.default_rng(0).uniform(size=(1, 8, 8, 1))
        >>> guided_backpropagation(model, x).shape
        (1, 8, 8, 1)

    Reference:
        Springenberg et al., "Striving for Simplicity: The All Convolutional Net", ICLR 2015
        workshop (https://arxiv.org/abs/1412.6806).
    """
    images = check_images("images", images)
    selector, _ = _score_gradients(model, images, class_index)
    return _input_gradient(_guided_model(model), images, selector).astype("float32")
