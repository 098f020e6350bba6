"""Variational autoencoders [notes §5.2] and their conditional version [notes §6.3]."""

from __future__ import annotations

import math

import keras
import numpy as np
from keras import ops

from dlkit.layers import GaussianSampling, LabelChannels
from dlkit.losses import kl_divergence_to_standard_normal
from dlkit.models._networks import (
    check_image_shape,
    check_layers,
    networks_config,
    networks_from_config,
)
from dlkit.training.fused import FusedFit
from dlkit.validation import check_choice, check_int, check_non_negative

__all__ = [
    "VAE",
    "ConditionalVAE",
    "build_digits_cvae_decoder",
    "build_digits_cvae_encoder",
    "build_digits_vae_decoder",
    "build_digits_vae_encoder",
]

_RECONSTRUCTIONS = ("bernoulli", "gaussian")
# One hidden layer of 128 units: on 8x8 digits, small convolutional networks trained for a few
# epochs let the code collapse onto the prior (KL → 0); this dense pair does not.
_HIDDEN_UNITS = 128


class BaseVAE(FusedFit, keras.Model):
    """What `VAE` and `ConditionalVAE` share: the networks, the sampling, the ELBO, the config.

    It checks and holds the encoder and decoder and the arguments both models take, creates
    the sampling layer (the code's noise), the prior's noise stream for `sample` and the loss
    trackers, computes the negative ELBO of a batch and writes the networks into the config.
    Its constructor arguments are those of `VAE`, documented there.
    """

    # Constructor arguments other than the networks, stored as same-named attributes.
    _CONFIG_ARGUMENTS = ("beta", "seed", "reconstruction")
    _NETWORKS = ("encoder", "decoder")

    def __init__(self, encoder, decoder, beta=1.0, seed=None, reconstruction="bernoulli", **kwargs):
        super().__init__(**kwargs)
        beta = check_non_negative("beta", beta)
        reconstruction = check_choice("reconstruction", reconstruction, _RECONSTRUCTIONS)
        check_layers(encoder=encoder, decoder=decoder)
        self.encoder = encoder
        self.decoder = decoder
        self.beta = beta
        self.seed = seed
        self.reconstruction = reconstruction
        # μ at inference makes predictions deterministic; the loss always samples.
        self.sampling = GaussianSampling(sample_at_inference=False, seed=seed)
        self.prior_seed_generator = keras.random.SeedGenerator(None if seed is None else seed + 1)
        self.reconstruction_loss_tracker = keras.metrics.Mean(name="reconstruction_loss")
        self.kl_loss_tracker = keras.metrics.Mean(name="kl_loss")
        self.total_loss_tracker = keras.metrics.Mean(name="loss")

    @property
    def metrics(self):
        return [self.total_loss_tracker, self.reconstruction_loss_tracker, self.kl_loss_tracker]

    @property
    def latent_dim(self):
        """The size of the code, read from the decoder's input."""
        return int(self.decoder.inputs[0].shape[-1])

    def _elbo_loss(self, x, reconstruction, mean, log_variance):
        """The negative ELBO (reconstruction + beta·KL, per image, batch mean); updates the
        trackers."""
        x = ops.cast(x, reconstruction.dtype)
        if self.reconstruction == "bernoulli":
            per_pixel = ops.binary_crossentropy(x, reconstruction)
        else:
            per_pixel = 0.5 * ops.square(x - reconstruction)
        num_samples = ops.shape(x)[0]
        per_sample = ops.sum(ops.reshape(per_pixel, (num_samples, -1)), axis=-1)  # (B,)
        reconstruction_loss = ops.mean(per_sample)
        kl_loss = kl_divergence_to_standard_normal(mean, log_variance)
        loss = reconstruction_loss + self.beta * kl_loss
        if self.losses:
            loss = loss + ops.sum(self.losses)
        self.reconstruction_loss_tracker.update_state(reconstruction_loss)
        self.kl_loss_tracker.update_state(kl_loss)
        self.total_loss_tracker.update_state(loss)
        return loss

    def get_config(self):
        return {**super().get_config(), **networks_config(self)}

    @classmethod
    def from_config(cls, config):
        return cls(**networks_from_config(cls, config))

    def fit(self, x=None, *args, **kwargs):
        """``keras.Model.fit`` (with ``FusedFit``'s arguments); in-memory images outside [0, 1]
        are refused for the Bernoulli likelihood, whose loss is undefined there."""
        images = x[0] if isinstance(x, (tuple, list)) and x else x
        if self.reconstruction == "bernoulli" and isinstance(images, np.ndarray) and images.size:
            low, high = float(np.min(images)), float(np.max(images))
            if low < 0.0 or high > 1.0:
                raise ValueError(
                    "Expected images in [0, 1] for reconstruction='bernoulli' (pixel "
                    "probabilities): scale them first (x / 255), or use "
                    "reconstruction='gaussian'. Received: x with values in "
                    f"[{low:g}, {high:g}]"
                )
        return super().fit(x, *args, **kwargs)


