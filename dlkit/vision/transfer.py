"""Transfer learning with CNNs [notes §4.7]: reuse, freeze and fine-tune the early layers.

The first convolutional layers of a trained network extract low-level features (edges,
strokes, blobs) that serve many image tasks, while the last layers are specific to the classes
it was trained on. To solve a second task with few labelled images, the notes' recipe is:
train on a large first data set, freeze the early layers, then train only the last layers on
the second, small data set. A second, optional phase ("fine-tuning") unfreezes the reused
layers and trains everything with a small learning rate.

`transfer_model` builds the network of the second task (the base's layers up to a chosen one,
shared, followed by a new head), `freeze_up_to` and `unfreeze_from` switch layers between the
two phases. Keras reads the `trainable` flags when a model is compiled: compile (again) after
changing them.
"""

from __future__ import annotations

from collections.abc import Sequence

import keras

from dlkit.validation import check_fraction, check_int, check_shape
from dlkit.vision._checks import find_layer

__all__ = ["freeze_up_to", "transfer_model", "unfreeze_from"]


def _layer_index(model: keras.Model, layer_name: str) -> int:
    layer = find_layer(model, layer_name)
    return next(index for index, candidate in enumerate(model.layers) if candidate is layer)


def _weighted_names(layers) -> list[str]:
    return [layer.name for layer in layers if not isinstance(layer, keras.layers.InputLayer)]


def freeze_up_to(model: keras.Model, layer_name: str, inclusive: bool = True) -> list[str]:
    """Freezes the layers of `model` up to `layer_name` and unfreezes the layers after it.

    The first step of transfer learning [notes §4.7]: the early layers keep the features they
    learned on the first data set, only the later ones adapt to the second. Layers are taken in
    the order of `model.layers` (the order in which a functional model computes them). Shared
    layers are shared objects: freezing them in a model built by `transfer_model` freezes them
    in its base too.

    Equation:

        trainable(layer_i) = i > k          (inclusive=True; i >= k when inclusive=False)
        where k is the index of `layer_name` in model.layers

    Args:
        model: a Keras model (functional or sequential).
        layer_name: the name of the last layer to freeze (or, with `inclusive=False`, of the
            first layer that stays trainable).
        inclusive: whether `layer_name` itself is frozen. Defaults to `True`.

    Returns:
        The names of the frozen layers, in order (input layers left out).

    Raises:
        ValueError: if `model` has no layer called `layer_name`.

    Example:

        >>> from dlkit.vision import build_cnn_classifier
        >>> model = build_cnn_classifier()
        >>> freeze_up_to(model, "conv2")
        ['conv1', 'conv2']
        >>> [layer.trainable for layer in model.layers[1:]]
        [False, False, True, True, True, True]

    Reference:
        Yosinski et al., "How transferable are features in deep neural networks?", NeurIPS
        2014 (https://arxiv.org/abs/1411.1792).
    """
    stop = _layer_index(model, layer_name) + (1 if inclusive else 0)
    for index, layer in enumerate(model.layers):
        layer.trainable = index >= stop
    return _weighted_names(model.layers[:stop])


def unfreeze_from(model: keras.Model, layer_name: str) -> list[str]:
    """Makes `layer_name` and every later layer of `model` trainable: the fine-tuning phase.

    After the new head has been trained on top of frozen layers, the second phase of transfer
    learning unfreezes (part of) the reused layers and trains them together with the head, with
    a small learning rate so that the transferred features move only a little [notes §4.7].
    Layers before `layer_name` keep their flags. Compile the model again afterwards.

    Equation:

        trainable(layer_i) = True for every i >= k, the index of `layer_name` in model.layers

    Args:
        model: a Keras model (functional or sequential).
        layer_name: the first layer to unfreeze; the first reused layer fine-tunes everything.

    Returns:
        The names of the layers made trainable, in order (input layers left out).

    Raises:
        ValueError: if `model` has no layer called `layer_name`.

    Example:

        >>> from dlkit.vision import build_cnn_classifier
        >>> model = build_cnn_classifier()
        >>> _ = freeze_up_to(model, "dense")
        >>> unfreeze_from(model, "conv2")
        ['conv2', 'pool', 'flatten', 'dense', 'logits']
        >>> model.get_layer("conv1").trainable
        False

    Reference:
        Yosinski et al., "How transferable are features in deep neural networks?", NeurIPS
        2014 (https://arxiv.org/abs/1411.1792).
    """
    start = _layer_index(model, layer_name)
    for layer in model.layers[start:]:
        layer.trainable = True
    return _weighted_names(model.layers[start:])


