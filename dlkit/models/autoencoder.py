"""The autoencoder of [notes ch. 5]: a network trained to reconstruct its own input."""

from __future__ import annotations

import copy

import keras
from keras import ops

from dlkit.training.fused import FusedFit
from dlkit.validation import check_int

__all__ = ["Autoencoder", "build_conv_autoencoder", "build_dense_autoencoder"]


@keras.saving.register_keras_serializable(package="dlkit")
class Autoencoder(FusedFit, keras.Model):
    """Reconstructs its input through a lower-dimensional code: decoder(encoder(x)).

    The encoder compresses an input into a code of `latent_dim` numbers and the decoder rebuilds
    the input from it; training minimises the squared reconstruction error on unlabelled data
    (self-supervised) [notes ch. 5]. Compression works because the data are correlated: it is
    data-specific and lossy. With a linear encoder and decoder (no activations, no biases, centred
    data) the optimal code spans the same subspace as the top `latent_dim` principal components
    [notes §5.1]; `build_dense_autoencoder(..., linear=True)` builds that network.

    Training contract: `compute_loss` compares the reconstruction with the input `x` itself, so
    `model.compile(optimizer)` (no `loss`) and `model.fit(x)` suffice. A target given to `fit`
    (`fit(x, x_clean)`, a denoising autoencoder) replaces `x` as what must be reconstructed.

    Equation:

        code           = encoder(x)                                          [notes ch. 5]
        reconstruction = decoder(code)
        loss           = mean over batch and features of (x − reconstruction)²

    Args:
        encoder: a `keras.Model` (or layer) mapping inputs (B, ...) to codes (B, latent_dim).
        decoder: a `keras.Model` (or layer) mapping codes back to the input shape (B, ...).
        **kwargs: other keyword arguments of `keras.Model` (`name`, ...).

    Call arguments:
        inputs: a batch of inputs, shape (B, ...) (e.g. (B, 8, 8, 1) digits).
        training: whether the call is a training call.

    Returns:
        The reconstruction, the shape of `inputs`.

    Example:

        >>> import numpy as np
        >>> encoder, decoder = build_dense_autoencoder((8, 8, 1), latent_dim=2)
        >>> model = Autoencoder(encoder, decoder)
        >>> print(tuple(model(np.zeros((3, 8, 8, 1), "float32")).shape))
        (3, 8, 8, 1)

    Reference:
        Hinton and Salakhutdinov, "Reducing the Dimensionality of Data with Neural Networks",
        Science 2006; Baldi and Hornik, "Neural networks and principal component analysis",
        Neural Networks 1989 (the linear case).
    """

    def __init__(self, encoder, decoder, **kwargs):
        super().__init__(**kwargs)
        for name, network in (("encoder", encoder), ("decoder", decoder)):
            if not isinstance(network, keras.Layer):
                raise ValueError(
                    f"Expected `{name}` to be a keras.Model or keras.Layer. "
                    f"Received: {name}={network!r}"
                )
        self.encoder = encoder
        self.decoder = decoder

    def build(self, input_shape):
        input_shape = tuple(input_shape)
        code = self.encoder.compute_output_spec(keras.KerasTensor(input_shape))
        reconstruction = self.decoder.compute_output_spec(code)
        if tuple(reconstruction.shape[1:]) != input_shape[1:]:
            raise ValueError(
                f"Expected `decoder` to output the input shape {input_shape[1:]}. "
                f"Received: decoder output shape={tuple(reconstruction.shape[1:])}"
            )
        self.built = True

    def call(self, inputs, training=None):
        code = self.encoder(inputs, training=training)  # (B, latent_dim)
        return self.decoder(code, training=training)  # (B, ...) like inputs

    def encode(self, inputs):
        """Returns the codes of `inputs` in inference mode, shape (B, latent_dim)."""
        return self.encoder(ops.convert_to_tensor(inputs), training=False)

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        target = x if y is None else y
        squared_error = ops.square(ops.cast(target, y_pred.dtype) - y_pred)
        loss = ops.mean(squared_error)
        if self.losses:
            loss = loss + ops.sum(self.losses)
        return loss

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "encoder": keras.saving.serialize_keras_object(self.encoder),
                "decoder": keras.saving.serialize_keras_object(self.decoder),
            }
        )
        return config

    @classmethod
    def from_config(cls, config):
        # Deep copy: deserialising a functional network consumes parts of its config.
        config = copy.deepcopy(config)
        config["encoder"] = keras.saving.deserialize_keras_object(config["encoder"])
        config["decoder"] = keras.saving.deserialize_keras_object(config["decoder"])
        return cls(**config)