@keras.saving.register_keras_serializable(package="dlkit")
class VAE(BaseVAE):
    """A variational autoencoder: a Gaussian code per input, pulled towards N(0, I).

    The encoder predicts for each input the mean μ and the log variance log σ² of a diagonal
    Gaussian Q(z|x) [notes §5.2]; a code z is drawn from it with the reparameterisation trick
    (`dlkit.layers.GaussianSampling`) and the decoder reconstructs the input from z. The loss
    adds to the reconstruction error the KL divergence of Q(z|x) from N(0, I), which pushes μ to
    0 and σ to 1 so that codes fill the latent space like a standard normal; decoding z ~ N(0, I)
    then generates new data [notes eq. 5.4]. The loss is the negative evidence lower bound
    (ELBO) when `beta = 1`; `beta` weighs the KL term (β-VAE).

    Training contract: `compile(optimizer)` without `loss`, then `fit(x)`; a target given to
    `fit` is ignored, so a dataset of `(images, labels)` batches also works. `compute_loss` runs
    its own encode → sample → decode pass (so that it sees μ and log σ²) in training and in
    evaluation alike, so `evaluate` reports a one-sample ELBO estimate. Logs show `loss`,
    `reconstruction_loss` and `kl_loss` (batch means). `reconstruction="bernoulli"` expects
    decoder outputs and data in [0, 1]; `"gaussian"` is the squared error of a unit-variance
    Gaussian, constants dropped.

    Calling the model (and `reconstruct`) decodes the mean code in inference mode, so
    predictions are deterministic; with `training=True` it decodes a sample.

    Equation:

        mean, log_variance = encoder(x)                                       [notes §5.2]
        z = mean + exp(½ · log_variance) ⊙ ε,  ε ~ N(0, I)
        reconstruction = decoder(z)
        reconstruction_loss = −Σ_pixels [x log r + (1 − x) log(1 − r)]   (bernoulli)
                            = ½ Σ_pixels (x − r)²                          (gaussian)
        kl_loss = ½ Σ_j (exp(log_variance_j) + mean_j² − 1 − log_variance_j)   [notes eq. 5.4]
        loss = reconstruction_loss + beta · kl_loss          (batch means; −ELBO when beta = 1)

    Args:
        encoder: a `keras.Model` mapping inputs (B, ...) to `[mean, log_variance]`, each
            (B, latent_dim).
        decoder: a `keras.Model` mapping codes (B, latent_dim) to the input shape (B, ...).
        beta: weight of the KL term, >= 0. Defaults to 1.0.
        seed: integer seed of the sampling noise and of `sample`. Defaults to `None`.
        reconstruction: `"bernoulli"` (binary cross-entropy) or `"gaussian"` (squared error).
        **kwargs: other keyword arguments of `keras.Model` (`name`, ...).

    Call arguments:
        inputs: images, shape (B, ...) (e.g. (B, 8, 8, 1)).
        training: whether to sample z (training) or use the mean (inference).

    Returns:
        The reconstruction, the shape of `inputs`.

    Example:

        >>> import numpy as np
        >>> vae = VAE(build_digits_vae_encoder(2), build_digits_vae_decoder(2), seed=0)
        >>> print(tuple(vae(np.zeros((3, 8, 8, 1), "float32")).shape))
        (3, 8, 8, 1)
        >>> print(tuple(vae.sample(5).shape))
        (5, 8, 8, 1)

    Reference:
        Kingma and Welling, "Auto-Encoding Variational Bayes", ICLR 2014
        (https://arxiv.org/abs/1312.6114); Higgins et al., "β-VAE", ICLR 2017.
    """

    def build(self, input_shape):
        _check_networks(self.encoder, self.decoder, keras.KerasTensor(tuple(input_shape)), ())
        self.built = True

    def call(self, inputs, training=None):
        mean, log_variance = self.encoder(inputs, training=training)  # 2 × (B, latent_dim)
        z = self.sampling(mean, log_variance, training=training)  # (B, latent_dim)
        return self.decoder(z, training=training)  # (B, ...) like inputs

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        mean, log_variance = self.encoder(x, training=training)  # 2 × (B, latent_dim)
        z = self.sampling(mean, log_variance, training=True)  # (B, latent_dim)
        reconstruction = self.decoder(z, training=training)  # (B, ...) like x
        return self._elbo_loss(x, reconstruction, mean, log_variance)

    def encode(self, inputs):
        """Returns `(mean, log_variance)` of Q(z|x) in inference mode, each (B, latent_dim)."""
        return self.encoder(ops.convert_to_tensor(inputs), training=False)

    def reconstruct(self, inputs):
        """Decodes the mean code of `inputs` (deterministic), the shape of `inputs`."""
        return self(ops.convert_to_tensor(inputs), training=False)

    def sample(self, num_samples):
        """Decodes `num_samples` codes z ~ N(0, I) drawn with the model's seed generator."""
        check_int("num_samples", num_samples)
        z = keras.random.normal((num_samples, self.latent_dim), seed=self.prior_seed_generator)
        return self.decoder(z, training=False)  # (num_samples, ...)


