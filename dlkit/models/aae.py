"""The adversarial autoencoder: an autoencoder whose codes a discriminator pulls to a prior.

A variational autoencoder pushes each code distribution Q(z|x) towards N(0, I) with a KL term
[notes §5.2]; the adversarial autoencoder replaces that term by a discriminator on the latent
space, so that the aggregated codes Q(z) match any prior p(z) that can be sampled [notes §6.1,
"acting in the latent space"]. The model takes its encoder, decoder and discriminator as
arguments and declares three alternating updates that ``dlkit.training`` runs on every backend.
``build_digits_aae_networks`` returns small default networks for images in [0, 1].
"""

from __future__ import annotations

import math

import keras
from keras import ops

from dlkit.losses import discriminator_loss, generator_loss
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
from dlkit.validation import check_choice, check_int, check_non_negative

__all__ = ["PRIORS", "AdversarialAutoencoder", "build_digits_aae_networks", "sample_prior"]

PRIORS = ("normal", "uniform", "mixture")
# The "mixture" prior: components on a circle in the first two code dimensions, each stretched
# along its radius, the layout of the paper's 2-D mixture figures.
MIXTURE_COMPONENTS = 10
MIXTURE_RADIUS = 1.4
MIXTURE_RADIAL_STD = 0.5
MIXTURE_TANGENTIAL_STD = 0.1


def sample_prior(prior, num_samples, latent_dim, seed=None):
    """Draws `num_samples` codes (num_samples, latent_dim) from one of the `PRIORS`.

    "normal" is N(0, I); "uniform" is U[−1, 1] in every dimension; "mixture" puts, in the first
    two dimensions, an equal mixture of `MIXTURE_COMPONENTS` Gaussians whose means lie on a
    circle of radius `MIXTURE_RADIUS`, each with standard deviation `MIXTURE_RADIAL_STD` along
    its radius and `MIXTURE_TANGENTIAL_STD` across it; further dimensions are N(0, 1).

    Equation (mixture, first two dimensions):

        component ~ Uniform{0, …, 9},  angle = 2π · component / 10,  ε ~ N(0, I)
        radial = MIXTURE_RADIUS + MIXTURE_RADIAL_STD · ε₁
        tangential = MIXTURE_TANGENTIAL_STD · ε₂
        z₁ = radial · cos(angle) − tangential · sin(angle)
        z₂ = radial · sin(angle) + tangential · cos(angle)

    Args:
        prior: "normal", "uniform" or "mixture" (which needs latent_dim >= 2).
        num_samples: number of codes, >= 1.
        latent_dim: code size, >= 1.
        seed: an integer or a `keras.random.SeedGenerator`.

    Returns:
        Codes of shape (num_samples, latent_dim).

    Example:

        >>> print(tuple(sample_prior("mixture", 5, 3, seed=0).shape))
        (5, 3)
    """
    check_choice("prior", prior, PRIORS)
    check_int("latent_dim", latent_dim, 2 if prior == "mixture" else 1)
    shape = (num_samples, latent_dim)
    if prior == "normal":
        return keras.random.normal(shape, seed=seed)
    if prior == "uniform":
        return keras.random.uniform(shape, minval=-1.0, maxval=1.0, seed=seed)
    component = keras.random.randint((num_samples,), 0, MIXTURE_COMPONENTS, seed=seed)
    angle = ops.cast(component, "float32") * (2.0 * math.pi / MIXTURE_COMPONENTS)  # (N,)
    noise = keras.random.normal(shape, seed=seed)  # (N, latent_dim)
    radial = MIXTURE_RADIUS + MIXTURE_RADIAL_STD * noise[:, 0]  # (N,)
    tangential = MIXTURE_TANGENTIAL_STD * noise[:, 1]  # (N,)
    first = radial * ops.cos(angle) - tangential * ops.sin(angle)
    second = radial * ops.sin(angle) + tangential * ops.cos(angle)
    circle = ops.stack([first, second], axis=-1)  # (N, 2)
    return ops.concatenate([circle, noise[:, 2:]], axis=-1)  # (N, latent_dim)


