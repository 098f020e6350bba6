"""The base of the two-player GANs (`GAN`, `ConditionalGAN`, `ACGAN`) and their label input.

The other adversarial models (`AdversarialAutoencoder`, `VAEGAN`, `CycleGAN`) train more than
one generator-like network, or none that draws noise; they share with the GANs only the
handling of their network arguments, in `dlkit.models._networks`.
"""

from __future__ import annotations

import keras
from keras import ops

from dlkit.models._networks import network_shapes, networks_config, networks_from_config
from dlkit.training import AlternatingModel, Update
from dlkit.validation import check_int

__all__ = ["TwoPlayerGAN", "one_hot_labels"]


def one_hot_labels(labels, num_classes):
    """Class indices (B,) or (B, 1), or one-hot labels (B, num_classes), as float one-hot."""
    labels = ops.convert_to_tensor(labels)
    shape = tuple(labels.shape)
    if len(shape) == 2 and shape[-1] == num_classes:
        return ops.cast(labels, "float32")  # (B, K)
    if len(shape) == 1 or (len(shape) == 2 and shape[-1] == 1):
        indices = ops.cast(ops.reshape(labels, (-1,)), "int32")  # (B,)
        return ops.one_hot(indices, num_classes, dtype="float32")  # (B, K)
    raise ValueError(
        f"Expected `labels` of shape (B,), (B, 1) or (B, {num_classes}) (num_classes="
        f"{num_classes}). Received: labels.shape={shape}"
    )


class TwoPlayerGAN(AlternatingModel):
    """A generator and a discriminator trained by the notes' alternating algorithm.

    The base of `GAN`, `ConditionalGAN` and `ACGAN`. It checks and holds the two networks and
    the arguments they share, draws the generator's noise from two seeded streams (one for
    training, one for `sample`, so that sampling never changes the training noise), declares
    the updates (`discriminator_steps` discriminator updates, then one generator update) and
    writes the networks into the config. With `num_classes` set the generator is conditional:
    it takes `[noise, one-hot label]`, and `call` and `sample` take labels. Subclasses write
    `discriminator_loss` and `generator_loss` and list their other constructor arguments in
    `_CONFIG_ARGUMENTS`.

    Equation:

        noise ~ N(0, I), shape (B, latent_dim)                      [notes ch. 6, algorithm]
        fake = G(noise) or, conditional, G(noise, y)
        k = discriminator_steps discriminator updates, then one generator update

    Args:
        generator: network mapping noise (B, latent_dim) (and one-hot labels (B, K) when
            `num_classes` is set) to samples (B, ...).
        discriminator: the network judging samples; its outputs are the subclass's business.
        latent_dim: size of the noise vector, >= 1.
        num_classes: number of classes K (>= 2) of a conditional generator, or None.
        discriminator_steps: discriminator updates per generator update (k), >= 1.
        seed: seed of the model's noise (training and `sample`).
        **kwargs: other `keras.Model` arguments (`name`, ...).
    """

    # The constructor arguments other than the networks, stored as same-named attributes.
    _CONFIG_ARGUMENTS: tuple[str, ...] = ()
    _NETWORKS = ("generator", "discriminator")

    def __init__(
        self,
        generator,
        discriminator,
        latent_dim,
        num_classes=None,
        discriminator_steps=1,
        seed=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        latent_dim = check_int("latent_dim", latent_dim)
        num_classes = None if num_classes is None else check_int("num_classes", num_classes, 2)
        discriminator_steps = check_int("discriminator_steps", discriminator_steps)
        self._check_networks(generator, discriminator, latent_dim, num_classes)
        self.generator = generator
        self.discriminator = discriminator
        self.latent_dim = latent_dim
        self.discriminator_steps = discriminator_steps
        self.num_classes = num_classes
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.sample_seed_generator = keras.random.SeedGenerator(None if seed is None else seed + 1)

    def _discriminator_label_shapes(self, discriminator):
        """The shapes where the discriminator meets the labels: its inputs after the images."""
        shapes = network_shapes(discriminator, "inputs")
        return shapes[1:] if shapes else None

    def _check_networks(self, generator, discriminator, latent_dim, num_classes):
        """Checks that the networks consume and produce what the model feeds them."""
        generator_inputs = network_shapes(generator, "inputs")
        generator_outputs = network_shapes(generator, "outputs")
        discriminator_inputs = network_shapes(discriminator, "inputs")
        if generator_inputs and generator_inputs[0][-1] != latent_dim:
            raise ValueError(
                f"Expected the generator's noise input of size latent_dim. Received: latent_dim="
                f"{latent_dim} for a generator with input shapes {generator_inputs}"
            )
        if num_classes is not None:
            label_shapes = [
                generator_inputs[1:] if generator_inputs else None,
                self._discriminator_label_shapes(discriminator),
            ]
            for shapes in label_shapes:
                if shapes is not None and (len(shapes) != 1 or shapes[0][-1] != num_classes):
                    raise ValueError(
                        f"Expected networks with a one-hot label input (class logits output "
                        f"for the AC-GAN discriminator) of size num_classes. Received: "
                        f"num_classes={num_classes} for label shapes {shapes}"
                    )
        if generator_outputs and discriminator_inputs:
            if generator_outputs[0] != discriminator_inputs[0]:
                raise ValueError(
                    "Expected the generator's output shape to equal the discriminator's input "
                    f"shape. Received: generator output {generator_outputs[0]}, discriminator "
                    f"input {discriminator_inputs[0]}"
                )

    def get_config(self):
        return {**super().get_config(), **networks_config(self)}

    @classmethod
    def from_config(cls, config):
        return cls(**networks_from_config(cls, config))

    def call(self, inputs):
        if self.num_classes is None:
            return self.generator(inputs)
        noise, labels = inputs
        return self.generator([noise, one_hot_labels(labels, self.num_classes)])

    def sample(self, num_samples_or_labels):
        """Generates samples from fresh noise of the `sample` stream.

        Unconditional: `sample(num_samples)`, that many samples. Conditional: `sample(labels)`,
        one sample per label, labels as class indices (B,) or one-hot (B, num_classes).
        """
        if self.num_classes is None:
            num_samples = check_int("num_samples", num_samples_or_labels)
            return self._generate(num_samples, None, self.sample_seed_generator)
        one_hot = one_hot_labels(num_samples_or_labels, self.num_classes)
        return self._generate(ops.shape(one_hot)[0], one_hot, self.sample_seed_generator)

    def _fake(self, batch):
        """Samples from the training noise, one per row of `batch`: the real images of an
        unconditional model, the one-hot labels (B, K) that a conditional one generates for."""
        one_hot = None if self.num_classes is None else batch
        return self._generate(ops.shape(batch)[0], one_hot, self.seed_generator)

    def _generate(self, num_samples, one_hot, seed_generator):
        noise = keras.random.normal((num_samples, self.latent_dim), seed=seed_generator)
        return self.generator(noise if one_hot is None else [noise, one_hot])

    def _images_and_labels(self, data):
        """The batch's images and one-hot labels; a conditional model trains on both."""
        images, labels, _ = keras.utils.unpack_x_y_sample_weight(data)
        if labels is None:
            raise ValueError(
                "Expected batches of (images, labels): call fit(images, labels). "
                "Received: no labels"
            )
        return images, one_hot_labels(labels, self.num_classes)

    def updates(self):
        return [
            Update(
                "discriminator",
                self.discriminator.trainable_variables,
                self.discriminator_loss,
                repetitions=self.discriminator_steps,
            ),
            Update("generator", self.generator.trainable_variables, self.generator_loss),
        ]