@keras.saving.register_keras_serializable(package="dlkit")
class ConditionalVAE(BaseVAE):
    """A VAE whose encoder Q(z|x, c) and decoder P(x|z, c) both see the class label c.

    Conditioning both networks on the label [notes §6.3] frees the code from carrying the class:
    `sample(labels)` then generates digits of the requested classes. The model turns labels into
    one-hot vectors and passes them as a second input to each network; the builders concatenate
    them to dense inputs or repeat them as image channels (`dlkit.layers.LabelChannels`,
    [notes §6.3.1]).

    Training contract: inputs are the pair `(images, labels)`, so train with
    `fit((images, labels))` (or a dataset of `((images, labels),)` elements); labels are class
    indices (B,) or one-hot (B, num_classes). Loss and logs are those of `VAE`.

    Equation:

        one_hot = one_hot(labels, num_classes)                                [notes §6.3]
        mean, log_variance = encoder([x, one_hot]);   reconstruction = decoder([z, one_hot])
        loss = reconstruction_loss + beta · kl_loss                           [notes §5.2]

    Args:
        encoder: a `keras.Model` taking `[images, one_hot]` and returning `[mean, log_variance]`.
        decoder: a `keras.Model` taking `[z, one_hot]` and returning images.
        num_classes: the number of classes K (an integer >= 1).
        beta: weight of the KL term, >= 0. Defaults to 1.0.
        seed: integer seed of the sampling noise and of `sample`. Defaults to `None`.
        reconstruction: `"bernoulli"` or `"gaussian"`, as in `VAE`.
        **kwargs: other keyword arguments of `keras.Model`.

    Call arguments:
        inputs: the pair `(images, labels)`: images (B, ...), labels (B,) or (B, num_classes).
        training: whether to sample z (training) or use the mean (inference).

    Returns:
        The reconstruction, the shape of `images`.

    Example:

        >>> import numpy as np
        >>> cvae = ConditionalVAE(
        ...     build_digits_cvae_encoder(2), build_digits_cvae_decoder(2), num_classes=10, seed=0)
        >>> print(tuple(cvae.sample(np.array([0, 1, 2])).shape))
        (3, 8, 8, 1)

    Reference:
        Sohn, Lee and Yan, "Learning Structured Output Representation using Deep Conditional
        Generative Models", NeurIPS 2015.
    """

    _CONFIG_ARGUMENTS = ("num_classes", *BaseVAE._CONFIG_ARGUMENTS)

    def __init__(
        self,
        encoder,
        decoder,
        num_classes,
        beta=1.0,
        seed=None,
        reconstruction="bernoulli",
        **kwargs,
    ):
        super().__init__(encoder, decoder, beta, seed, reconstruction, **kwargs)
        self.num_classes = check_int("num_classes", num_classes)

    def build(self, input_shape):
        if not isinstance(input_shape, (tuple, list)) or len(input_shape) != 2:
            raise ValueError(
                "Expected `inputs` to be the pair (images, labels). "
                f"Received: input_shape={input_shape!r}"
            )
        images_shape, labels_shape = tuple(input_shape[0]), tuple(input_shape[1])
        self._check_labels_shape(labels_shape)
        one_hot = keras.KerasTensor((images_shape[0], self.num_classes))
        _check_networks(self.encoder, self.decoder, keras.KerasTensor(images_shape), (one_hot,))
        self.built = True

    def _check_labels_shape(self, labels_shape):
        labels_shape = tuple(labels_shape)
        is_indices = len(labels_shape) == 1 or (len(labels_shape) == 2 and labels_shape[1] == 1)
        is_one_hot = len(labels_shape) == 2 and labels_shape[1] == self.num_classes
        if not (is_indices or is_one_hot):
            raise ValueError(
                f"Expected `labels` of shape (B,) or (B, {self.num_classes}) (num_classes). "
                f"Received: labels.shape={labels_shape}"
            )

    def _one_hot(self, labels, dtype="float32"):
        labels = ops.convert_to_tensor(labels)
        self._check_labels_shape(labels.shape)
        if len(labels.shape) == 2 and labels.shape[1] == self.num_classes > 1:
            return ops.cast(labels, dtype)  # (B, K)
        indices = ops.cast(ops.reshape(labels, (-1,)), "int32")  # (B,)
        return ops.one_hot(indices, self.num_classes, dtype=dtype)  # (B, K)

    def call(self, inputs, training=None):
        images, labels = inputs
        one_hot = self._one_hot(labels)  # (B, K)
        mean, log_variance = self.encoder([images, one_hot], training=training)
        z = self.sampling(mean, log_variance, training=training)  # (B, latent_dim)
        return self.decoder([z, one_hot], training=training)  # (B, ...) like images

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        images, labels = x
        one_hot = self._one_hot(labels)  # (B, K)
        mean, log_variance = self.encoder([images, one_hot], training=training)
        z = self.sampling(mean, log_variance, training=True)  # (B, latent_dim)
        reconstruction = self.decoder([z, one_hot], training=training)
        return self._elbo_loss(images, reconstruction, mean, log_variance)

    def encode(self, inputs):
        """Returns `(mean, log_variance)` of Q(z|x, c) for `inputs = (images, labels)`."""
        images, labels = inputs
        return self.encoder([ops.convert_to_tensor(images), self._one_hot(labels)], training=False)

    def reconstruct(self, inputs):
        """Decodes the mean code of `inputs = (images, labels)` (deterministic)."""
        images, labels = inputs
        return self((ops.convert_to_tensor(images), ops.convert_to_tensor(labels)), training=False)

    def sample(self, labels):
        """Decodes one code z ~ N(0, I) per requested label: labels (N,) or (N, num_classes)."""
        one_hot = self._one_hot(labels)  # (N, K)
        num_samples = int(one_hot.shape[0])
        z = keras.random.normal((num_samples, self.latent_dim), seed=self.prior_seed_generator)
        return self.decoder([z, one_hot], training=False)  # (N, ...)


