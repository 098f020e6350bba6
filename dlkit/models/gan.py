"""Generative adversarial networks: GAN, conditional GAN and AC-GAN [notes ch. 6, §6.3].

Each model takes its generator and discriminator as arguments and declares the alternating
updates of the notes' algorithm (k discriminator steps, then one generator step); the trainer in
``dlkit.training`` runs them on every backend. Builders return small default networks for the
embedded 8×8×1 digits scaled to [-1, 1] (``dlkit.data.digits(value_range=(-1, 1))``).
"""

from __future__ import annotations

import keras
from keras import ops

from dlkit.layers import LabelChannels, MinibatchStdDev
from dlkit.losses import discriminator_loss, generator_loss
from dlkit.models._adversarial import TwoPlayerGAN
from dlkit.models._networks import (
    DIGITS_SHAPE,
    check_image_shape,
    downsample,
    network_shapes,
    upsample,
)
from dlkit.validation import check_choice, check_int

__all__ = [
    "ACGAN",
    "CONDITIONING_MODES",
    "GAN",
    "ConditionalGAN",
    "build_acgan_digits_discriminator",
    "build_conditional_digits_discriminator",
    "build_conditional_digits_generator",
    "build_digits_discriminator",
    "build_digits_generator",
]

CONDITIONING_MODES = ("concatenate", "label_channels", "film")


def _class_cross_entropy(one_hot_labels, class_logits):
    return ops.mean(ops.categorical_crossentropy(one_hot_labels, class_logits, from_logits=True))


@keras.saving.register_keras_serializable(package="dlkit")
class GAN(TwoPlayerGAN):
    """A generative adversarial network trained by the notes' alternating algorithm.

    The discriminator D (a network returning one logit per image) learns to tell data from the
    generator's samples; the generator G learns to make D wrong. Each training step on a batch
    takes `discriminator_steps` (the notes' k) discriminator updates with G frozen, then one
    generator update with D frozen. Deviation from the notes: `fit` yields one batch per step,
    so the k discriminator updates reuse that batch, each with fresh noise, instead of drawing
    k minibatches. `saturating=True` gives the generator the minimax loss log(1 − D(G(z)));
    the default non-saturating loss −log D(G(z)) has the same fixed point and stronger early
    gradients.

    Equation:

        noise ~ N(0, I), shape (B, latent_dim)                         [notes ch. 6, algorithm]
        discriminator step (×k): minimise −log D(x) − log(1 − D(G(noise)))    [notes eq. 6.1]
        generator step:          minimise log(1 − D(G(noise)))  if saturating  [notes eq. 6.1]
                                          −log D(G(noise))      otherwise
        with D = sigmoid(discriminator logit)

    Args:
        generator: network mapping noise (B, latent_dim) to samples (B, ...).
        discriminator: network mapping samples (B, ...) to logits (B, 1).
        latent_dim: size of the noise vector, >= 1.
        discriminator_steps: discriminator updates per generator update (k), >= 1.
        saturating: use the minimax generator loss instead of the non-saturating one.
        seed: seed of the model's noise (training and `sample`).
        **kwargs: other `keras.Model` arguments (`name`, ...).

    Call arguments:
        noise: (B, latent_dim).

    Returns:
        The generated samples, the generator's output shape, e.g. (B, 8, 8, 1).

    Example:

        >>> gan = GAN(build_digits_generator(4), build_digits_discriminator(), latent_dim=4)
        >>> print(tuple(gan.sample(3).shape))
        (3, 8, 8, 1)

    Reference:
        Goodfellow et al., "Generative Adversarial Nets", NeurIPS 2014
        (https://arxiv.org/abs/1406.2661).
    """

    # Constructor arguments other than the networks, stored as same-named attributes.
    _CONFIG_ARGUMENTS = ("latent_dim", "discriminator_steps", "saturating", "seed")

    def __init__(
        self,
        generator,
        discriminator,
        latent_dim,
        discriminator_steps=1,
        saturating=False,
        seed=None,
        **kwargs,
    ):
        super().__init__(
            generator, discriminator, latent_dim, None, discriminator_steps, seed, **kwargs
        )
        self.saturating = bool(saturating)

    def discriminator_loss(self, data):
        real, _, _ = keras.utils.unpack_x_y_sample_weight(data)
        return discriminator_loss(self.discriminator(real), self.discriminator(self._fake(real)))

    def generator_loss(self, data):
        real, _, _ = keras.utils.unpack_x_y_sample_weight(data)
        return generator_loss(self.discriminator(self._fake(real)), saturating=self.saturating)


