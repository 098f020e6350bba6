"""CycleGAN: unpaired image-to-image translation between two domains [notes ch. 6, §6.2].

Two generators translate in opposite directions (A → B and B → A) and two discriminators each
judge one domain. Adversarial losses alone would let a generator produce any plausible image of
the other domain; the cycle-consistency loss ties each translation back to its input by asking
that translating there and back returns the original. The builder returns small default
networks for the embedded 8×8×1 digits scaled to [-1, 1], or any shape through `image_shape`.
"""

from __future__ import annotations

import keras
from keras import ops

from dlkit.layers import TransposedConv2D
from dlkit.losses import cycle_consistency_loss, discriminator_loss, generator_loss
from dlkit.models._networks import (
    DIGITS_SHAPE,
    check_image_shape,
    check_layers,
    downsample,
    network_shapes,
    networks_config,
    networks_from_config,
)
from dlkit.training import AlternatingModel, Update
from dlkit.validation import check_choice, check_non_negative

__all__ = ["ADVERSARIAL_LOSSES", "CycleGAN", "build_digits_cyclegan_networks"]

ADVERSARIAL_LOSSES = ("least_squares", "cross_entropy")


def _check_networks(generator_ab, generator_ba, discriminator_a, discriminator_b):
    """Checks that the networks' shapes chain: A → G_ab → B → G_ba → A, D_a on A, D_b on B.

    Only functional and sequential networks expose their shapes before a call; subclassed
    networks are checked by their first call.
    """
    domain_shapes = {
        "A": [
            ("generator_ab input", network_shapes(generator_ab, "inputs")),
            ("generator_ba output", network_shapes(generator_ba, "outputs")),
            ("discriminator_a input", network_shapes(discriminator_a, "inputs")),
        ],
        "B": [
            ("generator_ab output", network_shapes(generator_ab, "outputs")),
            ("generator_ba input", network_shapes(generator_ba, "inputs")),
            ("discriminator_b input", network_shapes(discriminator_b, "inputs")),
        ],
    }
    for domain, named_shapes in domain_shapes.items():
        known = [(name, shapes[0]) for name, shapes in named_shapes if shapes]
        if len({shape for _, shape in known}) > 1:
            received = ", ".join(f"{name} {shape}" for name, shape in known)
            raise ValueError(
                f"Expected the networks' shapes for domain {domain} to be equal. "
                f"Received: {received}"
            )


def _least_squares_discriminator_loss(real_logits, fake_logits):
    return ops.mean(ops.square(real_logits - 1.0)) + ops.mean(ops.square(fake_logits))


def _least_squares_generator_loss(fake_logits):
    return ops.mean(ops.square(fake_logits - 1.0))


