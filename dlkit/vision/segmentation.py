"""Semantic segmentation [notes §4.12]: convolutionalisation and a small fully convolutional net.

Segmentation labels every pixel with the class of the object it belongs to, so a training
pair is an image and a mask of the same size: an image-to-image task. Two ways to get there:

- `convolutionalize` turns a trained classifier of fixed-size images into a fully
  convolutional network (§4.12.1): a dense layer is a convolution whose kernel covers its
  whole input, so rewriting the head as convolutions lets the network slide over larger images
  and return a coarse heat map of class scores, one per window.
- `build_fcn` builds an encoder-decoder that is fully convolutional from the start and returns
  one class score vector per pixel, trained with per-pixel cross-entropy (`train_fcn`) and
  judged by the intersection over union of eq. 4.4 averaged over classes (`mean_iou`).
"""

from __future__ import annotations

import keras
import numpy as np

from dlkit.validation import check_int, check_positive
from dlkit.vision._checks import check_images

__all__ = [
    "build_fcn",
    "class_iou",
    "convolutionalize",
    "mean_iou",
    "predict_masks",
    "train_fcn",
]

# Layers that act the same at every spatial position (or only mix nearby positions), so they
# run unchanged on a larger image.
_SPATIAL_LAYERS = (
    keras.layers.Conv2D,
    keras.layers.DepthwiseConv2D,
    keras.layers.SeparableConv2D,
    keras.layers.MaxPooling2D,
    keras.layers.AveragePooling2D,
    keras.layers.ZeroPadding2D,
    keras.layers.UpSampling2D,
    keras.layers.SpatialDropout2D,
    keras.layers.Add,
    keras.layers.Subtract,
    keras.layers.Multiply,
    keras.layers.Average,
    keras.layers.Maximum,
    keras.layers.Minimum,
    keras.layers.Concatenate,
    keras.layers.Rescaling,
)
# Layers that act on the channel axis alone: allowed anywhere, before or after the flatten.
_POINTWISE_LAYERS = (
    keras.layers.Activation,
    keras.layers.ReLU,
    keras.layers.LeakyReLU,
    keras.layers.ELU,
    keras.layers.Softmax,
    keras.layers.Dropout,
    keras.layers.GaussianNoise,
    keras.layers.GaussianDropout,
    keras.layers.Identity,
    keras.layers.BatchNormalization,
)


def _acts_per_feature(layer) -> bool:
    """Whether `layer` treats every feature alike and on its own (so it may sit between the
    Flatten and the first Dense, where a feature is one (i, j, c) entry of the map)."""
    if layer.weights or isinstance(layer, keras.layers.Softmax):
        return False
    activation = getattr(layer, "activation", None)
    return getattr(activation, "__name__", "") not in ("softmax", "log_softmax")


def _copy_layer(layer):
    """A fresh layer with the configuration of `layer` (weights are copied once built)."""
    return layer.__class__.from_config(layer.get_config())


def _check_channels_last(layer) -> None:
    data_format = getattr(layer, "data_format", None)
    if data_format not in (None, "channels_last"):
        raise ValueError(
            "Expected layers with data_format='channels_last'. "
            f"Received: layer {layer.name!r} with data_format={data_format!r}"
        )
    axis = getattr(layer, "axis", -1)
    if isinstance(
        layer, (keras.layers.BatchNormalization, keras.layers.Concatenate)
    ) and axis not in (
        -1,
        3,
    ):
        raise ValueError(
            "Expected normalisation and concatenation over the channel axis (-1). "
            f"Received: layer {layer.name!r} with axis={axis!r}"
        )


def _dense_as_convolution(dense, kernel_size, kernel_shape):
    """Conv2D equivalent of `dense` on a (B, kh, kw, C) map; weights are set by the caller."""
    if getattr(dense, "lora_enabled", False):
        raise ValueError(f"Expected a Dense layer without LoRA. Received: layer {dense.name!r}")
    convolution = keras.layers.Conv2D(
        dense.units,
        kernel_size,
        padding="valid",
        activation=dense.activation,
        use_bias=dense.use_bias,
        dtype=dense.dtype_policy,
        name=dense.name,
    )
    weights = dense.get_weights()
    weights[0] = np.reshape(weights[0], kernel_shape)
    return convolution, weights