@keras.saving.register_keras_serializable(package="dlkit")
class ConditionalGAN(TwoPlayerGAN):
    """A conditional GAN: both players see the class label.

    The generator maps (noise, one-hot label) to an image of that class; the discriminator
    judges (image, one-hot label) pairs, so a sharp image of the wrong class is still fake.
    Training data are `(images, labels)` (`fit(images, labels)`), labels as class indices
    (B,) or one-hot (B, num_classes). Choice: the fakes of a batch are conditioned on that
    batch's labels, so they follow the data's class frequencies.

    `conditioning` names how the default digits networks wire the label in (used when
    `generator` or `discriminator` is None): "concatenate" joins it to the noise and to the
    discriminator's flattened features (the dense-layer case), "label_channels" appends it to
    the image as constant channels (vectorisation), "film" scales and shifts the feature maps
    with it. Any networks with the same inputs work.

    Equation:

        discriminator step (×k): minimise −log D(x, y) − log(1 − D(G(noise, y), y))
        generator step:          minimise −log D(G(noise, y), y)    [notes eq. 6.1, §6.3]

    Args:
        generator: network mapping [noise (B, latent_dim), one-hot (B, K)] to images, or None.
        discriminator: network mapping [images, one-hot (B, K)] to logits (B, 1), or None.
        latent_dim: size of the noise vector, >= 1.
        num_classes: number of classes K, >= 2.
        conditioning: "concatenate", "label_channels" or "film" (see above).
        discriminator_steps: discriminator updates per generator update (k), >= 1.
        seed: seed of the model's noise.
        **kwargs: other `keras.Model` arguments.

    Call arguments:
        inputs: a tuple (noise (B, latent_dim), labels (B,) or (B, num_classes)).

    Returns:
        The generated images, e.g. (B, 8, 8, 1).

    Example:

        >>> import numpy as np
        >>> model = ConditionalGAN(None, None, latent_dim=4, num_classes=10, conditioning="film")
        >>> print(tuple(model.sample(np.arange(10)).shape))
        (10, 8, 8, 1)

    Reference:
        Mirza and Osindero, "Conditional Generative Adversarial Nets", 2014
        (https://arxiv.org/abs/1411.1784).
    """

    # Constructor arguments other than the networks, stored as same-named attributes.
    _CONFIG_ARGUMENTS = ("latent_dim", "num_classes", "conditioning", "discriminator_steps", "seed")

    def __init__(
        self,
        generator,
        discriminator,
        latent_dim,
        num_classes,
        conditioning="concatenate",
        discriminator_steps=1,
        seed=None,
        **kwargs,
    ):
        conditioning = check_choice("conditioning", conditioning, CONDITIONING_MODES)
        if generator is None:
            generator = build_conditional_digits_generator(latent_dim, num_classes, conditioning)
        if discriminator is None:
            discriminator = build_conditional_digits_discriminator(num_classes, conditioning)
        super().__init__(
            generator, discriminator, latent_dim, num_classes, discriminator_steps, seed, **kwargs
        )
        self.conditioning = conditioning

    def discriminator_loss(self, data):
        images, one_hot = self._images_and_labels(data)
        real_logits = self.discriminator([images, one_hot])
        fake_logits = self.discriminator([self._fake(one_hot), one_hot])
        return discriminator_loss(real_logits, fake_logits)

    def generator_loss(self, data):
        _, one_hot = self._images_and_labels(data)
        return generator_loss(self.discriminator([self._fake(one_hot), one_hot]))