@keras.saving.register_keras_serializable(package="dlkit")
class CycleGAN(AlternatingModel):
    """A CycleGAN: two generators and two discriminators trained on unpaired domains.

    `generator_ab` (the notes' G: X → Y) translates domain A to B and `generator_ba` (F: Y → X)
    back; `discriminator_a` (D_X) and `discriminator_b` (D_Y) return a logit, or a map of
    patch logits, per image. Each step on a batch `(images_a, images_b)` (unrelated images of
    the two domains) first updates both generators on the adversarial terms of both directions
    plus `cycle_weight` × the L1 cycle-consistency loss (plus `identity_weight` × the identity
    loss), then both discriminators on telling real images of their domain from translations.

    `adversarial_loss="least_squares"` (the paper's choice, LSGAN) scores logits with squared
    errors to 1 (real) and 0 (fake); "cross_entropy" uses the notes' log-loss (eq. 6.1) in its
    non-saturating form for the generators. Choices and deviations: `identity_weight` is an
    absolute weight (the paper's 0.5·λ is `identity_weight=0.5 * cycle_weight`); each
    discriminator's loss is halved as in the paper; the discriminators judge the current
    translations, not a history buffer of past ones.

    Data: `fit(x=images_a, y=images_b)` with two arrays of equal length (their pairing by index
    carries no meaning), or a dataset yielding `(images_a, images_b)` batches, e.g. a
    `tf.data.Dataset.zip` of the two domains. `evaluate` reports the same losses.

    Logged metrics: `generators_loss`, `discriminators_loss`, `cycle_loss` (the two directions'
    L1 errors summed, unweighted) and, when `identity_weight > 0`, `identity_loss`.

    Equation:

        fake_b = G_ab(a),  fake_a = G_ba(b)
        cycle_loss = ‖G_ba(fake_b) − a‖₁ + ‖G_ab(fake_a) − b‖₁              [notes §6.2]
        identity_loss = ‖G_ab(b) − b‖₁ + ‖G_ba(a) − a‖₁       (pixel means)
        least squares:  generators_loss = (D_b(fake_b) − 1)² + (D_a(fake_a) − 1)²
                                          + cycle_weight · cycle_loss
                                          + identity_weight · identity_loss
                        discriminators_loss = ½[(D_a(a) − 1)² + D_a(fake_a)²]
                                            + ½[(D_b(b) − 1)² + D_b(fake_b)²]
        cross entropy:  (D − 1)² → −log D and D² → −log(1 − D), D = sigmoid(logit)
                                                                         [notes eq. 6.1]

    Args:
        generator_ab: network mapping images of A (B, H, W, C) to images of B.
        generator_ba: network mapping images of B to images of A.
        discriminator_a: network mapping images of A to logits (B, 1) or (B, h, w, 1).
        discriminator_b: network mapping images of B to logits.
        cycle_weight: λ, the weight of the cycle-consistency loss, >= 0.
        identity_weight: the weight of the identity loss, >= 0 (0 skips it).
        adversarial_loss: "least_squares" or "cross_entropy".
        **kwargs: other `keras.Model` arguments (`name`, ...).

    Call arguments:
        images_a: (B, H, W, C), images of domain A.

    Returns:
        `generator_ab(images_a)`, images of domain B, e.g. (B, 8, 8, 1).

    Example:

        >>> model = CycleGAN(*build_digits_cyclegan_networks())
        >>> print(tuple(model.translate_ba(model(keras.ops.zeros((3, 8, 8, 1)))).shape))
        (3, 8, 8, 1)

    Reference:
        Zhu, Park, Isola and Efros, "Unpaired Image-to-Image Translation using
        Cycle-Consistent Adversarial Networks", ICCV 2017 (https://arxiv.org/abs/1703.10593).
    """

    # Constructor arguments other than the networks, stored as same-named attributes.
    _CONFIG_ARGUMENTS = ("cycle_weight", "identity_weight", "adversarial_loss")
    _NETWORKS = ("generator_ab", "generator_ba", "discriminator_a", "discriminator_b")

    def __init__(
        self,
        generator_ab,
        generator_ba,
        discriminator_a,
        discriminator_b,
        cycle_weight=10.0,
        identity_weight=0.0,
        adversarial_loss="least_squares",
        **kwargs,
    ):
        super().__init__(**kwargs)
        cycle_weight = check_non_negative("cycle_weight", cycle_weight)
        identity_weight = check_non_negative("identity_weight", identity_weight)
        check_choice("adversarial_loss", adversarial_loss, ADVERSARIAL_LOSSES)
        check_layers(
            generator_ab=generator_ab,
            generator_ba=generator_ba,
            discriminator_a=discriminator_a,
            discriminator_b=discriminator_b,
        )
        _check_networks(generator_ab, generator_ba, discriminator_a, discriminator_b)
        self.generator_ab = generator_ab
        self.generator_ba = generator_ba
        self.discriminator_a = discriminator_a
        self.discriminator_b = discriminator_b
        self.cycle_weight = cycle_weight
        self.identity_weight = identity_weight
        self.adversarial_loss = adversarial_loss
        self.cycle_loss_tracker = keras.metrics.Mean(name="cycle_loss")
        self.identity_loss_tracker = (
            keras.metrics.Mean(name="identity_loss") if identity_weight > 0 else None
        )

    def get_config(self):
        return {**super().get_config(), **networks_config(self)}

    @classmethod
    def from_config(cls, config):
        return cls(**networks_from_config(cls, config))

    def call(self, images_a, training=None):
        return self.generator_ab(images_a, training=training)

    def translate_ab(self, images_a):
        """Translates images of domain A to domain B (inference mode)."""
        return self.generator_ab(ops.convert_to_tensor(images_a), training=False)

    def translate_ba(self, images_b):
        """Translates images of domain B to domain A (inference mode)."""
        return self.generator_ba(ops.convert_to_tensor(images_b), training=False)

    def cycle_error(self, images_a, images_b):
        """Mean absolute round-trip errors `(mean|G_ba(G_ab(a)) − a|, mean|G_ab(G_ba(b)) − b|)`,
        two scalars in the images' pixel units."""
        images_a = ops.convert_to_tensor(images_a)
        images_b = ops.convert_to_tensor(images_b)
        return (
            cycle_consistency_loss(images_a, self.translate_ba(self.translate_ab(images_a))),
            cycle_consistency_loss(images_b, self.translate_ab(self.translate_ba(images_b))),
        )

    def updates(self):
        generator_variables = [
            *self.generator_ab.trainable_variables,
            *self.generator_ba.trainable_variables,
        ]
        discriminator_variables = [
            *self.discriminator_a.trainable_variables,
            *self.discriminator_b.trainable_variables,
        ]
        return [
            Update("generators", generator_variables, self.generators_loss),
            Update("discriminators", discriminator_variables, self.discriminators_loss),
        ]

    def _adversarial_generator_loss(self, fake_logits):
        if self.adversarial_loss == "least_squares":
            return _least_squares_generator_loss(fake_logits)
        return generator_loss(fake_logits)

    def _adversarial_discriminator_loss(self, real_logits, fake_logits):
        if self.adversarial_loss == "least_squares":
            return 0.5 * _least_squares_discriminator_loss(real_logits, fake_logits)
        return 0.5 * discriminator_loss(real_logits, fake_logits)

    def generators_loss(self, data):
        """Both generators' loss on a batch `(images_a, images_b)`; updates the trackers."""
        images_a, images_b = _domains(data)
        fake_b = self.generator_ab(images_a, training=True)
        fake_a = self.generator_ba(images_b, training=True)
        adversarial = self._adversarial_generator_loss(
            self.discriminator_b(fake_b, training=True)
        ) + self._adversarial_generator_loss(self.discriminator_a(fake_a, training=True))
        cycle = cycle_consistency_loss(
            images_a, self.generator_ba(fake_b, training=True)
        ) + cycle_consistency_loss(images_b, self.generator_ab(fake_a, training=True))
        self.cycle_loss_tracker.update_state(cycle)
        loss = adversarial + self.cycle_weight * cycle
        if self.identity_loss_tracker is not None:
            identity = cycle_consistency_loss(
                images_b, self.generator_ab(images_b, training=True)
            ) + cycle_consistency_loss(images_a, self.generator_ba(images_a, training=True))
            self.identity_loss_tracker.update_state(identity)
            loss = loss + self.identity_weight * identity
        return loss

    def discriminators_loss(self, data):
        """Both discriminators' loss on a batch `(images_a, images_b)`."""
        images_a, images_b = _domains(data)
        # The translations are inputs here: no gradient flows into the generators.
        fake_b = ops.stop_gradient(self.generator_ab(images_a, training=True))
        fake_a = ops.stop_gradient(self.generator_ba(images_b, training=True))
        return self._adversarial_discriminator_loss(
            self.discriminator_a(images_a, training=True),
            self.discriminator_a(fake_a, training=True),
        ) + self._adversarial_discriminator_loss(
            self.discriminator_b(images_b, training=True),
            self.discriminator_b(fake_b, training=True),
        )