def _code_size(encoder, decoder, discriminator):
    """The code size the three networks agree on, else ValueError naming the mismatch."""
    sizes = {
        "encoder output": network_shape(encoder, "outputs"),
        "decoder input": network_shape(decoder, "inputs"),
        "discriminator input": network_shape(discriminator, "inputs"),
    }
    known = {name: shape for name, shape in sizes.items() if shape is not None}
    if not known:
        raise ValueError(
            "Expected functional or sequential networks, whose code size is known before a "
            f"call. Received: encoder={encoder!r}, decoder={decoder!r}"
        )
    if any(len(shape) != 1 for shape in known.values()) or len(set(known.values())) != 1:
        raise ValueError(
            "Expected flat codes (B, latent_dim) of one size between the networks. Received: "
            + ", ".join(f"{name} {shape}" for name, shape in known.items())
        )
    discriminator_output = network_shape(discriminator, "outputs")
    if discriminator_output not in (None, (1,)):
        raise ValueError(
            "Expected a discriminator returning one logit per code (B, 1). Received: "
            f"discriminator output {discriminator_output}"
        )
    images_in, images_out = network_shape(encoder, "inputs"), network_shape(decoder, "outputs")
    if images_in is not None and images_out is not None and images_in != images_out:
        raise ValueError(
            "Expected the decoder's output shape to equal the encoder's input shape. Received: "
            f"encoder input {images_in}, decoder output {images_out}"
        )
    return next(iter(known.values()))[0]


@keras.saving.register_keras_serializable(package="dlkit")
class AdversarialAutoencoder(AlternatingModel):
    """An autoencoder whose aggregated codes are matched to a prior by a discriminator.

    The encoder maps an image to one deterministic code and the decoder maps it back. A
    discriminator on the latent space learns to tell codes drawn from the prior p(z) ("real")
    from the encoder's codes ("fake"), and the encoder, acting as a GAN generator, learns to
    fool it. The aggregated posterior Q(z) = E_x[δ(z − encoder(x))] is thereby pushed to p(z),
    the role of the VAE's KL term, for any prior that can be sampled; decoding prior draws then
    generates images. Each batch takes three updates, in order: "reconstruction" (encoder and
    decoder), "discriminator" (discriminator) and "generator" (encoder), each with its own
    optimizer (`compile(optimizers={"reconstruction": ..., "discriminator": ...,
    "generator": ...})`); the logs show `reconstruction_loss`, `discriminator_loss` and
    `generator_loss`. Choice: the reconstruction loss is the mean squared error per pixel,
    which, unlike Bernoulli cross-entropy, suits any pixel range. `reconstruction_weight` scales
    it; an optimizer that normalises its steps, such as Adam, is nearly blind to that scale, so
    the weight matters for SGD-like optimizers. The generator loss is the non-saturating −log D.

    Equation:

        code = encoder(x),  reconstruction = decoder(code)            [notes §5, §6.1]
        reconstruction_loss = reconstruction_weight · mean((x − reconstruction)²)
        prior_codes ~ p(z)                                            (`prior`)
        discriminator_loss = −log D(prior_codes) − log(1 − D(code))   [notes eq. 6.1]
        generator_loss = −log D(code)                  (encoder variables only)
        with D = sigmoid(discriminator logit)

    Args:
        encoder: network mapping images (B, ...) to codes (B, latent_dim).
        decoder: network mapping codes (B, latent_dim) to images (B, ...).
        discriminator: network mapping codes (B, latent_dim) to logits (B, 1).
        prior: "normal" (N(0, I)), "uniform" (U[−1, 1]^latent_dim) or "mixture" (10 Gaussians
            on a circle in the first two dimensions; see `sample_prior`).
        reconstruction_weight: weight of the reconstruction loss, >= 0.
        seed: seed of the prior draws (training and `sample`).
        **kwargs: other `keras.Model` arguments (`name`, ...).

    Call arguments:
        images: (B, ...), e.g. (B, 8, 8, 1) in [0, 1].

    Returns:
        The reconstruction, the shape of `images`.

    Example:

        >>> import numpy as np
        >>> model = AdversarialAutoencoder(*build_digits_aae_networks(2), seed=0)
        >>> print(tuple(model.encode(np.zeros((3, 8, 8, 1), "float32")).shape))
        (3, 2)
        >>> print(tuple(model.sample(4).shape))
        (4, 8, 8, 1)

    Reference:
        Makhzani et al., "Adversarial Autoencoders", ICLR 2016 workshop
        (https://arxiv.org/abs/1511.05644).
    """

    # Constructor arguments other than the networks, stored as same-named attributes.
    _CONFIG_ARGUMENTS = ("prior", "reconstruction_weight", "seed")
    _NETWORKS = ("encoder", "decoder", "discriminator")

    def __init__(
        self,
        encoder,
        decoder,
        discriminator,
        prior="normal",
        reconstruction_weight=1.0,
        seed=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        check_choice("prior", prior, PRIORS)
        reconstruction_weight = check_non_negative("reconstruction_weight", reconstruction_weight)
        check_layers(encoder=encoder, decoder=decoder, discriminator=discriminator)
        self.latent_dim = _code_size(encoder, decoder, discriminator)
        if prior == "mixture" and self.latent_dim < 2:
            raise ValueError(
                "Expected a code of at least 2 dimensions for prior='mixture'. Received: "
                f"latent_dim={self.latent_dim}"
            )
        self.encoder = encoder
        self.decoder = decoder
        self.discriminator = discriminator
        self.prior = prior
        self.reconstruction_weight = reconstruction_weight
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)
        # A second stream for `sample`, so that sampling never changes the training draws.
        self.sample_seed_generator = keras.random.SeedGenerator(None if seed is None else seed + 1)

    def get_config(self):
        return {**super().get_config(), **networks_config(self)}

    @classmethod
    def from_config(cls, config):
        return cls(**networks_from_config(cls, config))

    def call(self, images):
        return self.decoder(self.encoder(images))

    def encode(self, images):
        """The codes (B, latent_dim) of `images`."""
        return self.encoder(images)

    def decode(self, codes):
        """The images decoded from `codes` (B, latent_dim)."""
        return self.decoder(codes)

    def sample_prior(self, num_samples):
        """Draws `num_samples` codes from the prior, from the `sample` seed stream."""
        check_int("num_samples", num_samples)
        return sample_prior(self.prior, num_samples, self.latent_dim, self.sample_seed_generator)

    def sample(self, num_samples):
        """Decodes `num_samples` fresh seeded prior draws into images."""
        return self.decoder(self.sample_prior(num_samples))

    def updates(self):
        return [
            Update(
                "reconstruction",
                self.encoder.trainable_variables + self.decoder.trainable_variables,
                self.reconstruction_loss,
            ),
            Update(
                "discriminator", self.discriminator.trainable_variables, self.discriminator_loss
            ),
            Update("generator", self.encoder.trainable_variables, self.generator_loss),
        ]

    def reconstruction_loss(self, data):
        images, _, _ = keras.utils.unpack_x_y_sample_weight(data)
        reconstruction = self(images)
        images = ops.cast(images, reconstruction.dtype)
        return self.reconstruction_weight * ops.mean(ops.square(images - reconstruction))

    def discriminator_loss(self, data):
        images, _, _ = keras.utils.unpack_x_y_sample_weight(data)
        codes = self.encoder(images)  # (B, latent_dim)
        prior_codes = sample_prior(
            self.prior, ops.shape(codes)[0], self.latent_dim, self.seed_generator
        )  # (B, latent_dim)
        return discriminator_loss(self.discriminator(prior_codes), self.discriminator(codes))

    def generator_loss(self, data):
        images, _, _ = keras.utils.unpack_x_y_sample_weight(data)
        return generator_loss(self.discriminator(self.encoder(images)))


