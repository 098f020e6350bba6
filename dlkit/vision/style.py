"""Neural style transfer [notes §4.11]: Gram matrices of CNN features and image optimisation.

A CNN encodes an image at layer l with D_l feature maps of M_l = H_l·W_l positions. The notes
add a second feature space on top of these: the correlations between feature maps, gathered
in the Gram matrix G^l (D_l × D_l), whose entry (d1, d2) is the dot product of maps d1 and d2.
The Gram matrix forgets where things are and keeps which features occur together: the
image's texture, or style. Style transfer starts from the content image and moves its pixels
by gradient descent so that its features match the content image at a deep layer and its Gram
matrices match those of the style image at several layers: the same input-gradient technique
as §4.8, with the weights held fixed.

All functions use `keras.ops` only; the gradients with respect to the image come from
`dlkit.training.value_and_grad`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import keras
import numpy as np
from keras import ops

from dlkit.training import value_and_grad
from dlkit.validation import check_int, check_non_negative
from dlkit.vision._checks import check_images, find_layer
from dlkit.vision.visualize import total_variation

__all__ = [
    "content_loss",
    "gram_matrix",
    "style_feature_model",
    "style_loss",
    "style_transfer",
]


def _check_feature_map(name: str, features) -> None:
    shape = tuple(features.shape)
    if len(shape) != 4:
        raise ValueError(
            f"Expected `{name}` to be feature maps of shape (B, H, W, C). "
            f"Received: {name} with shape {shape}"
        )


def gram_matrix(features):
    """The Gram matrix of each feature map in a batch, normalised by the number of positions.

    Entry (d1, d2) is the dot product of feature maps d1 and d2 over all M = H·W positions,
    divided by M: the average co-activation of the two channels [notes §4.11]. Dividing by M
    makes Gram matrices of layers and images of different sizes comparable.

    Equation:

        G_{b,d1,d2} = (1 / (H·W)) Σ_{i,j} F_{b,i,j,d1} F_{b,i,j,d2}

    Args:
        features: feature maps (B, H, W, C), a tensor of any backend or a NumPy array.

    Returns:
        A float tensor (B, C, C), symmetric in its last two axes.

    Raises:
        ValueError: if `features` is not of rank 4.

    Example:

        >>> import numpy as np
        >>> features = np.ones((1, 2, 2, 3), dtype="float32")
        >>> keras.ops.convert_to_numpy(gram_matrix(features))[0]
        array([[1., 1., 1.],
               [1., 1., 1.],
               [1., 1., 1.]], dtype=float32)

    Reference:
        Gatys, Ecker and Bethge, "Image Style Transfer Using Convolutional Neural Networks",
        CVPR 2016, eq. 3.
    """
    features = ops.convert_to_tensor(features, dtype="float32")
    _check_feature_map("features", features)
    height, width, channels = features.shape[1], features.shape[2], features.shape[3]
    flat = ops.reshape(features, (-1, height * width, channels))
    return ops.einsum("bmc,bmd->bcd", flat, flat) / float(height * width)


def _as_list(name: str, features) -> list:
    if isinstance(features, (list, tuple)):
        if not features:
            raise ValueError(f"Expected `{name}` to hold at least one feature map. Received: []")
        return list(features)
    return [features]


def _layer_weights(weights, count: int) -> list[float]:
    if weights is None:
        return [1.0 / count] * count
    weights = [float(w) for w in np.atleast_1d(weights)]
    if len(weights) != count or any(w < 0 for w in weights):
        raise ValueError(
            f"Expected `weights` to hold {count} non-negative numbers, one per layer. "
            f"Received: weights={weights!r}"
        )
    return weights


def _style_layer_loss(style_gram, generated_gram):
    channels = generated_gram.shape[-1]
    return ops.sum(ops.square(generated_gram - style_gram)) / (
        4.0 * channels**2 * generated_gram.shape[0]
    )


def _check_pairs(style, generated):
    if len(style) != len(generated):
        raise ValueError(
            "Expected as many style as generated feature maps. "
            f"Received: {len(style)} and {len(generated)}"
        )
    for index, (s, g) in enumerate(zip(style, generated)):
        if s.shape[-1] != g.shape[-1]:
            raise ValueError(
                f"Expected the feature maps of layer {index} to have the same channels. "
                f"Received: shapes {tuple(s.shape)} and {tuple(g.shape)}"
            )


def style_loss(style_features, generated_features, weights=None):
    """The style loss: weighted squared differences of Gram matrices over layers.

    For each layer, the Gram matrices of the style image's and the generated image's features
    are compared entry by entry [notes §4.11]; the layer losses are summed with `weights`. The
    feature maps may differ in size (their Gram matrices do not); a style batch of one image
    serves a whole generated batch. With Gram matrices normalised by M_l (`gram_matrix`), the
    factor 1/(4 D_l²) gives exactly the layer loss of Gatys et al.; it is averaged over the
    batch.

    Equation:

        E_l     = (1 / (4 D_l²)) Σ_{d1,d2} (G^l_{d1,d2}(generated) − G^l_{d1,d2}(style))²
        L_style = Σ_l w_l E_l                 w_l = 1 / L by default

    Args:
        style_features: the style image's feature maps (B, H, W, C), or a list of them, one
            per layer.
        generated_features: the generated image's feature maps, matching `style_features`
            layer by layer in number of channels.
        weights: one non-negative weight per layer. Defaults to 1 / (number of layers).

    Returns:
        A scalar float tensor, zero when the Gram matrices agree.

    Raises:
        ValueError: for feature maps that are not of rank 4, a different number of layers or
            channels, or bad `weights`.

    Example:

        >>> import numpy as np
        >>> features = np.random.default_rng(0).random((1, 4, 4, 2)).astype("float32")
        >>> float(style_loss(features, features))
        0.0
        >>> float(style_loss(features, 2 * features)) > 0
        True

    Reference:
        Gatys, Ecker and Bethge, "Image Style Transfer Using Convolutional Neural Networks",
        CVPR 2016, eqs. 4-5.
    """
    style = [
        ops.convert_to_tensor(f, dtype="float32")
        for f in _as_list("style_features", style_features)
    ]
    generated = [
        ops.convert_to_tensor(f, dtype="float32")
        for f in _as_list("generated_features", generated_features)
    ]
    for index, features in enumerate(style):
        _check_feature_map(f"style_features[{index}]", features)
    for index, features in enumerate(generated):
        _check_feature_map(f"generated_features[{index}]", features)
    _check_pairs(style, generated)
    layer_weights = _layer_weights(weights, len(style))
    total = 0.0
    for weight, s, g in zip(layer_weights, style, generated):
        total = total + weight * _style_layer_loss(gram_matrix(s), gram_matrix(g))
    return ops.convert_to_tensor(total, dtype="float32")


def content_loss(content_features, generated_features, weights=None):
    """The content loss: squared differences of feature maps, averaged per layer.

    The generated image should produce, at a deep layer, the same features as the content
    image: there the network encodes what is where, not the exact pixels [notes §4.11]. Each
    layer's squared error is averaged over its elements (Gatys et al. sum them; the mean keeps
    the loss independent of the image size), halved, and weighted.

    Equation:

        C_l       = (1 / (2 B H_l W_l D_l)) Σ (F^l(generated) − F^l(content))²
        L_content = Σ_l w_l C_l             w_l = 1 / L by default

    Args:
        content_features: the content image's feature maps (B, H, W, C), or a list of them.
        generated_features: the generated image's feature maps, of the same shapes.
        weights: one non-negative weight per layer. Defaults to 1 / (number of layers).

    Returns:
        A scalar float tensor, zero for identical features.

    Raises:
        ValueError: for a different number of layers, mismatched shapes or bad `weights`.

    Example:

        >>> import numpy as np
        >>> features = np.zeros((1, 2, 2, 1), dtype="float32")
        >>> float(content_loss(features, features + 1.0))
        0.5

    Reference:
        Gatys, Ecker and Bethge, "Image Style Transfer Using Convolutional Neural Networks",
        CVPR 2016, eq. 1.
    """
    content = [
        ops.convert_to_tensor(f, dtype="float32")
        for f in _as_list("content_features", content_features)
    ]
    generated = [
        ops.convert_to_tensor(f, dtype="float32")
        for f in _as_list("generated_features", generated_features)
    ]
    _check_pairs(content, generated)
    for index, (c, g) in enumerate(zip(content, generated)):
        if tuple(c.shape)[1:] != tuple(g.shape)[1:]:
            raise ValueError(
                f"Expected the feature maps of layer {index} to have the same shape. "
                f"Received: shapes {tuple(c.shape)} and {tuple(g.shape)}"
            )
    layer_weights = _layer_weights(weights, len(content))
    total = 0.0
    for weight, c, g in zip(layer_weights, content, generated):
        total = total + weight * 0.5 * ops.mean(ops.square(g - c))
    return ops.convert_to_tensor(total, dtype="float32")


def style_feature_model(
    model: keras.Model, content_layers: Sequence[str], style_layers: Sequence[str]
) -> keras.Model:
    """A model from images to the features style transfer compares: content, then style.

    Args:
        model: a functional CNN (a classifier, VGG16 without its top, ...), channels last.
        content_layers: names of the layers whose feature maps should match the content image.
        style_layers: names of the layers whose Gram matrices should match the style image.

    Returns:
        A functional model sharing `model`'s layers, with outputs
        `[*content feature maps, *style feature maps]` (a list, in the order given).

    Raises:
        ValueError: for an unknown layer name, no style layer, or a layer whose output is
            not a feature map (B, H, W, C).

    Example:

        >>> from dlkit.vision import build_cnn_classifier
        >>> features = style_feature_model(build_cnn_classifier(), ["conv2"], ["conv1", "conv2"])
        >>> [tuple(output.shape) for output in features.outputs]
        [(None, 8, 8, 64), (None, 8, 8, 32), (None, 8, 8, 64)]

    Reference:
        Gatys, Ecker and Bethge, "Image Style Transfer Using Convolutional Neural Networks",
        CVPR 2016.
    """
    content_layers, style_layers = list(content_layers), list(style_layers)
    if not style_layers:
        raise ValueError("Expected at least one name in `style_layers`. Received: style_layers=[]")
    outputs = []
    for argument, names in (("content_layers", content_layers), ("style_layers", style_layers)):
        for layer_name in names:
            output = find_layer(model, layer_name, name=argument).output
            if len(output.shape) != 4:
                raise ValueError(
                    f"Expected `{argument}` to name layers with feature maps (B, H, W, C). "
                    f"Received: {layer_name!r} with output shape {tuple(output.shape)}"
                )
            outputs.append(output)
    return keras.Model(model.inputs, outputs, name=f"{model.name}_style_features")


def style_transfer(
    model: keras.Model,
    content_image,
    style_image,
    content_layers: Sequence[str],
    style_layers: Sequence[str],
    steps: int = 100,
    learning_rate: float = 0.02,
    optimizer: keras.optimizers.Optimizer | None = None,
    content_weight: float = 1.0,
    style_weight: float = 1.0,
    tv_weight: float = 0.0,
    style_layer_weights: Sequence[float] | None = None,
    value_range: tuple[float, float] | None = (0.0, 1.0),
    preprocess: Callable | None = None,
    callback: Callable[[int, dict], None] | None = None,
) -> tuple[np.ndarray, dict[str, list[float]]]:
    """Optimises an image to have the content of one image and the style of another.

    The image starts as the content image and descends the gradient of the weighted sum of
    content, style and total-variation losses with respect to its pixels [notes §4.11]; the
    network's weights do not change. The targets (content features, style Gram matrices) are
    computed once. After each step the pixels are clipped to `value_range`.

    Equation:

        L(x)    = α L_content(F(x), F(c)) + β L_style(G(x), G(s)) + γ TV(x)
        TV      = mean over the batch of `dlkit.vision.visualize.total_variation` (β = 2)
        x_{t+1} = clip(optimizer_step(x_t, ∂L/∂x_t))          x_0 = c

    Args:
        model: a functional CNN, channels last; its weights stay fixed.
        content_image: the content image, a batch of one (1, H, W, C).
        style_image: the style image (1, H', W', C); its size may differ from the content's
            when `model` accepts images of any size.
        content_layers: layers of `model` whose features should match the content image.
        style_layers: layers of `model` whose Gram matrices should match the style image.
        steps: optimisation steps, >= 1. Defaults to 100.
        learning_rate: the step size of the default Adam optimiser. Defaults to 0.02.
        optimizer: a Keras optimiser to use instead of Adam(learning_rate).
        content_weight: α. Defaults to 1.
        style_weight: β. Defaults to 1.
        tv_weight: γ. Defaults to 0.
        style_layer_weights: one weight per style layer; defaults to 1 / len(style_layers).
        value_range: (low, high) range of the pixels, or `None` for no clipping. Defaults to
            (0, 1).
        preprocess: a function of `keras.ops` applied to the image before `model` (for example
            the ImageNet preprocessing of VGG16). Defaults to none.
        callback: called as `callback(step, losses)` after each step.

    Returns:
        `(image, history)`: the generated image as a NumPy array of the content image's shape,
        and a dict of lists `loss`, `content_loss`, `style_loss`, `tv_loss` with `steps + 1`
        entries each: before the first step and after every step.

    Raises:
        ValueError: for images that are not batches (1, H, W, C), channels that differ from
            each other or from the model's input, unknown layer names or bad numbers.

    Example:

        >>> import numpy as np
        >>> from dlkit.vision import build_cnn_classifier
        >>> model = build_cnn_classifier(input_shape=(8, 8, 3))
        >>> rng = np.random.default_rng(0)
        >>> content, style = rng.random((2, 1, 8, 8, 3)).astype("float32")
        >>> image, history = style_transfer(
        ...     model, content, style, ["conv2"], ["conv1", "conv2"], steps=3, style_weight=10.0)
        >>> image.shape, len(history["loss"]), history["loss"][-1] < history["loss"][0]
        ((1, 8, 8, 3), 4, True)

    Reference:
        Gatys, Ecker and Bethge, "Image Style Transfer Using Convolutional Neural Networks",
        CVPR 2016.
    """
    content_image = check_images("content_image", content_image)
    channels = content_image.shape[-1]
    style_image = check_images("style_image", style_image, channels=channels)
    for name, image in (("content_image", content_image), ("style_image", style_image)):
        if image.shape[0] != 1:
            raise ValueError(
                f"Expected `{name}` to be a batch of one image (1, H, W, C). "
                f"Received: {name} with shape {image.shape}"
            )
    input_channels = model.inputs[0].shape[-1] if getattr(model, "inputs", None) else None
    if input_channels is not None and input_channels != channels:
        raise ValueError(
            f"Expected images with the {input_channels} channels of the model's input. "
            f"Received: content_image with shape {content_image.shape}"
        )
    check_int("steps", steps)
    check_non_negative("content_weight", content_weight)
    check_non_negative("style_weight", style_weight)
    check_non_negative("tv_weight", tv_weight)
    features_model = style_feature_model(model, content_layers, style_layers)
    num_content = len(list(content_layers))
    layer_weights = _layer_weights(style_layer_weights, len(list(style_layers)))
    preprocess = preprocess or (lambda x: x)

    def features_of(image):
        outputs = features_model(preprocess(image))
        return outputs[:num_content], outputs[num_content:]

    content_targets, _ = features_of(ops.convert_to_tensor(content_image))
    _, style_features = features_of(ops.convert_to_tensor(style_image))
    style_grams = [gram_matrix(f) for f in style_features]

    def parts(image):
        content, style = features_of(image)
        c_loss = 0.0
        if num_content:
            c_loss = content_loss(content_targets, content)
        s_loss = 0.0
        for weight, target, features in zip(layer_weights, style_grams, style):
            s_loss = s_loss + weight * _style_layer_loss(target, gram_matrix(features))
        tv = ops.mean(total_variation(image))
        total = content_weight * c_loss + style_weight * s_loss + tv_weight * tv
        return total, c_loss, s_loss, tv

    def objective(image):
        return parts(image)[0]

    def record(image):
        values = [float(ops.convert_to_numpy(v)) for v in parts(image)]
        for key, value in zip(("loss", "content_loss", "style_loss", "tv_loss"), values):
            history[key].append(value)

    image = keras.Variable(content_image, dtype="float32", trainable=True, name="image")
    optimizer = optimizer or keras.optimizers.Adam(learning_rate)
    history = {"loss": [], "content_loss": [], "style_loss": [], "tv_loss": []}
    record(image.value)
    for step in range(1, steps + 1):
        _, _, (gradient,) = value_and_grad(objective, inputs=[image.value])
        optimizer.apply([gradient], [image])
        if value_range is not None:
            image.assign(ops.clip(image.value, value_range[0], value_range[1]))
        record(image.value)
        if callback is not None:
            callback(step, {key: values[-1] for key, values in history.items()})
    return np.asarray(ops.convert_to_numpy(image.value)), history