def convolutionalize(model: keras.Model, name: str | None = None) -> keras.Model:
    """Turns a classifier of fixed-size images into a fully convolutional heat-map network.

    A dense layer reading a flattened (h, w, C) feature map is a convolution whose kernel is as
    large as that map: its weight matrix (h·w·C, K), reshaped to (h, w, C, K), gives the same K
    outputs with "valid" padding on an (h, w, C) input [notes §4.12.1]. Dense layers after it
    see one vector per position and become 1×1 convolutions. The rewritten network accepts
    images of any size at least as large as the training size: on the original size it
    returns the classifier's outputs as a (B, 1, 1, K) map; on a larger image it slides the
    classifier over every window and returns a (B, H', W', K) heat map of class scores, one
    per window, whose windows are offset by the product of the strides of the layers before
    the flatten (a composition of convolutions is a convolution with the product stride).
    Every weight is copied, and activations are kept, so nothing needs retraining.

    The model must be functional (or a built Sequential) with one image input (H, W, C)
    channels-last, and consist of convolutions, pooling, padding, up-sampling, merges,
    normalisation, activations and dropout, then a `Flatten` followed by `Dense` layers
    (possibly with activations and dropout in between), like `build_cnn_classifier`. The
    Flatten's input map must have a known size.

    Equation:

        Flatten → Dense(K):   y_k = b_k + Σ_{i,j,c} W[(i·w + j)·C + c, k] x[i, j, c]
        Conv2D((h, w)):       y_k[p, q] = b_k + Σ_{i,j,c} V[i, j, c, k] x[p + i, q + j, c]
                              with V = reshape(W, (h, w, C, K)); equal at (p, q) = (0, 0)
        output size:          H' = (H_f − h) + 1, with H_f the map's height on the new input
                              (for the 8×8 digits CNN, a 16×16 image gives an 8×8 map after
                              pooling and a 5×5 heat map)

    Args:
        model: the classifier to convolutionalise (not modified).
        name: name of the new model. Defaults to `"<model.name>_fcn"`.

    Returns:
        A functional `keras.Model` with input shape (None, None, C) whose layers keep the names
        of the original ones; the first dense layer after the flatten becomes a Conv2D with an
        (h, w) kernel, later dense layers 1×1 Conv2D layers.

    Raises:
        ValueError: if the model does not have one image input, has no Flatten → Dense head, or
            holds a layer that cannot run on a larger image (the message names it).

    Example:

    >>> import numpy as np
    >>> from dlkit.vision import build_cnn_classifier
    >>> classifier = build_cnn_classifier(filters=4, dense_units=8)
    >>> heat_map_model = convolutionalize(classifier)
    >>> images = np.random.default_rng(0).uniform(size=(2, 8, 8, 1)).astype("float32")
    >>> heat = heat_map_model.predict(images, verbose=0)  # (2, 1, 1, 10)
    >>> print(np.allclose(heat[:, 0, 0], classifier.predict(images, verbose=0), atol=1e-5))
    True
    >>> print(heat_map_model.predict(np.zeros((1, 16, 16, 1), "float32"), verbose=0).shape)
    (1, 5, 5, 10)

    Reference:
        Long, Shelhamer and Darrell, "Fully Convolutional Networks for Semantic Segmentation",
        CVPR 2015 (https://arxiv.org/abs/1411.4038).
    """
    if not isinstance(model, keras.Model):
        raise ValueError(f"Expected `model` to be a keras.Model. Received: model={model!r}")
    try:
        model_inputs = model.inputs
    except (AttributeError, ValueError):
        model_inputs = None
    if not model_inputs or len(model_inputs) != 1 or len(model_inputs[0].shape) != 4:
        shapes = [tuple(x.shape) for x in model_inputs] if model_inputs else None
        raise ValueError(
            "Expected `model` to be a built functional model with one image input "
            f"(B, H, W, C). Received: model {model.name!r} with inputs {shapes}"
        )
    channels = model_inputs[0].shape[-1]
    inputs = keras.Input((None, None, channels), name=model_inputs[0].name)
    # Maps id(original tensor) -> new tensor, and id(new tensor) -> (h, w) for a feature map
    # that a Flatten has "flattened" and that awaits the dense layer turned convolution.
    new_tensors = {id(model_inputs[0]): inputs}
    awaiting_dense = {}
    converted = False
    weight_copies = []

    for layer in model.layers:
        if isinstance(layer, keras.layers.InputLayer):
            continue
        if len(layer._inbound_nodes) != 1:
            raise ValueError(
                "Expected every layer to be called once. "
                f"Received: layer {layer.name!r} called {len(layer._inbound_nodes)} times"
            )
        layer_inputs = layer.input
        flat_inputs = keras.tree.flatten(layer_inputs)
        if any(id(x) not in new_tensors for x in flat_inputs):
            raise ValueError(
                f"Expected a graph of layers from the model's input. Received: layer "
                f"{layer.name!r} reads a tensor that does not come from the input"
            )
        arguments = keras.tree.map_structure(lambda x: new_tensors[id(x)], layer_inputs)
        flat_arguments = keras.tree.flatten(arguments)
        pending = [awaiting_dense.get(id(x)) for x in flat_arguments]

        if isinstance(layer, keras.layers.Flatten):
            _check_channels_last(layer)
            feature_shape = tuple(layer.input.shape[1:])
            if len(feature_shape) != 3 or None in feature_shape or any(pending):
                raise ValueError(
                    "Expected a Flatten of a feature map (B, h, w, C) of known size. "
                    f"Received: layer {layer.name!r} with input shape {tuple(layer.input.shape)}"
                )
            output = keras.layers.Identity(name=layer.name)(arguments)
            awaiting_dense[id(output)] = feature_shape
        elif isinstance(layer, keras.layers.Dense):
            in_shape = tuple(layer.input.shape)
            if pending[0] is not None:
                height, width, depth = pending[0]
                new_layer, weights = _dense_as_convolution(
                    layer, (height, width), (height, width, depth, layer.units)
                )
                converted = True
            elif len(arguments.shape) == 4:
                new_layer, weights = _dense_as_convolution(
                    layer, (1, 1), (1, 1, in_shape[-1], layer.units)
                )
            else:
                raise ValueError(
                    "Expected Dense layers after a Flatten of a feature map. "
                    f"Received: layer {layer.name!r} on input shape {in_shape}"
                )
            output = new_layer(arguments)
            weight_copies.append((new_layer, weights))
        elif (
            _acts_per_feature(layer) and isinstance(layer, _POINTWISE_LAYERS)
            if any(pending)
            else isinstance(layer, _POINTWISE_LAYERS + _SPATIAL_LAYERS)
        ):
            _check_channels_last(layer)
            new_layer = _copy_layer(layer)
            output = new_layer(arguments)
            weight_copies.append((new_layer, layer.get_weights()))
            if any(pending):
                awaiting_dense[id(output)] = pending[0]
        else:
            raise ValueError(
                "Expected convolution, pooling, merge, normalisation, activation and dropout "
                "layers before a Flatten → Dense head, which cannot be convolutionalised "
                f"otherwise. Received: unsupported layer {layer.name!r} "
                f"({layer.__class__.__name__})"
            )
        for original, new in zip(
            keras.tree.flatten(layer.output), keras.tree.flatten(output), strict=True
        ):
            new_tensors[id(original)] = new

    if not converted:
        raise ValueError(
            "Expected a classifier head Flatten → Dense to convolutionalise. "
            f"Received: model {model.name!r} without a Dense layer after a Flatten"
        )
    outputs = keras.tree.map_structure(lambda x: new_tensors[id(x)], model.outputs)
    if any(id(x) in awaiting_dense for x in keras.tree.flatten(outputs)):
        raise ValueError(
            f"Expected a Dense layer after every Flatten. Received: model {model.name!r}"
        )
    outputs = outputs[0] if len(outputs) == 1 else outputs
    fcn = keras.Model(inputs, outputs, name=name or f"{model.name}_fcn")
    for new_layer, weights in weight_copies:
        new_layer.set_weights(weights)
    return fcn


