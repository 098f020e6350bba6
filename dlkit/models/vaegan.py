"""The VAE-GAN: a variational autoencoder judged by a discriminator's features [notes §6.1].

A VAE's pixel-wise reconstruction error blurs its reconstructions; the VAE-GAN measures
reconstruction error in the feature space of a GAN discriminator instead, a learned similarity
metric, and trains the decoder also as a GAN generator. The model takes its three networks as
arguments and declares three alternating updates (encoder, decoder, discriminator) that the
trainer in ``dlkit.training`` runs on every backend. The builder returns small default networks
for the embedded 8×8×1 digits scaled to [-1, 1] (``dlkit.data.digits(value_range=(-1, 1))``).
"""

from __future__ import annotations

import keras
from keras import ops

from dlkit.layers import GaussianSampling
from dlkit.losses import discriminator_loss, generator_loss, kl_divergence_to_standard_normal
from dlkit.models._networks import (
    DIGITS_SHAPE,
    check_image_shape,
    check_layers,
    downsample,
    network_shape,
    networks_config,
    networks_from_config,
    upsample,
)
from dlkit.training import AlternatingModel, Update
from dlkit.validation import check_int, check_non_negative

__all__ = ["VAEGAN", "build_digits_vaegan_networks"]


def _check_networks(encoder, decoder, discriminator, image_shape):
    """Checks the networks' outputs on images of `image_shape` (H, W, C); returns latent_dim."""
    images = keras.KerasTensor((None, *image_shape))
    outputs = encoder.compute_output_spec(images)
    if not isinstance(outputs, (tuple, list)) or len(outputs) != 2:
        raise ValueError(
            "Expected `encoder` to return the pair [mean, log_variance]. "
            f"Received: encoder outputs={outputs!r}"
        )
    mean, log_variance = outputs
    if len(mean.shape) != 2 or tuple(mean.shape) != tuple(log_variance.shape):
        raise ValueError(
            "Expected `encoder` outputs mean and log_variance of one shape (B, latent_dim). "
            f"Received: shapes {tuple(mean.shape)} and {tuple(log_variance.shape)}"
        )
    reconstruction = decoder.compute_output_spec(mean)
    if tuple(reconstruction.shape[1:]) != tuple(image_shape):
        raise ValueError(
            f"Expected `decoder` to output the image shape {tuple(image_shape)}. "
            f"Received: decoder output shape={tuple(reconstruction.shape[1:])}"
        )
    outputs = discriminator.compute_output_spec(images)
    if (
        not isinstance(outputs, (tuple, list))
        or len(outputs) != 2
        or tuple(outputs[0].shape[1:]) != (1,)
        or len(outputs[1].shape) < 2
    ):
        shapes = [tuple(output.shape) for output in keras.tree.flatten(outputs)]
        raise ValueError(
            "Expected `discriminator` to return [logit (B, 1), features (B, ...)]. "
            f"Received: discriminator output shapes={shapes}"
        )
    return int(mean.shape[-1])