@keras.saving.register_keras_serializable(package="dlkit")
class ACGAN(TwoPlayerGAN):
    """An auxiliary-classifier GAN: the discriminator also names the class.

    Only the generator takes the label; the discriminator sees the image alone and has two
    heads, a real/fake logit and K class logits. Both players also minimise the class
    cross-entropy: the discriminator on real and generated images, the generator on its own
    samples, which pushes each sample to be recognisably of its class. The class head is a
    digit classifier trained alongside the GAN (`classify`). Choice: the fakes of a batch are
    conditioned on that batch's labels.

    Equation:

        class_loss(x, y) = −log softmax(class_logits(x))[y]
        discriminator step (×k): minimise −log D(x) − log(1 − D(G(noise, y)))
                                          + class_loss(x, y) + class_loss(G(noise, y), y)
        generator step:          minimise −log D(G(noise, y)) + class_loss(G(noise, y), y)
                                                                      [notes eq. 6.1, §6.3]

    Args:
        generator: network mapping [noise (B, latent_dim), one-hot (B, K)] to images.
        discriminator: network mapping images to [logits (B, 1), class logits (B, K)].
        latent_dim: size of the noise vector, >= 1.
        num_classes: number of classes K, >= 2.
        discriminator_steps: discriminator updates per generator update (k), >= 1.
        seed: seed of the model's noise.
        **kwargs: other `keras.Model` arguments.

    Call arguments:
        inputs: a tuple (noise (B, latent_dim), labels (B,) or (B, num_classes)).

    Returns:
        The generated images, e.g. (B, 8, 8, 1).

    Example:

        >>> import numpy as np
        >>> model = ACGAN(build_conditional_digits_generator(4, 10),
        ...               build_acgan_digits_discriminator(10), latent_dim=4, num_classes=10)
        >>> print(tuple(model.classify(model.sample(np.arange(10))).shape))
        (10, 10)

    Reference:
        Odena, Olah and Shlens, "Conditional Image Synthesis with Auxiliary Classifier GANs",
        ICML 2017 (https://arxiv.org/abs/1610.09585).
    """

    # Constructor arguments other than the networks, stored as same-named attributes.
    _CONFIG_ARGUMENTS = ("latent_dim", "num_classes", "discriminator_steps", "seed")

    def __init__(
        self,
        generator,
        discriminator,
        latent_dim,
        num_classes,
        discriminator_steps=1,
        seed=None,
        **kwargs,
    ):
        super().__init__(
            generator, discriminator, latent_dim, num_classes, discriminator_steps, seed, **kwargs
        )

    def _discriminator_label_shapes(self, discriminator):
        # The AC-GAN discriminator meets the labels in its outputs: the class logits.
        shapes = network_shapes(discriminator, "outputs")
        return shapes[1:] if shapes else None

    def classify(self, images):
        """The class logits (B, num_classes) of the discriminator's auxiliary head."""
        return self.discriminator(images)[1]

    def discriminator_loss(self, data):
        images, one_hot = self._images_and_labels(data)
        real_logits, real_class_logits = self.discriminator(images)
        fake_logits, fake_class_logits = self.discriminator(self._fake(one_hot))
        return (
            discriminator_loss(real_logits, fake_logits)
            + _class_cross_entropy(one_hot, real_class_logits)
            + _class_cross_entropy(one_hot, fake_class_logits)
        )

    def generator_loss(self, data):
        _, one_hot = self._images_and_labels(data)
        fake_logits, fake_class_logits = self.discriminator(self._fake(one_hot))
        return generator_loss(fake_logits) + _class_cross_entropy(one_hot, fake_class_logits)


# Default networks for 8×8×1 digits in [-1, 1] (other shapes through `image_shape`). Small
# enough to train in seconds on a CPU.