def build_fcn(
    input_shape: tuple = (None, None, 3),
    num_classes: int = 4,
    filters: int = 16,
    depth: int = 2,
    name: str = "fcn",
) -> keras.Model:
    """A small U-Net-like encoder-decoder that gives class scores for every pixel.

    The encoder alternates two 3×3 convolutions with 2×2 max pooling, halving the resolution
    and doubling the channels `depth` times; the decoder climbs back with stride-2 transposed
    convolutions, each followed by a concatenation with the encoder map of the same resolution
    (a skip connection that brings back the fine detail pooling discarded) and two 3×3
    convolutions. A final 1×1 convolution gives one logit per class and pixel [notes §4.12].
    Every layer is a convolution, so the network segments images of any size divisible by
    2^depth.

    Equation:

        e_0 = conv(conv(x)),  e_l = conv(conv(pool(e_{l−1})))      l = 1 … depth
        d_depth = e_depth,    d_l = conv(conv([up(d_{l+1}), e_l]))   l = depth−1 … 0
        logits = conv_1×1(d_0)                                      (B, H, W, num_classes)
        loss = −(1/HW) Σ_{p} log softmax(logits_p)[y_p]             per-pixel cross-entropy

    Args:
        input_shape: (H, W, C) of the images; H and W may be `None` (any size divisible by
            2^depth), or integers divisible by 2^depth. Defaults to (None, None, 3).
        num_classes: classes per pixel, background included. Defaults to 4 (background and
            the three classes of `dlkit.data.shapes`).
        filters: channels of the first level; each lower level has twice as many.
            Defaults to 16.
        depth: number of poolings (and of up-sampling steps). Defaults to 2.
        name: the model's name. Defaults to `"fcn"`.

    Returns:
        An uncompiled functional model from images (B, H, W, C) to logits
        (B, H, W, num_classes).

    Example:

    >>> model = build_fcn((16, 16, 3), num_classes=4, filters=4, depth=1)
    >>> print(tuple(model.output.shape))
    (None, 16, 16, 4)

    Reference:
        Ronneberger, Fischer and Brox, "U-Net: Convolutional Networks for Biomedical Image
        Segmentation", MICCAI 2015 (https://arxiv.org/abs/1505.04597).
    """
    check_int("num_classes", num_classes, 2)  # background and at least one object class
    check_int("filters", filters)
    check_int("depth", depth)
    input_shape = tuple(input_shape)
    stride = 2**depth
    if (
        len(input_shape) != 3
        or input_shape[-1] is None
        or any(size is not None and (size < 1 or size % stride) for size in input_shape[:2])
    ):
        raise ValueError(
            f"Expected `input_shape` (H, W, C) with H and W None or divisible by 2**depth="
            f"{stride}. Received: input_shape={input_shape!r}"
        )

    def double_conv(x, channels, level):
        for index in (1, 2):
            x = keras.layers.Conv2D(
                channels,
                3,
                padding="same",
                activation="relu",
                name=f"{level}_conv{index}",
            )(x)
        return x

    inputs = keras.Input(input_shape, name="image")
    x = double_conv(inputs, filters, "encoder0")
    skips = [x]
    for level in range(1, depth + 1):
        x = keras.layers.MaxPooling2D(2, name=f"encoder{level}_pool")(x)
        x = double_conv(x, filters * 2**level, f"encoder{level}")
        skips.append(x)
    for level in range(depth - 1, -1, -1):
        channels = filters * 2**level
        x = keras.layers.Conv2DTranspose(
            channels, 2, strides=2, padding="same", name=f"decoder{level}_up"
        )(x)
        x = keras.layers.Concatenate(name=f"decoder{level}_skip")([x, skips[level]])
        x = double_conv(x, channels, f"decoder{level}")
    outputs = keras.layers.Conv2D(num_classes, 1, name="logits")(x)
    return keras.Model(inputs, outputs, name=name)