@keras.saving.register_keras_serializable(package="dlkit")
class VAEGAN(AlternatingModel):
    """A VAE-GAN: a VAE whose reconstruction error is measured by a discriminator's features.

    The notes' "acting in the visible space" combination of a VAE and a GAN [notes §6.1]: a
    pixel-wise error is too sensitive to small translations and rotations, so a discriminator
    takes over the comparison of an image with its reconstruction. The encoder predicts a
    diagonal Gaussian Q(z|x) as in `dlkit.models.VAE` [notes §5.2]; the decoder is both the
    VAE's decoder and a GAN generator [notes ch. 6]. The discriminator returns a real/fake
    logit and hidden activations Dis_l(x), the learned features. The reconstruction term is a
    Gaussian log-likelihood of the real image's features given the reconstruction's: a squared
    error in feature space, which tolerates small shifts that a pixel-wise error punishes. The
    discriminator learns to tell real images from reconstructions and from decodings of prior
    draws z_p ~ N(0, I); it is not trained on the feature loss (it would shrink its features).

    Each training step takes three updates on the same batch, in order, each from its own
    forward pass with fresh noise: the encoder, the decoder, then the discriminator. Logs:
    `encoder_loss`, `decoder_loss`, `discriminator_loss`, and from the encoder's pass
    `kl_loss`, `feature_loss` (L_feature) and `pixel_mse` (monitoring only, not trained on).

    Deviations from the paper: the decoder uses the non-saturating generator loss
    −log D(·) instead of log(1 − D(·)); the two kinds of fakes (reconstructions and prior
    samples) are averaged, not summed, in both players' GAN terms, so that for the
    discriminator real and fake weigh equally (its loss is 2·log 2 when D = ½); the updates run
    one after another, each on a fresh forward pass, instead of from one shared pass.

    Equation:

        mean, log_variance = encoder(x);  z = mean + exp(½ log_variance) ⊙ ε   [notes §5.2]
        reconstruction = decoder(z);  prior_samples = decoder(z_p),  ε, z_p ~ N(0, I)
        kl_loss = KL(N(mean, exp(log_variance)) ‖ N(0, I))                    [notes eq. 5.4]
        feature_loss = ½ Σ_features (Dis_l(x) − Dis_l(reconstruction))²     [notes §6.1]
        fakes = [reconstruction, prior_samples]
        encoder step:       minimise beta · kl_loss + feature_loss
        decoder step:       minimise feature_weight · feature_loss − log D(fakes)
        discriminator step: minimise −log D(x) − log(1 − D(fakes))            [notes eq. 6.1]
        with D = sigmoid(discriminator logit), averaged over the batch

    Args:
        encoder: network mapping images (B, H, W, C) to `[mean, log_variance]`, each
            (B, latent_dim).
        decoder: network mapping codes (B, latent_dim) to images (B, H, W, C), in the data's
            range (the default decoder ends in tanh: [-1, 1]).
        discriminator: network mapping images to `[logit (B, 1), features (B, ...)]`.
        beta: weight of the KL term in the encoder's loss, >= 0. Defaults to 1.0.
        feature_weight: weight γ of the feature loss in the decoder's loss, >= 0.
            Defaults to 1.0.
        seed: integer seed of the training noise; `sample` draws from a second stream.
        **kwargs: other `keras.Model` arguments (`name`, ...).

    Call arguments:
        images: (B, H, W, C).
        training: whether to decode a sampled code (training) or the mean code (inference).

    Returns:
        The reconstructions, (B, H, W, C).

    Example:

        >>> import numpy as np
        >>> model = VAEGAN(*build_digits_vaegan_networks(4), seed=0)
        >>> print(tuple(model(np.zeros((3, 8, 8, 1), "float32")).shape))
        (3, 8, 8, 1)
        >>> print(tuple(model.sample(5).shape))
        (5, 8, 8, 1)

    Reference:
        Larsen, Sønderby, Larochelle and Winther, "Autoencoding beyond pixels using a learned
        similarity metric", ICML 2016 (https://arxiv.org/abs/1512.09300).
    """

    # Constructor arguments other than the networks, stored as same-named attributes.
    _CONFIG_ARGUMENTS = ("beta", "feature_weight", "seed")
    _NETWORKS = ("encoder", "decoder", "discriminator")

    def __init__(
        self, encoder, decoder, discriminator, beta=1.0, feature_weight=1.0, seed=None, **kwargs
    ):
        super().__init__(**kwargs)
        beta = check_non_negative("beta", beta)
        feature_weight = check_non_negative("feature_weight", feature_weight)
        check_layers(encoder=encoder, decoder=decoder, discriminator=discriminator)
        self.encoder = encoder
        self.decoder = decoder
        self.discriminator = discriminator
        self.beta = beta
        self.feature_weight = feature_weight
        self.seed = seed
        self.latent_dim = None
        image_shape = network_shape(encoder, "inputs")
        if image_shape is not None:
            self.latent_dim = _check_networks(encoder, decoder, discriminator, image_shape)
        # The code's noise at training; the mean code at inference makes `call` deterministic.
        self.sampling = GaussianSampling(sample_at_inference=False, seed=seed)
        self.seed_generator = keras.random.SeedGenerator(None if seed is None else seed + 1)
        # A separate stream for `sample`, so that sampling never changes the training noise.
        self.sample_seed_generator = keras.random.SeedGenerator(None if seed is None else seed + 2)
        self.kl_tracker = keras.metrics.Mean(name="kl_loss")
        self.feature_tracker = keras.metrics.Mean(name="feature_loss")
        self.pixel_tracker = keras.metrics.Mean(name="pixel_mse")

    def build(self, input_shape):
        self.latent_dim = _check_networks(
            self.encoder, self.decoder, self.discriminator, tuple(input_shape[1:])
        )
        self.built = True

    def get_config(self):
        return {**super().get_config(), **networks_config(self)}

    @classmethod
    def from_config(cls, config):
        return cls(**networks_from_config(cls, config))

    def call(self, images, training=None):
        mean, log_variance = self.encoder(images, training=training)  # 2 × (B, latent_dim)
        code = self.sampling(mean, log_variance, training=training)  # (B, latent_dim)
        return self.decoder(code, training=training)  # (B, H, W, C)

    def encode(self, images):
        """Returns `(mean, log_variance)` of Q(z|x) in inference mode, each (B, latent_dim)."""
        return self.encoder(ops.convert_to_tensor(images), training=False)

    def sample(self, num_samples):
        """Decodes `num_samples` codes z_p ~ N(0, I) drawn from the model's sample stream."""
        check_int("num_samples", num_samples)
        if self.latent_dim is None:
            raise ValueError(
                "Expected a built model (call it on images once) before `sample`. "
                "Received: an unbuilt VAEGAN with subclassed networks"
            )
        codes = keras.random.normal((num_samples, self.latent_dim), seed=self.sample_seed_generator)
        return self.decoder(codes, training=False)  # (num_samples, H, W, C)

    def updates(self):
        return [
            Update("encoder", self.encoder.trainable_variables, self.encoder_loss),
            Update("decoder", self.decoder.trainable_variables, self.decoder_loss),
            Update(
                "discriminator", self.discriminator.trainable_variables, self.discriminator_loss
            ),
        ]

    def _forward(self, data):
        """One pass: (images, mean, log_variance, reconstruction, prior samples)."""
        images, _, _ = keras.utils.unpack_x_y_sample_weight(data)
        images = ops.convert_to_tensor(images, "float32")
        mean, log_variance = self.encoder(images, training=True)  # 2 × (B, latent_dim)
        code = self.sampling(mean, log_variance, training=True)  # (B, latent_dim)
        reconstruction = self.decoder(code, training=True)  # (B, H, W, C)
        prior_codes = keras.random.normal(ops.shape(mean), seed=self.seed_generator)
        prior_samples = self.decoder(prior_codes, training=True)  # (B, H, W, C)
        return images, mean, log_variance, reconstruction, prior_samples

    def feature_loss(self, images, reconstruction):
        """½ Σ (Dis_l(x) − Dis_l(x̃))², the batch mean, and the fakes' logits (2B, 1).

        Returns `(feature_loss, fake_logits)`: the discriminator's pass on the reconstructions
        also gives their logits, reused by the decoder's GAN term.
        """
        _, real_features = self.discriminator(images, training=True)
        fake_logits, fake_features = self.discriminator(reconstruction, training=True)
        batch_size = ops.shape(images)[0]
        difference = ops.reshape(real_features - fake_features, (batch_size, -1))  # (B, F)
        return ops.mean(0.5 * ops.sum(ops.square(difference), axis=-1)), fake_logits

    def encoder_loss(self, data):
        images, mean, log_variance, reconstruction, _ = self._forward(data)
        kl_loss = kl_divergence_to_standard_normal(mean, log_variance)
        feature_loss, _ = self.feature_loss(images, reconstruction)
        self.kl_tracker.update_state(ops.stop_gradient(kl_loss))
        self.feature_tracker.update_state(ops.stop_gradient(feature_loss))
        pixel_mse = ops.mean(ops.square(images - reconstruction))
        self.pixel_tracker.update_state(ops.stop_gradient(pixel_mse))
        return self.beta * kl_loss + feature_loss

    def decoder_loss(self, data):
        images, _, _, reconstruction, prior_samples = self._forward(data)
        feature_loss, reconstruction_logits = self.feature_loss(images, reconstruction)
        prior_logits, _ = self.discriminator(prior_samples, training=True)
        fake_logits = ops.concatenate([reconstruction_logits, prior_logits], axis=0)  # (2B, 1)
        return self.feature_weight * feature_loss + generator_loss(fake_logits)

    def discriminator_loss(self, data):
        images, _, _, reconstruction, prior_samples = self._forward(data)
        fakes = ops.concatenate([reconstruction, prior_samples], axis=0)  # (2B, H, W, C)
        real_logits, _ = self.discriminator(images, training=True)
        fake_logits, _ = self.discriminator(ops.stop_gradient(fakes), training=True)
        return discriminator_loss(real_logits, fake_logits)