def _domains(data):
    """`(images_a, images_b)` from a batch given as (x, y) or as x = (images_a, images_b)."""
    images_a, images_b, _ = keras.utils.unpack_x_y_sample_weight(data)
    if images_b is None and isinstance(images_a, (tuple, list)) and len(images_a) == 2:
        images_a, images_b = images_a
    if images_b is None:
        raise ValueError(
            "Expected batches of (images_a, images_b): call fit(x=images_a, y=images_b) or "
            "pass a dataset of (images_a, images_b) pairs. Received: no images_b"
        )
    return images_a, images_b


# Default networks, small enough to train in seconds on a CPU: the notes' cycle GAN with the
# paper's shapes scaled down (one residual block, no instance normalisation).


def _digits_generator(image_shape, name):
    """Images (B, H, W, C) → conv → stride-2 conv → residual block → ×2 transposed conv →
    conv tanh → (B, H, W, C); fully convolutional."""
    images = keras.Input(image_shape, name="images")
    features = keras.layers.LeakyReLU(0.2)(keras.layers.Conv2D(16, 3, padding="same")(images))
    features = keras.layers.Conv2D(32, 3, strides=2, padding="same")(features)  # (B, H/2, W/2, 32)
    features = keras.layers.LeakyReLU(0.2)(features)
    residual = keras.layers.Conv2D(32, 3, padding="same")(features)
    residual = keras.layers.Conv2D(32, 3, padding="same")(keras.layers.LeakyReLU(0.2)(residual))
    features = keras.layers.Add()([features, residual])
    features = TransposedConv2D(16, 4, strides=2, padding="same")(features)  # (B, H, W, 16)
    features = keras.layers.LeakyReLU(0.2)(features)
    outputs = keras.layers.Conv2D(image_shape[-1], 3, padding="same", activation="tanh")(features)
    return keras.Model(images, outputs, name=name)


def _digits_discriminator(image_shape, name):
    """Images (B, H, W, C) → two stride-2 conv + LeakyReLU → conv → patch logits
    (B, H/4, W/4, 1), one per overlapping image patch (PatchGAN)."""
    images = keras.Input(image_shape, name="images")
    logits = keras.layers.Conv2D(1, 3, padding="same")(downsample(images))
    return keras.Model(images, logits, name=name)


def build_digits_cyclegan_networks(image_shape=DIGITS_SHAPE):
    """Returns `(generator_ab, generator_ba, discriminator_a, discriminator_b)` for two domains
    of images of shape `image_shape` (H, W, C), H and W divisible by 4, in [-1, 1].

    Example:

        >>> networks = build_digits_cyclegan_networks((16, 16, 3))
        >>> print([tuple(network.outputs[0].shape[1:]) for network in networks])
        [(16, 16, 3), (16, 16, 3), (4, 4, 1), (4, 4, 1)]
    """
    image_shape = check_image_shape(image_shape)
    return (
        _digits_generator(image_shape, "generator_ab"),
        _digits_generator(image_shape, "generator_ba"),
        _digits_discriminator(image_shape, "discriminator_a"),
        _digits_discriminator(image_shape, "discriminator_b"),
    )