def _num_output_classes(model) -> int:
    shape = tuple(model.output.shape)
    if len(shape) != 4 or shape[-1] is None:
        raise ValueError(
            "Expected `model` to output per-pixel scores (B, H, W, num_classes). "
            f"Received: output shape {shape}"
        )
    return int(shape[-1])


def _check_masks(masks, images, num_classes) -> np.ndarray:
    masks = np.asarray(masks)
    if masks.shape != images.shape[:3] or not np.issubdtype(masks.dtype, np.integer):
        raise ValueError(
            f"Expected `masks` of integer classes with shape {images.shape[:3]} (N, H, W) of "
            f"the images. Received: masks of dtype {masks.dtype} with shape {masks.shape}"
        )
    if masks.min() < 0 or masks.max() >= num_classes:
        raise ValueError(
            f"Expected `masks` in [0, {num_classes}) for a model with num_classes={num_classes} "
            f"outputs. Received: masks from {masks.min()} to {masks.max()}"
        )
    return masks.astype(np.int32)


def train_fcn(
    model: keras.Model,
    images,
    masks,
    epochs: int = 20,
    batch_size: int = 32,
    learning_rate: float = 2e-3,
    validation_data=None,
    callbacks=(),
    verbose: int = 0,
) -> keras.callbacks.History:
    """Compiles `model` with Adam and per-pixel cross-entropy and fits it to image/mask pairs.

    Each pixel is one classification example: the loss is the sparse categorical
    cross-entropy of its logits against its class, averaged over pixels and images
    [notes §4.12]. Masks are checked against the model's number of output classes first.

    Equation:

        L = −(1 / (N H W)) Σ_{n, i, j} log softmax(f(x_n)[i, j])[y_n[i, j]]

    Args:
        model: a segmentation model images (B, H, W, C) → logits (B, H, W, num_classes),
            e.g. `build_fcn`.
        images: float images (N, H, W, C).
        masks: integer classes (N, H, W) in [0, num_classes).
        epochs: passes over the images. Defaults to 20.
        batch_size: images per gradient step. Defaults to 32.
        learning_rate: Adam step size. Defaults to 2e-3.
        validation_data: optional `(images, masks)` evaluated after each epoch.
        callbacks: Keras callbacks for `fit`.
        verbose: Keras' `fit` verbosity. Defaults to 0.

    Returns:
        The `History` of `fit` (`loss`, `accuracy`: the pixel accuracy, and their `val_`
        counterparts with validation data).

    Example:

    >>> from dlkit.data import shapes
    >>> data = shapes(8, image_size=16, seed=0)
    >>> model = build_fcn((16, 16, 3), num_classes=4, filters=4, depth=1)
    >>> history = train_fcn(model, data["images"], data["masks"], epochs=1, batch_size=8)
    >>> print(len(history.history["loss"]))
    1
    """
    check_int("epochs", epochs)
    check_int("batch_size", batch_size)
    check_positive("learning_rate", learning_rate)
    num_classes = _num_output_classes(model)
    images = check_images("images", images, channels=model.input.shape[-1])
    masks = _check_masks(masks, images, num_classes)
    if validation_data is not None:
        validation_images = check_images(
            "validation_data", validation_data[0], channels=images.shape[-1]
        )
        validation_data = (
            validation_images,
            _check_masks(validation_data[1], validation_images, num_classes),
        )
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    return model.fit(
        images,
        masks,
        batch_size=batch_size,
        epochs=epochs,
        validation_data=validation_data,
        callbacks=list(callbacks),
        shuffle=True,
        verbose=verbose,
    )