def build_dense_autoencoder(input_shape, latent_dim, hidden_units=(64,), linear=False):
    """Builds a fully connected encoder and decoder for inputs of `input_shape`.

    The encoder flattens, applies `hidden_units` ReLU layers and a linear code layer; the
    decoder mirrors it and ends with a sigmoid (inputs in [0, 1]). With `linear=True` both are
    single bias-free linear maps (no hidden layers, no activations): the PCA network of
    [notes §5.1], to be trained on centred data.

    Args:
        input_shape: shape of one input, e.g. `(8, 8, 1)`.
        latent_dim: size of the code (an integer >= 1).
        hidden_units: widths of the hidden layers of the encoder (the decoder reverses them);
            ignored when `linear=True`.
        linear: whether to build the linear, bias-free PCA autoencoder.

    Returns:
        `(encoder, decoder)`: functional `keras.Model`s (B, *input_shape) → (B, latent_dim) and
        back.

    Example:

        >>> encoder, decoder = build_dense_autoencoder((8, 8, 1), 3, linear=True)
        >>> print(encoder.output_shape, decoder.output_shape)
        (None, 3) (None, 8, 8, 1)
    """
    check_int("latent_dim", latent_dim)
    input_shape = tuple(input_shape)
    if not input_shape or any(not isinstance(size, int) or size < 1 for size in input_shape):
        raise ValueError(
            "Expected `input_shape` to be a tuple of positive integers. "
            f"Received: input_shape={input_shape!r}"
        )
    hidden_units = () if linear else tuple(hidden_units)
    if any(not isinstance(units, int) or units < 1 for units in hidden_units):
        raise ValueError(
            "Expected `hidden_units` to be positive integers. "
            f"Received: hidden_units={hidden_units!r}"
        )
    num_features = 1
    for size in input_shape:
        num_features *= size
    use_bias = not linear

    inputs = keras.Input(input_shape)
    hidden = keras.layers.Flatten()(inputs)  # (B, num_features)
    for units in hidden_units:
        hidden = keras.layers.Dense(units, activation="relu")(hidden)
    code = keras.layers.Dense(latent_dim, use_bias=use_bias)(hidden)  # (B, latent_dim)
    encoder = keras.Model(inputs, code, name="encoder")

    code_inputs = keras.Input((latent_dim,))
    hidden = code_inputs
    for units in reversed(hidden_units):
        hidden = keras.layers.Dense(units, activation="relu")(hidden)
    activation = None if linear else "sigmoid"
    flat = keras.layers.Dense(num_features, activation=activation, use_bias=use_bias)(hidden)
    outputs = keras.layers.Reshape(input_shape)(flat)  # (B, *input_shape)
    decoder = keras.Model(code_inputs, outputs, name="decoder")
    return encoder, decoder


def build_conv_autoencoder(input_shape=(8, 8, 1), latent_dim=8):
    """Builds a small convolutional encoder and decoder for images such as 8x8x1 digits.

    Two stride-2 convolutions halve the image twice, a dense layer makes the code; the decoder
    mirrors this with transposed convolutions and ends with a sigmoid (images in [0, 1]).

    Args:
        input_shape: `(height, width, channels)`; height and width divisible by 4.
        latent_dim: size of the code (an integer >= 1).

    Returns:
        `(encoder, decoder)`: functional `keras.Model`s.

    Example:

        >>> encoder, decoder = build_conv_autoencoder((8, 8, 1), latent_dim=4)
        >>> print(encoder.output_shape, decoder.output_shape)
        (None, 4) (None, 8, 8, 1)
    """
    check_int("latent_dim", latent_dim)
    input_shape = tuple(input_shape)
    if len(input_shape) != 3 or input_shape[0] % 4 or input_shape[1] % 4:
        raise ValueError(
            "Expected `input_shape` (height, width, channels) with height and width divisible "
            f"by 4. Received: input_shape={input_shape!r}"
        )
    height, width, channels = input_shape

    inputs = keras.Input(input_shape)
    hidden = keras.layers.Conv2D(16, 3, strides=2, padding="same", activation="relu")(inputs)
    hidden = keras.layers.Conv2D(32, 3, strides=2, padding="same", activation="relu")(hidden)
    hidden = keras.layers.Flatten()(hidden)  # (B, H/4 · W/4 · 32)
    code = keras.layers.Dense(latent_dim)(hidden)  # (B, latent_dim)
    encoder = keras.Model(inputs, code, name="encoder")

    code_inputs = keras.Input((latent_dim,))
    hidden = keras.layers.Dense((height // 4) * (width // 4) * 32, activation="relu")(code_inputs)
    hidden = keras.layers.Reshape((height // 4, width // 4, 32))(hidden)  # (B, H/4, W/4, 32)
    hidden = keras.layers.Conv2DTranspose(16, 3, strides=2, padding="same", activation="relu")(
        hidden
    )  # (B, H/2, W/2, 16)
    outputs = keras.layers.Conv2DTranspose(
        channels, 3, strides=2, padding="same", activation="sigmoid"
    )(hidden)  # (B, H, W, C)
    decoder = keras.Model(code_inputs, outputs, name="decoder")
    return encoder, decoder