def transfer_model(
    base: keras.Model,
    layer_name: str,
    num_classes: int,
    head_units: Sequence[int] = (64,),
    dropout: float = 0.0,
    freeze: bool = True,
    name: str = "transfer",
) -> keras.Model:
    """A classifier for a new task: the base's layers up to `layer_name`, then a new head.

    The new model is built on the base's own input and layers, so it shares their weights
    (changing the base changes the new model, and training the new model with the shared layers
    unfrozen changes the base). With `freeze=True` the shared layers are frozen
    (`freeze_up_to(model, layer_name)`), which is the first phase of transfer learning
    [notes §4.7]: only the new head learns from the small second data set. A feature map of
    rank 4 is flattened before the head.

    Equation:

        features = base_{≤ layer_name}(x)                   shared, frozen
        h_0      = flatten(features)
        h_i      = relu(W_i h_{i-1} + b_i)                  i = 1..len(head_units)
        logits   = W_out h_n + b_out                        (B, num_classes)

    Args:
        base: a trained functional (or built sequential) Keras model.
        layer_name: the last layer of `base` to reuse.
        num_classes: the classes of the new task.
        head_units: units of the new hidden dense layers (ReLU), in order; `()` gives a linear
            read-out of the reused features. Defaults to `(64,)`.
        dropout: dropout rate before the new read-out layer, in [0, 1). Defaults to 0.
        freeze: whether to freeze the reused layers. Defaults to `True`.
        name: the new model's name. Defaults to `"transfer"`.

    Returns:
        An uncompiled functional model from the base's input to logits (B, num_classes); its
        new layers are named `head_flatten`, `head_dense1`, ..., `head_dropout`, `head_logits`.

    Raises:
        ValueError: if `base` has no layer called `layer_name`, or for a bad `num_classes`,
            `head_units` or `dropout`.

    Example:

        >>> from dlkit.vision import build_cnn_classifier
        >>> base = build_cnn_classifier()
        >>> model = transfer_model(base, "pool", num_classes=3, head_units=(16,))
        >>> [layer.name for layer in model.layers if layer.trainable]
        ['head_flatten', 'head_dense1', 'head_logits']
        >>> tuple(model.output.shape)
        (None, 3)

    Reference:
        Yosinski et al., "How transferable are features in deep neural networks?", NeurIPS
        2014 (https://arxiv.org/abs/1411.1792).
    """
    layer = find_layer(base, layer_name)
    check_int("num_classes", num_classes)
    head_units = check_shape("head_units", head_units, minimum=1)
    check_fraction("dropout", dropout)
    if isinstance(layer, keras.layers.InputLayer):
        raise ValueError(
            "Expected `layer_name` to name a layer after the input. "
            f"Received: layer_name={layer_name!r}"
        )
    try:
        inputs, features = base.inputs, layer.output
    except (AttributeError, ValueError) as error:
        raise ValueError(
            f"Expected `base` to be a functional or built sequential model. Received: base={base!r}"
        ) from error
    x = features
    if len(x.shape) > 2:
        x = keras.layers.Flatten(name="head_flatten")(x)
    for index, units in enumerate(head_units, start=1):
        x = keras.layers.Dense(units, activation="relu", name=f"head_dense{index}")(x)
    if dropout > 0:
        x = keras.layers.Dropout(dropout, name="head_dropout")(x)
    outputs = keras.layers.Dense(num_classes, name="head_logits")(x)
    model = keras.Model(inputs, outputs, name=name)
    if freeze:
        freeze_up_to(model, layer_name)
    return model