def predict_masks(model: keras.Model, images, batch_size: int = 64) -> np.ndarray:
    """The most probable class of every pixel, (N, H, W) int32, from a segmentation model.

    Args:
        model: images (B, H, W, C) → scores (B, H, W, num_classes).
        images: float images (N, H, W, C).
        batch_size: images per forward pass. Defaults to 64.

    Returns:
        The argmax over the class axis, an int32 array (N, H, W).

    Example:

    >>> import numpy as np
    >>> model = build_fcn((8, 8, 3), num_classes=3, filters=2, depth=1)
    >>> print(predict_masks(model, np.zeros((2, 8, 8, 3), "float32")).shape)
    (2, 8, 8)
    """
    _num_output_classes(model)
    images = check_images("images", images, channels=model.input.shape[-1])
    scores = model.predict(images, batch_size=batch_size, verbose=0)
    return np.argmax(scores, axis=-1).astype(np.int32)


def _class_maps(y_true, y_pred, num_classes):
    check_int("num_classes", num_classes)
    y_true = np.asarray(keras.ops.convert_to_numpy(y_true))
    y_pred = np.asarray(keras.ops.convert_to_numpy(y_pred))
    if y_pred.ndim == y_true.ndim + 1:  # scores with a class axis
        if y_pred.shape[-1] != num_classes:
            raise ValueError(
                f"Expected `y_pred` scores with num_classes={num_classes} on the last axis. "
                f"Received: y_pred with shape {y_pred.shape}"
            )
        y_pred = np.argmax(y_pred, axis=-1)
    if y_pred.shape != y_true.shape:
        raise ValueError(
            "Expected `y_pred` of the shape of `y_true` (classes) or with an extra class axis "
            f"(scores). Received: y_true.shape={y_true.shape}, y_pred.shape={y_pred.shape}"
        )
    for argument, values in (("y_true", y_true), ("y_pred", y_pred)):
        if values.size == 0 or not np.issubdtype(values.dtype, np.integer):
            raise ValueError(
                f"Expected `{argument}` to hold integer classes. Received: {argument} of dtype "
                f"{values.dtype} with shape {values.shape}"
            )
        if values.min() < 0 or values.max() >= num_classes:
            raise ValueError(
                f"Expected `{argument}` in [0, {num_classes}) for num_classes={num_classes}. "
                f"Received: {argument} from {values.min()} to {values.max()}"
            )
    return y_true.ravel(), y_pred.ravel()