# Default networks for 8×8×1 digits in [-1, 1] (other shapes through `image_shape`), small
# enough to train in seconds on a CPU.


def build_digits_vaegan_networks(latent_dim, image_shape=DIGITS_SHAPE):
    """Builds (encoder, decoder, discriminator) for images of `image_shape` in [-1, 1].

    Encoder: images → two strided Conv2D + LeakyReLU → Flatten → Dense(128, relu) →
    [mean, log_variance]. Decoder: code → Dense → (H/4, W/4, 32) → two ×2 transposed
    convolutions → tanh. Discriminator: images → two strided Conv2D + LeakyReLU → Dense(1)
    logit; its features, the learned similarity metric, are both convolutions' activations,
    flattened and joined (B, H/2 · W/2 · 16 + H/4 · W/4 · 32): the first layer keeps the metric
    close to the image's layout, the second adds what the discriminator judges by.
    `image_shape` (H, W, C), H and W divisible by 4, defaults to the 8×8×1 digits.

    Example:

        >>> encoder, decoder, discriminator = build_digits_vaegan_networks(4)
        >>> print([tuple(shape) for shape in discriminator.output_shape])
        [(None, 1), (None, 384)]
    """
    check_int("latent_dim", latent_dim)
    image_shape = check_image_shape(image_shape)
    images = keras.Input(image_shape, name="images")
    hidden = keras.layers.Flatten()(downsample(images))  # (B, H/4 · W/4 · 32)
    hidden = keras.layers.Dense(128, activation="relu")(hidden)
    mean = keras.layers.Dense(latent_dim, name="mean")(hidden)  # (B, latent_dim)
    log_variance = keras.layers.Dense(latent_dim, name="log_variance")(hidden)
    encoder = keras.Model(images, [mean, log_variance], name="vaegan_encoder")

    code = keras.Input((latent_dim,), name="code")
    decoder = keras.Model(code, upsample(code, image_shape), name="vaegan_decoder")

    images = keras.Input(image_shape, name="images")
    hidden = images
    layer_features = []
    # (B, H, W, C) → (B, H/2, W/2, 16) → (B, H/4, W/4, 32)
    for index, filters in enumerate((16, 32)):
        convolution = keras.layers.Conv2D(
            filters, 3, strides=2, padding="same", name=f"discriminator_conv_{index}"
        )
        hidden = convolution(hidden)
        hidden = keras.layers.LeakyReLU(0.2)(hidden)
        layer_features.append(keras.layers.Flatten()(hidden))
    features = keras.layers.Concatenate(name="discriminator_features")(layer_features)
    logit = keras.layers.Dense(1, name="discriminator_logit")(layer_features[-1])
    discriminator = keras.Model(images, [logit, features], name="vaegan_discriminator")
    return encoder, decoder, discriminator