def _check_networks(encoder, decoder, images, conditions):
    """Checks that encoder outputs (mean, log_variance) and decoder returns the image shape."""
    encoder_inputs = [images, *conditions] if conditions else images
    outputs = encoder.compute_output_spec(encoder_inputs)
    if not isinstance(outputs, (tuple, list)) or len(outputs) != 2:
        raise ValueError(
            "Expected `encoder` to return the pair [mean, log_variance]. "
            f"Received: encoder outputs={outputs!r}"
        )
    mean, log_variance = outputs
    if tuple(mean.shape) != tuple(log_variance.shape) or len(mean.shape) != 2:
        raise ValueError(
            "Expected `encoder` outputs mean and log_variance of one shape (B, latent_dim). "
            f"Received: shapes {tuple(mean.shape)} and {tuple(log_variance.shape)}"
        )
    decoder_inputs = [mean, *conditions] if conditions else mean
    reconstruction = decoder.compute_output_spec(decoder_inputs)
    if tuple(reconstruction.shape[1:]) != tuple(images.shape[1:]):
        raise ValueError(
            f"Expected `decoder` to output the input shape {tuple(images.shape[1:])}. "
            f"Received: decoder output shape={tuple(reconstruction.shape[1:])}"
        )


def _encoder_head(hidden, latent_dim):
    hidden = keras.layers.Dense(_HIDDEN_UNITS, activation="relu")(hidden)
    mean = keras.layers.Dense(latent_dim, name="mean")(hidden)  # (B, latent_dim)
    log_variance = keras.layers.Dense(latent_dim, name="log_variance")(hidden)
    return [mean, log_variance]