def build_digits_generator(latent_dim, image_shape=DIGITS_SHAPE):
    """Noise (B, latent_dim) → Dense → (B, H/4, W/4, 32) → two ×2 transposed convolutions → tanh.

    `image_shape` (H, W, C), H and W divisible by 4, defaults to the 8×8×1 digits.
    """
    check_int("latent_dim", latent_dim)
    image_shape = check_image_shape(image_shape)
    noise = keras.Input((latent_dim,), name="noise")
    return keras.Model(noise, upsample(noise, image_shape), name="digits_generator")


def build_digits_discriminator(image_shape=DIGITS_SHAPE, minibatch_stddev=True):
    """Images (B, H, W, C) → two strided Conv2D + LeakyReLU → [MinibatchStdDev] → Dense(1) logit.

    `minibatch_stddev` appends the batch's feature diversity as a channel before the logit
    (`dlkit.layers.MinibatchStdDev`), which lets the discriminator reject a collapsed batch.
    """
    images = keras.Input(check_image_shape(image_shape), name="images")
    features = downsample(images)  # (B, H/4, W/4, 32)
    if minibatch_stddev:
        features = MinibatchStdDev()(features)  # (B, H/4, W/4, 33)
    features = keras.layers.Flatten()(features)
    return keras.Model(images, keras.layers.Dense(1)(features), name="digits_discriminator")


def build_conditional_digits_generator(
    latent_dim, num_classes, conditioning="concatenate", image_shape=DIGITS_SHAPE
):
    """[noise (B, latent_dim), one-hot (B, K)] → images (B, H, W, C), label wired by
    `conditioning`: concatenated to the noise ("concatenate"), also appended as channels of the
    hidden feature map ("label_channels"), or FiLM after the hidden upsampling ("film")."""
    check_int("latent_dim", latent_dim)
    check_int("num_classes", num_classes, 2)
    check_choice("conditioning", conditioning, CONDITIONING_MODES)
    image_shape = check_image_shape(image_shape)
    noise = keras.Input((latent_dim,), name="noise")
    labels = keras.Input((num_classes,), name="labels")
    if conditioning == "film":
        images = upsample(noise, image_shape, labels, film=True)
    else:
        joined = keras.layers.Concatenate()([noise, labels])  # (B, latent_dim + K)
        images = upsample(
            joined, image_shape, labels, label_channels=conditioning == "label_channels"
        )
    return keras.Model([noise, labels], images, name="conditional_digits_generator")


def build_conditional_digits_discriminator(
    num_classes, conditioning="concatenate", image_shape=DIGITS_SHAPE
):
    """[images (B, H, W, C), one-hot (B, K)] → logit (B, 1), label wired by `conditioning`:
    concatenated to the flattened features before a hidden Dense ("concatenate"), appended to
    the image as channels ("label_channels"), or FiLM after each convolution ("film")."""
    check_int("num_classes", num_classes, 2)
    check_choice("conditioning", conditioning, CONDITIONING_MODES)
    images = keras.Input(check_image_shape(image_shape), name="images")
    labels = keras.Input((num_classes,), name="labels")
    if conditioning == "label_channels":
        features = downsample(LabelChannels(num_classes)(images, labels))  # (B, H, W, C + K)
    else:
        features = downsample(images, labels if conditioning == "film" else None)
    features = keras.layers.Flatten()(features)
    if conditioning == "concatenate":
        features = keras.layers.Concatenate()([features, labels])
        features = keras.layers.Dense(32)(features)
        features = keras.layers.LeakyReLU(0.2)(features)
    logits = keras.layers.Dense(1)(features)
    return keras.Model([images, labels], logits, name="conditional_digits_discriminator")


def build_acgan_digits_discriminator(num_classes, image_shape=DIGITS_SHAPE):
    """Images (B, H, W, C) → [real/fake logit (B, 1), class logits (B, K)] from shared features."""
    check_int("num_classes", num_classes, 2)
    images = keras.Input(check_image_shape(image_shape), name="images")
    features = keras.layers.Flatten()(downsample(images))
    outputs = [keras.layers.Dense(1, name="logit")(features)]
    outputs.append(keras.layers.Dense(num_classes, name="class_logits")(features))
    return keras.Model(images, outputs, name="acgan_digits_discriminator")