def class_iou(y_true, y_pred, num_classes: int) -> np.ndarray:
    """Intersection over union (eq. 4.4) of every class over all the pixels given.

    For class c, A is the set of pixels labelled c and B the set predicted as c; the IoU is
    |A ∩ B| / |A ∪ B|, counted over every pixel of every image at once. A class absent from
    both the labels and the predictions has no IoU (NaN).

    Equation:

        IoU_c = |{p : y_p = c and ŷ_p = c}| / |{p : y_p = c or ŷ_p = c}|

    Args:
        y_true: integer classes, any shape, e.g. masks (N, H, W).
        y_pred: predicted integer classes of the same shape, or scores with an extra last
            axis of size `num_classes` (their argmax is taken).
        num_classes: number of classes C, background included.

    Returns:
        A float64 array (C,) of IoUs in [0, 1], NaN for classes absent from both.

    Example:

    >>> import numpy as np
    >>> class_iou(np.array([0, 0, 1, 1]), np.array([0, 1, 1, 1]), 3).round(3).tolist()
    [0.5, 0.667, nan]
    """
    y_true, y_pred = _class_maps(y_true, y_pred, num_classes)
    intersection = np.bincount(y_true[y_true == y_pred], minlength=num_classes)
    union = (
        np.bincount(y_true, minlength=num_classes)
        + np.bincount(y_pred, minlength=num_classes)
        - intersection
    )
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(union > 0, intersection / np.maximum(union, 1), np.nan)


def mean_iou(y_true, y_pred, num_classes: int) -> float:
    """Mean intersection over union of the classes present in the labels or predictions.

    The usual segmentation score [notes §4.12, eq. 4.4]: `class_iou` averaged over the classes
    that occur in `y_true` or in `y_pred`, so a class predicted where it is absent counts with
    IoU 0 and a class absent from both is left out.

    Equation:

        mIoU = (1 / |P|) Σ_{c ∈ P} IoU_c,   P = {c : y_p = c or ŷ_p = c for some pixel p}

    Args:
        y_true: integer classes, any shape, e.g. masks (N, H, W).
        y_pred: predicted integer classes of the same shape, or scores with an extra last
            axis of size `num_classes`.
        num_classes: number of classes C, background included.

    Returns:
        The mean IoU, a float in [0, 1]: 1 for a perfect prediction, 0 when no class
        overlaps its truth.

    Raises:
        ValueError: if the shapes disagree, or a class is outside [0, num_classes), or the
            scores' class axis is not `num_classes` long.

    Example:

    >>> import numpy as np
    >>> truth = np.array([[0, 0], [1, 1]])
    >>> print(mean_iou(truth, truth, 2), mean_iou(truth, 1 - truth, 2))
    1.0 0.0
    >>> print(round(mean_iou(truth, np.array([[0, 1], [1, 1]]), 2), 4))  # (1/2 + 2/3) / 2
    0.5833

    Reference:
        Long, Shelhamer and Darrell, "Fully Convolutional Networks for Semantic Segmentation",
        CVPR 2015 (https://arxiv.org/abs/1411.4038), §5 (mean IU).
    """
    return float(np.nanmean(class_iou(y_true, y_pred, num_classes)))