# Default networks for images in [0, 1] whose height and width are divisible by 4 (the 8×8×1
# digits by default). Small enough to train in seconds on a CPU.


def build_digits_aae_networks(latent_dim, image_shape=DIGITS_SHAPE, hidden_units=64):
    """Builds (encoder, decoder, discriminator) for an `AdversarialAutoencoder`.

    encoder: images (B, H, W, C) → two stride-2 Conv2D + LeakyReLU → Flatten → Dense(hidden,
    ReLU) → Dense(latent_dim), a linear code. decoder: code → Dense → (B, H/4, W/4, 32) → two ×2
    transposed convolutions → sigmoid, images in [0, 1]. discriminator: code → two
    Dense(hidden) + LeakyReLU(0.2) → Dense(1), a logit.

    Example:

        >>> encoder, decoder, discriminator = build_digits_aae_networks(2)
        >>> print(encoder.output_shape, decoder.output_shape, discriminator.output_shape)
        (None, 2) (None, 8, 8, 1) (None, 1)
    """
    check_int("latent_dim", latent_dim)
    check_int("hidden_units", hidden_units)
    image_shape = check_image_shape(image_shape)
    images = keras.Input(image_shape, name="images")
    features = keras.layers.Flatten()(downsample(images))  # (B, H/4 · W/4 · 32)
    features = keras.layers.Dense(hidden_units, activation="relu")(features)
    encoder = keras.Model(images, keras.layers.Dense(latent_dim)(features), name="aae_encoder")

    codes = keras.Input((latent_dim,), name="codes")
    decoder = keras.Model(
        codes, upsample(codes, image_shape, activation="sigmoid"), name="aae_decoder"
    )

    codes = keras.Input((latent_dim,), name="codes")
    hidden = codes
    for index in range(2):
        hidden = keras.layers.Dense(hidden_units, name=f"discriminator_hidden_{index}")(hidden)
        hidden = keras.layers.LeakyReLU(0.2)(hidden)
    logits = keras.layers.Dense(1, name="discriminator_logit")(hidden)
    discriminator = keras.Model(codes, logits, name="aae_discriminator")
    return encoder, decoder, discriminator