def _decoder_body(code, image_shape):
    hidden = keras.layers.Dense(_HIDDEN_UNITS, activation="relu")(code)
    # Sigmoid: pixel intensities in [0, 1], the means of the Bernoulli likelihood.
    pixels = keras.layers.Dense(math.prod(image_shape), activation="sigmoid")(hidden)  # (B, HWC)
    return keras.layers.Reshape(image_shape)(pixels)  # (B, H, W, C)


def build_digits_vae_encoder(latent_dim, image_shape=(8, 8, 1)):
    """Builds a small dense VAE encoder for 8x8x1 digits: x → [mean, log_variance].

    `image_shape` sizes it for other images, e.g. (28, 28, 1) for MNIST.

    Example:

        >>> print([tuple(shape) for shape in build_digits_vae_encoder(2).output_shape])
        [(None, 2), (None, 2)]
    """
    check_int("latent_dim", latent_dim)
    inputs = keras.Input(check_image_shape(image_shape, multiple=1))
    flat = keras.layers.Flatten()(inputs)  # (B, H·W·C)
    return keras.Model(inputs, _encoder_head(flat, latent_dim), name="encoder")


def build_digits_vae_decoder(latent_dim, image_shape=(8, 8, 1)):
    """Builds a small VAE decoder for 8x8x1 digits: z (B, latent_dim) → images in [0, 1].

    `image_shape` sizes it for other images, e.g. (28, 28, 1) for MNIST.

    Example:

        >>> print(build_digits_vae_decoder(2).output_shape)
        (None, 8, 8, 1)
    """
    check_int("latent_dim", latent_dim)
    image_shape = check_image_shape(image_shape, multiple=1)
    code = keras.Input((latent_dim,))
    return keras.Model(code, _decoder_body(code, image_shape), name="decoder")


def build_digits_cvae_encoder(latent_dim, num_classes=10, image_shape=(8, 8, 1)):
    """Builds a conditional encoder: [x (B, 8, 8, 1), one_hot (B, K)] → [mean, log_variance].

    The label is concatenated to the flattened image (`LabelChannels` on a flat input).

    Example:

        >>> print([tuple(shape) for shape in build_digits_cvae_encoder(2).output_shape])
        [(None, 2), (None, 2)]
    """
    check_int("latent_dim", latent_dim)
    check_int("num_classes", num_classes)
    images = keras.Input(check_image_shape(image_shape, multiple=1))
    one_hot = keras.Input((num_classes,))
    flat = keras.layers.Flatten()(images)  # (B, H·W·C)
    # On a flat input LabelChannels concatenates the label: the dense case of [notes §6.3].
    hidden = LabelChannels(num_classes)(flat, one_hot)  # (B, H·W·C + K)
    outputs = _encoder_head(hidden, latent_dim)
    return keras.Model([images, one_hot], outputs, name="encoder")


def build_digits_cvae_decoder(latent_dim, num_classes=10, image_shape=(8, 8, 1)):
    """Builds a conditional decoder: [z (B, latent_dim), one_hot (B, K)] → images (B, 8, 8, 1).

    The label is concatenated to the code, the dense case of [notes §6.3].

    Example:

        >>> print(build_digits_cvae_decoder(2).output_shape)
        (None, 8, 8, 1)
    """
    check_int("latent_dim", latent_dim)
    check_int("num_classes", num_classes)
    image_shape = check_image_shape(image_shape, multiple=1)
    code = keras.Input((latent_dim,))
    one_hot = keras.Input((num_classes,))
    hidden = keras.layers.Concatenate()([code, one_hot])  # (B, latent_dim + K)
    return keras.Model([code, one_hot], _decoder_body(hidden, image_shape), name="decoder")
